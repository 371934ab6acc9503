"""Trade history: one row per exit fill (partial exits are their own rows), plus one open row
(exit_sequence 0) for a position's still-open quantity. P&L is net of fees.

Each row also keeps its `document`: the trade as the history reply lists it, formatted once
when the row is written rather than on every read (a busy tenant's reply lists ~100 trades).
A change to that format needs `robson projections rebuild trades`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from domain.formats import cents, iso, money
from domain.position import Position
from domain.read_models import TradeRow, TradeSummary
from projections.positions import side_sign
from projections.projection import On, Projection, Rows
from projections.tables import Column, Index, Kind, Record, Row, Table


def history_entry(trade: Row) -> str:
    """The trade as the history reply lists it (compact JSON), from its row's columns."""
    exit_price, pnl, percentage, hours = (
        trade["exit_price"],
        trade["pnl"],
        trade["pnl_percentage"],
        trade["duration_hours"],
    )
    document = {
        "id": str(trade["position_id"]),
        "exit_sequence": trade["exit_sequence"],
        "symbol": trade["symbol"],
        "side": "BUY" if trade["side"] == "LONG" else "SELL",
        "position_side": trade["side"],
        "quantity": money(trade["quantity"]),
        "entry_price": money(trade["entry_price"]),
        "exit_price": None if exit_price is None else money(exit_price),
        "pnl": None if pnl is None else money(pnl),
        "pnl_percentage": None if percentage is None else cents(percentage),
        "is_winner": trade["is_winner"],
        "is_closed": trade["is_closed"],
        "duration_hours": None if hours is None else float(hours),
        "fees": money(trade["fees"]),
        "entry_time": iso(trade["entry_time"]),
        "exit_time": iso(trade["exit_time"]),
    }
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


TRADE_POSITIONS = Table(  # what the trade rows need to know about each live position
    name="robson_trade_positions",
    columns=(
        Column("position_id", Kind.UUID),
        Column("client_id", Kind.UUID),
        Column("symbol", Kind.TEXT),
        Column("side", Kind.TEXT),
        Column("entry_price", Kind.MONEY, nullable=True),
        Column("entry_time", Kind.TIME, nullable=True),
        Column("open_quantity", Kind.MONEY),
        Column("entry_fees_remaining", Kind.MONEY),
        Column("exits", Kind.INT),
    ),
    key=("position_id",),
)

TRADES = Table(
    name="robson_trades",
    columns=(
        Column("position_id", Kind.UUID),
        Column("exit_sequence", Kind.INT),
        Column("client_id", Kind.UUID),
        Column("symbol", Kind.TEXT),
        Column("side", Kind.TEXT),
        Column("quantity", Kind.MONEY),
        Column("entry_price", Kind.MONEY),
        Column("exit_price", Kind.MONEY, nullable=True),
        Column("pnl", Kind.MONEY, nullable=True),
        Column("pnl_percentage", Kind.MONEY, nullable=True),
        Column("is_winner", Kind.BOOL, nullable=True),
        Column("is_closed", Kind.BOOL),
        Column("duration_hours", Kind.MONEY, nullable=True),
        Column("entry_time", Kind.TIME),
        Column("exit_time", Kind.TIME, nullable=True),
        Column("fees", Kind.MONEY),
        Column("activity_time", Kind.TIME),  # exit time, or entry time while open
        Column("document", Kind.TEXT, derived=history_entry),
    ),
    key=("position_id", "exit_sequence"),
    # Trade history reads one tenant's trades closed since a moment (exit_time) and those
    # still open (is_closed) as two short index ranges, or all of them newest first. The
    # history reply's columns ride along in the first range's index, so the busiest read
    # takes its rows from the index alone, in time order, where the table has them scattered
    # (one page read for every one or two rows).
    indexes=(
        Index(("client_id", "activity_time")),
        Index(
            ("client_id", "exit_time"),
            include=(
                "is_closed",
                "activity_time",
                "position_id",
                "exit_sequence",
                "is_winner",
                "pnl",
                "document",
            ),
        ),
        Index(("client_id", "is_closed")),
    ),
    vacuum_after_inserts=1000,
)

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal(0)


def pnl_percentage(pnl: Decimal, entry_price: Decimal, quantity: Decimal) -> Decimal:
    """pnl / (entry_price × quantity) × 100, to 2 places."""
    notional = entry_price * quantity
    if notional == 0:
        return ZERO.quantize(CENT)
    return (pnl / notional * 100).quantize(CENT, rounding=ROUND_HALF_UP)


def duration_hours(entry: datetime, exit_: datetime) -> Decimal:
    elapsed: timedelta = exit_ - entry
    micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
    return (Decimal(micros) / Decimal(3_600_000_000)).quantize(CENT, rounding=ROUND_HALF_UP)


def win_rate(winners: int, trades: int) -> str:
    """'60.0%'; '0.0%' before the first closed trade."""
    if trades == 0:
        return "0.0%"
    rate = (Decimal(winners) * 100 / Decimal(trades)).quantize(TENTH, rounding=ROUND_HALF_UP)
    return f"{rate}%"


