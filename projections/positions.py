"""Positions projection: every position's current state, and the open ones the workers scan."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from domain.position import Position, Status
from domain.read_models import PositionRow
from projections.projection import Handler, On, Projection, Rows, StreamEvent
from projections.tables import Column, Index, Kind, Row, Table

POSITIONS = Table(
    name="robson_positions",
    columns=(
        Column("position_id", Kind.UUID),
        Column("client_id", Kind.UUID),
        Column("symbol", Kind.TEXT),
        Column("side", Kind.TEXT),
        Column("status", Kind.TEXT),
        Column("quantity", Kind.MONEY),
        Column("open_quantity", Kind.MONEY),
        Column("held_quantity", Kind.MONEY),
        Column("entry_price", Kind.MONEY),
        Column("initial_stop", Kind.MONEY, nullable=True),
        Column("current_stop", Kind.MONEY, nullable=True),
        Column("target_price", Kind.MONEY, nullable=True),
        Column("realised_pnl", Kind.MONEY),
        Column("fees", Kind.MONEY),
        Column("entry_fees_remaining", Kind.MONEY),
        Column("exits", Kind.INT),
        Column("orders_in_flight", Kind.TEXT),
        Column("margin", Kind.BOOL),
        Column("planned_at", Kind.TIME),
        Column("opened_at", Kind.TIME, nullable=True),
        Column("closed_at", Kind.TIME, nullable=True),
        Column("updated_at", Kind.TIME),
        Column("updated_notification_id", Kind.INT),
    ),
    key=("position_id",),
    indexes=(
        Index(("client_id", "planned_at")),
        Index(("status", "symbol")),
        Index(("updated_notification_id",)),
    ),
)

OPEN_STATUSES = (Status.OPEN.value, Status.CLOSING.value)
# What a worker watches: exposure on the exchange, or an order whose outcome is unknown.
WATCHED_STATUSES = (Status.ENTERING.value, *OPEN_STATUSES)
ZERO = Decimal(0)
OPEN, CLOSED = Status.OPEN.value, Status.CLOSED.value


class OrderEvent(StreamEvent, Protocol):
    """A position's event about one of its orders."""

    @property
    def client_order_id(self) -> str: ...


def side_sign(side: str) -> int:
    return 1 if side == "LONG" else -1


def entry_fee_share(
    row: Row, price: Decimal, quantity: Decimal, fees_quote: Decimal, realised_pnl: Decimal
) -> Decimal:
    """The part of the entry fee an exit fill was charged: gross move − exit fees − net P&L."""
    entry: Decimal = row["entry_price"]
    gross = (price - entry) * quantity * side_sign(row["side"])
    return gross - fees_quote - realised_pnl


