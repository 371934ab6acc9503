"""Position: PLAN → VALIDATE → EXECUTE, fills, P&L net of fees, stop moves, exits, order ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import IllegalTransition, InvalidInput, Violation
from domain.identity import client_order_id, position_of_order
from domain.market import Side
from domain.ports import MarginHolding
from domain.position import ExitReason, Position, Status
from tests.factories import (
    event_names,
    exit_fully_or_partly,
    later,
    opened_position,
    planned_position,
)

D = Decimal
ORDER_ID = re.compile(r"[A-Za-z0-9._-]{1,36}")


def collected(position: Position) -> list[str]:
    return event_names(position.collect_events())


def status_of(position: Position) -> Status:
    """Read the status afresh (an `assert ... is` would narrow its type for mypy)."""
    return position.status


# --- PLAN ---


def test_plan_records_the_intention_and_its_risk() -> None:
    position = planned_position(entry="50000", stop="49000", target="53000", quantity="0.1")

    assert position.status is Status.PLANNED
    assert position.risk_amount == D(100)
    assert position.initial_stop == position.stop_price == D(49000)
    assert (position.symbol, position.base_asset, position.quote_asset) == (
        "BTCUSDC",
        "BTC",
        "USDC",
    )
    assert collected(position) == ["Planned"]


def test_a_plan_without_a_stop_is_recorded_for_validate_to_reject() -> None:
    position = planned_position(stop=None)
    assert position.status is Status.PLANNED
    assert position.risk_amount == D(0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"entry": "0"}, "entry_price", id="zero-entry"),
        pytest.param({"entry": "-1"}, "entry_price", id="negative-entry"),
        pytest.param({"entry": "NaN"}, "entry_price", id="nan-entry"),
        pytest.param({"quantity": "-0.1"}, "quantity", id="negative-quantity"),
        pytest.param({"quantity": "Infinity"}, "quantity", id="infinite-quantity"),
        pytest.param({"stop": "0"}, "stop_price", id="zero-stop"),
        pytest.param({"stop": "NaN"}, "stop_price", id="nan-stop"),
        pytest.param({"target": "-5"}, "target_price", id="negative-target"),
    ],
)
def test_plan_refuses_values_that_cannot_describe_a_trade(
    overrides: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        planned_position(**overrides)  # type: ignore[arg-type]
    assert raised.value.field == field


# --- VALIDATE → EXECUTE state machine ---


def test_execute_before_validate_is_an_illegal_transition() -> None:
    position = planned_position()
    position.collect_events()

    with pytest.raises(IllegalTransition):
        position.submit_entry(later(1))

    assert position.status is Status.PLANNED
    assert position.collect_events() == []


def test_a_validated_position_submits_a_deterministic_entry_order() -> None:
    position = planned_position()
    position.validate([], later(1))

    order_id = position.submit_entry(later(2))

    assert order_id == client_order_id(position.id, 1)
    assert position.status is Status.ENTERING
    assert position.order_in_flight == order_id
    assert collected(position) == ["Planned", "Validated", "EntrySubmitted"]
    with pytest.raises(IllegalTransition):
        position.submit_entry(later(3))  # one entry order per position


def test_validate_with_violations_rejects_and_keeps_every_reason() -> None:
    violations = [
        Violation("no_stop", "A stop-loss price is required for every position"),
        Violation("policy_paused", "Trading is paused by the monthly drawdown rule"),
        Violation("insufficient_balance", "No USDC available for trading"),
    ]
    position = planned_position(stop=None)

    position.validate(violations, later(1))

    assert position.status is Status.REJECTED
    assert position.violations == [{"rule": v.rule, "reason": v.reason} for v in violations]
    rejected = position.collect_events()[-1]
    assert isinstance(rejected, Position.Rejected)
    assert rejected.violations == position.violations


def test_a_rejected_position_cannot_execute_nor_be_validated_again() -> None:
    position = planned_position()
    position.validate([Violation("policy_paused", "paused")], later(1))
    position.collect_events()

    with pytest.raises(IllegalTransition):
        position.submit_entry(later(2))
    with pytest.raises(IllegalTransition):
        position.validate([], later(3))

    assert position.status is Status.REJECTED
    assert position.collect_events() == []


def test_entry_fill_for_another_order_id_is_refused() -> None:
    position = planned_position()
    position.validate([], later(1))
    order_id = position.submit_entry(later(2))

    with pytest.raises(IllegalTransition):
        position.record_entry_fill("foreign-id", "x", D(50000), D("0.1"), {}, later(3))
    position.record_entry_fill(order_id, "x", D(50000), D("0.1"), {}, later(3))
    with pytest.raises(IllegalTransition):  # a replayed fill is not recorded twice
        position.record_entry_fill(order_id, "x", D(50000), D("0.1"), {}, later(4))


def test_an_entry_failure_cancels_the_position() -> None:
    position = planned_position()
    position.validate([], later(1))
    order_id = position.submit_entry(later(2))

    position.record_entry_failure(order_id, "Account has insufficient balance", later(3))

    assert position.status is Status.CANCELLED
    assert position.note == "Account has insufficient balance"


# --- cancel ---


def validated() -> Position:
    position = planned_position()
    position.validate([], later(1))
    return position


def rejected() -> Position:
    position = planned_position()
    position.validate([Violation("no_stop", "no stop")], later(1))
    return position


def entering() -> Position:
    position = validated()
    position.submit_entry(later(2))
    return position


def closing() -> Position:
    position = opened_position()
    position.trigger_exit(ExitReason.STOP_LOSS, D(49000), later(5))
    return position


def closed() -> Position:
    position = opened_position()
    exit_fully_or_partly(position, "51000")
    return position


@pytest.mark.parametrize("build", [planned_position, validated, rejected])
def test_cancel_is_allowed_before_execution(build: Callable[[], Position]) -> None:
    position = build()

    position.cancel("changed my mind", later(9))

    assert position.status is Status.CANCELLED
    assert position.note == "changed my mind"


@pytest.mark.parametrize("build", [entering, opened_position, closing, closed])
def test_cancel_is_refused_once_an_order_exists(build: Callable[[], Position]) -> None:
    position = build()
    status = position.status

    with pytest.raises(IllegalTransition):
        position.cancel("too late", later(30))
    assert position.status is status


# --- fills and fees ---


@pytest.mark.parametrize(
    ("fees", "held", "fees_quote"),
    [
        pytest.param({}, "0.1", "0", id="no-fee"),
        pytest.param({"USDC": D(5)}, "0.1", "5", id="fee-in-quote"),
        pytest.param({"BTC": D("0.0001")}, "0.0999", "5", id="fee-in-base-reduces-holding"),
        pytest.param({"BTC": D("0.00005"), "USDC": D("2.5")}, "0.09995", "5", id="fee-in-both"),
    ],
)
def test_entry_fill_opens_the_position_and_fees_in_btc_reduce_the_holding(
    fees: dict[str, Decimal], held: str, fees_quote: str
) -> None:
    position = opened_position(quantity="0.1", fill_price="50000", fees=fees)

    assert position.status is Status.OPEN
    assert position.filled_quantity == D("0.1")
    assert position.open_quantity == D(held)
    assert position.average_entry_price == D(50000)
    assert position.entry_fees == fees
    assert position.entry_fees_quote == D(fees_quote)
    assert position.opened_at == later(3)


def test_a_fill_with_the_commission_paid_in_bnb_is_still_recorded() -> None:
    """Binance charges the commission in BNB when "pay fees with BNB" is on; the adapter
    passes it on as {"BNB": ...}. The order DID fill: refusing to record it (ValueError from
    fees_in_quote, which has no BNB price) leaves a filled order stuck in ENTERING with no
    stop watching it."""
    position = planned_position(quantity="0.1")
    position.validate([], later(1))
    order_id = position.submit_entry(later(2))

    position.record_entry_fill(order_id, "x", D(50000), D("0.1"), {"BNB": D("0.0075")}, later(3))

    assert position.status is Status.OPEN
    assert position.open_quantity == D("0.1")
    assert position.entry_fees == {"BNB": D("0.0075")}


@pytest.mark.parametrize(
    ("side", "entry_fees", "exit_price", "exit_fees", "pnl"),
    [
        pytest.param(Side.LONG, {"USDC": D(5)}, "55000", {"USDC": D(5)}, "490", id="spec-long"),
        # 0.0001 BTC at 50000 = 5; the holding is 0.0999: 5000 × 0.0999 − 5 − 5.4945
        pytest.param(
            Side.LONG,
            {"BTC": D("0.0001")},
            "55000",
            {"USDC": D("5.4945")},
            "489.0055",
            id="long-entry-fee-in-btc",
        ),
        # an exit fee in BTC is valued at the EXIT price: 0.0001 × 55000 = 5.5
        pytest.param(
            Side.LONG, {"USDC": D(5)}, "55000", {"BTC": D("0.0001")}, "489.5", id="exit-fee-btc"
        ),
        pytest.param(Side.LONG, {"USDC": D(5)}, "48000", {"USDC": D("4.8")}, "-209.8", id="loss"),
        # +5 on price, −10.005 in fees: the trade lost money
        pytest.param(
            Side.LONG,
            {"USDC": D(5)},
            "50050",
            {"USDC": D("5.005")},
            "-5.005",
            id="price-gain-fee-loss",
        ),
        pytest.param(Side.SHORT, {"USDC": D(5)}, "45000", {"USDC": D("4.5")}, "490.5", id="short"),
        pytest.param(
            Side.SHORT, {"USDC": D(5)}, "52000", {"USDC": D("5.2")}, "-210.2", id="short-loss"
        ),
        pytest.param(
            Side.SHORT,
            {"USDC": D(5)},
            "50050",
            {"USDC": D("5.005")},
            "-15.005",
            id="short-price-loss",
        ),
    ],
)
def test_realised_pnl_of_a_closed_position_is_net_of_all_fees(
    side: Side,
    entry_fees: dict[str, Decimal],
    exit_price: str,
    exit_fees: dict[str, Decimal],
    pnl: str,
) -> None:
    stop = "49000" if side is Side.LONG else "51000"
    position = opened_position(side, "50000", stop, "0.1", "50000", entry_fees)
    position.collect_events()

    exit_fully_or_partly(position, exit_price, exit_fees)

    assert position.status is Status.CLOSED
    assert position.open_quantity == 0
    assert position.realised_pnl == D(pnl)
    events = position.collect_events()
    assert event_names(events) == ["ExitTriggered", "ExitSubmitted", "ExitFilled", "Closed"]
    close = events[-1]
    assert isinstance(close, Position.Closed)
    assert close.realised_pnl == D(pnl)
    assert close.fees_quote == position.entry_fees_quote + position.exit_fees_quote
    assert position.closed_at == later(12)


def margin_short_closing(loan: MarginHolding | None) -> tuple[Position, str]:
    """A 0.1 BTC margin SHORT sold at 50000 (5 USDC fee: 0.1%), its buy-back submitted."""
    position = opened_position(
        Side.SHORT, "50000", "51000", "0.1", "50000", {"USDC": D(5)}, margin=True
    )
    position.trigger_exit(ExitReason.MANUAL, D(45000), later(10))
    order_id = position.submit_exit(later(11), loan)
    position.collect_events()
    return position, order_id


def test_a_margin_short_buys_back_its_loan_with_the_fee_and_interest() -> None:
    position, order_id = margin_short_closing(MarginHolding("BTC", D("0.1"), D("0.00002")))
    # (0.1 + 0.00002) / 0.999, rounded up to the 0.00001 lot step
    assert position.exit_order_quantity == D("0.10013")

    position.record_exit_fill(
        order_id, "x", D(45000), D("0.10013"), {"BTC": D("0.00010013")}, later(12)
    )

    assert position.status is Status.CLOSED
    assert position.exits[-1]["quantity"] == D("0.1")
    # 500 gained − 5 entry fee − 4.50585 exit fee (0.00010013 BTC) − 0.9 interest (0.00002 BTC)
    assert position.realised_pnl == D("489.59415")
    filled = position.collect_events()[0]
    assert isinstance(filled, Position.ExitFilled)
    assert (filled.quantity, filled.interest_quote) == (D("0.1"), D("0.9"))


def test_a_partly_filled_buy_back_closes_what_it_bought_and_that_part_of_the_interest() -> None:
    position, order_id = margin_short_closing(MarginHolding("BTC", D("0.1"), D("0.00002")))

    position.record_exit_fill(
        order_id, "x", D(45000), D("0.050065"), {"BTC": D("0.00005007")}, later(12)
    )

    assert position.status is Status.OPEN
    assert position.open_quantity == D("0.05")  # half the order closes half the position
    filled = position.collect_events()[0]
    assert isinstance(filled, Position.ExitFilled)
    assert filled.interest_quote == D("0.45")  # half the order: half the 0.9 of interest


def test_a_fill_beyond_the_quantity_ordered_is_refused() -> None:
    position, order_id = margin_short_closing(None)
    assert position.exit_order_quantity == D("0.10011")

    with pytest.raises(InvalidInput, match="at most the quantity ordered"):
        position.record_exit_fill(order_id, "x", D(45000), D("0.10012"), {}, later(12))


def test_a_margin_long_sells_what_it_holds_and_charges_the_quote_interest() -> None:
    position = opened_position(
        Side.LONG, "50000", "49000", "0.1", "50000", {"USDC": D(5)}, margin=True
    )
    position.trigger_exit(ExitReason.MANUAL, D(45000), later(10))
    order_id = position.submit_exit(later(11), MarginHolding("USDC", D(2500), D("1.5")))
    submitted = position.collect_events()[-1]

    position.record_exit_fill(order_id, "x", D(45000), D("0.1"), {"USDC": D("4.5")}, later(12))

    assert isinstance(submitted, Position.ExitSubmitted)
    assert (submitted.order_quantity, submitted.interest) == (None, D("1.5"))
    assert position.exit_order_quantity == D("0.1")
    # −500 on price − 5 entry fee − 4.5 exit fee − 1.5 USDC of interest
    assert position.realised_pnl == D("-511")


def test_a_spot_exit_neither_buys_more_nor_charges_interest() -> None:
    position = opened_position(Side.LONG, "50000", "49000", "0.1", "50000", {"USDC": D(5)})
    position.trigger_exit(ExitReason.MANUAL, D(45000), later(10))
    position.submit_exit(later(11), MarginHolding("USDC", D(2500), D("1.5")))

    submitted = position.collect_events()[-1]
    assert isinstance(submitted, Position.ExitSubmitted)
    assert (submitted.order_quantity, submitted.interest) == (None, D(0))
    assert position.exit_order_quantity == position.exit_quantity == D("0.1")


def test_partial_exits_attribute_entry_fees_pro_rata() -> None:
    position = opened_position(quantity="0.1", fill_price="50000", fees={"USDC": D(5)})

    exit_fully_or_partly(position, "55000", {"USDC": D("2.75")}, quantity="0.05", minute=10)

    assert status_of(position) is Status.OPEN
    assert position.open_quantity == D("0.05")
    assert position.exit_order_id is None
    # 5000 × 0.05 − half the entry fee (2.5) − 2.75
    assert position.realised_pnl == D("244.75")
    assert position.exits[-1]["pnl"] == D("244.75")

    exit_fully_or_partly(position, "60000", {"USDC": D(3)}, minute=20)

    assert position.status is Status.CLOSED
    assert position.open_quantity == 0
    # second half: 10000 × 0.05 − 2.5 − 3 = 494.5
    assert [e["pnl"] for e in position.exits] == [D("244.75"), D("494.5")]
    assert position.realised_pnl == D("739.25")
    close = position.collect_events()[-1]
    assert isinstance(close, Position.Closed)
    assert close.realised_pnl == D("739.25")
    assert close.fees_quote == D("10.75")


def test_partial_exits_with_the_entry_fee_in_btc() -> None:
    position = opened_position(quantity="0.1", fill_price="50000", fees={"BTC": D("0.0001")})
    assert position.open_quantity == D("0.0999")

    exit_fully_or_partly(position, "55000", quantity="0.04995", minute=10)
    assert position.open_quantity == D("0.04995")
    exit_fully_or_partly(position, "55000", minute=20)

    assert [e["pnl"] for e in position.exits] == [D("247.25"), D("247.25")]
    assert position.realised_pnl == D("494.5")  # 5000 × 0.0999 − 5
    assert position.status is Status.CLOSED


def test_an_exit_sent_again_goes_out_under_its_next_attempts_id() -> None:
    position = opened_position()
    position.trigger_exit(ExitReason.MANUAL, D(51000), later(10))
    first = position.submit_exit(later(11))

    second = position.resubmit_exit(later(13))

    assert second == client_order_id(position.id, 2, attempt=2) != first
    assert position.exit_order_id == second
    assert position.order_attempt_ids == [first, second]
    assert position.order_recorded_at == later(11)  # the evidence looks back to the first
    with pytest.raises(IllegalTransition):  # the first attempt is no longer awaited
        position.record_exit_fill(first, "x", D(51000), D("0.1"), {}, later(14))
    position.record_exit_fill(second, "x", D(51000), D("0.1"), {}, later(14))
    assert position.status is Status.CLOSED
    with pytest.raises(IllegalTransition):  # nothing in flight to send again
        position.resubmit_exit(later(15))


def test_an_exit_fill_for_another_order_id_is_refused() -> None:
    position = opened_position()
    position.trigger_exit(ExitReason.MANUAL, D(51000), later(10))
    order_id = position.submit_exit(later(11))

    with pytest.raises(IllegalTransition):
        position.record_exit_fill("not-" + order_id, "x", D(51000), D("0.1"), {}, later(12))
    with pytest.raises(IllegalTransition):
        position.record_exit_fill(
            position.entry_order_id or "", "x", D(51000), D("0.1"), {}, later(12)
        )
    assert position.status is Status.CLOSING

    position.record_exit_fill(order_id, "x", D(51000), D("0.1"), {}, later(12))
    with pytest.raises(IllegalTransition):  # the same fill replayed
        position.record_exit_fill(order_id, "x", D(51000), D("0.1"), {}, later(13))
    assert position.realised_pnl == D(100)


def test_an_exit_fill_above_the_open_quantity_is_refused() -> None:
    position = opened_position(quantity="0.1")
    position.trigger_exit(ExitReason.MANUAL, D(51000), later(10))
    order_id = position.submit_exit(later(11))

    with pytest.raises(InvalidInput):
        position.record_exit_fill(order_id, "x", D(51000), D("0.2"), {}, later(12))


@pytest.mark.parametrize("quantity", ["0", "-0.01", "0.2", "0.000001"])
def test_trigger_exit_refuses_quantities_that_cannot_be_sold(quantity: str) -> None:
    position = opened_position(quantity="0.1")
    with pytest.raises(InvalidInput) as raised:
        position.trigger_exit(ExitReason.MANUAL, D(51000), later(10), D(quantity))
    assert raised.value.field == "quantity"
    assert position.status is Status.OPEN


def test_an_exit_failure_reopens_and_the_retry_is_a_new_order() -> None:
    position = opened_position()
    position.trigger_exit(ExitReason.TAKE_PROFIT, D(53000), later(10))
    first = position.submit_exit(later(11))

    position.record_exit_failure(first, "MIN_NOTIONAL", later(12))

    assert position.status is Status.OPEN
    assert position.exit_order_id is None
    position.trigger_exit(ExitReason.TAKE_PROFIT, D(53000), later(13))
    second = position.submit_exit(later(14))
    assert (first, second) == (client_order_id(position.id, 2), client_order_id(position.id, 3))


# --- the stop only tightens ---


@pytest.mark.parametrize(
    ("side", "stop", "new_stop", "moved"),
    [
        (Side.LONG, "49000", "49500", True),
        (Side.LONG, "49000", "50000", True),
        (Side.LONG, "49000", "49000", False),
        (Side.LONG, "49000", "48000", False),
        (Side.SHORT, "51000", "50500", True),
        (Side.SHORT, "51000", "51000", False),
        (Side.SHORT, "51000", "52000", False),
    ],
)
def test_adjust_stop_only_tightens(side: Side, stop: str, new_stop: str, moved: bool) -> None:
    position = opened_position(side, "50000", stop)
    position.collect_events()

    result = position.adjust_stop(D(new_stop), 1, later(20))

    assert result is moved
    assert position.stop_price == (D(new_stop) if moved else D(stop))
    assert position.initial_stop == D(stop)
    events = position.collect_events()
    if moved:
        assert len(events) == 1
        adjusted = events[0]
        assert isinstance(adjusted, Position.StopAdjusted)
        assert (adjusted.from_stop, adjusted.to_stop, adjusted.span_step) == (
            D(stop),
            D(new_stop),
            1,
        )
    else:
        assert events == []


def test_a_loosening_after_a_tightening_is_ignored() -> None:
    position = opened_position(Side.LONG, "50000", "49000")
    assert position.adjust_stop(D(51000), 2, later(20)) is True
    assert position.adjust_stop(D(50000), 1, later(21)) is False
    assert position.stop_price == D(51000)


@pytest.mark.parametrize("build", [planned_position, validated, entering, closing, closed])
def test_the_stop_of_a_position_that_is_not_open_cannot_move(build: Callable[[], Position]) -> None:
    position = build()
    with pytest.raises(IllegalTransition):
        position.adjust_stop(D(49900), 1, later(40))


def test_open_risk_follows_the_stop() -> None:
    planned = planned_position(entry="50000", stop="49000", quantity="0.1")
    assert planned.open_risk == D(100)  # before a fill: the planned risk

    position = opened_position(Side.LONG, "50000", "49000", "0.1")
    assert position.open_risk == D(100)
    position.adjust_stop(D(49500), 0, later(20))
    assert position.open_risk == D(50)
    position.adjust_stop(D(51000), 2, later(21))
    assert position.open_risk == D(0)  # a locked-in gain is no risk, never negative


# --- client order ids ---


def test_order_ids_are_deterministic_per_position_and_sequence() -> None:
    position_id = UUID("12345678-1234-5678-1234-567812345678")
    assert client_order_id(position_id, 1, attempt=2) != client_order_id(position_id, 1)
    assert client_order_id(position_id, 1) == client_order_id(position_id, 1)
    assert client_order_id(position_id, 1) != client_order_id(position_id, 2)
    assert client_order_id(position_id, 1) != client_order_id(UUID(int=1), 1)


@settings(max_examples=200, deadline=None)
@given(
    position_id=st.uuids(),
    sequence=st.integers(min_value=1, max_value=99999),
    attempt=st.integers(min_value=1, max_value=999),
)
def test_order_ids_fit_binance_and_round_trip(
    position_id: UUID, sequence: int, attempt: int
) -> None:
    order_id = client_order_id(position_id, sequence, attempt)

    assert len(order_id) <= 36
    assert ORDER_ID.fullmatch(order_id)
    assert position_of_order(order_id) == (position_id, sequence)


@pytest.mark.parametrize("sequence", [0, -1, 100000])
def test_order_sequence_out_of_range_is_refused(sequence: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        client_order_id(UUID(int=7), sequence)


OWN = client_order_id(UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), 1)
OWN_HEAD = OWN.rpartition("-")[0]


@pytest.mark.parametrize(
    "order_id",
    [
        pytest.param("", id="empty"),
        pytest.param("web_7f3c1a", id="binance-web"),
        pytest.param("x-ABCDEF-1", id="other-bot"),
        pytest.param("R", id="prefix-only"),
        pytest.param(OWN_HEAD, id="no-sequence"),
        pytest.param(OWN_HEAD[:-1] + "-1", id="short-head"),
        pytest.param(OWN_HEAD + "A-1", id="long-head"),
        pytest.param(OWN_HEAD + "-abc", id="letters-for-sequence"),
        pytest.param("Q" + OWN_HEAD[1:] + "-1", id="wrong-prefix"),
        pytest.param(OWN_HEAD + "-²", id="superscript-digit"),
        pytest.param(OWN_HEAD + "-٣", id="arabic-indic-digit"),
        pytest.param(OWN_HEAD + "-0", id="sequence-zero"),
        pytest.param(OWN_HEAD + "-001", id="leading-zeros"),
        pytest.param(OWN_HEAD + "-100000", id="sequence-too-large"),
        pytest.param(OWN + ".1", id="first-attempt-spelled-out"),
        pytest.param(OWN + ".", id="empty-attempt"),
        pytest.param(OWN + ".02", id="attempt-leading-zero"),
        pytest.param(OWN + ".1000", id="attempt-too-large"),
        pytest.param(OWN + ".2.2", id="two-attempts"),
    ],
)
def test_ids_this_ledger_never_creates_map_to_no_position(order_id: str) -> None:
    """`position_of_order` is the inverse of `client_order_id`: anything it could not have
    produced (another bot's order, a hand-made id) is None — never an exception, never a
    position."""
    assert position_of_order(order_id) is None


def test_interest_owed_when_nothing_is_borrowed_is_still_charged_to_the_buy_back() -> None:
    position, order_id = margin_short_closing(MarginHolding("BTC", D(0), D("0.00003")))
    assert position.exit_order_quantity == D("0.1")  # 0.0999 received covers 0.00003

    position.record_exit_fill(order_id, "x", D(45000), D("0.1"), {"BTC": D("0.0001")}, later(12))

    assert position.status is Status.CLOSED
    # 500 gained − 5 entry fee − 4.5 exit fee − 1.35 interest (0.00003 BTC)
    assert position.realised_pnl == D("489.15")
