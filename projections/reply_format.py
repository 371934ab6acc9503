"""How values are written in the API's replies: money as a string with exactly 8 decimals,
percentages with 2, UTC times as `2025-12-21T12:00:00Z`. Read models that store reply
fragments (the trade history's documents) format with these too."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.money import money

__all__ = ["cents", "iso", "money"]


def cents(value: Decimal) -> str:
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def iso(moment: datetime | None) -> str | None:
    """UTC timestamps as `2025-12-21T12:00:00Z`."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")
