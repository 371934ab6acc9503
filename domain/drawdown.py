"""Monthly drawdown: the month's loss as a share of its capital base, and the alert level."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

ALERT_LEVELS: tuple[Decimal, ...] = (Decimal(2), Decimal(3))
PAUSE_LEVEL = Decimal(4)


def month_of(moment: datetime) -> str:
    """Calendar month in UTC, as `YYYY-MM`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def loss_percent(capital: Decimal, realised_pnl: Decimal, unrealised_pnl: Decimal) -> Decimal:
    """Loss of the month in percent of capital (0 when the month is flat or winning).

    Realised profits offset realised losses; open gains never hide a loss.
    """
    if capital <= 0:
        return Decimal(0)
    loss = -(realised_pnl + min(unrealised_pnl, Decimal(0)))
    return max(Decimal(0), loss * 100 / capital)


def remaining_budget(
    capital: Decimal, limit_percent: Decimal, realised_pnl: Decimal, open_risk: Decimal
) -> Decimal:
    """What may still be lost this month: limit − realised loss − risk still open elsewhere."""
    realised_loss = max(Decimal(0), -realised_pnl)
    return capital * limit_percent / 100 - realised_loss - open_risk


def alert_level(loss_pct: Decimal, alerts: tuple[Decimal, ...] = ALERT_LEVELS) -> Decimal | None:
    """The highest alert threshold reached, if any."""
    reached = [level for level in alerts if loss_pct >= level]
    return max(reached) if reached else None
