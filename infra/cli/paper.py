"""`robson paper ...` (the paper exchange's prices) and `robson demo` (one position, end to
end, on paper)."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from domain.errors import DomainError
from domain.formats import money
from domain.ledger import PlanRequest
from domain.market import Side
from infra.bootstrap import Services
from infra.cli.common import Commands, decimal_arg, print_json, with_services
from infra.demo_market import demo_prices
from infra.price_feed import csv_replay, feed, random_walk
from infra.settings import Settings
from projections.audit import ExportFilter, export_events, to_ndjson


def cmd_paper_price(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    def body(s: Services) -> int:
        if s.paper is None:
            raise DomainError("paper prices exist only with ROBSON_EXCHANGE=paper")
        price = s.paper.set_price(args.symbol, args.price)
        print_json(out, {"symbol": args.symbol.upper(), "price": money(price)})
        return 0

    return with_services(settings, body)


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
        print_json(
            out,
            {
                "symbol": rules.symbol,
                "prices_set": sent,
                "last": money(s.paper.price(rules.symbol)),
            },
        )
        return 0

    return with_services(settings, body)


def cmd_demo(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Plan, validate, execute and close one position on the paper exchange."""
    if settings.exchange != "paper":
        raise DomainError("the demo runs on the paper exchange only (ROBSON_EXCHANGE=paper)")

    def body(s: Services) -> int:
        assert s.paper is not None
        email = f"demo-{datetime.now(UTC):%Y%m%d%H%M%S%f}@robson.local"
        catch_up = s.projections.run_once
        with demo_prices(s.paper, s.read_models, catch_up, "BTCUSDC", Decimal(98500)) as move:
            reg = s.ledger.register_client("Demo trader", email, Decimal(10000))
            entry = move(Decimal(0))
            stop = s.paper.symbol_rules("BTCUSDC").round_price_up(entry * Decimal("0.98"))
            position = s.ledger.plan_validate_execute(
                reg.client_id, PlanRequest(symbol="BTCUSDC", side=Side.LONG, stop_price=stop)
            )
            move(Decimal(3000))  # a winner, on hand-set prices; the real price otherwise
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

    return with_services(settings, body)


def add_paper(commands: Commands) -> None:
    """Set or move the paper price of a symbol."""
    paper = commands.add_parser("paper", help="the paper exchange")
    paper_cmds = paper.add_subparsers(dest="paper_command", required=True)
    price = paper_cmds.add_parser("price", help="set the paper price of a symbol")
    price.add_argument("symbol")
    price.add_argument("price", type=decimal_arg)
    price.set_defaults(handler=cmd_paper_price)
    feeder = paper_cmds.add_parser("feed", help="move the paper price: random walk or CSV")
    feeder.add_argument("symbol")
    source = feeder.add_mutually_exclusive_group()
    source.add_argument("--seed", type=int, default=42, help="random-walk seed (default)")
    source.add_argument("--csv", metavar="FILE", help="replay prices from a CSV file")
    feeder.add_argument("--start", type=decimal_arg, help="random-walk start (current price)")
    feeder.add_argument("--interval", type=float, default=1.0, help="seconds between prices")
    feeder.add_argument("--count", type=int, help="stop after this many prices")
    feeder.set_defaults(handler=cmd_paper_feed)


def add_demo(commands: Commands) -> None:
    """The end-to-end demo on the paper exchange."""
    commands.add_parser("demo", help="one position, end to end, on paper").set_defaults(
        handler=cmd_demo
    )
