"""Replay: the ledger's rules over bars. Stop before target within a bar, trailing from the
bar's favourable extreme after the exit checks, 1% sizing, the monthly budget and pause."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.market import BTCUSDC, Side
from domain.position import ExitReason, Status
from domain.protections import ProtectionSettings
from domain.replay import Bar, PlannedTrade, Replay, ReplaySettings
from domain.replay_entries import DailyBias, Schedule
from domain.sizing import position_size
from domain.trailing import hand_span_stop

D = Decimal
START = datetime(2023, 1, 30, 0, 0, tzinfo=UTC)
HOUR_MS = 3_600_000
START_MS = int(START.timestamp() * 1000)


def bar(hour: int, open_: str, high: str, low: str, close: str | None = None) -> Bar:
    return Bar(START_MS + hour * HOUR_MS, D(open_), D(high), D(low), D(close or open_))


def plan(
    side: Side = Side.LONG,
    entry: str = "100",
    stop: str | None = "98",
    target: str | None = None,
    hour: int = 0,
) -> PlannedTrade:
    return PlannedTrade(
        START + timedelta(hours=hour),
        side,
        D(entry),
        None if stop is None else D(stop),
        None if target is None else D(target),
    )


def replay_of(
    plans: Sequence[PlannedTrade],
    capital: str = "1000",
    review_monthly: bool = False,
    protection: ProtectionSettings | None = None,
) -> Replay:
    settings = ReplaySettings(
        rules=BTCUSDC,
        capital=D(capital),
        review_monthly=review_monthly,
        protection=protection or ProtectionSettings(),
    )
    return Replay(settings, Schedule(plans))


def test_sizing_is_the_ledgers_one_percent_rule() -> None:
    replay = replay_of([plan(entry="100000", stop="98000")])
    replay.step(bar(0, "100000", "100100", "99900"))

    [position] = replay.open_positions
    expected = position_size(D(1000), D(100000), D(98000), BTCUSDC.step_size)
    assert position.quantity == expected.quantity == D("0.005")
    assert position.risk_amount == D(10)
    # The paper exchange's 0.1% buy fee is taken in BTC.
    assert position.open_quantity == D("0.004995")


@pytest.mark.parametrize(
    ("side", "stop", "target", "high", "low", "exit_price"),
    [
        pytest.param(Side.LONG, "98", "104", "105", "97", "98", id="long"),
        pytest.param(Side.SHORT, "102", "96", "103", "95", "102", id="short"),
    ],
)
def test_a_bar_touching_both_stop_and_target_counts_the_stop_first(
    side: Side, stop: str, target: str, high: str, low: str, exit_price: str
) -> None:
    replay = replay_of([plan(side, stop=stop, target=target)])
    replay.step(bar(0, "100", "100.5", "99.5"))
    replay.step(bar(1, "100", high, low))

    [trade] = replay.result.trades
    assert trade.reason is ExitReason.STOP_LOSS
    assert trade.exit_price == D(exit_price)
    assert trade.pnl < 0


def test_the_target_alone_takes_profit() -> None:
    replay = replay_of([plan(target="104")])
    replay.step(bar(0, "100", "100.5", "99.5"))
    replay.step(bar(1, "100", "104.2", "99"))

    [trade] = replay.result.trades
    assert (trade.reason, trade.exit_price) == (ExitReason.TAKE_PROFIT, D(104))
    assert trade.r_multiple > D("1.8")  # 2R less the fees


def follow(side: Side, stop: str, extremes: Sequence[str]) -> tuple[list[Decimal], Replay]:
    """Feed bars whose favourable extreme is each price, staying clear of the stop."""
    replay = replay_of([plan(side, stop=stop)])
    replay.step(bar(0, "100", "100.2", "99.8"))
    stops: list[Decimal] = []
    for hour, extreme in enumerate(extremes, start=1):
        if side is Side.LONG:
            replay.step(bar(hour, extreme, extreme, str(D(extreme) - D("0.5"))))
        else:
            replay.step(bar(hour, extreme, str(D(extreme) + D("0.5")), extreme))
        [position] = replay.open_positions
        assert position.stop_price is not None
        stops.append(position.stop_price)
    return stops, replay


@pytest.mark.parametrize(
    ("side", "stop", "extremes", "stops"),
    [
        pytest.param(
            Side.LONG,
            "98",
            ["101.99", "102", "104", "106", "105"],
            ["98", "100", "102", "104", "104"],
            id="long-100-98",
        ),
        pytest.param(
            Side.SHORT,
            "102",
            ["98.01", "98", "96", "94", "95"],
            ["102", "100", "98", "96", "96"],
            id="short-100-102",
        ),
    ],
)
def test_trailing_moves_the_stop_exactly_as_the_ledgers_hand_span(
    side: Side, stop: str, extremes: list[str], stops: list[str]
) -> None:
    seen, _ = follow(side, stop, extremes)

    # What the trailing worker computes from the same prices, one after another.
    current, worker = D(stop), []
    for price in extremes:
        current = hand_span_stop(side, D(100), D(stop), current, D(price), D(0), BTCUSDC)
        worker.append(current)
    assert seen == worker == [D(s) for s in stops]


def test_a_trailed_stop_is_recorded_and_frees_the_months_budget() -> None:
    _, replay = follow(Side.LONG, "98", ["102"])

    [position] = replay.open_positions
    assert [type(e).__name__ for e in position.collect_events()].count("StopAdjusted") == 1
    assert replay.policy is not None
    assert replay.policy.open_risk == {}  # the stop is at break-even: nothing left at risk


def test_trailing_is_applied_after_the_exit_checks() -> None:
    replay = replay_of([plan(stop="98")])
    replay.step(bar(0, "100", "100.2", "99.8"))
    # Up to 104 (two spans: the stop would trail to 102) and down to 97.5 in the same bar.
    replay.step(bar(1, "100", "104", "97.5"))

    [trade] = replay.result.trades
    assert (trade.reason, trade.exit_price, trade.final_stop) == (
        ExitReason.STOP_LOSS,
        D(98),
        D(98),
    )


def test_an_exit_fills_at_the_open_when_the_bar_gaps_past_the_stop() -> None:
    replay = replay_of([plan(stop="98")])
    replay.step(bar(0, "100", "100.2", "99.8"))
    replay.step(bar(1, "95", "95.5", "94"))

    [trade] = replay.result.trades
    assert (trade.reason, trade.exit_price) == (ExitReason.STOP_LOSS, D(95))


def test_the_entry_bar_checks_the_stop_but_not_the_target() -> None:
    replay = replay_of([plan(stop="98", target="104")])
    replay.step(bar(0, "100", "105", "99"))  # filled, the target touched: not counted
    assert len(replay.open_positions) == 1

    replay = replay_of([plan(stop="98", target="104")])
    replay.step(bar(0, "100", "105", "97"))  # filled, the stop touched: stopped out
    [trade] = replay.result.trades
    assert (trade.reason, trade.exit_price) == (ExitReason.STOP_LOSS, D(98))


def test_a_plan_waits_for_its_entry_price_and_is_cancelled_after_the_window() -> None:
    replay = replay_of([plan(entry="100", hour=0), plan(entry="90", stop="88", hour=1)])
    replay.step(bar(0, "101", "102", "100.5"))  # 100 not reached yet
    assert replay.open_positions == []
    replay.step(bar(1, "100.5", "101", "99.9"))  # reached: the first fills
    assert [p.entry_price for p in replay.open_positions] == [D(100)]
    replay.step(bar(25, "100.5", "101", "99.9"))  # a day later: 90 was never reached

    [skipped] = replay.result.skipped
    assert (skipped.outcome, skipped.entry) == ("cancelled", D(90))
    assert replay.policy is not None
    assert len(replay.policy.open_risk) == 1  # the cancelled plan's reservation is released


def test_validate_rejects_what_the_ledger_rejects() -> None:
    replay = replay_of(
        [plan(stop=None, hour=0), plan(stop="101", hour=1), plan(target="99", hour=2)]
    )
    for hour in range(3):
        replay.step(bar(hour, "100", "100.5", "99.5"))

    reasons = [s.reasons for s in replay.result.skipped]
    assert [s.outcome for s in replay.result.skipped] == ["rejected"] * 3
    assert "A stop-loss price is required for every position" in reasons[0]
    assert any("must be below the entry price" in r for r in reasons[1])
    assert any("Target 99 must be above" in r for r in reasons[2])


def losing_gap(replay: Replay, hour: int) -> None:
    """Fill a LONG 100/98 at `hour`; the next bar opens at 90: a loss of 5% of 1000."""
    replay.step(bar(hour, "100", "100.2", "99.8"))
    replay.step(bar(hour + 1, "90", "90.5", "89.5"))


def test_the_monthly_drawdown_pause_stops_new_entries() -> None:
    replay = replay_of([plan(hour=0), plan(hour=2)])
    losing_gap(replay, 0)
    replay.step(bar(2, "100", "100.2", "99.8"))
    replay.step(bar(3, "100", "100.2", "99.8"))

    assert len(replay.result.trades) == 1
    [(at, reason)] = replay.result.pauses
    assert at == START + timedelta(hours=1)
    assert "reached the 4% limit" in reason
    [skipped] = replay.result.skipped
    assert skipped.outcome == "rejected"
    assert any("paused by the monthly drawdown rule" in r for r in skipped.reasons)
    assert replay.open_positions == []


def test_a_new_month_does_not_lift_the_pause_unless_reviews_are_replayed() -> None:
    # START is 2023-01-30: hour 48 is 2023-02-01.
    for review, trades in ((False, 1), (True, 2)):
        replay = replay_of([plan(hour=0), plan(hour=48)], review_monthly=review)
        losing_gap(replay, 0)
        replay.step(bar(48, "100", "100.2", "99.8"))
        replay.step(bar(49, "100", "104", "99.5"))
        replay.step(bar(50, "90", "90", "89"))
        assert len(replay.result.trades) == trades


def test_the_months_remaining_budget_limits_new_risk() -> None:
    # Three 1% losses (with fees, a little more each) leave less than 1% of the 4% budget
    # (the daily cap and the cooldown loosened: they would refuse first).
    plans = [plan(hour=h) for h in (0, 2, 4, 6)]
    loose = ProtectionSettings(stop_out_limit=10, daily_loss_limit_percent=D(10))
    replay = replay_of(plans, protection=loose)
    for h in (0, 2, 4):
        replay.step(bar(h, "100", "100.2", "99.8"))
        replay.step(bar(h + 1, "98.5", "98.6", "97.9"))
    replay.step(bar(6, "100", "100.2", "99.8"))

    assert [t.reason for t in replay.result.trades] == [ExitReason.STOP_LOSS] * 3
    [skipped] = replay.result.skipped
    assert any("remaining loss budget" in r for r in skipped.reasons)
    assert replay.result.pauses == []


def test_a_short_closes_through_the_margin_buy_back_with_fees_in_btc() -> None:
    replay = replay_of([plan(Side.SHORT, stop="102", target="96")])
    replay.step(bar(0, "100", "100.2", "99.8"))
    replay.step(bar(1, "99", "99.5", "95.5"))

    [trade] = replay.result.trades
    assert (trade.reason, trade.exit_price, trade.quantity) == (
        ExitReason.TAKE_PROFIT,
        D(96),
        D(5),
    )
    # 5 BTC sold at 100, the fee 0.5 USDT; the buy-back buys 5 / 0.999 rounded up to the lot,
    # 5.00501 BTC, and pays its fee in BTC (valued at 96), so exactly 5 BTC are repaid.
    entry_fee, exit_fee = D("0.5"), D("5.00501") * D("0.001") * D(96)
    assert trade.pnl == D(4) * D(5) - entry_fee - exit_fee
    assert trade.fees == entry_fee + exit_fee


def test_bars_out_of_time_order_are_refused() -> None:
    replay = replay_of([])
    replay.step(bar(1, "100", "101", "99"))
    with pytest.raises(InvalidInput, match="time order"):
        replay.step(bar(1, "100", "101", "99"))


def test_the_schedule_releases_each_plan_at_the_first_bar_at_or_after_its_time() -> None:
    plans = [plan(hour=2), plan(hour=0), PlannedTrade(START + timedelta(minutes=90), *_rest())]
    schedule = Schedule(plans)

    assert [p.at for p in schedule(bar(0, "1", "1", "1"))] == [START]
    assert schedule(bar(1, "1", "1", "1")) == ()
    due = schedule(bar(2, "1", "1", "1"))
    assert [p.at for p in due] == [START + timedelta(minutes=90), START + timedelta(hours=2)]
    assert schedule(bar(3, "1", "1", "1")) == ()


def _rest() -> tuple[Side, Decimal, Decimal, None]:
    return Side.LONG, D(100), D(98), None


def test_the_daily_rule_trades_the_previous_days_direction_at_each_days_first_bar() -> None:
    rule = DailyBias(stop_percent=D(2), reward=D(2))
    day = 24

    [first] = rule(bar(0, "100", "101", "99", "95"))
    assert (first.side, first.entry, first.stop, first.target) == (
        Side.LONG,
        D(100),
        D(98),
        D(104),
    )
    assert rule(bar(1, "95", "96", "90", "90")) == ()  # the day closes below its open
    [second] = rule(bar(day, "90", "91", "89", "95"))
    assert (second.side, second.stop, second.target) == (Side.SHORT, D("91.80"), D("86.40"))
    rule(bar(day + 1, "95", "99", "95", "99"))
    [third] = rule(bar(2 * day, "99", "99", "99"))
    assert third.side is Side.LONG


def test_a_replay_ends_by_cancelling_unfilled_plans_and_counting_open_positions() -> None:
    replay = replay_of([plan(hour=0), plan(entry="50", stop="49", hour=1)])
    replay.step(bar(0, "100", "100.2", "99.8"))
    replay.step(bar(1, "100", "100.2", "99.8"))
    result = replay.finish(2)

    assert result.open_at_end == 1
    assert [s.outcome for s in result.skipped] == ["cancelled"]
    assert result.equity_curve[-1] == (START + timedelta(hours=1), D(1000))
    [position] = replay.open_positions
    assert position.status is Status.OPEN
