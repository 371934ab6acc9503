"""What every fake HTTP service shares: a server on 127.0.0.1:<free port> in a thread of its
own, and a stop that closes the connections still open, so a held request ends with it."""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackFake:
    """Started by `start()` or `with`; `handler` answers its requests; `poll_interval`: how
    soon the server thread notices `stop()`."""

    def __init__(self, handler: type[TrackedHandler], poll_interval: float) -> None:
        self._handler = handler
        self._poll_interval = poll_interval
        self._lock = threading.RLock()
        self._stopping = threading.Event()  # set by stop(): releases any delay still waiting
        self._connections: set[socket.socket] = set()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._stopping.clear()
        server = LoopbackServer(("127.0.0.1", 0), self._handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": self._poll_interval}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return int(self._server.server_address[1])


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: LoopbackFake


class TrackedHandler(BaseHTTPRequestHandler, ABC):
    """Keep-alive HTTP/1.1, its connection known to the fake while it is open, no access log."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the test output is about the adapter, not the fake's access log."""

    @abstractmethod
    def serve(self, method: str) -> None:
        """Answer the request: each fake routes it as the service it stands for does."""

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def answer(
        self, status: int, content_type: str, body: bytes, headers: Mapping[str, str]
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the answer came
            self.close_connection = True
