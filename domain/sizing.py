"""Position sizing by the 1% rule: risk a fixed share of capital, never more after rounding."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidInput
from domain.market import floor_to_step

ONE_PERCENT = Decimal("1")


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
