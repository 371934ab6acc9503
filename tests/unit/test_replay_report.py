"""A replay's figures: P&L by month (quiet months too), the deepest drawdown of the equity
after each trade, win rate, profit factor and the average result in R."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.market import Side
from domain.position import ExitReason
from domain.replay_report import ReplayResult, TradeResult, max_drawdown, summarise

D = Decimal
JAN = datetime(2023, 1, 10, tzinfo=UTC)


def trade(pnl: str, closed: datetime, risk: str = "10") -> TradeResult:
    return TradeResult(
        opened_at=closed - timedelta(hours=1),
        closed_at=closed,
        side=Side.LONG,
        entry=D(100),
        initial_stop=D(98),
        final_stop=D(98),
        target=None,
        exit_price=D(100),
        quantity=D(5),
        reason=ExitReason.STOP_LOSS if D(pnl) < 0 else ExitReason.TAKE_PROFIT,
        pnl=D(pnl),
        fees=D(1),
        risk=D(risk),
    )


def result_of(*pnls: tuple[str, datetime], end: datetime) -> ReplayResult:
    result = ReplayResult(capital=D(1000), first_bar=JAN, last_bar=end)
    equity = D(1000)
    result.equity_curve.append((JAN, equity))
    for pnl, at in pnls:
        result.trades.append(trade(pnl, at))
        equity += D(pnl)
        result.equity_curve.append((at, equity))
    return result


def test_the_figures_of_a_mixed_run() -> None:
    mar = datetime(2023, 3, 5, tzinfo=UTC)
    result = result_of(
        ("20", JAN + timedelta(days=1)),
        ("-10", JAN + timedelta(days=2)),
        ("-11", JAN + timedelta(days=3)),
        ("30", mar),
        end=mar + timedelta(days=1),
    )

    summary = summarise(result)

    assert (summary.trades, summary.wins, summary.losses) == (4, 2, 2)
    assert summary.win_rate == D("0.5")
    assert summary.net_pnl == D(29)
    assert summary.profit_factor == D(50) / D(21)
    assert summary.average_r == (D(2) - D(1) - D("1.1") + D(3)) / 4
    # From the peak of 1020 down to 999.
    assert (summary.max_drawdown, summary.max_drawdown_percent) == (D(21), D(21) * 100 / D(1020))
    assert summary.final_equity == D(1029)
    assert summary.by_month == {"2023-01": D(-1), "2023-02": D(0), "2023-03": D(30)}


def test_a_run_without_losses_or_trades_has_no_ratio_to_show() -> None:
    winners = summarise(result_of(("5", JAN), end=JAN))
    assert (winners.profit_factor, winners.win_rate, winners.max_drawdown) == (None, D(1), D(0))

    empty = summarise(result_of(end=JAN))
    assert (empty.win_rate, empty.average_r, empty.profit_factor) == (None, None, None)
    assert empty.final_equity == D(1000)
    assert empty.by_month == {"2023-01": D(0)}


def test_the_deepest_drawdown_is_measured_from_the_peak_before_it() -> None:
    curve = [(JAN, D(v)) for v in ("1000", "900", "1200", "1000", "1300", "1250")]

    assert max_drawdown(curve) == (D(200), D(200) * 100 / D(1200))
