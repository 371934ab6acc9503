"""`robson serve`: the API under uvicorn, with its background services in the same process."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TextIO

import uvicorn

from api.app import Background, create_app
from infra.bootstrap import Services, build_services
from infra.settings import Settings
from workers.worker import Worker

log = logging.getLogger("robson.serve")


def worker_services(services: Services) -> list[Background]:
    """The workers (stop monitor, trailing stop, reconciliation) as one service: the
    lifespan starts it after the projection runner and stops it first."""
    return [Worker.from_services(services)]


def background_services(services: Services, workers: bool) -> list[Background]:
    """What runs beside the API: the projection runner always (queries read its tables);
    the workers too unless `--no-workers` (API replicas leave them to one worker process)."""
    found: list[Background] = [services.projections]
    if workers:
        found += worker_services(services)
    return found


class _Server(uvicorn.Server):
    """Prints where it listens once the socket is bound (port 0 picks a free port)."""

    def __init__(
        self, config: uvicorn.Config, out: TextIO, draining: Callable[[], None] = lambda: None
    ) -> None:
        super().__init__(config)
        self.out = out
        self.draining = draining

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets)  # type: ignore[arg-type]
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self.out.write(
                    f"Robson API listening on http://{host}:{port}/ (dashboard: /, docs: /docs)\n"
                )
                self.out.flush()

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.draining()  # open live streams end now instead of holding the drain open
        await super().shutdown(sockets)  # type: ignore[arg-type]


def serve(
    settings: Settings, host: str, port: int, workers: bool, out: TextIO, log_level: str = "info"
) -> int:
    services = build_services(settings)
    app = create_app(
        services, background=background_services(services, workers), owns_services=True
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    _quiet_after_shutdown()
    _Server(config, out, app.state.streams.end).run()
    return 0


def _already_stopped(signum: int, frame: FrameType | None) -> None:
    """uvicorn re-raises the signal it shut down on; by then the shutdown is complete."""


def _quiet_after_shutdown() -> None:
    """SIGTERM/SIGINT end the server gracefully (lifespan included) and exit 0."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _already_stopped)