class TradeHistoryProjection(Projection):
    name = "trades"
    tables = (TRADE_POSITIONS, TRADES)

    def handlers(self) -> Mapping[type, On]:
        fill = ("timestamp", "price", "fees_quote")
        return {
            Position.Planned: On(self._planned, ("client_id", "symbol", "side")),
            Position.EntryFilled: On(self._entry_filled, (*fill, "held_quantity")),
            Position.ExitFilled: On(self._exit_filled, (*fill, "quantity", "realised_pnl")),
            Position.Closed: On(self._finished),
            Position.Cancelled: On(self._finished),
            Position.EntryFailed: On(self._finished),
            Position.Rejected: On(self._finished),
        }

    def _planned(self, e: Position.Planned, nid: int, rows: Rows) -> None:
        rows.put(
            TRADE_POSITIONS,
            {
                "position_id": e.originator_id,
                "client_id": e.client_id,
                "symbol": e.symbol,
                "side": e.side.value,
                "entry_price": None,
                "entry_time": None,
                "open_quantity": ZERO,
                "entry_fees_remaining": ZERO,
                "exits": 0,
            },
        )

    def _entry_filled(self, e: Position.EntryFilled, nid: int, rows: Rows) -> None:
        position = rows.get(TRADE_POSITIONS, (e.originator_id,))
        if position is None:
            return
        position["entry_price"] = e.price
        position["entry_time"] = e.timestamp
        position["open_quantity"] = e.held_quantity
        position["entry_fees_remaining"] = e.fees_quote
        rows.put(TRADES, _open_row(position))

    def _exit_filled(self, e: Position.ExitFilled, nid: int, rows: Rows) -> None:
        position = rows.get(TRADE_POSITIONS, (e.originator_id,))
        if position is None or position["entry_price"] is None:
            return
        entry_price: Decimal = position["entry_price"]
        gross = (e.price - entry_price) * e.quantity * side_sign(position["side"])
        fees = gross - e.realised_pnl  # this fill's exit fees and its share of the entry fee
        position["exits"] += 1
        position["open_quantity"] -= e.quantity
        position["entry_fees_remaining"] -= fees - e.fees_quote
        rows.put(
            TRADES,
            {
                "position_id": e.originator_id,
                "exit_sequence": position["exits"],
                "client_id": position["client_id"],
                "symbol": position["symbol"],
                "side": position["side"],
                "quantity": e.quantity,
                "entry_price": entry_price,
                "exit_price": e.price,
                "pnl": e.realised_pnl,
                "pnl_percentage": pnl_percentage(e.realised_pnl, entry_price, e.quantity),
                "is_winner": e.realised_pnl > 0,
                "is_closed": True,
                "duration_hours": duration_hours(position["entry_time"], e.timestamp),
                "entry_time": position["entry_time"],
                "exit_time": e.timestamp,
                "fees": fees,
                "activity_time": e.timestamp,
            },
        )
        rows.put(TRADES, _open_row(position))

    def _finished(self, e: Position.Event, nid: int, rows: Rows) -> None:
        rows.delete(TRADES, (e.originator_id, 0))
        rows.delete(TRADE_POSITIONS, (e.originator_id,))


def _open_row(position: Row) -> Row:
    return {
        "position_id": position["position_id"],
        "exit_sequence": 0,
        "client_id": position["client_id"],
        "symbol": position["symbol"],
        "side": position["side"],
        "quantity": position["open_quantity"],
        "entry_price": position["entry_price"],
        "exit_price": None,
        "pnl": None,
        "pnl_percentage": None,
        "is_winner": None,
        "is_closed": False,
        "duration_hours": None,
        "entry_time": position["entry_time"],
        "exit_time": None,
        "fees": position["entry_fees_remaining"],
        "activity_time": position["entry_time"],
    }


# A TradeRow is the table's leading columns, in order: a result tuple becomes one directly.
_TRADE_FIELDS = tuple(f.name for f in fields(TradeRow))
if TRADES.column_names[: len(_TRADE_FIELDS)] != _TRADE_FIELDS:
    raise RuntimeError("TradeRow's fields must be the trades table's leading columns")


def trade_row_of(values: Record) -> TradeRow:
    """A trades result tuple (in the table's column order) as a TradeRow."""
    return TradeRow(*values[: len(_TRADE_FIELDS)])


def summarise(trades: list[TradeRow]) -> TradeSummary:
    """Open trades are counted, never in P&L; a closed trade wins only on net P&L."""
    closed = [t for t in trades if t.is_closed]
    winners = sum(1 for t in closed if t.is_winner)
    return TradeSummary(
        total_trades=len(trades),
        closed_trades=len(closed),
        open_trades=len(trades) - len(closed),
        total_pnl=sum((t.pnl for t in closed if t.pnl is not None), ZERO),
        winners=winners,
        losers=len(closed) - winners,
        win_rate=win_rate(winners, len(closed)),
    )
