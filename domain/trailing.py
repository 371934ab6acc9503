"""Hand-span trailing stop: move the stop one span at a time, from the initial stop only."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from domain.market import Side, SymbolRules


def spans_moved(side: Side, entry: Decimal, initial_stop: Decimal, price: Decimal) -> int:
    """Whole spans of favourable move: `floor(favourable_move / span)`, never negative."""
    span = abs(entry - initial_stop)
    favourable = (price - entry) * side.sign
    if span == 0 or favourable <= 0:
        return 0
    return int((favourable / span).to_integral_value(rounding=ROUND_FLOOR))


def hand_span_stop(
    side: Side,
    entry: Decimal,
    initial_stop: Decimal,
    current_stop: Decimal,
    price: Decimal,
    fee_buffer: Decimal = Decimal(0),
    rules: SymbolRules | None = None,
) -> Decimal:
    """The stop after seeing `price`: k=1 break-even (+ buffer), k≥2 entry ± (k−1)·span.

    Never looser than `current_stop`, and rounded to the tick in the safe direction.
    """
    k = spans_moved(side, entry, initial_stop, price)
    if k == 0:
        return current_stop
    span = abs(entry - initial_stop)
    candidate = entry + side.sign * (fee_buffer if k == 1 else (k - 1) * span)
    if rules is not None:
        candidate = rules.protective_stop(side, candidate)
    tighter = candidate > current_stop if side is Side.LONG else candidate < current_stop
    return candidate if tighter else current_stop


def next_trail_price(side: Side, entry: Decimal, initial_stop: Decimal, price: Decimal) -> Decimal:
    """The price at which the stop would next move: the start of the next whole span."""
    span = abs(entry - initial_stop)
    return entry + side.sign * (spans_moved(side, entry, initial_stop, price) + 1) * span
