"""`robson replay`: the ledger's risk rules over historical Binance klines, with no exchange
and no database; prints the results and saves them, with an equity chart, to a folder."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from domain.errors import DomainError, InvalidInput
from domain.market import BTCUSDC, SymbolRules
from domain.replay import Replay, ReplaySettings
from domain.replay_entries import DailyBias, EntryRule, Schedule
from domain.replay_report import ReplayResult, Summary, summarise
from infra.cli.common import Commands
from infra.replay_files import (
    TRADE_COLUMNS,
    ChartUnavailable,
    KlineFiles,
    ProgressLine,
    draw_equity,
    money,
    read_plans,
    require_chart,
    summary_payload,
    trade_rows,
    write_csv,
    write_json,
)

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR")
DUMP_NAME = re.compile(r"^([A-Z0-9]+)-\d+[smhdwM]-")

DESCRIPTION = """\
Replay the ledger's rules over Binance kline CSV files (the public data dump's format: no
header, open time in ms or µs). Each trade goes through the real PLAN -> VALIDATE -> EXECUTE:
1% sizing, every VALIDATE check with the month's 4% loss budget, fees of 0.1% a fill (as on
the paper exchange), the hand-span trailing stop, and the monthly drawdown pause, which
only --review-monthly lifts (at the next month's first bar). Sizing uses --capital, as the
ledger uses the policy's capital.

Within a bar: plans due are validated at its open; then the stop is checked against the
low (LONG) / high (SHORT) and the target against the other extreme, the STOP FIRST, so a
bar touching both counts as stopped out; then the stop trails from the bar's favourable
extreme (high for a LONG, low for a SHORT), AFTER the exit checks. A plan fills at its
entry price on the first bar whose range contains it (within --entry-window hours, else it
is cancelled); in that bar only its stop is checked. Exits fill at their level, or at the
bar's open when it opened past it. BTC's spot filters apply (tick 0.01, lot 0.00001). A
SHORT is a margin position, as in the ledger; loan interest is not replayed. The drawdown is
measured on the equity each closed trade leaves.
"""

DAILY_RULE = """\
entries: --plans FILE (CSV with a header: time,side,entry,stop,target; time ISO 8601 UTC or
epoch ms; target may be empty) or, without it, the built-in demo rule: at the first bar of
each UTC day, LONG if the previous day closed above its open (and on the first day), SHORT
if below; entry at that bar's open, stop --stop-percent away, target --reward x the stop
distance beyond the entry.
"""


def add_parser(subparsers: Commands) -> argparse.ArgumentParser:
    """Register `replay` on the CLI's subparsers."""
    command: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="run the risk rules over historical klines (no exchange, no database)",
        description=DESCRIPTION,
        epilog=DAILY_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "klines", nargs="+", type=Path, metavar="KLINES.csv", help="kline files, in time order"
    )
    command.add_argument("--plans", type=Path, metavar="FILE", help="planned trades (CSV)")
    command.add_argument("--symbol", help="default: from the first file's name, else BTCUSDT")
    command.add_argument(
        "--capital", type=_positive, default=Decimal(1000), help="in the quote asset (1000)"
    )
    command.add_argument(
        "--stop-percent", type=_positive, default=Decimal(2), help="demo rule: stop distance (2)"
    )
    command.add_argument(
        "--reward", type=_positive, default=Decimal(2), help="demo rule: target in R (2)"
    )
    command.add_argument(
        "--entry-window",
        type=_positive,
        default=Decimal(24),
        metavar="HOURS",
        help="how long a plan waits for its entry price (24)",
    )
    command.add_argument(
        "--review-monthly", action="store_true", help="lift a drawdown pause at each new month"
    )
    command.add_argument(
        "--output",
        type=Path,
        default=Path("replay-output"),
        metavar="DIR",
        help="where trades.csv, months.csv, skipped.csv, summary.json and equity.png go "
        "(replay-output)",
    )
    command.add_argument("--no-chart", action="store_true", help="skip the equity chart")
    command.add_argument(
        "--quiet", action="store_true", help="no progress line (none either when not a terminal)"
    )
    command.set_defaults(handler=_handle)
    return command


