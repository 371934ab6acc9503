"""A replay's files: Binance kline CSVs and planned trades in, trades, months and chart out.

The klines are the public data dump's CSV (https://data.binance.vision): no header, twelve
columns (open time, open, high, low, close, volume, close time, quote volume, trades, taker
buy base volume, taker buy quote volume, ignore). Open times are milliseconds since the
epoch, or microseconds in the newer spot dumps: a value of 10^14 or more is taken as
microseconds (as milliseconds it would be after the year 5000). A header line, which some
copies of the files carry, is skipped.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO, cast

from domain.bars import Bar, moment
from domain.errors import InvalidInput
from domain.formats import Document
from domain.market import Side
from domain.replay_entries import PlannedTrade
from domain.replay_report import ReplayResult, Summary

MICROSECONDS_FROM = 10**14
CHUNK_CHARS = 1 << 20
PLAN_COLUMNS = ("time", "side", "entry", "stop", "target")
TRADE_COLUMNS = (
    "opened_at",
    "closed_at",
    "side",
    "entry",
    "initial_stop",
    "final_stop",
    "target",
    "exit_price",
    "quantity",
    "reason",
    "pnl",
    "fees",
    "r_multiple",
)


class ChartUnavailable(Exception):
    """The plotting library is not installed."""


@dataclass
class KlineFiles:
    """Bars of several files in the order given; `read` and `size` count characters, so a
    progress line can say how far it is without a second pass over the files."""

    paths: Sequence[Path]
    read: int = 0

    def __post_init__(self) -> None:
        for path in self.paths:
            if not path.is_file():
                raise InvalidInput("klines", f"{path}: no such file")

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.paths)

    def __iter__(self) -> Iterator[Bar]:
        for path in self.paths:
            yield from self._bars(path)

    def _bars(self, path: Path) -> Iterator[Bar]:
        number = 0
        try:
            with path.open(encoding="ascii", newline="") as stream:
                while chunk := stream.readlines(CHUNK_CHARS):
                    for line in chunk:
                        number += 1
                        fields = line.split(",", 5)
                        try:
                            opened = int(fields[0])
                        except ValueError:
                            if not line.strip() or (number == 1 and not fields[0].isdigit()):
                                continue  # a blank line, or a header line
                            raise
                        if opened >= MICROSECONDS_FROM:
                            opened //= 1000
                        yield Bar(
                            opened,
                            Decimal(fields[1]),
                            Decimal(fields[2]),
                            Decimal(fields[3]),
                            Decimal(fields[4]),
                        )
                    self.read += sum(map(len, chunk))
        except (ValueError, IndexError, InvalidOperation, UnicodeDecodeError):
            raise InvalidInput(
                "klines",
                f"{path}:{number}: not a Binance kline row (open time in ms or µs, then "
                "open, high, low, close, ...)",
            ) from None
        except OSError as error:
            raise InvalidInput("klines", f"{path}: {error.strerror or error}") from None


def read_plans(path: Path) -> list[PlannedTrade]:
    """Planned trades: a header `time,side,entry,stop,target`, then one trade a row.

    The time is ISO 8601 (UTC unless it says otherwise) or epoch milliseconds; the side
    LONG or SHORT (BUY and SELL too); the target may be empty.
    """
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.DictReader(stream)
            missing = [c for c in PLAN_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InvalidInput("plans", f"{path}: missing column(s) {', '.join(missing)}")
            return [_plan(row, path, i) for i, row in enumerate(reader, start=2)]
    except OSError as error:
        raise InvalidInput("plans", f"{path}: {error.strerror or error}") from None


def _plan(row: dict[str, str], path: Path, line: int) -> PlannedTrade:
    where = f"{path}:{line}"
    side_text = (row["side"] or "").strip().upper()
    sides = {"LONG": Side.LONG, "BUY": Side.LONG, "SHORT": Side.SHORT, "SELL": Side.SHORT}
    if side_text not in sides:
        raise InvalidInput("side", f"{where}: must be LONG or SHORT, not {row['side']!r}")
    return PlannedTrade(
        at=_time(row["time"], where),
        side=sides[side_text],
        entry=_price(row, "entry", where, required=True) or Decimal(0),
        stop=_price(row, "stop", where, required=False),
        target=_price(row, "target", where, required=False),
    )


def _time(text: str, where: str) -> datetime:
    text = (text or "").strip()
    if text.isdigit():
        value = int(text)
        return moment(value // 1000 if value >= MICROSECONDS_FROM else value)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("time", f"{where}: {text!r} is not an ISO time or epoch ms") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _price(row: dict[str, str], column: str, where: str, required: bool) -> Decimal | None:
    text = (row[column] or "").strip()
    if not text and not required:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(column, f"{where}: {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput(column, f"{where}: must be a number greater than zero")
    return value


# --- outputs ---


def money(value: Decimal, places: str | None = None) -> str:
    """Exact by default (so saved figures add up), or rounded to `places` for reading."""
    shown = value if places is None else value.quantize(Decimal(places))
    return f"{shown.normalize():f}"


def trade_rows(result: ReplayResult) -> list[dict[str, str]]:
    return [
        {
            "opened_at": t.opened_at.isoformat(),
            "closed_at": t.closed_at.isoformat(),
            "side": t.side.value,
            "entry": money(t.entry),
            "initial_stop": money(t.initial_stop),
            "final_stop": money(t.final_stop),
            "target": money(t.target) if t.target is not None else "",
            "exit_price": money(t.exit_price),
            "quantity": money(t.quantity),
            "reason": t.reason.value,
            "pnl": money(t.pnl),
            "fees": money(t.fees),
            "r_multiple": money(t.r_multiple, "0.0001"),
        }
        for t in result.trades
    ]


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def summary_payload(summary: Summary, result: ReplayResult) -> Document:
    def opt(value: Decimal | None, places: str = "0.0001") -> str | None:
        return None if value is None else money(value, places)

    return {
        "bars": result.bars,
        "first_bar": result.first_bar.isoformat() if result.first_bar else None,
        "last_bar": result.last_bar.isoformat() if result.last_bar else None,
        "capital": money(result.capital),
        "final_equity": money(summary.final_equity),
        "net_pnl": money(summary.net_pnl),
        "trades": summary.trades,
        "wins": summary.wins,
        "losses": summary.losses,
        "win_rate": opt(summary.win_rate),
        "profit_factor": opt(summary.profit_factor),
        "average_r": opt(summary.average_r),
        "max_drawdown": money(summary.max_drawdown),
        "max_drawdown_percent": money(summary.max_drawdown_percent, "0.01"),
        "pnl_by_month": {month: money(pnl) for month, pnl in summary.by_month.items()},
        "rejected_plans": summary.rejected,
        "cancelled_plans": summary.cancelled,
        "pauses": [{"at": at.isoformat(), "reason": why} for at, why in result.pauses],
        "open_at_end": result.open_at_end,
    }


def write_json(path: Path, payload: Mapping[str, object]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def require_chart() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartUnavailable(
            "the equity chart needs matplotlib: pip install 'robson[chart]', or pass --no-chart"
        ) from None


def draw_equity(curve: Sequence[tuple[datetime, Decimal]], path: Path, title: str) -> None:
    """The equity after each closed trade, as a step line, written as a PNG."""
    require_chart()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(10, 4.5), dpi=100)
    try:
        # matplotlib draws datetimes on a date axis; its stubs only name array types.
        times = cast(Any, [at for at, _ in curve])
        # The chart is a picture: floats are fine there, the figures it shows come from Decimals.
        values = [float(equity) for _, equity in curve]
        axes.step(times, values, where="post", color="#1f6feb", linewidth=1.4)
        axes.set_title(title)
        axes.set_ylabel("equity")
        axes.grid(True, alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)


class ProgressLine:
    """One stderr line redrawn in place, at most a few times a second; silent when off."""

    def __init__(self, stream: TextIO, files: KlineFiles, enabled: bool) -> None:
        self.stream = stream
        self.files = files
        self.enabled = enabled
        self.total = files.size if enabled else 0
        self.began = time.monotonic()
        self.drawn_at = 0.0

    def __call__(self, bars: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.drawn_at < 0.2 and self.files.read < self.total:
            return
        self.drawn_at = now
        share = self.files.read / self.total if self.total else 0.0
        rate = bars / max(now - self.began, 1e-9)
        self.stream.write(f"\rreplay: {share:6.1%}  {bars:,} bars  {rate:,.0f} bars/s")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.drawn_at:
            self.stream.write("\n")
            self.stream.flush()
