"""Policy: the 1% rule's settings, the month's risk budget, alerts at 2%/3% and the 4% pause."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import IllegalTransition, InvalidInput
from domain.identity import policy_id_for
from domain.policy import Policy
from tests.factories import UNIT_CLIENT_ID, configured_policy, event_names, later

D = Decimal
MARCH = "2026-03"
APRIL = "2026-04"
IN_APRIL = datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)


def fresh_policy(capital: str = "1000") -> Policy:
    """A configured policy whose creation event is already collected."""
    policy = configured_policy(capital)
    policy.collect_events()
    return policy


# --- configure ---


def test_configure_records_the_settings_with_defaults_1_and_4_percent() -> None:
    policy = configured_policy("1000")

    assert policy.id == policy_id_for(UNIT_CLIENT_ID)
    assert policy.client_id == UNIT_CLIENT_ID
    assert (policy.capital, policy.risk_percent, policy.drawdown_limit_percent) == (
        D(1000),
        D(1),
        D(4),
    )
    assert policy.paused is False
    assert event_names(policy.collect_events()) == ["Configured"]


@pytest.mark.parametrize(
    ("capital", "risk_percent", "limit", "field"),
    [
        pytest.param("0", "1", "4", "capital", id="zero-capital"),
        pytest.param("-1000", "1", "4", "capital", id="negative-capital"),
        pytest.param("NaN", "1", "4", "capital", id="nan-capital"),
        pytest.param("Infinity", "1", "4", "capital", id="infinite-capital"),
        pytest.param("1000", "1.01", "4", "risk_percent", id="risk-above-1"),
        pytest.param("1000", "2", "4", "risk_percent", id="risk-2"),
        pytest.param("1000", "0", "4", "risk_percent", id="risk-zero"),
        pytest.param("1000", "-1", "4", "risk_percent", id="risk-negative"),
        pytest.param("1000", "1", "4.01", "drawdown_limit_percent", id="limit-above-4"),
        pytest.param("1000", "1", "10", "drawdown_limit_percent", id="limit-10"),
        pytest.param("1000", "1", "0", "drawdown_limit_percent", id="limit-zero"),
    ],
)
def test_configure_refuses_settings_outside_the_rules(
    capital: str, risk_percent: str, limit: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        Policy.configure(uuid4(), D(capital), later(0), D(risk_percent), D(limit))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("capital", "risk_percent", "limit", "field"),
    [
        ("0", "1", "4", "capital"),
        ("1000", "1.5", "4", "risk_percent"),
        ("1000", "1", "5", "drawdown_limit_percent"),
    ],
)
def test_reconfigure_refuses_the_same_settings(
    capital: str, risk_percent: str, limit: str, field: str
) -> None:
    policy = fresh_policy()
    with pytest.raises(InvalidInput) as raised:
        policy.reconfigure(D(capital), D(risk_percent), D(limit), later(1))
    assert raised.value.field == field
    assert policy.collect_events() == []


def test_lower_settings_within_the_rules_are_accepted() -> None:
    policy = Policy.configure(uuid4(), D("500.50"), later(0), D("0.5"), D(3))
    assert (policy.capital, policy.risk_percent, policy.drawdown_limit_percent) == (
        D("500.50"),
        D("0.5"),
        D(3),
    )


# --- the 4% pause ---


def test_a_four_percent_loss_pauses_exactly_once() -> None:
    policy = fresh_policy()

    policy.observe_drawdown(MARCH, D("4.00"), later(1))
    first = policy.collect_events()
    policy.observe_drawdown(MARCH, D("4.00"), later(2))
    policy.observe_drawdown(MARCH, D(5), later(3))
    again = policy.collect_events()

    assert event_names(first).count("TradingPaused") == 1
    assert again == []
    assert policy.paused is True
    assert policy.paused_month == MARCH
    paused = next(e for e in first if isinstance(e, Policy.TradingPaused))
    assert paused.month == MARCH
    assert paused.loss_percent == D("4.00")
    assert "4.00%" in paused.reason
    assert "4% limit" in paused.reason


def test_a_loss_of_3_99_percent_does_not_pause() -> None:
    policy = fresh_policy()

    policy.observe_drawdown(MARCH, D("3.99"), later(1))

    assert policy.paused is False
    assert "TradingPaused" not in event_names(policy.collect_events())


def test_a_lower_configured_limit_pauses_at_that_limit() -> None:
    policy = Policy.configure(uuid4(), D(1000), later(0), drawdown_limit_percent=D(3))
    policy.observe_drawdown(MARCH, D("2.99"), later(1))
    assert policy.paused is False
    policy.observe_drawdown(MARCH, D(3), later(2))
    assert policy.paused is True


@pytest.mark.parametrize(
    ("losses", "events"),
    [
        pytest.param(["1.99"], [], id="nothing-below-2"),
        pytest.param(["2"], ["DrawdownAlerted"], id="alert-at-2"),
        pytest.param(["2", "2.5", "2"], ["DrawdownAlerted"], id="2-only-once"),
        pytest.param(
            ["2", "3", "3.5", "3"], ["DrawdownAlerted", "DrawdownAlerted"], id="2-then-3-once"
        ),
        pytest.param(["3.5"], ["DrawdownAlerted", "DrawdownAlerted"], id="jump-to-3-records-both"),
        pytest.param(
            ["4.5"],
            ["DrawdownAlerted", "DrawdownAlerted", "TradingPaused"],
            id="jump-to-pause-records-alerts-first",
        ),
    ],
)
def test_alerts_at_2_and_3_percent_are_recorded_once_each_per_month(
    losses: list[str], events: list[str]
) -> None:
    policy = fresh_policy()

    for minute, loss in enumerate(losses, start=1):
        policy.observe_drawdown(MARCH, D(loss), later(minute))

    recorded = policy.collect_events()
    assert event_names(recorded) == events
    levels = [e.level for e in recorded if isinstance(e, Policy.DrawdownAlerted)]
    assert levels == sorted(set(levels))
    assert policy.alerts.get(MARCH, []) == levels


def test_alerts_start_again_in_a_new_month() -> None:
    policy = fresh_policy()
    policy.observe_drawdown(MARCH, D("3.2"), later(1))
    policy.collect_events()

    policy.observe_drawdown(APRIL, D("2.1"), IN_APRIL)

    alerted = [e for e in policy.collect_events() if isinstance(e, Policy.DrawdownAlerted)]
    assert [(e.month, e.level) for e in alerted] == [(APRIL, D(2))]


def test_the_pause_survives_a_month_change() -> None:
    policy = fresh_policy()
    policy.observe_drawdown(MARCH, D("4.2"), later(1))
    policy.collect_events()

    policy.observe_drawdown(APRIL, D(0), IN_APRIL)

    assert policy.paused is True
    assert policy.paused_month == MARCH
    assert policy.collect_events() == []


# --- resume: only a recorded review lifts a pause ---


def paused_policy() -> Policy:
    policy = fresh_policy()
    policy.observe_drawdown(MARCH, D(4), later(1))
    policy.collect_events()
    return policy


def test_resume_records_who_and_why() -> None:
    policy = paused_policy()

    policy.resume("  risk-officer@example.com ", "  Reviewed the March losses  ", IN_APRIL)

    events = policy.collect_events()
    assert event_names(events) == ["TradingResumed"]
    resumed = events[0]
    assert isinstance(resumed, Policy.TradingResumed)
    assert resumed.by == "risk-officer@example.com"
    assert resumed.note == "Reviewed the March losses"
    assert resumed.timestamp == IN_APRIL
    assert policy.paused is False
    assert policy.paused_month is None
    assert policy.last_resume == ("risk-officer@example.com", "Reviewed the March losses")


def test_resume_without_a_pause_is_an_illegal_transition() -> None:
    policy = fresh_policy()
    with pytest.raises(IllegalTransition):
        policy.resume("ops", "nothing to resume", later(1))
    assert policy.collect_events() == []


@pytest.mark.parametrize(
    ("by", "note", "field"),
    [("ops", "", "note"), ("ops", "   \n\t", "note"), ("", "reviewed", "by"), (" ", "ok", "by")],
)
def test_resume_needs_a_note_and_a_name(by: str, note: str, field: str) -> None:
    policy = paused_policy()

    with pytest.raises(InvalidInput) as raised:
        policy.resume(by, note, later(2))

    assert raised.value.field == field
    assert policy.paused is True
    assert policy.collect_events() == []


def test_a_month_resumed_after_review_is_not_paused_again_by_the_same_loss() -> None:
    policy = fresh_policy()
    policy.observe_drawdown(APRIL, D(4), IN_APRIL)
    policy.resume("ops", "reviewed", IN_APRIL)
    policy.collect_events()

    # The month's budget is spent, so VALIDATE already refuses new risk until May.
    policy.observe_drawdown(APRIL, D(5), IN_APRIL)
    assert policy.paused is False
    assert "TradingPaused" not in event_names(policy.collect_events())


def test_after_a_resume_a_breach_in_a_later_month_pauses_again() -> None:
    policy = paused_policy()  # paused in March
    policy.resume("ops", "reviewed", IN_APRIL)
    policy.collect_events()

    policy.observe_drawdown(APRIL, D(4), IN_APRIL)

    assert policy.paused is True
    assert event_names(policy.collect_events()).count("TradingPaused") == 1


# --- reserve / realise / release: open risk and the month's realised P&L ---


def test_reserve_realise_release_keep_open_risk_and_realised_pnl() -> None:
    policy = fresh_policy()
    first, second = uuid4(), uuid4()

    policy.reserve_risk(first, D(10), later(1))
    policy.reserve_risk(second, D(15), later(2))
    assert policy.open_risk == {str(first): D(10), str(second): D(15)}
    assert policy.open_risk_excluding(first) == D(15)

    # the second position is stopped out: its loss is realised, its risk freed
    policy.realise(second, MARCH, D(-12), D(0), later(3))
    assert policy.open_risk == {str(first): D(10)}
    assert policy.realised_pnl(MARCH) == D(-12)

    # half of the first one exits at a small loss; 5 stays at risk
    policy.realise(first, MARCH, D(-3), D(5), later(4))
    assert policy.open_risk == {str(first): D(5)}
    assert policy.realised_pnl(MARCH) == D(-15)

    policy.release_risk(first, later(5))
    assert policy.open_risk == {}
    assert policy.realised_pnl(APRIL) == D(0)
    assert event_names(policy.collect_events()) == [
        "RiskReserved",
        "RiskReserved",
        "PnlRealised",
        "PnlRealised",
        "RiskReleased",
    ]


def test_releasing_risk_that_is_not_held_records_nothing() -> None:
    policy = fresh_policy()
    policy.release_risk(uuid4(), later(1))
    assert policy.collect_events() == []


def test_reserving_again_replaces_the_amount() -> None:
    policy = fresh_policy()
    position = uuid4()
    policy.reserve_risk(position, D(10), later(1))
    policy.reserve_risk(position, D(7), later(2))
    assert policy.open_risk == {str(position): D(7)}


def test_a_tightened_stop_lowers_the_reservation_and_never_raises_it() -> None:
    policy = fresh_policy()
    position = uuid4()
    policy.reserve_risk(position, D(10), later(1))
    policy.collect_events()

    assert policy.lower_risk(position, D(4), later(2)) is True
    assert policy.open_risk == {str(position): D(4)}
    assert policy.lower_risk(position, D(6), later(3)) is False  # a reservation never grows
    assert policy.lower_risk(position, D(4), later(4)) is False
    assert policy.open_risk == {str(position): D(4)}

    # the stop passes the entry: nothing is at risk any more
    assert policy.lower_risk(position, D(-3), later(5)) is True
    assert policy.open_risk == {}
    assert policy.lower_risk(position, D(0), later(6)) is False
    assert policy.lower_risk(uuid4(), D(0), later(7)) is False  # nothing reserved for it
    assert event_names(policy.collect_events()) == ["RiskLowered", "RiskLowered"]


@pytest.mark.parametrize(
    ("realised", "other_open_risk", "budget"),
    [
        pytest.param([], [], "40", id="fresh"),
        pytest.param(["-15"], [], "25", id="after-a-loss"),
        pytest.param(["-15"], ["10"], "15", id="loss-and-open-risk"),
        pytest.param(["-15", "5"], ["10", "6"], "14", id="net-loss-and-two-open"),
        pytest.param(["20"], ["10"], "30", id="profit-does-not-enlarge-it"),
        pytest.param(["-45"], [], "-5", id="overdrawn"),
    ],
)
def test_remaining_budget_is_4pct_minus_realised_loss_minus_other_open_risk(
    realised: list[str], other_open_risk: list[str], budget: str
) -> None:
    policy = fresh_policy("1000")
    this_position = uuid4()
    policy.reserve_risk(this_position, D(10), later(1))  # its own risk is never counted
    for minute, pnl in enumerate(realised, start=2):
        policy.realise(uuid4(), MARCH, D(pnl), D(0), later(minute))
    for minute, risk in enumerate(other_open_risk, start=10):
        policy.reserve_risk(uuid4(), D(risk), later(minute))

    assert policy.remaining_budget(MARCH, excluding=this_position) == D(budget)


def test_realised_pnl_is_kept_per_month() -> None:
    policy = fresh_policy()
    policy.realise(uuid4(), MARCH, D(-30), D(0), later(1))

    assert policy.remaining_budget(MARCH, excluding=uuid4()) == D(10)
    assert policy.remaining_budget(APRIL, excluding=uuid4()) == D(40)


def test_the_month_capital_base_is_snapshotted_once_and_survives_reconfiguration() -> None:
    policy = fresh_policy("1000")

    policy.start_month(MARCH, later(1), equity=D(2000))
    policy.start_month(MARCH, later(2), equity=D(9999))  # idempotent
    policy.reconfigure(D(5000), D(1), D(4), later(3))

    assert event_names(policy.collect_events()) == ["MonthStarted", "Reconfigured"]
    assert policy.capital_base(MARCH) == D(2000)
    assert policy.remaining_budget(MARCH, excluding=uuid4()) == D(80)
    assert policy.capital_base(APRIL) == D(5000)


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    policy = configured_policy()
    position = uuid4()
    policy.reserve_risk(position, D(10), later(1))
    policy.realise(position, MARCH, D(-41), D(0), later(2))
    policy.observe_drawdown(MARCH, D("4.1"), later(3))
    events = policy.collect_events()

    replayed: Policy | None = None
    for domain_event in events:
        replayed = domain_event.mutate(replayed)

    assert isinstance(replayed, Policy)
    assert replayed.paused is True
    assert replayed.realised_pnl(MARCH) == D(-41)
    assert replayed.open_risk == {}
    assert replayed.alerts == {MARCH: [D(2), D(3)]}