def _handle(args: argparse.Namespace, _settings: object, out: TextIO) -> int:
    return run(args, out)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if not args.no_chart:
            require_chart()
        files = KlineFiles(args.klines)
        settings = ReplaySettings(
            rules=symbol_rules(args.symbol or _symbol_from(args.klines[0])),
            capital=args.capital,
            entry_window=timedelta(hours=float(args.entry_window)),
            review_monthly=args.review_monthly,
        )
        rule: EntryRule = (
            Schedule(read_plans(args.plans))
            if args.plans
            else DailyBias(args.stop_percent, args.reward)
        )
        progress = ProgressLine(err, files, enabled=out.isatty() and not args.quiet)
        try:
            result = Replay(settings, rule).run(files, progress)
        finally:
            progress.done()
    except (DomainError, ChartUnavailable) as error:
        err.write(f"error: {error}\n")
        return 2
    summary = summarise(result)
    try:
        saved = save(args.output, result, summary, settings.rules.symbol, not args.no_chart)
    except OSError as error:
        err.write(f"error: cannot save to {args.output}: {error.strerror or error}\n")
        return 2
    report(out, result, summary, settings.rules.symbol)
    out.write("Saved: " + ", ".join(str(path) for path in saved) + "\n")
    return 0


def symbol_rules(symbol: str) -> SymbolRules:
    """BTC's spot filters under the symbol's own name and assets."""
    symbol = symbol.strip().upper()
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return replace(
                BTCUSDC, symbol=symbol, base_asset=symbol[: -len(quote)], quote_asset=quote
            )
    raise InvalidInput("symbol", f"{symbol!r} does not end in a known quote asset")


def _symbol_from(path: Path) -> str:
    match = DUMP_NAME.match(path.name)
    return match.group(1) if match else "BTCUSDT"


def _positive(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("must be a number greater than zero")
    return value


def save(
    folder: Path, result: ReplayResult, summary: Summary, symbol: str, chart: bool
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    trades, months = folder / "trades.csv", folder / "months.csv"
    skipped, totals = folder / "skipped.csv", folder / "summary.json"
    write_csv(trades, TRADE_COLUMNS, trade_rows(result))
    write_csv(
        months,
        ("month", "pnl"),
        [{"month": m, "pnl": money(pnl)} for m, pnl in summary.by_month.items()],
    )
    write_csv(
        skipped,
        ("at", "side", "entry", "stop", "outcome", "reasons"),
        [
            {
                "at": s.at.isoformat(),
                "side": s.side.value,
                "entry": money(s.entry),
                "stop": money(s.stop) if s.stop is not None else "",
                "outcome": s.outcome,
                "reasons": "; ".join(s.reasons),
            }
            for s in result.skipped
        ],
    )
    write_json(totals, summary_payload(summary, result))
    saved = [trades, months, skipped, totals]
    if chart:
        picture = folder / "equity.png"
        draw_equity(result.equity_curve, picture, f"{symbol} replay: equity after each trade")
        saved.append(picture)
    return saved


def report(out: TextIO, result: ReplayResult, summary: Summary, symbol: str) -> None:
    span = ""
    if result.first_bar and result.last_bar:
        span = f", {result.first_bar:%Y-%m-%d %H:%M} to {result.last_bar:%Y-%m-%d %H:%M} UTC"
    out.write(f"Replay of {symbol}: {result.bars:,} bars{span}\n\n")
    out.write(f"Trades ({summary.trades}):\n")
    out.write(f"{'opened':16}  {'closed':16}  side   {'entry':>10}  {'exit':>10}  ")
    out.write(f"{'reason':11}  {'pnl':>10}  {'R':>6}\n")
    for t in result.trades:
        out.write(
            f"{t.opened_at:%Y-%m-%d %H:%M}  {t.closed_at:%Y-%m-%d %H:%M}  {t.side.value:5}  "
            f"{money(t.entry, '0.01'):>10}  {money(t.exit_price, '0.01'):>10}  "
            f"{t.reason.value:11}  {money(t.pnl, '0.01'):>10}  "
            f"{money(t.r_multiple, '0.01'):>6}\n"
        )
    out.write("\nP&L by month:\n")
    for month, pnl in summary.by_month.items():
        out.write(f"  {month}  {money(pnl, '0.01'):>12}\n")

    def share(value: Decimal | None, percent: bool = False) -> str:
        if value is None:
            return "n/a"
        return f"{money(value * 100, '0.01')}%" if percent else money(value, "0.01")

    out.write(
        f"\nNet P&L {money(summary.net_pnl, '0.01')} on {money(result.capital, '0.01')}, "
        f"final equity {money(summary.final_equity, '0.01')}\n"
        f"Max drawdown {money(summary.max_drawdown, '0.01')} "
        f"({money(summary.max_drawdown_percent, '0.01')}%)\n"
        f"Win rate {share(summary.win_rate, percent=True)} ({summary.wins}/{summary.trades}), "
        f"profit factor {share(summary.profit_factor)}, average R {share(summary.average_r)}\n"
        f"Plans rejected {summary.rejected}, cancelled {summary.cancelled}; "
        f"drawdown pauses {summary.pauses}; still open at the end {result.open_at_end}\n"
    )
