"""The read side's contract: rows the projections keep and the queries the API, the workers
and the chat ask. A port the domain owns; `projections.sql_read_models` implements it.

Queries never load aggregates; they read these tables, which the projection runner keeps
in step with the event log (rows and tracking position committed together).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Protocol
from uuid import UUID


class Period(Enum):
    DAILY = "daily"
    WEEKLY = "weekly"  # ISO weeks, keyed "2026-W48"
    MONTHLY = "monthly"  # "2026-11"
    YEARLY = "yearly"  # "2026"


@dataclass(frozen=True)
class TradeRow:
    """One closed exit of a position (a partial exit is its own row), or an open remainder."""

    position_id: UUID
    exit_sequence: int  # 1, 2, ... per exit fill; 0 for the still-open part of a position
    client_id: UUID
    symbol: str
    side: str  # LONG | SHORT
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    pnl: Decimal | None  # net of entry (pro rata) and exit fees
    pnl_percentage: Decimal | None  # pnl / (entry_price × quantity) × 100, 2 places
    is_winner: bool | None  # by net P&L
    is_closed: bool
    duration_hours: Decimal | None
    entry_time: datetime
    exit_time: datetime | None
    fees: Decimal  # in the quote asset


@dataclass(frozen=True)
class TradeSummary:
    total_trades: int
    closed_trades: int
    open_trades: int
    total_pnl: Decimal
    winners: int
    losers: int
    win_rate: str  # "75.0%"


@dataclass(frozen=True)
class PeriodPnl:
    period: str
    pnl: Decimal
    cumulative_pnl: Decimal
    trades: int
    winners: int
    losers: int
    win_rate: str
    volume: Decimal  # quote value of entries and exits closed in the period


@dataclass(frozen=True)
class PnlOverall:
    total_pnl: Decimal
    total_trades: int
    winners: int
    losers: int
    win_rate: str


@dataclass(frozen=True)
class DrawdownRow:
    client_id: UUID
    month: str
    capital_base: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal  # open positions at the last known price
    loss_percent: Decimal
    alert_level: Decimal | None  # 2, 3 or None
    paused: bool


@dataclass(frozen=True)
class PositionRow:
    """A position's current state as the projection sees it (every status)."""

    position_id: UUID
    client_id: UUID
    symbol: str
    side: str
    status: str  # planned, validated, rejected, entering, open, closing, closed, cancelled
    quantity: Decimal  # planned
    open_quantity: Decimal
    entry_price: Decimal  # average fill price once filled, else planned
    initial_stop: Decimal | None
    current_stop: Decimal | None
    target_price: Decimal | None
    realised_pnl: Decimal
    orders_in_flight: tuple[str, ...]
    margin: bool
    planned_at: datetime
    updated_at: datetime
    updated_notification_id: int


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int  # last notification id applied
    lag_events: int
    lag_seconds: Decimal


class ReadModels(Protocol):
    def trade_history(
        self, client_id: UUID, since: datetime | None, limit: int
    ) -> list[TradeRow]: ...

    def trade_summary(self, client_id: UUID, since: datetime | None) -> TradeSummary: ...

    def pnl_by_period(
        self, client_id: UUID, period: Period, limit: int
    ) -> tuple[list[PeriodPnl], PnlOverall]: ...

    def drawdown(self, client_id: UUID, month: str) -> DrawdownRow | None: ...

    def positions(
        self, client_id: UUID, status: str | None = None, limit: int = 500
    ) -> list[PositionRow]: ...

    def position(self, client_id: UUID, position_id: UUID) -> PositionRow | None: ...

    def open_positions(
        self, symbol: str | None = None, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """What the workers watch, for every tenant: open, closing and entering positions."""
        ...

    def validated_before(
        self, moment: datetime, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """Every tenant's positions validated and left unexecuted since before `moment`."""
        ...

    def positions_changed_since(
        self, notification_id: int, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """Positions of every status changed after `notification_id` (incremental refresh)."""
        ...

    def status(self) -> list[ProjectionStatus]: ...

    def wait_for(self, notification_id: int, timeout: float = 5.0) -> bool:
        """Block until every projection has applied `notification_id` (read-your-writes)."""
        ...
