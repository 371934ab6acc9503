"""The long-running commands: `robson serve` (the API) and `robson worker` with its one-pass
forms `monitor-stops` and `adjust-trailing-stops`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
from typing import TYPE_CHECKING, TextIO

from infra.bootstrap import Services
from infra.cli.common import Commands, seconds_arg, with_services
from infra.settings import Settings

if TYPE_CHECKING:  # imported when a command runs, not when the CLI starts
    from workers.jobs import Job


def cmd_serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """The HTTP API under uvicorn, with the projection runner (and the workers unless told not)."""
    from infra.serve import serve

    return serve(settings, args.host, args.port, workers=not args.no_workers, out=out)


def _jobs(text: str) -> frozenset[Job]:
    from workers.jobs import parse_jobs

    try:
        return parse_jobs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _shard(text: str) -> tuple[int, int]:
    from workers.jobs import parse_shard

    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_worker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Stop-loss / take-profit, trailing stop and reconciliation every ROBSON_POLL_SECONDS,
    one JSON line per action; SIGTERM or SIGINT finishes the current tick and exits 0."""
    from datetime import timedelta

    from workers.jobs import Action
    from workers.worker import Worker

    def report(action: Action) -> None:
        out.write(json.dumps(action.as_json()) + "\n")
        out.flush()

    def body(s: Services) -> int:
        worker = Worker.from_services(
            s,
            jobs=args.jobs,
            shard=args.shard,
            dry_run=args.dry_run,
            reconcile_grace=timedelta(seconds=args.reconcile_grace),
            report=report,
        )
        if args.once:
            worker.run_once()
            return 0
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: worker.request_stop())
        log = logging.getLogger("robson.worker")
        jobs = ",".join(sorted(job.value for job in worker.jobs))
        log.info("worker started: jobs=%s shard=%s poll=%ss", jobs, args.shard, worker.poll_seconds)
        worker.run()
        log.info("worker stopped after %s ticks", worker.metrics.ticks)
        return 0

    return with_services(settings, body)


def add_serve(commands: Commands) -> None:
    """The HTTP API, with the projection runner and the workers."""
    serve = commands.add_parser("serve", help="run the HTTP API (and the workers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--no-workers", action="store_true", help="API and projections only")
    serve.set_defaults(handler=cmd_serve)


def add_workers(commands: Commands) -> None:
    """The stop monitor, trailing stop and reconciliation, looping or once."""
    from domain.ledger import RECONCILE_GRACE
    from workers.jobs import ALL_JOBS, Job

    worker = commands.add_parser("worker", help="stop monitor, trailing stop, reconciliation")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.add_argument(
        "--jobs", type=_jobs, default=ALL_JOBS, help="any of stops,trailing,reconcile,drawdown"
    )
    worker.set_defaults(handler=cmd_worker)
    monitor = commands.add_parser("monitor-stops", help="one stop-loss / take-profit pass")
    monitor.set_defaults(handler=cmd_worker, once=True, jobs=frozenset({Job.STOPS, Job.RECONCILE}))
    trailing = commands.add_parser("adjust-trailing-stops", help="one trailing stop pass")
    trailing.set_defaults(handler=cmd_worker, once=True, jobs=frozenset({Job.TRAILING}))
    for command in (worker, monitor, trailing):
        command.add_argument(
            "--dry-run", action="store_true", help="print what would be done; do nothing"
        )
        command.add_argument(
            "--shard", type=_shard, metavar="I/N", help="only tenants whose client id %% N == I"
        )
        command.add_argument(
            "--reconcile-grace",
            type=seconds_arg,
            default=RECONCILE_GRACE.total_seconds(),
            metavar="SECONDS",
            help="how long an order may be in flight before reconciliation takes it over",
        )