class PositionsProjection(Projection):
    name = "positions"
    tables = (POSITIONS,)

    def handlers(self) -> Mapping[type, On]:
        planned = ("timestamp", "client_id", "symbol", "side", "quantity", "entry_price")
        return {
            Position.Planned: On(self._planned, (*planned, "stop_price", "target_price", "margin")),
            Position.Validated: On(self._status(Status.VALIDATED), ("timestamp",)),
            Position.Rejected: On(self._status(Status.REJECTED), ("timestamp",)),
            Position.EntrySubmitted: On(
                self._order_submitted(Status.ENTERING), ("timestamp", "client_order_id")
            ),
            Position.EntryFilled: On(
                self._entry_filled, ("timestamp", "price", "held_quantity", "fees_quote")
            ),
            Position.EntryFailed: On(
                self._status(Status.CANCELLED, clear_orders=True), ("timestamp",)
            ),
            Position.StopAdjusted: On(self._stop_adjusted, ("timestamp", "to_stop")),
            Position.ExitTriggered: On(self._status(Status.CLOSING), ("timestamp",)),
            Position.ExitSubmitted: On(
                self._order_submitted(None), ("timestamp", "client_order_id")
            ),
            Position.ExitResubmitted: On(
                self._order_submitted(None), ("timestamp", "client_order_id")
            ),
            Position.ExitFilled: On(
                self._exit_filled,
                ("timestamp", "price", "quantity", "fees_quote", "realised_pnl"),
            ),
            Position.ExitFailed: On(self._status(Status.OPEN, clear_orders=True), ("timestamp",)),
            Position.Closed: On(self._closed, ("timestamp",)),
            Position.Cancelled: On(self._status(Status.CANCELLED), ("timestamp",)),
        }

    def _planned(self, e: Position.Planned, nid: int, rows: Rows) -> None:
        rows.put(
            POSITIONS,
            {
                "position_id": e.originator_id,
                "client_id": e.client_id,
                "symbol": e.symbol,
                "side": e.side.value,
                "status": Status.PLANNED.value,
                "quantity": e.quantity,
                "open_quantity": ZERO,
                "held_quantity": ZERO,
                "entry_price": e.entry_price,
                "initial_stop": e.stop_price,
                "current_stop": e.stop_price,
                "target_price": e.target_price,
                "realised_pnl": ZERO,
                "fees": ZERO,
                "entry_fees_remaining": ZERO,
                "exits": 0,
                "orders_in_flight": "",
                "margin": e.margin,
                "planned_at": e.timestamp,
                "opened_at": None,
                "closed_at": None,
                "updated_at": e.timestamp,
                "updated_notification_id": nid,
            },
        )

    def _row(self, e: StreamEvent, nid: int, rows: Rows) -> Row | None:
        row = rows.get(POSITIONS, (e.originator_id,))
        if row is not None:
            row["updated_at"] = e.timestamp
            row["updated_notification_id"] = nid
        return row

    def _status(self, status: Status, clear_orders: bool = False) -> Handler:
        value = status.value

        def handle(e: StreamEvent, nid: int, rows: Rows) -> None:
            row = self._row(e, nid, rows)
            if row is not None:
                row["status"] = value
                if clear_orders:
                    row["orders_in_flight"] = ""

        return handle

    def _order_submitted(self, status: Status | None) -> Handler:
        value = status.value if status is not None else None

        def handle(e: OrderEvent, nid: int, rows: Rows) -> None:
            row = self._row(e, nid, rows)
            if row is not None:
                if value is not None:
                    row["status"] = value
                row["orders_in_flight"] = e.client_order_id

        return handle

    def _entry_filled(self, e: Position.EntryFilled, nid: int, rows: Rows) -> None:
        row = self._row(e, nid, rows)
        if row is not None:
            row["status"] = OPEN
            row["entry_price"] = e.price
            row["open_quantity"] = e.held_quantity
            row["held_quantity"] = e.held_quantity
            row["fees"] += e.fees_quote
            row["entry_fees_remaining"] = e.fees_quote
            row["opened_at"] = e.timestamp
            row["orders_in_flight"] = ""

    def _stop_adjusted(self, e: Position.StopAdjusted, nid: int, rows: Rows) -> None:
        row = self._row(e, nid, rows)
        if row is not None:
            row["current_stop"] = e.to_stop

    def _exit_filled(self, e: Position.ExitFilled, nid: int, rows: Rows) -> None:
        row = self._row(e, nid, rows)
        if row is not None:
            share = entry_fee_share(row, e.price, e.quantity, e.fees_quote, e.realised_pnl)
            row["status"] = OPEN
            row["open_quantity"] -= e.quantity
            row["realised_pnl"] += e.realised_pnl
            row["fees"] += e.fees_quote
            row["entry_fees_remaining"] -= share
            row["exits"] += 1
            row["orders_in_flight"] = ""

    def _closed(self, e: Position.Closed, nid: int, rows: Rows) -> None:
        row = self._row(e, nid, rows)
        if row is not None:
            row["status"] = CLOSED
            row["open_quantity"] = ZERO
            row["entry_fees_remaining"] = ZERO
            row["closed_at"] = e.timestamp


def position_row(row: Row) -> PositionRow:
    orders = row["orders_in_flight"]
    return PositionRow(
        position_id=row["position_id"],
        client_id=row["client_id"],
        symbol=row["symbol"],
        side=row["side"],
        status=row["status"],
        quantity=row["quantity"],
        open_quantity=row["open_quantity"],
        entry_price=row["entry_price"],
        initial_stop=row["initial_stop"],
        current_stop=row["current_stop"],
        target_price=row["target_price"],
        realised_pnl=row["realised_pnl"],
        orders_in_flight=tuple(orders.split(",")) if orders else (),
        margin=row["margin"],
        planned_at=row["planned_at"],
        updated_at=row["updated_at"],
        updated_notification_id=row["updated_notification_id"],
    )


def unrealised_pnl(row: Row, price: Decimal) -> Decimal:
    """What closing the rest now would realise before exit fees (entry fees still owed count)."""
    entry: Decimal = row["entry_price"]
    owed: Decimal = row["entry_fees_remaining"]
    held: Decimal = row["open_quantity"]
    return (price - entry) * held * side_sign(row["side"]) - owed


def in_shard(client_id: UUID, shard: tuple[int, int] | None) -> bool:
    """Tenant sharding stable across processes: the client id's integer modulo n."""
    if shard is None:
        return True
    index, count = shard
    return client_id.int % count == index
