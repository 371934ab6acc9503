"""`robson migrate`, `robson events ...` (the event log) and `robson projections ...` (the
read models built from it)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TextIO

from domain.errors import DomainError
from domain.identity import client_id_for
from infra.bootstrap import Services, migrate
from infra.cli.common import Commands, moment_arg, print_json, since_arg, with_services
from infra.settings import Settings
from projections.audit import ExportFilter, export_events, to_ndjson
from projections.catalog import PROJECTION_NAMES, select_projections
from projections.progress import TerminalProgress
from projections.rebuild import rebuild


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    report = migrate(settings)
    if report is not None:
        out.write(
            f"rebuilt {', '.join(report.names)} (their tables changed in this release) "
            f"to event {report.position:,} in {report.seconds:.1f} s\n"
        )
    where = "PostgreSQL" if settings.is_postgres else str(settings.sqlite_path)
    out.write(f"migrated: {where}\n")
    return 0


def cmd_events_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    since_id = args.since if isinstance(args.since, int) else None
    since_time = args.since if isinstance(args.since, datetime) else None
    selection = ExportFilter(
        client_id=client_id_for(args.client) if args.client else None,
        since_id=since_id,
        since_time=since_time,
        until_time=args.until,
    )

    def body(s: Services) -> int:
        if args.client:
            s.ledger.client_by_email(args.client)  # an unknown client is an error, not silence
        with ExitStack() as stack:
            target = out
            if args.output:
                target = stack.enter_context(Path(args.output).open("w", encoding="utf-8"))
            for record in export_events(s.store, selection):
                target.write(to_ndjson(record))
        return 0

    return with_services(settings, body)


def cmd_projections_status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        statuses = s.read_models.status()
        print_json(
            out,
            {
                "log_position": s.read_models.log_position(),
                "projections": [
                    {
                        "name": status.name,
                        "position": status.position,
                        "lag_events": status.lag_events,
                        "lag_seconds": str(status.lag_seconds),
                    }
                    for status in statuses
                ],
            },
        )
        return 0

    return with_services(settings, body)


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Build FRESH tables from event 1 and swap them in; queries keep answering meanwhile."""

    unknown = [name for name in args.names if name not in PROJECTION_NAMES]
    if unknown:
        known = ", ".join(PROJECTION_NAMES)
        raise DomainError(f"unknown projection {unknown[0]!r}; known: {known}")

    def body(s: Services) -> int:
        projections = select_projections(args.names)
        progress = TerminalProgress(sys.stderr)
        report = rebuild(s.read_models.database, s.store, projections, progress=progress)
        out.write(
            f"rebuilt {', '.join(report.names)} to event {report.position:,}: "
            f"{report.events_read:,} events read, {report.rows:,} rows, "
            f"{report.seconds:.1f} s, {report.events_per_second:,.0f} events/s\n"
        )
        return 0

    return with_services(settings, body)


def cmd_projections_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Follow the event log until SIGTERM or SIGINT."""

    def body(s: Services) -> int:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        s.projections.start()
        out.write("following the event log; stop with SIGTERM or Ctrl-C\n")
        out.flush()
        stop.wait()
        s.projections.stop()
        out.write(f"stopped at event {min(x.position for x in s.read_models.status()):,}\n")
        return 0

    return with_services(settings, body)


def add_migrate(commands: Commands) -> None:
    """Create or upgrade every table."""
    commands.add_parser("migrate", help="create or upgrade every table").set_defaults(
        handler=cmd_migrate
    )


def add_events(commands: Commands) -> None:
    """Export the event log."""
    events = commands.add_parser("events", help="the event log")
    events_cmds = events.add_subparsers(dest="events_command", required=True)
    export = events_cmds.add_parser("export", help="stream events as NDJSON, secrets redacted")
    export.add_argument("--client", metavar="EMAIL")
    export.add_argument("--since", type=since_arg, help="notification id (exclusive) or ISO time")
    export.add_argument("--until", type=moment_arg, help="ISO time (inclusive)")
    export.add_argument("--output", metavar="FILE")
    export.set_defaults(handler=cmd_events_export)


def add_projections(commands: Commands) -> None:
    """Inspect, rebuild or follow the read models."""
    projections = commands.add_parser("projections", help="the read models")
    projection_cmds = projections.add_subparsers(dest="projections_command", required=True)
    projection_cmds.add_parser(
        "status", help="position and lag (events, seconds) of each projection"
    ).set_defaults(handler=cmd_projections_status)
    rebuild_cmd = projection_cmds.add_parser(
        "rebuild", help="rebuild into fresh tables from event 1, then swap them in"
    )
    rebuild_cmd.add_argument("names", nargs="*", metavar="NAME", help=", ".join(PROJECTION_NAMES))
    rebuild_cmd.set_defaults(handler=cmd_projections_rebuild)
    projection_cmds.add_parser(
        "run", help="follow the event log until SIGTERM/SIGINT"
    ).set_defaults(handler=cmd_projections_run)
