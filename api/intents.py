"""Intents: PLAN -> VALIDATE -> EXECUTE as three explicit calls (the trade and margin
endpoints run the same three ledger steps in one use case, never a shortcut)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StrictBool

from api.operations import AnyCall, Call, Operation, Reply
from api.positions import PositionView, position_view
from api.schemas import Amount, Empty, ExactDecimal, Input, NoQuery, Output, Price, Quantity, Symbol
from domain.errors import OrderRejected, RiskRuleViolated
from domain.ledger import PlanRequest
from domain.ledger.entries import violations_of
from domain.market import Side
from domain.position import Position, Status

Leverage = Annotated[
    Decimal,
    ExactDecimal(10, 2, "leverage, 1 to 10, at most 2 decimals", inclusive=True, from_one=True),
]


class PlanIntent(Input):
    symbol: Symbol = "BTCUSDC"
    side: Literal["LONG", "SHORT"] = "LONG"
    stop_price: Price | None = Field(
        None, description="required by VALIDATE: a plan without one is recorded and rejected"
    )
    entry_price: Price | None = Field(None, description="default: the current market price")
    target_price: Price | None = None
    quantity: Quantity | None = Field(None, description="default: sized by the 1% rule")
    amount: Amount | None = Field(None, description="quote amount instead of a quantity")
    margin: StrictBool = False
    leverage: Leverage = Decimal(1)


class IntentReply(Output):
    success: bool
    intent: PositionView


class CallProgress:
    """Names the position a use case works on in an error reply, and counts orders sent."""

    def __init__(self, call: AnyCall) -> None:
        self.call = call

    def working_on(self, position_id: UUID) -> None:
        self.call.working_on(position_id)

    def order_sent(self, kind: str) -> None:
        self.call.metrics.count_orders(kind)


def validated(call: AnyCall, position_id: UUID) -> Position:
    position = call.services.ledger.validate_position(call.principal.client_id, position_id)
    if position.status is Status.REJECTED:
        raise RiskRuleViolated(violations_of(position))
    return position


def executed(call: AnyCall, position_id: UUID) -> Position:
    position = call.services.ledger.execute_position(call.principal.client_id, position_id)
    call.metrics.count_orders("entry")
    if position.status is Status.CANCELLED:
        raise OrderRejected(position.note or "The order was not executed")
    return position


def plan_intent(call: Call[PlanIntent, NoQuery]) -> Reply:
    body = call.body
    position = call.services.ledger.plan_position(
        call.principal.client_id,
        PlanRequest(
            symbol=body.symbol.upper(),
            side=Side(body.side),
            stop_price=body.stop_price,
            entry_price=body.entry_price,
            target_price=body.target_price,
            quantity=body.quantity,
            quote_amount=body.amount,
            margin=body.margin,
            leverage=body.leverage,
        ),
    )
    return Reply({"success": True, "intent": position_view(position)}, 201)


def validate_intent(call: Call[Empty, NoQuery]) -> Reply:
    position_id: UUID = call.path["id"]
    call.working_on(position_id)
    return Reply({"success": True, "intent": position_view(validated(call, position_id))})


def execute_intent(call: Call[Empty, NoQuery]) -> Reply:
    position_id: UUID = call.path["id"]
    call.working_on(position_id)
    position = executed(call, position_id)
    if position.status is Status.ENTERING:
        return Reply(
            {
                "success": True,
                "message": "Order sent; the exchange has not confirmed the fill yet",
                "intent": position_view(position),
            },
            202,
        )
    return Reply({"success": True, "intent": position_view(position)})


OPERATIONS = [
    Operation(
        "POST",
        "/api/intents/",
        plan_intent,
        "PLAN: record an intention (sized by the 1% rule when no quantity is given)",
        tag="intents",
        body=PlanIntent,
        response=IntentReply,
        status=201,
        errors=(400, 422, 503),
        command=True,
    ),
    Operation(
        "POST",
        "/api/intents/{id:uuid}/validate/",
        validate_intent,
        "VALIDATE: check every risk rule; a rejection lists every failing rule",
        tag="intents",
        response=IntentReply,
        errors=(404, 409, 422, 503),
        command=True,
    ),
    Operation(
        "POST",
        "/api/intents/{id:uuid}/execute/",
        execute_intent,
        "EXECUTE: send the entry order of a validated intent",
        tag="intents",
        response=IntentReply,
        errors=(202, 400, 403, 404, 409, 422, 503),
        command=True,
        idempotent=True,
    ),
]
