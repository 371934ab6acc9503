"""Protections: entry refusals that follow the calendar — a cooldown after a run of stop-outs,
a cap on one UTC day's realised loss, and a ceiling on open positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from domain.errors import InvalidInput

STOP_OUT_LIMIT = 3
STOP_OUT_WINDOW_HOURS = 24
COOLDOWN_HOURS = 24
DAILY_LOSS_LIMIT_PERCENT = Decimal(4)  # no tighter than the monthly limit unless a tenant asks
MAX_OPEN_POSITIONS = 1000  # no ceiling in practice unless a tenant sets one
STOP_OUTS = ("STOP_LOSS", "STOP_LOSS_AT_EXCHANGE")  # exit reasons of a stop-out

COOLDOWN = "stop_out_cooldown"
DAILY_LOSS = "daily_loss_cap"
MAX_POSITIONS = "max_open_positions"
WHEN_A_POSITION_CLOSES = "an open position closes"


@dataclass(frozen=True)
class ProtectionSettings:
    """A tenant's protections; the defaults apply until its policy is reconfigured."""

    stop_out_limit: int = STOP_OUT_LIMIT  # consecutive stop-outs that start a cooldown...
    stop_out_window_hours: int = STOP_OUT_WINDOW_HOURS  # ...when they all fall within this
    cooldown_hours: int = COOLDOWN_HOURS
    daily_loss_limit_percent: Decimal = DAILY_LOSS_LIMIT_PERCENT  # of the month's capital base
    max_open_positions: int = MAX_OPEN_POSITIONS

    def check(self) -> None:
        for field in ("stop_out_limit", "stop_out_window_hours", "cooldown_hours"):
            if not 1 <= getattr(self, field) <= 1000:
                raise InvalidInput(field, "must be a whole number from 1 to 1000")
        if not 1 <= self.max_open_positions <= 1000:
            raise InvalidInput("max_open_positions", "must be a whole number from 1 to 1000")
        limit = self.daily_loss_limit_percent
        if not limit.is_finite() or not 0 < limit <= 100:
            raise InvalidInput("daily_loss_limit_percent", "must be above 0 and at most 100")


DEFAULTS = ProtectionSettings()


@dataclass(frozen=True)
class Refusal:
    """A protection refusing new entries now: its rule, why, and when that lifts."""

    rule: str
    reason: str
    until: str


@dataclass(frozen=True)
class ProtectionState:
    """What the protections judge, as the Policy knows it at `now`."""

    now: datetime
    capital_base: Decimal
    day_pnl: Decimal  # realised on `now`'s UTC day
    open_positions: int  # holding or reserving risk (other than the one being validated)
    cooldown_until: datetime | None
    stop_outs: int  # the current run of consecutive stop-outs


@dataclass(frozen=True)
class Protections:
    """A tenant's protection settings beside the state they judge, for its policy reply."""

    settings: ProtectionSettings
    state: ProtectionState


def day_of(at: datetime) -> str:
    """The UTC day of an instant, `YYYY-MM-DD`: a daily loss is counted on it."""
    return at.astimezone(UTC).date().isoformat()


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def stop_out_run(run: list[datetime], exit_reason: str | None, at: datetime) -> list[datetime]:
    """The run of consecutive stop-outs after a position closes at `at`: a stop-out extends
    it, any other close ends it, and a close of unknown reason (recorded before the
    protections existed) leaves it as it was."""
    if exit_reason in STOP_OUTS:
        return [*run, at]
    if exit_reason is not None:
        return []
    return run


def cooldown_end(settings: ProtectionSettings, stop_outs: list[datetime]) -> datetime | None:
    """When the last `stop_out_limit` stop-outs all fell within the window, the cooldown's end."""
    n = settings.stop_out_limit
    if len(stop_outs) < n:
        return None
    if stop_outs[-1] - stop_outs[-n] > timedelta(hours=settings.stop_out_window_hours):
        return None
    return stop_outs[-1] + timedelta(hours=settings.cooldown_hours)


def refusals(settings: ProtectionSettings, state: ProtectionState) -> list[Refusal]:
    """Every protection refusing a new entry at `state.now`, in a stable order."""
    found: list[Refusal] = []
    if state.cooldown_until is not None and state.now < state.cooldown_until:
        until = state.cooldown_until.astimezone(UTC).isoformat()
        found.append(
            Refusal(
                COOLDOWN,
                f"{settings.stop_out_limit} consecutive stop-outs within "
                f"{settings.stop_out_window_hours} h: no new entries until {until}",
                until,
            )
        )
    cap = state.capital_base * settings.daily_loss_limit_percent / 100
    if cap > 0 and -state.day_pnl >= cap:
        tomorrow = next_day(day_of(state.now))
        found.append(
            Refusal(
                DAILY_LOSS,
                f"Today's realised loss {(-state.day_pnl).normalize():f} reached the daily cap "
                f"of {settings.daily_loss_limit_percent.normalize():f}% "
                f"({cap.normalize():f}); new entries wait until {tomorrow} (UTC)",
                tomorrow,
            )
        )
    if state.open_positions >= settings.max_open_positions:
        found.append(
            Refusal(
                MAX_POSITIONS,
                f"{state.open_positions} positions are open or awaiting entry, the maximum "
                f"of {settings.max_open_positions}",
                WHEN_A_POSITION_CLOSES,
            )
        )
    return found
