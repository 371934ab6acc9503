"""Isolated-margin positions: a safe size for a stop (the 1% rule, margin capped at half the
capital), and opening one with its stop recorded, as a dry run by default."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StrictBool

from api.intents import CallProgress, Leverage
from api.operations import Call, Operation, Reply
from api.schemas import Amount, ExactDecimal, Input, MoneyOut, NoQuery, Output, Price, Symbol
from domain.formats import Document, maybe_money, money
from domain.ledger.margin import MarginRequest, SizedMargin
from domain.market import Side
from domain.position import Status

RiskPercent = Annotated[
    Decimal, ExactDecimal(1, 4, "percent, above 0 up to 1, at most 4 decimals", inclusive=True)
]


class MarginCalculation(Input):
    symbol: Symbol = "BTCUSDC"
    side: Literal["LONG", "SHORT"]
    entry_price: Price
    stop_price: Price
    capital: Amount | None = Field(None, description="default: the policy's capital")
    leverage: Leverage = Decimal(3)
    risk_percent: RiskPercent = Decimal(1)


class MarginOpen(MarginCalculation):
    target_price: Price | None = None
    dry_run: StrictBool = True


class CalculationReply(Output):
    symbol: str
    side: str
    quantity: MoneyOut
    position_value: MoneyOut
    margin_required: MoneyOut
    risk_amount: MoneyOut
    risk_percent: str
    stop_distance: MoneyOut
    stop_distance_percent: str
    is_capped: bool
    cap_reason: str | None


class OpenReply(Output):
    success: bool
    mode: Literal["DRY_RUN", "LIVE", "PAPER"]
    position_id: str


def _request(body: MarginCalculation) -> MarginRequest:
    return MarginRequest(
        symbol=body.symbol,
        side=Side(body.side),
        entry_price=body.entry_price,
        stop_price=body.stop_price,
        leverage=body.leverage,
        risk_percent=body.risk_percent,
        capital=body.capital,
        target_price=body.target_price if isinstance(body, MarginOpen) else None,
    )


def _calculation(side: str, sized: SizedMargin) -> Document:
    size = sized.size
    return {
        "symbol": sized.symbol,
        "side": side,
        "quantity": money(size.quantity),
        "position_value": money(size.position_value),
        "margin_required": money(size.margin_required),
        "risk_amount": money(size.risk_amount),
        "risk_percent": f"{size.risk_percent:.4f}",
        "stop_distance": money(size.stop_distance),
        "stop_distance_percent": f"{size.stop_distance_percent:.4f}",
        "is_capped": size.is_capped,
        "cap_reason": size.cap_reason,
    }


def calculate(call: Call[MarginCalculation, NoQuery]) -> Reply:
    sized = call.services.ledger.size_margin_position(call.principal.client_id, _request(call.body))
    return Reply(_calculation(call.body.side, sized))


def open_margin_position(call: Call[MarginOpen, NoQuery]) -> Reply:
    body = call.body
    opening = call.services.ledger.open_margin_position(
        call.principal.client_id, _request(body), body.dry_run, CallProgress(call)
    )
    calculation = _calculation(body.side, opening.sized)
    position = opening.position
    if body.dry_run:
        valid = position.status is Status.VALIDATED
        return Reply(
            {
                "success": True,
                "mode": "DRY_RUN",
                "position_id": str(position.id),
                "valid": valid,
                "violations": list(position.violations),
                "message": "Dry run: the plan passes every risk rule; nothing was sent"
                if valid
                else "Dry run: the plan would be rejected; nothing was sent",
                "calculation": calculation,
            }
        )
    return Reply(
        {
            "success": True,
            "mode": "LIVE" if opening.live else "PAPER",
            "position_id": str(position.id),
            "status": position.status.value,
            "quantity": money(position.quantity),
            "filled_quantity": money(position.filled_quantity),
            "entry_price": maybe_money(position.average_entry_price),
            "stop_price": maybe_money(position.stop_price),
            "target_price": maybe_money(position.target_price),
            "leverage": f"{position.leverage:f}",
            "entry_order_id": position.entry_order_id,
            "calculation": calculation,
        },
        201 if position.status is Status.OPEN else 202,
    )


OPERATIONS = [
    Operation(
        "POST",
        "/api/margin/position/calculate/",
        calculate,
        "Safe isolated-margin size for an entry and a stop (1% risk, margin <= 50% capital)",
        tag="margin",
        body=MarginCalculation,
        response=CalculationReply,
        errors=(422,),
    ),
    Operation(
        "POST",
        "/api/margin/position/open/",
        open_margin_position,
        "Open an isolated-margin position with its stop; a dry run by default",
        tag="margin",
        body=MarginOpen,
        response=OpenReply,
        status=201,
        errors=(200, 202, 400, 403, 422, 503),
        command=True,
        idempotent=True,
    ),
]
