"""Position sizing by the 1% rule: risk a fixed share of capital, never more after rounding."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidInput
from domain.market import Side, SymbolRules, floor_to_step

ONE_PERCENT = Decimal("1")
MARGIN_CAP = Decimal("0.5")  # margin required never exceeds half the capital


@dataclass(frozen=True)
class Sizing:
    quantity: Decimal
    risk_amount: Decimal  # what the rounded quantity loses if the stop is hit
    risk_budget: Decimal  # capital × risk percent
    stop_distance: Decimal


def position_size(
    capital: Decimal,
    entry: Decimal,
    stop: Decimal,
    step: Decimal,
    risk_percent: Decimal = ONE_PERCENT,
) -> Sizing:
    """`quantity = capital × risk% / |entry − stop|`, rounded down to the lot step."""
    for field, value in (
        ("capital", capital),
        ("entry_price", entry),
        ("stop_price", stop),
        ("risk_percent", risk_percent),
        ("step", step),
    ):
        if not value.is_finite() or value <= 0:
            raise InvalidInput(field, "must be a finite number greater than zero")
    distance = abs(entry - stop)
    if distance == 0:
        raise InvalidInput("stop_price", "must differ from the entry price")
    budget = capital * risk_percent / 100
    quantity = floor_to_step(budget / distance, step)
    return Sizing(
        quantity=quantity,
        risk_amount=quantity * distance,
        risk_budget=budget,
        stop_distance=distance,
    )


def risk_of(quantity: Decimal, entry: Decimal, stop: Decimal) -> Decimal:
    return quantity * abs(entry - stop)


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
            f"Margin for the 1% size would exceed 50% of capital ({cap:.8f}); "
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
