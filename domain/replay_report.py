"""What a replay produced, and the figures a trader judges it by: P&L by month, the deepest
drawdown, win rate, profit factor and the average result in R (multiples of the risk taken).

The drawdown is measured on the equity each closed trade leaves (realised, net of fees):
open positions are not marked to market between bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.drawdown import month_of
from domain.market import Side
from domain.position import ExitReason


@dataclass(frozen=True)
class TradeResult:
    opened_at: datetime
    closed_at: datetime
    side: Side
    entry: Decimal
    initial_stop: Decimal
    final_stop: Decimal
    target: Decimal | None
    exit_price: Decimal
    quantity: Decimal
    reason: ExitReason
    pnl: Decimal  # net of both fees
    fees: Decimal
    risk: Decimal  # what the initial stop risked: the R the result is measured in

    @property
    def r_multiple(self) -> Decimal:
        return self.pnl / self.risk if self.risk else Decimal(0)


@dataclass(frozen=True)
class SkippedPlan:
    at: datetime
    side: Side
    entry: Decimal
    stop: Decimal | None
    outcome: str  # "rejected" by VALIDATE, or "cancelled" when never filled
    reasons: tuple[str, ...]


@dataclass
class ReplayResult:
    capital: Decimal
    bars: int = 0
    first_bar: datetime | None = None
    last_bar: datetime | None = None
    trades: list[TradeResult] = field(default_factory=list)
    skipped: list[SkippedPlan] = field(default_factory=list)
    equity_curve: list[tuple[datetime, Decimal]] = field(default_factory=list)
    pauses: list[tuple[datetime, str]] = field(default_factory=list)
    open_at_end: int = 0  # positions still open when the bars ran out (not in `trades`)


@dataclass(frozen=True)
class Summary:
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None  # winning share of closed trades, 0 to 1; None without trades
    net_pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal  # a positive amount
    profit_factor: Decimal | None  # gross profit / gross loss; None without a losing trade
    average_r: Decimal | None
    max_drawdown: Decimal  # deepest fall of equity from a previous peak, in the quote asset
    max_drawdown_percent: Decimal  # that fall as a share of the peak, in percent
    final_equity: Decimal
    by_month: dict[str, Decimal]  # every month the bars cover, by the month each trade closed
    rejected: int
    cancelled: int
    pauses: int


def summarise(result: ReplayResult) -> Summary:
    trades = result.trades
    pnls = [t.pnl for t in trades]
    gross_profit = sum((p for p in pnls if p > 0), Decimal(0))
    gross_loss = -sum((p for p in pnls if p < 0), Decimal(0))
    wins = sum(1 for p in pnls if p > 0)
    drawdown, drawdown_percent = max_drawdown(result.equity_curve)
    return Summary(
        trades=len(trades),
        wins=wins,
        losses=sum(1 for p in pnls if p < 0),
        win_rate=Decimal(wins) / len(trades) if trades else None,
        net_pnl=sum(pnls, Decimal(0)),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss else None,
        average_r=sum((t.r_multiple for t in trades), Decimal(0)) / len(trades) if trades else None,
        max_drawdown=drawdown,
        max_drawdown_percent=drawdown_percent,
        final_equity=result.equity_curve[-1][1] if result.equity_curve else result.capital,
        by_month=pnl_by_month(result),
        rejected=sum(1 for s in result.skipped if s.outcome == "rejected"),
        cancelled=sum(1 for s in result.skipped if s.outcome == "cancelled"),
        pauses=len(result.pauses),
    )


def max_drawdown(curve: list[tuple[datetime, Decimal]]) -> tuple[Decimal, Decimal]:
    """The deepest peak-to-trough fall of the curve: (amount, percent of the peak)."""
    peak: Decimal | None = None
    deepest, deepest_percent = Decimal(0), Decimal(0)
    for _, equity in curve:
        if peak is None or equity > peak:
            peak = equity
            continue
        fall = peak - equity
        if fall > deepest:
            deepest = fall
            deepest_percent = fall * 100 / peak if peak > 0 else Decimal(0)
    return deepest, deepest_percent


def pnl_by_month(result: ReplayResult) -> dict[str, Decimal]:
    """Realised P&L of each month from the first bar's to the last's, quiet months as 0."""
    months: dict[str, Decimal] = {}
    if result.first_bar is not None and result.last_bar is not None:
        year, month = result.first_bar.year, result.first_bar.month
        last = (result.last_bar.year, result.last_bar.month)
        while (year, month) <= last:
            months[f"{year:04d}-{month:02d}"] = Decimal(0)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for trade in result.trades:
        key = month_of(trade.closed_at)
        months[key] = months.get(key, Decimal(0)) + trade.pnl
    return months
