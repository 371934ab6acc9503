"""`robson` command line: parse arguments, call one use case, print JSON or a clear error."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from domain.errors import DomainError
from domain.formats import money
from domain.identity import client_id_for
from domain.ledger import PlanRequest
from domain.market import Side
from infra.bootstrap import Services, build_services, migrate
from infra.price_feed import csv_replay, feed, random_walk
from infra.settings import ConfigurationError, Settings
from infra.vault import VaultError
from projections.audit import ExportFilter, export_events, to_ndjson
from projections.catalog import PROJECTION_NAMES, select_projections
from projections.progress import TerminalProgress
from projections.rebuild import rebuild

Handler = Callable[[argparse.Namespace, Settings, TextIO], int]


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _since(text: str) -> int | datetime:
    if text.isdigit():
        return int(text)
    return _moment(text)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print(out: TextIO, payload: Mapping[str, Any]) -> None:
    out.write(json.dumps(payload, indent=2, default=str) + "\n")


def _with_services(settings: Settings, body: Callable[[Services], int]) -> int:
    services = build_services(settings)
    try:
        return body(services)
    finally:
        services.close()


# --- handlers ---


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


def cmd_client_create(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        reg = s.ledger.register_client(args.name, args.email, args.capital, args.operator)
        _print(out, {"client_id": str(reg.client_id), "token": reg.token})
        return 0

    return _with_services(settings, body)


def cmd_client_token(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        _print(out, {"token": s.ledger.issue_token(args.email)})
        return 0

    return _with_services(settings, body)


def cmd_client_credentials(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not args.secret_key_stdin:
        raise DomainError("pass --secret-key-stdin and the secret key on standard input")
    secret = sys.stdin.readline().strip()

    def body(s: Services) -> int:
        masked = s.ledger.set_credentials(args.email, args.api_key, secret)
        _print(out, {"email": args.email, "masked_api_key": masked, "has_credentials": True})
        return 0

    return _with_services(settings, body)


def cmd_paper_price(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        if s.paper is None:
            raise DomainError("paper prices exist only with ROBSON_EXCHANGE=paper")
        price = s.paper.set_price(args.symbol, args.price)
        _print(out, {"symbol": args.symbol.upper(), "price": money(price)})
        return 0

    return _with_services(settings, body)


def cmd_paper_feed(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Drive the paper price from a seeded random walk or a CSV file, until stopped."""

    def body(s: Services) -> int:
        if s.paper is None:
            raise DomainError("paper prices exist only with ROBSON_EXCHANGE=paper")
        rules = s.paper.symbol_rules(args.symbol)
        if args.csv:
            prices = csv_replay(Path(args.csv))
        else:
            try:
                start = args.start or s.paper.price(rules.symbol)
            except DomainError:
                start = Decimal("98500")
            prices = random_walk(start, rules, args.seed)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        sent = feed(s.paper, rules.symbol, prices, args.interval, stop, args.count)
        _print(
            out,
            {
                "symbol": rules.symbol,
                "prices_set": sent,
                "last": money(s.paper.price(rules.symbol)),
            },
        )
        return 0

    return _with_services(settings, body)


