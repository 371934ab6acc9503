"""Isolated-margin positions: a safe size for a stop (the 1% rule, margin capped at half the
capital), and opening one with its stop recorded, as a dry run by default."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool

from api.intents import Leverage, ensure_can_trade, plan_validate_execute
from api.operations import Call, Operation, Reply
from api.schemas import (
    Amount,
    ExactDecimal,
    Input,
    MoneyOut,
    Output,
    Price,
    Symbol,
    maybe_money,
)
from domain.drawdown import month_of
from domain.errors import InvalidInput
from domain.ledger import PlanRequest
from domain.market import Side, SymbolRules, floor_to_step
from domain.position import Status
from domain.sizing import position_size
from projections.reply_format import money

MARGIN_CAP = Decimal("0.5")  # margin required never exceeds half the capital
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


@dataclass(frozen=True)
class MarginSize:
    quantity: Decimal
    position_value: Decimal
    margin_required: Decimal
    risk_amount: Decimal
    risk_percent: Decimal
    stop_distance: Decimal
    stop_distance_percent: Decimal
    is_capped: bool
    cap_reason: str | None


def margin_size(
    side: Side,
    entry: Decimal,
    stop: Decimal,
    capital: Decimal,
    leverage: Decimal,
    risk_percent: Decimal,
    rules: SymbolRules,
) -> MarginSize:
    """The 1%-rule quantity, reduced when its margin would exceed half the capital."""
    if (entry - stop) * side.sign <= 0:
        where = "below" if side is Side.LONG else "above"
        raise InvalidInput("stop_price", f"must be {where} the entry price for a {side.value}")
    sizing = position_size(capital, entry, stop, rules.step_size, risk_percent)
    quantity, cap_reason = sizing.quantity, None
    cap = capital * MARGIN_CAP
    if quantity * entry / leverage > cap:
        quantity = floor_to_step(cap * leverage / entry, rules.step_size)
        cap_reason = (
            f"Margin for the 1% size would exceed 50% of capital ({money(cap)}); "
            f"quantity reduced from {sizing.quantity.normalize():f} to {quantity.normalize():f}"
        )
    value = quantity * entry
    risk = quantity * sizing.stop_distance
    return MarginSize(
        quantity=quantity,
        position_value=value,
        margin_required=value / leverage,
        risk_amount=risk,
        risk_percent=risk * 100 / capital,
        stop_distance=sizing.stop_distance,
        stop_distance_percent=sizing.stop_distance * 100 / entry,
        is_capped=cap_reason is not None,
        cap_reason=cap_reason,
    )


def _size(call: Call[Any, Any], body: MarginCalculation) -> tuple[SymbolRules, MarginSize]:
    services = call.services
    rules = services.exchange.symbol_rules(body.symbol)
    capital = body.capital
    if capital is None:
        policy = services.ledger.policy(call.principal.client_id)
        capital = policy.capital_base(month_of(services.clock.now()))
    side = Side(body.side)
    size = margin_size(
        side, body.entry_price, body.stop_price, capital, body.leverage, body.risk_percent, rules
    )
    return rules, size


def _calculation(rules: SymbolRules, side: str, size: MarginSize) -> dict[str, Any]:
    return {
        "symbol": rules.symbol,
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


def calculate(call: Call[MarginCalculation, Any]) -> Reply:
    rules, size = _size(call, call.body)
    return Reply(_calculation(rules, call.body.side, size))


def open_margin_position(call: Call[MarginOpen, Any]) -> Reply:
    body, ledger, client_id = call.body, call.services.ledger, call.principal.client_id
    rules, size = _size(call, body)
    request = PlanRequest(
        symbol=rules.symbol,
        side=Side(body.side),
        stop_price=body.stop_price,
        entry_price=body.entry_price,
        target_price=body.target_price,
        quantity=size.quantity,
        margin=True,
        leverage=body.leverage,
    )
    calculation = _calculation(rules, body.side, size)
    if body.dry_run:
        planned = ledger.plan_position(client_id, request)
        call.working_on(planned.id)
        checked = ledger.validate_position(client_id, planned.id)
        ledger.cancel_position(client_id, planned.id, "dry run: nothing was sent")
        valid = checked.status is Status.VALIDATED
        return Reply(
            {
                "success": True,
                "mode": "DRY_RUN",
                "position_id": str(planned.id),
                "valid": valid,
                "violations": list(checked.violations),
                "message": "Dry run: the plan passes every risk rule; nothing was sent"
                if valid
                else "Dry run: the plan would be rejected; nothing was sent",
                "calculation": calculation,
            }
        )
    ensure_can_trade(call)
    position = plan_validate_execute(call, request)
    return Reply(
        {
            "success": True,
            "mode": "LIVE" if call.services.exchange.is_live else "PAPER",
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
    ),
]
