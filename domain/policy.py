"""Policy: a tenant's risk account — capital, the 1% rule, the month's budget and the 4% pause,
and the calendar's protections (stop-out cooldown, daily loss cap, open positions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.drawdown import ALERT_LEVELS, month_of, remaining_budget
from domain.errors import IllegalTransition, InvalidInput
from domain.identity import policy_id_for
from domain.protections import (
    ProtectionSettings,
    ProtectionState,
    cooldown_end,
    day_of,
    refusals,
    stop_out_run,
)
from domain.risk import (
    MAX_RISK_PERCENT,
    MONTHLY_LIMIT_PERCENT,
    EntryGate,
    check_risk_settings,
    entry_gate,
)


class Policy(LedgerAggregate):
    class Configured(Aggregate.Created):
        client_id: UUID
        capital: Decimal
        risk_percent: Decimal
        drawdown_limit_percent: Decimal

    @staticmethod
    def create_id(client_id: UUID) -> UUID:
        return policy_id_for(client_id)

    @event(Configured)
    def __init__(
        self,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal,
        drawdown_limit_percent: Decimal,
    ) -> None:
        self.client_id = client_id
        self.capital = capital
        self.risk_percent = risk_percent
        self.drawdown_limit_percent = drawdown_limit_percent
        self.month_capital: dict[str, Decimal] = {}
        self.realised: dict[str, Decimal] = {}
        self.open_risk: dict[str, Decimal] = {}  # position id -> risk still at stake
        self.alerts: dict[str, list[Decimal]] = {}
        self.paused = False
        self.paused_month: str | None = None
        self.pause_reason: str | None = None
        self.last_resume: tuple[str, str] | None = None
        self.resumed_months: list[str] = []
        self.protection = ProtectionSettings()
        self.held: set[str] = set()  # positions reserving or holding risk, by id
        self.daily_realised: dict[str, Decimal] = {}  # UTC day -> realised P&L
        self.stop_outs: list[datetime] = []  # the current run of consecutive stop-outs
        self.cooldown_until: datetime | None = None

    @classmethod
    def configure(
        cls,
        client_id: UUID,
        capital: Decimal,
        now: datetime,
        risk_percent: Decimal = MAX_RISK_PERCENT,
        drawdown_limit_percent: Decimal = MONTHLY_LIMIT_PERCENT,
    ) -> Policy:
        check_risk_settings(capital, risk_percent, drawdown_limit_percent)
        return cls._create(
            cls.Configured,
            id=policy_id_for(client_id),
            timestamp=now,
            client_id=client_id,
            capital=capital,
            risk_percent=risk_percent,
            drawdown_limit_percent=drawdown_limit_percent,
        )

    class Reconfigured(Aggregate.Event):
        capital: Decimal
        risk_percent: Decimal
        drawdown_limit_percent: Decimal
        # The protections (None in events recorded before they existed: unchanged).
        stop_out_limit: int | None = None
        stop_out_window_hours: int | None = None
        cooldown_hours: int | None = None
        daily_loss_limit_percent: Decimal | None = None
        max_open_positions: int | None = None

        def apply(self, aggregate: Policy) -> None:
            aggregate.capital = self.capital
            aggregate.risk_percent = self.risk_percent
            aggregate.drawdown_limit_percent = self.drawdown_limit_percent
            names = ProtectionSettings.__dataclass_fields__
            given = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
            aggregate.protection = replace(aggregate.protection, **given)

    def reconfigure(
        self,
        capital: Decimal,
        risk_percent: Decimal,
        drawdown_limit_percent: Decimal,
        now: datetime,
        protection: ProtectionSettings | None = None,
    ) -> None:
        """Risk percent, limits and protections apply at once; capital applies to months not
        yet started (a running month keeps the capital base it snapshotted)."""
        check_risk_settings(capital, risk_percent, drawdown_limit_percent)
        settings = protection or self.protection
        settings.check()
        self.trigger_event(
            self.Reconfigured,
            timestamp=now,
            capital=capital,
            risk_percent=risk_percent,
            drawdown_limit_percent=drawdown_limit_percent,
            stop_out_limit=settings.stop_out_limit,
            stop_out_window_hours=settings.stop_out_window_hours,
            cooldown_hours=settings.cooldown_hours,
            daily_loss_limit_percent=settings.daily_loss_limit_percent,
            max_open_positions=settings.max_open_positions,
        )

    # --- the month's capital base ---

    class MonthStarted(Aggregate.Event):
        month: str
        capital_base: Decimal

        def apply(self, aggregate: Policy) -> None:
            aggregate.month_capital[self.month] = self.capital_base

    def capital_base(self, month: str) -> Decimal:
        return self.month_capital.get(month, self.capital)

    def start_month(self, month: str, now: datetime, equity: Decimal | None = None) -> None:
        """Snapshot the month's capital base at its first validation (idempotent)."""
        if month not in self.month_capital:
            base = self.capital if equity is None else equity
            self.trigger_event(self.MonthStarted, timestamp=now, month=month, capital_base=base)

    # --- risk budget ---

    class RiskReserved(Aggregate.Event):
        position_id: UUID
        amount: Decimal

        def apply(self, aggregate: Policy) -> None:
            aggregate.open_risk[str(self.position_id)] = self.amount
            aggregate.held.add(str(self.position_id))

    class PnlRealised(Aggregate.Event):
        position_id: UUID
        month: str
        pnl: Decimal
        risk_still_open: Decimal
        # Events recorded before the protections lack these: the event's own time, a close
        # when no risk is left open, and no exit reason (neither a stop-out nor a reset).
        filled_at: datetime | None = None
        exit_reason: str | None = None
        closed: bool | None = None

        def apply(self, aggregate: Policy) -> None:
            aggregate.realised[self.month] = aggregate.realised.get(self.month, 0) + self.pnl
            key = str(self.position_id)
            if self.risk_still_open > 0:
                aggregate.open_risk[key] = self.risk_still_open
            else:
                aggregate.open_risk.pop(key, None)
            at = self.filled_at or self.timestamp
            day = day_of(at)
            aggregate.daily_realised[day] = aggregate.daily_realised.get(day, 0) + self.pnl
            closed = self.risk_still_open <= 0 if self.closed is None else self.closed
            if not closed:
                return
            aggregate.held.discard(key)
            aggregate.stop_outs = stop_out_run(aggregate.stop_outs, self.exit_reason, at)

    class CooldownStarted(Aggregate.Event):
        """A run of stop-outs within the window: no new entries until `until`."""

        until: datetime
        stop_outs: int

        def apply(self, aggregate: Policy) -> None:
            aggregate.cooldown_until = self.until
            aggregate.stop_outs = []  # the next run starts counting afresh

    class RiskReleased(Aggregate.Event):
        position_id: UUID

        def apply(self, aggregate: Policy) -> None:
            aggregate.open_risk.pop(str(self.position_id), None)
            aggregate.held.discard(str(self.position_id))

    class RiskLowered(Aggregate.Event):
        """A tightened stop lowered what the position can still lose (0: nothing)."""

        position_id: UUID
        amount: Decimal

        def apply(self, aggregate: Policy) -> None:
            if self.amount > 0:
                aggregate.open_risk[str(self.position_id)] = self.amount
            else:
                aggregate.open_risk.pop(str(self.position_id), None)

    def realised_pnl(self, month: str) -> Decimal:
        return self.realised.get(month, Decimal(0))

    def open_risk_excluding(self, position_id: UUID) -> Decimal:
        key = str(position_id)
        return sum((v for k, v in self.open_risk.items() if k != key), Decimal(0))

    def remaining_budget(self, month: str, excluding: UUID) -> Decimal:
        return remaining_budget(
            self.capital_base(month),
            self.drawdown_limit_percent,
            self.realised_pnl(month),
            self.open_risk_excluding(excluding),
        )

    def entry_gate(
        self,
        month: str,
        excluding: UUID | None = None,
        *,
        trading_enabled: bool = True,
        credentials_ok: bool = True,
        now: datetime | None = None,
    ) -> EntryGate:
        """Whether a new entry (other than `excluding`) may be taken this month, and why not;
        the calendar's protections are judged at `now` (without it, only the open positions)."""
        open_risk = sum((v for k, v in self.open_risk.items() if k != str(excluding)), Decimal(0))
        return entry_gate(
            month,
            self.capital_base(month),
            self.drawdown_limit_percent,
            self.realised_pnl(month),
            open_risk,
            paused=self.paused,
            trading_enabled=trading_enabled,
            credentials_ok=credentials_ok,
            refusals=tuple(refusals(self.protection, self.protection_state(month, excluding, now))),
        )

    def protection_state(
        self, month: str, excluding: UUID | None = None, now: datetime | None = None
    ) -> ProtectionState:
        """What the protections judge at `now`: today's P&L, open positions, the cooldown."""
        return ProtectionState(
            now=now or datetime.min.replace(tzinfo=UTC),
            capital_base=self.capital_base(month),
            day_pnl=self.daily_realised.get(day_of(now), Decimal(0)) if now else Decimal(0),
            open_positions=len(self.held - {str(excluding)}),
            cooldown_until=self.cooldown_until if now else None,
            stop_outs=len(self.stop_outs),
        )

    def reserve_risk(self, position_id: UUID, amount: Decimal, now: datetime) -> None:
        self.trigger_event(self.RiskReserved, timestamp=now, position_id=position_id, amount=amount)

    def release_risk(self, position_id: UUID, now: datetime) -> None:
        if str(position_id) in self.open_risk or str(position_id) in self.held:
            self.trigger_event(self.RiskReleased, timestamp=now, position_id=position_id)

    def lower_risk(self, position_id: UUID, still_at_risk: Decimal, now: datetime) -> bool:
        """Shrink a position's reservation to what it can still lose at its tightened stop
        (never grown, never below 0); True when that recorded anything."""
        reserved = self.open_risk.get(str(position_id))
        amount = max(still_at_risk, Decimal(0))
        if reserved is None or amount >= reserved:
            return False
        self.trigger_event(self.RiskLowered, timestamp=now, position_id=position_id, amount=amount)
        return True

    def realise(
        self,
        position_id: UUID,
        month: str,
        pnl: Decimal,
        risk_still_open: Decimal,
        now: datetime,
        *,
        filled_at: datetime | None = None,
        exit_reason: str | None = None,
        closed: bool | None = None,
    ) -> None:
        """Realise an exit fill's P&L (on the fill's UTC day); a stop-out closing the position
        may complete a run that starts the cooldown."""
        self.trigger_event(
            self.PnlRealised,
            timestamp=now,
            position_id=position_id,
            month=month,
            pnl=pnl,
            risk_still_open=risk_still_open,
            filled_at=filled_at or now,
            exit_reason=exit_reason,
            closed=risk_still_open <= 0 if closed is None else closed,
        )
        end = cooldown_end(self.protection, self.stop_outs)
        if end is not None:
            self.trigger_event(
                self.CooldownStarted, timestamp=now, until=end, stop_outs=len(self.stop_outs)
            )

    # --- drawdown: alerts at 2% and 3%, pause at the limit ---

    class DrawdownAlerted(Aggregate.Event):
        month: str
        level: Decimal
        loss_percent: Decimal

        def apply(self, aggregate: Policy) -> None:
            aggregate.alerts.setdefault(self.month, []).append(self.level)

    class TradingPaused(Aggregate.Event):
        month: str
        loss_percent: Decimal
        reason: str

        def apply(self, aggregate: Policy) -> None:
            aggregate.paused = True
            aggregate.paused_month = self.month
            aggregate.pause_reason = self.reason

    class TradingResumed(Aggregate.Event):
        by: str
        note: str
        month: str

        def apply(self, aggregate: Policy) -> None:
            aggregate.resumed_months.append(self.month)
            aggregate.paused = False
            aggregate.paused_month = None
            aggregate.pause_reason = None
            aggregate.last_resume = (self.by, self.note)

    def observe_drawdown(self, month: str, loss_percent: Decimal, now: datetime) -> None:
        """Record each alert once per month, and the pause once, when the loss reaches them."""
        seen = self.alerts.get(month, [])
        for level in ALERT_LEVELS:
            if loss_percent >= level and level not in seen:
                self.trigger_event(
                    self.DrawdownAlerted,
                    timestamp=now,
                    month=month,
                    level=level,
                    loss_percent=loss_percent,
                )
        # A month resumed after review is not paused again by the same loss: its budget is
        # already spent, so VALIDATE refuses new risk until the month ends.
        if (
            loss_percent >= self.drawdown_limit_percent
            and not self.paused
            and month not in self.resumed_months
        ):
            self.trigger_event(
                self.TradingPaused,
                timestamp=now,
                month=month,
                loss_percent=loss_percent,
                reason=(
                    f"Monthly loss {loss_percent.quantize(Decimal('0.01'))}% reached the "
                    f"{self.drawdown_limit_percent.normalize():f}% limit"
                ),
            )

    def resume(self, by: str, note: str, now: datetime) -> None:
        """Only a recorded review lifts a pause; a new month does not."""
        if not self.paused:
            raise IllegalTransition("Trading is not paused")
        if not note.strip():
            raise InvalidInput("note", "a review note is required to resume trading")
        if not by.strip():
            raise InvalidInput("by", "who resumed trading is required")
        self.trigger_event(
            self.TradingResumed,
            timestamp=now,
            by=by.strip(),
            note=note.strip(),
            month=self.paused_month or month_of(now),  # the month whose loss was reviewed
        )