def cmd_policy_resume(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        client = s.ledger.client_by_email(args.email)
        policy = s.ledger.resume_trading(client.id, args.by, args.note)
        _print(out, {"email": client.email, "paused": policy.paused, "resumed_by": args.by})
        return 0

    return _with_services(settings, body)


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

    return _with_services(settings, body)


def cmd_projections_status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        statuses = s.read_models.status()
        _print(
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

    return _with_services(settings, body)


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

    return _with_services(settings, body)


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

    return _with_services(settings, body)


def cmd_serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """The HTTP API under uvicorn, with the projection runner (and the workers unless told not)."""
    from infra.serve import serve

    return serve(settings, args.host, args.port, workers=not args.no_workers, out=out)


def _jobs(text: str) -> frozenset[Any]:
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


def _seconds(text: str) -> float:
    value = _decimal(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return float(value)


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

    return _with_services(settings, body)


def cmd_demo(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Plan, validate, execute and close one position on the paper exchange."""
    if settings.exchange != "paper":
        raise DomainError("the demo runs on the paper exchange only (ROBSON_EXCHANGE=paper)")

    def body(s: Services) -> int:
        assert s.paper is not None
        email = f"demo-{datetime.now(UTC):%Y%m%d%H%M%S%f}@robson.local"
        reg = s.ledger.register_client("Demo trader", email, Decimal(10000))
        entry = s.paper.set_price("BTCUSDC", Decimal("98500"))
        stop = entry - Decimal(2000)
        position = s.ledger.plan_validate_execute(
            reg.client_id, PlanRequest(symbol="BTCUSDC", side=Side.LONG, stop_price=stop)
        )
        s.paper.set_price("BTCUSDC", entry + Decimal(3000))
        closed = s.ledger.close_position(reg.client_id, position.id)
        selection = ExportFilter(client_id=reg.client_id)
        for record in export_events(s.store, selection):
            if record["stream_id"] == str(position.id):
                out.write(to_ndjson(record))
        out.write(
            f"\nDemo position {closed.id}: {closed.status.value}, "
            f"realised P&L {money(closed.realised_pnl)} USDC (net of fees)\n"
            f"Demo client {email} token: {reg.token}\n"
        )
        return 0

    return _with_services(settings, body)


# --- parser ---


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="robson", description="Risk-first trading ledger")
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="create or upgrade every table").set_defaults(
        handler=cmd_migrate
    )

    client = commands.add_parser("client", help="tenants, tokens, credentials")
    client_cmds = client.add_subparsers(dest="client_command", required=True)
    create = client_cmds.add_parser("create", help="register a client; prints its first token")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--capital", type=_decimal, default=Decimal(1000))
    create.add_argument("--operator", action="store_true")
    create.set_defaults(handler=cmd_client_create)
    token = client_cmds.add_parser("token", help="issue another API token")
    token.add_argument("--email", required=True)
    token.set_defaults(handler=cmd_client_token)
    creds = client_cmds.add_parser("credentials", help="store encrypted Binance keys")
    creds.add_argument("--email", required=True)
    creds.add_argument("--api-key", required=True)
    creds.add_argument("--secret-key-stdin", action="store_true")
    creds.set_defaults(handler=cmd_client_credentials)

    paper = commands.add_parser("paper", help="the paper exchange")
    paper_cmds = paper.add_subparsers(dest="paper_command", required=True)
    price = paper_cmds.add_parser("price", help="set the paper price of a symbol")
    price.add_argument("symbol")
    price.add_argument("price", type=_decimal)
    price.set_defaults(handler=cmd_paper_price)
    feeder = paper_cmds.add_parser("feed", help="move the paper price: random walk or CSV")
    feeder.add_argument("symbol")
    source = feeder.add_mutually_exclusive_group()
    source.add_argument("--seed", type=int, default=42, help="random-walk seed (default)")
    source.add_argument("--csv", metavar="FILE", help="replay prices from a CSV file")
    feeder.add_argument("--start", type=_decimal, help="random-walk start (current price)")
    feeder.add_argument("--interval", type=float, default=1.0, help="seconds between prices")
    feeder.add_argument("--count", type=int, help="stop after this many prices")
    feeder.set_defaults(handler=cmd_paper_feed)

    policy = commands.add_parser("policy", help="risk policy")
    policy_cmds = policy.add_subparsers(dest="policy_command", required=True)
    resume = policy_cmds.add_parser("resume", help="record a review and lift a pause")
    resume.add_argument("--email", required=True)
    resume.add_argument("--note", required=True)
    resume.add_argument("--by", default=os.environ.get("USER") or "operator")
    resume.set_defaults(handler=cmd_policy_resume)

    events = commands.add_parser("events", help="the event log")
    events_cmds = events.add_subparsers(dest="events_command", required=True)
    export = events_cmds.add_parser("export", help="stream events as NDJSON, secrets redacted")
    export.add_argument("--client", metavar="EMAIL")
    export.add_argument("--since", type=_since, help="notification id (exclusive) or ISO time")
    export.add_argument("--until", type=_moment, help="ISO time (inclusive)")
    export.add_argument("--output", metavar="FILE")
    export.set_defaults(handler=cmd_events_export)

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

    serve = commands.add_parser("serve", help="run the HTTP API (and the workers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--no-workers", action="store_true", help="API and projections only")
    serve.set_defaults(handler=cmd_serve)

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
            type=_seconds,
            default=RECONCILE_GRACE.total_seconds(),
            metavar="SECONDS",
            help="how long an order may be in flight before reconciliation takes it over",
        )

    commands.add_parser("demo", help="one position, end to end, on paper").set_defaults(
        handler=cmd_demo
    )
    return root


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = Settings.from_env(os.environ if env is None else env)
        return handler(args, settings, sys.stdout)
    except (DomainError, ConfigurationError, VaultError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
