"""The worker's position index answers exactly what a scan of every position would."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market import BTCUSDC, Side, SymbolRules
from domain.position import ExitReason
from domain.trailing import hand_span_stop, spans_moved
from workers.index import (
    PositionIndex,
    Watched,
    crosses_up,
    stop_hit,
    target_hit,
    trail_trigger,
)

D = Decimal
CLIENT = UUID(int=7)
COARSE = SymbolRules(
    symbol="ETHUSDC",
    base_asset="ETH",
    quote_asset="USDC",
    tick_size=D("0.5"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("9000"),
    min_notional=D("5"),
)


def watched(
    side: Side = Side.LONG,
    entry: str = "50000",
    stop: str = "49000",
    current: str | None = None,
    target: str | None = None,
    symbol: str = "BTCUSDC",
    position_id: UUID | None = None,
) -> Watched:
    return Watched(
        position_id=position_id or uuid4(),
        client_id=CLIENT,
        symbol=symbol,
        side=side,
        entry=D(entry),
        initial_stop=D(stop),
        stop=D(current or stop),
        target=None if target is None else D(target),
    )


def index_of(*positions: Watched, fee_buffer: str = "0") -> PositionIndex:
    index = PositionIndex(D(fee_buffer))
    index.set_rules(BTCUSDC)
    for position in positions:
        index.upsert(position)
    return index


def follow(index: PositionIndex, symbol: str, prices: Iterable[str]) -> list[Decimal | None]:
    """Feed prices in order, applying each hand-span step, as the worker does."""
    stops: list[Decimal | None] = []
    for price in prices:
        for trail in index.trailing_due(symbol, D(price)):
            index.tighten(trail.position.position_id, trail.new_stop)
        stops.append(next(iter(index)).stop)
    return stops


# --- the hand-span threshold ---


@pytest.mark.parametrize(
    ("side", "entry", "stop", "current", "threshold"),
    [
        (Side.LONG, "100", "98", "98", "102"),
        (Side.LONG, "100", "98", "100", "104"),
        (Side.LONG, "100", "98", "102", "106"),
        (Side.LONG, "50000", "49000", "49000", "51000"),
        (Side.LONG, "50000", "49000", "52000", "54000"),
        (Side.SHORT, "3000", "3100", "3100", "2900"),
        (Side.SHORT, "3000", "3100", "3000", "2800"),
        (Side.SHORT, "100", "102", "98", "94"),
    ],
)
def test_the_next_trailing_price_is_the_start_of_the_span_that_moves_the_stop(
    side: Side, entry: str, stop: str, current: str, threshold: str
) -> None:
    assert trail_trigger(side, D(entry), D(stop), D(current), rules=BTCUSDC) == D(threshold)


def test_a_fee_buffer_moves_break_even_above_entry_and_the_next_step_still_comes() -> None:
    assert trail_trigger(Side.LONG, D(100), D(98), D(98), D("0.2")) == D(102)
    assert trail_trigger(Side.LONG, D(100), D(98), D("100.2"), D("0.2")) == D(104)


def test_a_short_whose_next_step_is_below_zero_never_trails_again() -> None:
    # entry 100, span 60: k=2 needs a price of -20.
    assert trail_trigger(Side.SHORT, D(100), D(160), D(100)) is None


def test_a_span_smaller_than_the_tick_waits_for_the_step_that_survives_rounding() -> None:
    # A span of 0.1 on a 0.5 tick: 2 spans (stop 99.9) round DOWN to 99.5 for a short, so
    # 6 spans (stop 99.5) do not move it again; 7 spans (99.4 -> 99.0) do.
    side, entry, initial = Side.SHORT, D(100), D("100.1")
    current = D("99.5")
    threshold = trail_trigger(side, entry, initial, current, rules=COARSE)
    assert threshold == D("99.3")
    moved = hand_span_stop(side, entry, initial, current, threshold, rules=COARSE)
    assert moved < current
    before = threshold + D("0.1")
    assert hand_span_stop(side, entry, initial, current, before, rules=COARSE) == current


# --- the worked examples ---


def test_the_spec_example_trails_100_then_102_then_104() -> None:
    index = index_of(watched(entry="100", stop="98"))
    assert follow(index, "BTCUSDC", ["101.99", "102", "104", "106", "103"]) == [
        D(98),
        D(100),
        D(102),
        D(104),
        D(104),
    ]


def test_long_50000_with_stop_49000_trails_by_whole_spans_only() -> None:
    index = index_of(watched())
    assert follow(index, "BTCUSDC", ["50999", "51000", "52000", "53500", "51500"]) == [
        D(49000),
        D(50000),
        D(51000),
        D(52000),
        D(52000),
    ]


def test_short_3000_with_stop_3100_trails_down() -> None:
    index = index_of(watched(Side.SHORT, entry="3000", stop="3100"))
    assert follow(index, "BTCUSDC", ["2900", "2800", "2950"]) == [D(3000), D(2900), D(2900)]


def test_a_jump_of_several_spans_moves_the_stop_once_to_the_last_span() -> None:
    index = index_of(watched())
    (trail,) = index.trailing_due("BTCUSDC", D(54100))
    assert (trail.new_stop, trail.span_step) == (D(53000), 4)


def test_trailing_rounds_to_the_tick_in_the_safe_direction() -> None:
    long = watched(entry="100", stop="98.333")
    short = watched(Side.SHORT, entry="100", stop="101.667")
    index = index_of(long, short)
    (trail,) = index.trailing_due("BTCUSDC", D("103.334"))
    assert trail.new_stop == D("101.67")  # 101.667 rounded UP for a long
    (trail,) = index.trailing_due("BTCUSDC", D("96.666"))
    assert trail.new_stop == D("98.33")  # 98.333 rounded DOWN for a short


# --- exits ---


@pytest.mark.parametrize(
    ("side", "price", "reason"),
    [
        (Side.LONG, "88200", ExitReason.STOP_LOSS),  # exactly at the stop
        (Side.LONG, "88000", ExitReason.STOP_LOSS),
        (Side.LONG, "88200.01", None),
        (Side.LONG, "95000", ExitReason.TAKE_PROFIT),  # exactly at the target
        (Side.LONG, "94999.99", None),
        (Side.SHORT, "91800", ExitReason.STOP_LOSS),
        (Side.SHORT, "91799.99", None),
        (Side.SHORT, "85000", ExitReason.TAKE_PROFIT),
        (Side.SHORT, "85000.01", None),
    ],
)
def test_stops_and_targets_trigger_inclusively(
    side: Side, price: str, reason: ExitReason | None
) -> None:
    if side is Side.LONG:
        position = watched(side, entry="90000", stop="88200", target="95000")
    else:
        position = watched(side, entry="90000", stop="91800", target="85000")
    exits = index_of(position).exits_due("BTCUSDC", D(price))
    assert [e.reason for e in exits] == ([] if reason is None else [reason])


def test_a_stop_is_checked_before_a_target_and_a_position_exits_once() -> None:
    # The stop trailed above the target: a price between them hits both.
    position = watched(entry="50000", stop="49000", current="52000", target="51000")
    exits = index_of(position).exits_due("BTCUSDC", D(51500))
    assert [(e.position.position_id, e.reason) for e in exits] == [
        (position.position_id, ExitReason.STOP_LOSS)
    ]


def test_queries_are_per_symbol_and_leave_the_index_unchanged() -> None:
    btc = watched(entry="90000", stop="88200")
    eth = watched(entry="3000", stop="2900", symbol="ETHUSDC")
    index = index_of(btc, eth)
    assert index.symbols() == ["BTCUSDC", "ETHUSDC"]
    for _ in range(3):
        assert [e.position for e in index.exits_due("BTCUSDC", D(80000))] == [btc]
    assert [e.position for e in index.exits_due("ETHUSDC", D(2900))] == [eth]
    assert index.exits_due("SOLUSDC", D(1)) == []
    assert len(index) == 2


def test_removed_positions_no_longer_trigger_and_their_symbol_is_not_polled() -> None:
    position = watched()
    index = index_of(position)
    assert index.remove(position.position_id) == position
    assert index.remove(position.position_id) is None
    assert index.exits_due("BTCUSDC", D(1)) == []
    assert index.trailing_due("BTCUSDC", D(10**6)) == []
    assert index.symbols() == []
    assert position.position_id not in index


def test_a_refresh_never_loosens_a_stop_already_seen_tighter() -> None:
    position = watched()
    index = index_of(position)
    index.tighten(position.position_id, D(51000))
    index.upsert(position)  # a projection row that has not caught up yet
    assert index.get(position.position_id) == watched(
        current="51000", position_id=position.position_id
    )
    index.tighten(position.position_id, D(50000))  # looser: ignored
    assert index.exits_due("BTCUSDC", D(51000))  # the tighter stop still triggers


def test_replace_all_drops_what_is_gone_and_keeps_what_is_there() -> None:
    kept, gone, new = watched(), watched(), watched(Side.SHORT, entry="3000", stop="3100")
    index = index_of(kept, gone)
    index.replace_all([kept, new])
    assert {p.position_id for p in index} == {kept.position_id, new.position_id}


def test_setting_the_rules_later_rounds_existing_positions() -> None:
    index = PositionIndex()
    position = watched(entry="100", stop="98.333")
    index.upsert(position)
    index.set_rules(BTCUSDC)
    (trail,) = index.trailing_due("BTCUSDC", D("103.334"))
    assert trail.new_stop == D("101.67")


def test_many_updates_keep_the_heaps_compact_and_the_answers_right() -> None:
    index = index_of()
    positions = [watched(entry=str(50000 + i), stop=str(49000 + i)) for i in range(50)]
    for _ in range(100):
        for position in positions:
            index.upsert(position)
            index.remove(position.position_id)
    for position in positions:
        index.upsert(position)
    assert index.heap_items() <= 3 * 50 + 4 * 50 + 1024 + 3
    assert len(index.exits_due("BTCUSDC", D(49000))) == 50
    assert len(index.trailing_due("BTCUSDC", D(51000))) == 1


def test_crosses_up_names_the_direction_each_trigger_fires_in() -> None:
    assert crosses_up(Side.LONG) == (False, True, True)
    assert crosses_up(Side.SHORT) == (True, False, False)


# --- properties: the index equals a brute-force scan ---

CENTS = D("0.01")


@st.composite
def positions(draw: st.DrawFn) -> Watched:
    side = draw(st.sampled_from(Side))
    symbol = draw(st.sampled_from(["BTCUSDC", "ETHUSDC"]))
    span = draw(st.integers(1, 50_000)) * CENTS
    entry = draw(st.integers(1, 10_000_000)) * CENTS + (span if side is Side.LONG else 0)
    initial = entry - side.sign * span
    # The current stop: any tick-aligned value from the initial stop to 6 spans in profit.
    moved = draw(st.integers(0, int(7 * span / CENTS))) * CENTS
    current = initial + side.sign * moved
    if current <= 0:
        current = initial
    target = None
    if draw(st.booleans()):
        target = entry + side.sign * draw(st.integers(1, int(6 * span / CENTS))) * CENTS
        if target <= 0:
            target = None
    position_id = draw(st.uuids())
    return Watched(position_id, CLIENT, symbol, side, entry, initial, current, target)


def by_id(position: Watched) -> UUID:
    return position.position_id


def interesting_prices(
    data: st.DataObject, pool: list[Watched], fee_buffer: Decimal
) -> list[Decimal]:
    """Prices exactly at (and a tick either side of) every trigger, plus random ones."""
    keys: list[Decimal] = []
    for p in pool:
        assert p.initial_stop is not None and p.stop is not None
        rules = BTCUSDC if p.symbol == "BTCUSDC" else COARSE
        trail = trail_trigger(p.side, p.entry, p.initial_stop, p.stop, fee_buffer, rules)
        keys += [k for k in (p.stop, p.target, trail) if k is not None]
    near = [k + d for k in keys for d in (-CENTS, D(0), CENTS) if k + d > 0]
    chosen = data.draw(st.lists(st.sampled_from(near), max_size=8)) if near else []
    return chosen + data.draw(st.lists(st.integers(1, 10**9).map(lambda c: c * CENTS), max_size=4))


def brute_trails(
    pool: Iterable[Watched], symbol: str, price: Decimal, fee_buffer: Decimal
) -> set[tuple[UUID, Decimal, int]]:
    found = set()
    for p in pool:
        if p.symbol != symbol or p.initial_stop is None or p.stop is None:
            continue
        rules = BTCUSDC if symbol == "BTCUSDC" else COARSE
        new = hand_span_stop(p.side, p.entry, p.initial_stop, p.stop, price, fee_buffer, rules)
        if new != p.stop:
            found.add((p.position_id, new, spans_moved(p.side, p.entry, p.initial_stop, price)))
    return found


def brute_exits(pool: Iterable[Watched], symbol: str, price: Decimal) -> list[tuple[UUID, str]]:
    found = []
    for p in pool:
        if p.symbol != symbol:
            continue
        if p.stop is not None and stop_hit(p.side, p.stop, price):
            found.append((p.position_id, ExitReason.STOP_LOSS.value))
        elif p.target is not None and target_hit(p.side, p.target, price):
            found.append((p.position_id, ExitReason.TAKE_PROFIT.value))
    return sorted(found, key=str)


def fresh_index(fee_buffer: Decimal) -> PositionIndex:
    index = PositionIndex(fee_buffer)
    index.set_rules(BTCUSDC)
    index.set_rules(COARSE)
    return index


@settings(max_examples=300, deadline=None)
@given(data=st.data(), pool=st.lists(positions(), max_size=25, unique_by=by_id))
def test_the_index_returns_exactly_what_a_scan_returns(
    data: st.DataObject, pool: list[Watched]
) -> None:
    fee_buffer = data.draw(st.sampled_from([D(0), CENTS]))
    index = fresh_index(fee_buffer)
    for p in pool:
        index.upsert(p)
    for price in interesting_prices(data, pool, fee_buffer):
        for symbol in ("BTCUSDC", "ETHUSDC"):
            trails = {
                (t.position.position_id, t.new_stop, t.span_step)
                for t in index.trailing_due(symbol, price)
            }
            assert trails == brute_trails(pool, symbol, price, fee_buffer)
            exits = sorted(
                ((e.position.position_id, e.reason.value) for e in index.exits_due(symbol, price)),
                key=str,
            )
            assert exits == brute_exits(pool, symbol, price)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), pool=st.lists(positions(), min_size=1, max_size=15, unique_by=by_id))
def test_after_any_history_of_changes_and_trailing_the_index_still_matches_a_scan(
    data: st.DataObject, pool: list[Watched]
) -> None:
    """Upserts, removals and applied trailing steps, checked against a plain dict."""
    fee_buffer = data.draw(st.sampled_from([D(0), CENTS]))
    index = fresh_index(fee_buffer)
    model: dict[UUID, Watched] = {}
    steps = data.draw(st.lists(st.tuples(st.sampled_from(["add", "drop", "tick"]), st.data())))
    for action, step in steps:
        if action == "add":
            p = step.draw(st.sampled_from(pool))
            index.upsert(p)
            known = model.get(p.position_id)
            model[p.position_id] = p if known is None else tighter_of(known, p)
        elif action == "drop" and model:
            position_id = step.draw(st.sampled_from(sorted(model, key=str)))
            index.remove(position_id)
            del model[position_id]
        else:
            for price in interesting_prices(step, pool, fee_buffer):
                check_and_trail(index, model, price, fee_buffer)
        assert sorted(index, key=lambda p: str(p.position_id)) == sorted(
            model.values(), key=lambda p: str(p.position_id)
        )


@settings(max_examples=200, deadline=None)
@given(pool=st.lists(positions(), min_size=1, max_size=5, unique_by=by_id), data=st.data())
def test_a_trailing_stop_never_loosens_whatever_the_prices(
    pool: list[Watched], data: st.DataObject
) -> None:
    index = fresh_index(D(0))
    for p in pool:
        index.upsert(p)
    prices = data.draw(st.lists(st.integers(1, 10**9).map(lambda c: c * CENTS), max_size=20))
    for price in prices:
        for symbol in ("BTCUSDC", "ETHUSDC"):
            for trail in index.trailing_due(symbol, price):
                before = trail.position.stop
                assert before is not None
                assert (trail.new_stop - before) * trail.position.side.sign > 0
                index.tighten(trail.position.position_id, trail.new_stop)


def check_and_trail(
    index: PositionIndex, model: dict[UUID, Watched], price: Decimal, fee_buffer: Decimal
) -> None:
    for symbol in ("BTCUSDC", "ETHUSDC"):
        expected = brute_trails(model.values(), symbol, price, fee_buffer)
        trails = index.trailing_due(symbol, price)
        assert {(t.position.position_id, t.new_stop, t.span_step) for t in trails} == expected
        for trail in trails:
            index.tighten(trail.position.position_id, trail.new_stop)
            model[trail.position.position_id] = with_stop(trail.position, trail.new_stop)
        exits = index.exits_due(symbol, price)
        assert sorted(
            ((e.position.position_id, e.reason.value) for e in exits), key=str
        ) == brute_exits(model.values(), symbol, price)


def with_stop(p: Watched, stop: Decimal) -> Watched:
    return Watched(
        p.position_id, p.client_id, p.symbol, p.side, p.entry, p.initial_stop, stop, p.target
    )


def tighter_of(known: Watched, fresh: Watched) -> Watched:
    assert known.stop is not None and fresh.stop is not None
    if (known.stop - fresh.stop) * fresh.side.sign > 0:
        return with_stop(fresh, known.stop)
    return fresh
