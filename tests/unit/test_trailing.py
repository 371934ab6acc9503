"""Hand-span trailing stop: span = |entry − initial stop|; k whole spans of favourable move;
k=1 -> break-even (+ fee buffer), k≥2 -> entry ± (k−1)·span; never loosens."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import BTCUSDC, Side, SymbolRules
from domain.trailing import hand_span_stop, next_trail_price, spans_moved

D = Decimal
TICK = BTCUSDC.tick_size
NO_BUFFER = D(0)


def trail(
    side: Side,
    entry: Decimal,
    initial_stop: Decimal,
    prices: Sequence[Decimal],
    fee_buffer: Decimal = NO_BUFFER,
    rules: SymbolRules | None = None,
) -> list[Decimal]:
    """Feed prices in order, carrying the current stop, as the trailing worker does."""
    current = initial_stop
    stops: list[Decimal] = []
    for price in prices:
        current = hand_span_stop(side, entry, initial_stop, current, price, fee_buffer, rules)
        stops.append(current)
    return stops


@pytest.mark.parametrize(
    ("side", "entry", "stop", "prices", "stops"),
    [
        pytest.param(
            Side.LONG,
            "100",
            "98",
            ["101.99", "102", "104", "106", "103"],
            ["98", "100", "102", "104", "104"],
            id="spec-long-100",
        ),
        pytest.param(
            Side.SHORT,
            "100",
            "102",
            ["98.01", "98", "96", "94", "97"],
            ["102", "100", "98", "96", "96"],
            id="spec-short-100",
        ),
        pytest.param(
            Side.LONG,
            "50000",
            "49000",
            ["50999", "51000", "52000", "53500", "51500"],
            ["49000", "50000", "51000", "52000", "52000"],
            id="long-50000",
        ),
        pytest.param(
            Side.SHORT,
            "3000",
            "3100",
            ["2950", "2900", "2800", "2650", "2990"],
            ["3100", "3000", "2900", "2800", "2800"],
            id="short-3000",
        ),
        pytest.param(
            Side.LONG,
            "100",
            "98",
            ["99", "97", "90"],
            ["98", "98", "98"],
            id="long-adverse-never-moves",
        ),
        pytest.param(
            Side.SHORT,
            "100",
            "102",
            ["101", "103", "110"],
            ["102", "102", "102"],
            id="short-adverse-never-moves",
        ),
        pytest.param(
            Side.LONG,
            "100",
            "98",
            ["110", "100", "111.99", "112"],
            ["108", "108", "108", "110"],
            id="long-gap-jumps-several-spans",
        ),
    ],
)
def test_hand_span_sequence(
    side: Side, entry: str, stop: str, prices: list[str], stops: list[str]
) -> None:
    assert trail(side, D(entry), D(stop), [D(p) for p in prices]) == [D(s) for s in stops]


@pytest.mark.parametrize(
    ("side", "price", "k"),
    [
        (Side.LONG, "90", 0),
        (Side.LONG, "100", 0),
        (Side.LONG, "101.99", 0),
        (Side.LONG, "102", 1),
        (Side.LONG, "103.99", 1),
        (Side.LONG, "104", 2),
        (Side.LONG, "121", 10),
        (Side.SHORT, "110", 0),
        (Side.SHORT, "98.01", 0),
        (Side.SHORT, "98", 1),
        (Side.SHORT, "96", 2),
        (Side.SHORT, "95.5", 2),
    ],
)
def test_spans_moved_counts_whole_favourable_spans(side: Side, price: str, k: int) -> None:
    stop = D(98) if side is Side.LONG else D(102)
    assert spans_moved(side, D(100), stop, D(price)) == k


def test_spans_moved_is_zero_for_a_zero_span() -> None:
    assert spans_moved(Side.LONG, D(100), D(100), D(500)) == 0


@pytest.mark.parametrize(
    ("side", "initial", "current", "price", "expected"),
    [
        # k = 4 from the INITIAL span of 2: entry + 3·2 = 106 (a span taken from the current
        # stop 104 would give a different answer)
        pytest.param(Side.LONG, "98", "104", "108", "106", id="long-from-initial"),
        pytest.param(Side.SHORT, "102", "96", "92", "94", id="short-from-initial"),
        # a current stop already tighter than the hand-span stop is kept
        pytest.param(Side.LONG, "98", "105", "106", "105", id="long-keeps-tighter"),
        pytest.param(Side.SHORT, "102", "95", "94", "95", id="short-keeps-tighter"),
    ],
)
def test_stop_is_computed_from_the_initial_stop_and_never_loosened(
    side: Side, initial: str, current: str, price: str, expected: str
) -> None:
    result = hand_span_stop(side, D(100), D(initial), D(current), D(price))
    assert result == D(expected)


@pytest.mark.parametrize(
    ("side", "stop", "price", "fee_buffer", "expected"),
    [
        pytest.param(Side.LONG, "98", "102", "0.1", "100.1", id="long-break-even-plus-buffer"),
        pytest.param(Side.LONG, "98", "104", "0.1", "102", id="long-buffer-only-at-k1"),
        pytest.param(Side.SHORT, "102", "98", "0.1", "99.9", id="short-break-even-minus-buffer"),
        pytest.param(Side.SHORT, "102", "96", "0.1", "98", id="short-buffer-only-at-k1"),
        pytest.param(Side.LONG, "98", "101.99", "0.1", "98", id="long-buffer-not-before-k1"),
    ],
)
def test_fee_buffer_protects_break_even(
    side: Side, stop: str, price: str, fee_buffer: str, expected: str
) -> None:
    result = hand_span_stop(side, D(100), D(stop), D(stop), D(price), D(fee_buffer))
    assert result == D(expected)


@pytest.mark.parametrize(
    ("side", "entry", "stop", "price", "fee_buffer", "expected"),
    [
        # 50000 + 0.123 = 50000.123 -> up to 50000.13 (a LONG stop is never lower than computed)
        pytest.param(Side.LONG, "50000", "49000", "51000", "0.123", "50000.13", id="long-k1"),
        # 3000 − 0.127 = 2999.873 -> down to 2999.87 (a SHORT stop is never higher)
        pytest.param(Side.SHORT, "3000", "3100", "2900", "0.127", "2999.87", id="short-k1"),
        # off-tick initial stop: span 999.995, k=2 -> 50999.995 -> 51000.00
        pytest.param(Side.LONG, "50000", "49000.005", "52000", "0", "51000.00", id="long-k2"),
        # off-tick initial stop: span 100.005, k=2 -> 2899.995 -> 2899.99
        pytest.param(Side.SHORT, "3000", "3100.005", "2799.99", "0", "2899.99", id="short-k2"),
        # already on the tick: unchanged
        pytest.param(Side.LONG, "50000", "49000", "52000", "0", "51000", id="long-on-tick"),
    ],
)
def test_stop_is_rounded_to_the_tick_in_the_safe_direction(
    side: Side, entry: str, stop: str, price: str, fee_buffer: str, expected: str
) -> None:
    result = hand_span_stop(side, D(entry), D(stop), D(stop), D(price), D(fee_buffer), BTCUSDC)

    assert result == D(expected)
    assert result % TICK == 0


@pytest.mark.parametrize(
    ("side", "entry", "stop", "price", "next_price"),
    [
        (Side.LONG, "100", "98", "90", "102"),
        (Side.LONG, "100", "98", "101.99", "102"),
        (Side.LONG, "100", "98", "102", "104"),
        (Side.LONG, "100", "98", "105", "106"),
        (Side.LONG, "50000", "49000", "52500", "53000"),
        (Side.SHORT, "100", "102", "101", "98"),
        (Side.SHORT, "100", "102", "98", "96"),
        (Side.SHORT, "100", "102", "95", "94"),
        (Side.SHORT, "3000", "3100", "2850", "2800"),
    ],
)
def test_next_trail_price_is_the_start_of_the_next_span(
    side: Side, entry: str, stop: str, price: str, next_price: str
) -> None:
    assert next_trail_price(side, D(entry), D(stop), D(price)) == D(next_price)


# --- properties ---


@st.composite
def trades(draw: st.DrawFn) -> tuple[Side, Decimal, Decimal, list[Decimal]]:
    """A side, an entry and initial stop on the 0.01 tick, and a price path around them."""
    side = draw(st.sampled_from(Side))
    entry = draw(st.decimals(min_value=D("10"), max_value=D("100000"), places=2))
    max_span = (entry / 2).quantize(TICK, rounding=ROUND_FLOOR)
    span = draw(st.decimals(min_value=TICK, max_value=max_span, places=2))
    moves = draw(
        st.lists(
            st.decimals(min_value=D("-3"), max_value=D("12"), places=2), min_size=1, max_size=30
        )
    )
    path = [max(TICK, (entry + side.sign * m * span).quantize(TICK)) for m in moves]
    return side, entry, entry - side.sign * span, path


def best_price(side: Side, path: Sequence[Decimal]) -> Decimal:
    return max(path) if side is Side.LONG else min(path)


@settings(max_examples=200, deadline=None)
@given(trade=trades(), with_rules=st.booleans())
def test_stop_never_loosens_and_never_crosses_the_price(
    trade: tuple[Side, Decimal, Decimal, list[Decimal]], with_rules: bool
) -> None:
    side, entry, initial, path = trade
    stops = trail(side, entry, initial, path, rules=BTCUSDC if with_rules else None)

    previous = initial
    for price, stop in zip(path, stops, strict=True):
        assert (stop - previous) * side.sign >= 0, "the stop loosened"
        if stop != previous:
            assert (price - stop) * side.sign > 0, "the stop moved to or through the price"
        previous = stop


@settings(max_examples=200, deadline=None)
@given(trade=trades(), buffer_share=st.decimals(min_value=D(0), max_value=D(1), places=3))
def test_with_a_fee_buffer_below_one_span_the_stop_still_never_crosses_the_price(
    trade: tuple[Side, Decimal, Decimal, list[Decimal]], buffer_share: Decimal
) -> None:
    side, entry, initial, path = trade
    span = abs(entry - initial)
    fee_buffer = ((span - TICK) * buffer_share).quantize(D("0.001"), rounding=ROUND_FLOOR)
    stops = trail(side, entry, initial, path, fee_buffer, BTCUSDC)

    previous = initial
    for price, stop in zip(path, stops, strict=True):
        assert (stop - previous) * side.sign >= 0
        if stop != previous:
            assert (price - stop) * side.sign > 0
        previous = stop


@settings(max_examples=200, deadline=None)
@given(trade=trades(), with_rules=st.booleans())
def test_the_stop_depends_only_on_the_best_price_reached(
    trade: tuple[Side, Decimal, Decimal, list[Decimal]], with_rules: bool
) -> None:
    """Computed from the initial stop: whatever path reached the same most favourable price,
    the stop is the one that price alone gives."""
    side, entry, initial, path = trade
    rules = BTCUSDC if with_rules else None
    best = best_price(side, path)

    walked = trail(side, entry, initial, path, rules=rules)[-1]
    direct = hand_span_stop(side, entry, initial, initial, best, rules=rules)

    assert walked == direct
    assert trail(side, entry, initial, sorted(path), rules=rules)[-1] == direct
    assert trail(side, entry, initial, sorted(path, reverse=True), rules=rules)[-1] == direct


@settings(max_examples=200, deadline=None)
@given(trade=trades())
def test_the_stop_moves_exactly_at_next_trail_price(
    trade: tuple[Side, Decimal, Decimal, list[Decimal]],
) -> None:
    side, entry, initial, path = trade
    price = path[0]
    here = hand_span_stop(side, entry, initial, initial, price)
    threshold = next_trail_price(side, entry, initial, price)
    just_before = threshold - side.sign * TICK

    assert (threshold - price) * side.sign > 0
    assert (hand_span_stop(side, entry, initial, initial, threshold) - here) * side.sign > 0
    if (just_before - price) * side.sign >= 0:
        assert hand_span_stop(side, entry, initial, initial, just_before) == here
