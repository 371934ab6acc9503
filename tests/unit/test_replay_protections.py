"""Replay drives the real Policy, so its protections refuse entries in a replay as in the
ledger: the daily loss cap, the cooldown after a run of stop-outs, the open positions cap."""

from __future__ import annotations

from decimal import Decimal

from domain.market import BTCUSDC
from domain.position import ExitReason
from domain.protections import ProtectionSettings
from domain.replay import Replay, ReplaySettings
from domain.replay_entries import Schedule
from tests.unit.test_replay import bar, plan, replay_of

D = Decimal


def stopped_out(replay: Replay, hour: int) -> None:
    """The plan at `hour` fills at 100, and the next bar takes its stop at 98."""
    replay.step(bar(hour, "100", "100.2", "99.8"))
    replay.step(bar(hour + 1, "98.5", "98.6", "97.9"))


def test_the_daily_loss_cap_refuses_the_rest_of_the_utc_day_and_lifts_the_next() -> None:
    # Two 1% stop-outs (fees on top) pass a 2% cap; START is 00:00 UTC.
    replay = replay_of(
        [plan(hour=h) for h in (0, 2, 4, 24)],
        protection=ProtectionSettings(daily_loss_limit_percent=Decimal(2)),
    )
    stopped_out(replay, 0)
    stopped_out(replay, 2)
    replay.step(bar(4, "100", "100.2", "99.8"))

    [skipped] = replay.result.skipped
    assert skipped.outcome == "rejected"
    assert any("reached the daily cap of 2%" in r for r in skipped.reasons)
    assert any("wait until 2023-01-31 (UTC)" in r for r in skipped.reasons)

    replay.step(bar(24, "100", "100.2", "99.8"))
    assert len(replay.open_positions) == 1


def test_three_stop_outs_within_24_hours_start_a_24_hour_cooldown() -> None:
    # Half-percent risk keeps the month's budget and the daily cap out of the way.
    settings = ReplaySettings(rules=BTCUSDC, risk_percent=D("0.5"))
    replay = Replay(settings, Schedule([plan(hour=h) for h in (0, 2, 4, 6, 28, 29)]))
    for hour in (0, 2, 4):
        stopped_out(replay, hour)
    replay.step(bar(6, "100", "100.2", "99.8"))
    replay.step(bar(28, "100", "100.2", "99.8"))  # the third stop filled at 05:00: not yet

    assert [t.reason for t in replay.result.trades] == [ExitReason.STOP_LOSS] * 3
    assert [s.outcome for s in replay.result.skipped] == ["rejected", "rejected"]
    for skipped in replay.result.skipped:
        assert any(
            "3 consecutive stop-outs within 24 h: no new entries until "
            "2023-01-31T05:00:00+00:00" in r
            for r in skipped.reasons
        )
    replay.step(bar(29, "100", "100.2", "99.8"))  # 24 h after it: entries again
    assert len(replay.open_positions) == 1


def test_stop_outs_interrupted_by_a_target_do_not_start_the_cooldown() -> None:
    settings = ReplaySettings(rules=BTCUSDC, risk_percent=D("0.5"))
    plans = [plan(hour=0), plan(hour=2, target="101"), plan(hour=4), plan(hour=6)]
    replay = Replay(settings, Schedule(plans))
    stopped_out(replay, 0)
    replay.step(bar(2, "100", "100.2", "99.8"))
    replay.step(bar(3, "101", "101.5", "100.9"))  # the target is hit
    stopped_out(replay, 4)
    replay.step(bar(6, "100", "100.2", "99.8"))

    reasons = [t.reason for t in replay.result.trades]
    assert reasons == [ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT, ExitReason.STOP_LOSS]
    assert replay.result.skipped == []
    assert len(replay.open_positions) == 1


def test_no_more_positions_than_the_maximum_are_open_at_once() -> None:
    settings = ReplaySettings(
        rules=BTCUSDC, risk_percent=D("0.5"), protection=ProtectionSettings(max_open_positions=2)
    )
    replay = Replay(settings, Schedule([plan(hour=h) for h in (0, 1, 2)]))
    for hour in (0, 1, 2):
        replay.step(bar(hour, "100", "100.2", "99.8"))

    assert len(replay.open_positions) == 2
    [skipped] = replay.result.skipped
    assert any(
        "2 positions are open or awaiting entry, the maximum of 2" in r for r in skipped.reasons
    )
