"""The Policy's protections: a cooldown after consecutive stop-outs, a daily loss cap and a
ceiling on open positions, judged at an instant and refusing entries with a reason and an end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.errors import InvalidInput
from domain.policy import Policy
from domain.protections import (
    COOLDOWN,
    DAILY_LOSS,
    MAX_POSITIONS,
    ProtectionSettings,
    stop_out_run,
)
from tests.factories import configured_policy, event_names

D = Decimal
MONTH = "2026-03"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


TIGHT = ProtectionSettings(daily_loss_limit_percent=D(2), max_open_positions=5)


def policy_of(capital: str = "100000", protection: ProtectionSettings = TIGHT) -> Policy:
    """A tenant who tightened the defaults to 2% a day and 5 open positions."""
    policy = configured_policy(capital, now=T0)
    policy.reconfigure(D(capital), D(1), D(4), T0, protection)
    policy.collect_events()
    return policy


def closed(policy: Policy, hours: float, pnl: str = "-10", reason: str = "STOP_LOSS") -> UUID:
    """A position taken and closed at `T0 + hours`, realising `pnl` for `reason`."""
    position_id = uuid4()
    policy.reserve_risk(position_id, D(10), at(hours))
    policy.realise(position_id, MONTH, D(pnl), D(0), at(hours), exit_reason=reason, closed=True)
    return position_id


def test_defaults_3_stop_outs_in_24_h_a_24_h_cooldown_and_no_cap_tighter_than_the_month() -> None:
    policy = configured_policy("100000", now=T0)
    assert policy.protection == ProtectionSettings(
        stop_out_limit=3,
        stop_out_window_hours=24,
        cooldown_hours=24,
        daily_loss_limit_percent=D(4),
        max_open_positions=1000,
    )


def test_reconfiguring_records_the_protections_in_its_event() -> None:
    policy = policy_of()
    settings = ProtectionSettings(2, 12, 6, D("1.5"), 3)
    policy.reconfigure(D(100000), D(1), D(4), at(1), settings)

    [event] = policy.collect_events()
    assert isinstance(event, Policy.Reconfigured)
    assert (event.stop_out_limit, event.daily_loss_limit_percent, event.max_open_positions) == (
        2,
        D("1.5"),
        3,
    )
    assert policy.protection == settings


def test_reconfiguring_without_protections_keeps_the_ones_in_force() -> None:
    policy = policy_of()
    policy.reconfigure(D(100000), D(1), D(4), at(1), ProtectionSettings(max_open_positions=2))
    policy.reconfigure(D(50000), D(1), D(4), at(2))

    assert policy.protection.max_open_positions == 2


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (ProtectionSettings(stop_out_limit=0), "stop_out_limit"),
        (ProtectionSettings(stop_out_window_hours=0), "stop_out_window_hours"),
        (ProtectionSettings(cooldown_hours=-1), "cooldown_hours"),
        (ProtectionSettings(daily_loss_limit_percent=D(0)), "daily_loss_limit_percent"),
        (ProtectionSettings(daily_loss_limit_percent=D("NaN")), "daily_loss_limit_percent"),
        (ProtectionSettings(max_open_positions=0), "max_open_positions"),
    ],
)
def test_bad_protections_are_refused_by_field(settings: ProtectionSettings, field: str) -> None:
    policy = policy_of()
    with pytest.raises(InvalidInput) as refused:
        policy.reconfigure(D(100000), D(1), D(4), at(1), settings)
    assert refused.value.field == field
    assert policy.collect_events() == []


# --- the cooldown ---


def test_three_stop_outs_within_24_hours_start_a_cooldown_of_24_hours_from_the_last() -> None:
    policy = policy_of()
    for hours in (0, 5, 20):
        closed(policy, hours)

    assert event_names(policy.collect_events())[-1] == "CooldownStarted"
    assert policy.cooldown_until == at(44)
    gate = policy.entry_gate(MONTH, now=at(43.9))
    assert gate.rule == COOLDOWN
    assert gate.until == "2026-03-12T08:00:00+00:00"
    assert gate.reason is not None and "3 consecutive stop-outs within 24 h" in gate.reason
    assert policy.entry_gate(MONTH, now=at(44)).allowed


def test_stop_outs_spread_over_more_than_24_hours_start_no_cooldown() -> None:
    policy = policy_of()
    for hours in (0, 5, 24.5):
        closed(policy, hours)

    assert "CooldownStarted" not in event_names(policy.collect_events())
    assert policy.entry_gate(MONTH, now=at(25)).allowed


def test_a_close_other_than_a_stop_ends_the_run_of_stop_outs() -> None:
    policy = policy_of()
    closed(policy, 0)
    closed(policy, 1)
    closed(policy, 2, pnl="30", reason="TAKE_PROFIT")
    closed(policy, 3)

    assert policy.cooldown_until is None
    assert policy.entry_gate(MONTH, now=at(4)).allowed


def test_after_a_cooldown_the_count_of_stop_outs_starts_again() -> None:
    policy = policy_of()
    for hours in (0, 1, 2):
        closed(policy, hours)
    closed(policy, 30)

    assert policy.cooldown_until == at(26)
    assert policy.entry_gate(MONTH, now=at(31)).allowed


# --- the daily loss cap ---


def test_a_days_realised_loss_reaching_2_percent_refuses_entries_until_the_next_utc_day() -> None:
    policy = policy_of("1000")  # the cap is 20
    closed(policy, 0, pnl="-12", reason="MANUAL")
    assert policy.entry_gate(MONTH, now=at(1)).allowed
    closed(policy, 1, pnl="-8", reason="MANUAL")

    gate = policy.entry_gate(MONTH, now=at(2))
    assert (gate.rule, gate.until) == (DAILY_LOSS, "2026-03-11")
    assert gate.reason == (
        "Today's realised loss 20 reached the daily cap of 2% (20); "
        "new entries wait until 2026-03-11 (UTC)"
    )
    assert policy.entry_gate(MONTH, now=at(12)).allowed  # 2026-03-11 00:00 UTC


def test_the_days_gains_offset_its_losses() -> None:
    policy = policy_of("1000")
    closed(policy, 0, pnl="15", reason="TAKE_PROFIT")
    closed(policy, 1, pnl="-25", reason="MANUAL")

    assert policy.entry_gate(MONTH, now=at(2)).allowed


def test_a_loss_is_counted_on_the_day_its_exit_filled() -> None:
    policy = policy_of("1000")
    position_id = uuid4()
    policy.reserve_risk(position_id, D(10), at(0))
    policy.realise(position_id, MONTH, D(-20), D(0), at(13), filled_at=at(11.5), closed=True)

    assert policy.entry_gate(MONTH, now=at(11.9)).rule == DAILY_LOSS
    assert policy.entry_gate(MONTH, now=at(13)).allowed


# --- open positions ---


def test_a_sixth_position_is_refused_until_one_of_five_closes() -> None:
    policy = policy_of()
    held = [uuid4() for _ in range(5)]
    for position_id in held:
        policy.reserve_risk(position_id, D(10), at(0))

    gate = policy.entry_gate(MONTH, excluding=uuid4(), now=at(1))
    assert (gate.rule, gate.until) == (MAX_POSITIONS, "an open position closes")
    assert policy.entry_gate(MONTH, excluding=held[0], now=at(1)).allowed  # itself: not counted

    policy.release_risk(held[0], at(2))
    assert policy.entry_gate(MONTH, excluding=uuid4(), now=at(3)).allowed


def test_a_position_stays_counted_after_its_stop_takes_all_risk_off_until_it_closes() -> None:
    policy = policy_of()
    policy.reconfigure(D(100000), D(1), D(4), at(0), ProtectionSettings(max_open_positions=1))
    position_id = uuid4()
    policy.reserve_risk(position_id, D(10), at(0))
    policy.lower_risk(position_id, D(0), at(1))
    assert policy.entry_gate(MONTH, excluding=uuid4(), now=at(2)).rule == MAX_POSITIONS

    policy.realise(position_id, MONTH, D(5), D(0), at(3), exit_reason="MANUAL", closed=True)
    assert policy.entry_gate(MONTH, excluding=uuid4(), now=at(4)).allowed


def test_a_partial_exit_keeps_the_position_counted() -> None:
    policy = policy_of()
    policy.reconfigure(D(100000), D(1), D(4), at(0), ProtectionSettings(max_open_positions=1))
    position_id = uuid4()
    policy.reserve_risk(position_id, D(10), at(0))
    policy.realise(position_id, MONTH, D(-5), D(5), at(1), exit_reason="STOP_LOSS", closed=False)

    assert policy.entry_gate(MONTH, excluding=uuid4(), now=at(2)).rule == MAX_POSITIONS
    assert policy.stop_outs == []  # only a close is a stop-out


@pytest.mark.parametrize(
    ("reason", "run"),
    [
        ("STOP_LOSS", [at(0), at(1)]),
        ("STOP_LOSS_AT_EXCHANGE", [at(0), at(1)]),
        ("TAKE_PROFIT", []),
        ("MANUAL", []),
        (None, [at(0)]),  # a close recorded before the protections: the run is kept
    ],
)
def test_a_close_extends_ends_or_keeps_the_run_of_stop_outs(
    reason: str | None, run: list[datetime]
) -> None:
    assert stop_out_run([at(0)], reason, at(1)) == run
