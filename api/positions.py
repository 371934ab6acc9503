"""Positions: the tenant's list and detail (read models plus the position's own event log),
and closing one, in full or in part."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from pydantic import Field

from api.as_of import AsOfQuery, past_instant, read_models_for
from api.operations import Call, Operation, Reply
from api.schemas import Empty, Input, MoneyOut, NoQuery, Output, Quantity
from domain.errors import PositionNotFound
from domain.exchange_stop import exchange_stop_summary
from domain.formats import Document, iso, maybe_money, money
from domain.position import Position, Status
from domain.read_models import PositionRow
from projections.audit import redacted_payload

PositionStatus = Literal[
    "planned", "validated", "rejected", "entering", "open", "closing", "closed", "cancelled"
]


class PositionView(Output):
    id: str
    symbol: str
    side: Literal["LONG", "SHORT"]
    status: PositionStatus
    quantity: MoneyOut
    open_quantity: MoneyOut
    entry_price: MoneyOut
    stop_price: MoneyOut | None
    initial_stop_price: MoneyOut | None
    target_price: MoneyOut | None
    pnl: MoneyOut
    margin: bool


class PositionEvent(Output):
    version: int
    type: str
    timestamp: str
    payload: dict[str, object]


class ExchangeStopView(Output):
    """The insurance stop resting at the exchange (none: Robson's own monitor only)."""

    protected: bool
    state: Literal["none", "sending", "resting", "cancelled", "filled", "refused"]
    client_order_id: str | None
    stop_price: MoneyOut | None
    limit_price: MoneyOut | None
    quantity: MoneyOut
    note: str | None


class PositionDetail(PositionView):
    exchange_stop: ExchangeStopView
    events: list[PositionEvent]


class PositionList(Output):
    positions: list[PositionView]


class PositionsQuery(AsOfQuery):
    status: PositionStatus | None = None
    limit: int = Field(100, ge=1, le=500)


class CloseRequest(Input):
    quantity: Quantity | None = Field(None, description="default: the whole open quantity")


def row_view(row: PositionRow) -> Document:
    """A position as the read model sees it."""
    return {
        "id": str(row.position_id),
        "symbol": row.symbol,
        "side": row.side,
        "status": row.status,
        "quantity": money(row.quantity),
        "open_quantity": money(row.open_quantity),
        "entry_price": money(row.entry_price),
        "stop_price": maybe_money(row.current_stop),
        "initial_stop_price": maybe_money(row.initial_stop),
        "target_price": maybe_money(row.target_price),
        "pnl": money(row.realised_pnl),
        "margin": row.margin,
        "planned_at": iso(row.planned_at),
        "updated_at": iso(row.updated_at),
    }


def position_view(position: Position) -> Document:
    """A position as a command just left it (the reply to that command)."""
    return {
        "id": str(position.id),
        "symbol": position.symbol,
        "side": position.side.value,
        "status": position.status.value,
        "quantity": money(position.quantity),
        "open_quantity": money(position.open_quantity),
        "entry_price": money(position.average_entry_price or position.entry_price),
        "stop_price": maybe_money(position.stop_price),
        "initial_stop_price": maybe_money(position.initial_stop),
        "target_price": maybe_money(position.target_price),
        "pnl": money(position.realised_pnl),
        "margin": position.margin,
        "risk_amount": money(position.risk_amount),
        "violations": list(position.violations),
        "entry_order_id": position.entry_order_id,
        "note": position.note,
    }


def event_log(events: Iterable[DomainEventProtocol[UUID]]) -> list[Document]:
    """The position's full history from the event log, secrets redacted."""
    return [
        {
            "version": event.originator_version,
            "type": type(event).__qualname__,
            "timestamp": iso(getattr(event, "timestamp", None)),
            "payload": redacted_payload(dict(vars(event))),
        }
        for event in events
    ]


def list_positions(call: Call[Empty, PositionsQuery]) -> Reply:
    with read_models_for(call, past_instant(call)) as read_models:
        rows = read_models.positions(call.principal.client_id, call.query.status, call.query.limit)
    return Reply({"positions": [row_view(r) for r in rows]})


def position_detail(call: Call[Empty, NoQuery]) -> Reply:
    position_id: UUID = call.path["id"]
    row = call.services.read_models.position(call.principal.client_id, position_id)
    if row is None:  # unknown, or another tenant's: the same answer
        raise PositionNotFound(f"Position {position_id} not found")
    history = call.services.ledger.history(position_id)
    summary = exchange_stop_summary(history)
    stop: Document = {
        "protected": summary["protected"],
        "state": summary["state"],
        "client_order_id": summary["client_order_id"],
        "stop_price": maybe_money(summary["stop_price"]),
        "limit_price": maybe_money(summary["limit_price"]),
        "quantity": money(summary["quantity"]),
        "note": summary["note"],
    }
    return Reply({**row_view(row), "exchange_stop": stop, "events": event_log(history)})


def close_position(call: Call[CloseRequest, NoQuery]) -> Reply:
    position_id: UUID = call.path["id"]
    call.working_on(position_id)
    position = call.services.ledger.close_position(
        call.principal.client_id, position_id, quantity=call.body.quantity
    )
    call.metrics.count_orders("exit")
    closed = position.status is Status.CLOSED
    return Reply(
        {
            "success": True,
            "message": "Position closed" if closed else "Position partly closed",
            "position": position_view(position),
        }
    )


OPERATIONS = [
    Operation(
        "GET",
        "/api/positions/",
        list_positions,
        "The tenant's positions, newest first",
        tag="positions",
        query=PositionsQuery,
        response=PositionList,
    ),
    Operation(
        "GET",
        "/api/positions/{id:uuid}/",
        position_detail,
        "One position with its full event history",
        tag="positions",
        response=PositionDetail,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/api/positions/{id:uuid}/close/",
        close_position,
        "Close an open position, in full or in part (market order)",
        tag="positions",
        body=CloseRequest,
        errors=(400, 403, 404, 409, 422, 503),
        command=True,
        idempotent=True,
    ),
]
