"""How values are written in every reply: money as a string with exactly 8 decimals (ties to
even), percentages with 2, times in UTC as `2025-12-21T12:00:00Z`. The one definition: the
API, the workers' reports, the assistant's documents and the stored trade documents use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import TypeAlias

JSON: TypeAlias = Mapping[str, "JSON"] | Sequence["JSON"] | str | int | float | bool | None
"""A value a reply or a stored document holds once written: money is already a string here."""
Document: TypeAlias = dict[str, JSON]
"""A JSON object we build (a reply, a report, a tool's result)."""

EIGHT_PLACES = Decimal("1E-8")
HUNDREDTH = Decimal("0.01")
# Explicit rounding, whatever the calling thread's decimal context says; the precision
# leaves room for any amount the API accepts (below 10**12) and far beyond.
_ROUNDING = Context(prec=60, rounding=ROUND_HALF_EVEN)


def money(value: Decimal) -> str:
    """Money and quantities: a string with exactly 8 decimals, like the spec; no `-0`."""
    return _fixed(value, EIGHT_PLACES)


def maybe_money(value: Decimal | None) -> str | None:
    return None if value is None else money(value)


def cents(value: Decimal) -> str:
    """Percentages: a string with exactly 2 decimals, ties to even; no `-0`."""
    return _fixed(value, HUNDREDTH)


def iso(moment: datetime | None) -> str | None:
    """A moment in UTC as `2025-12-21T12:00:00Z` (microseconds when it has them); a naive
    time is taken to be UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fixed(value: Decimal, places: Decimal) -> str:
    text = f"{value.quantize(places, context=_ROUNDING):f}"
    return text[1:] if text[0] == "-" and not text.strip("-0.") else text
