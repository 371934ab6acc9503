"""Where a replay's entries come from: a schedule of planned trades, or a simple daily rule.

Both are called with every bar and return the plans due at its open, so a replay streams
its bars once and keeps none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from domain.bars import EPOCH, Bar, moment
from domain.errors import InvalidInput
from domain.market import Side


@dataclass(frozen=True, slots=True)
class PlannedTrade:
    at: datetime
    side: Side
    entry: Decimal
    stop: Decimal | None
    target: Decimal | None


class EntryRule(Protocol):
    """Where entries come from: called with every bar, returns the plans due at its open."""

    def __call__(self, bar: Bar) -> Sequence[PlannedTrade]: ...


DAY_MS = 86_400_000
MILLISECOND = timedelta(milliseconds=1)
NOTHING: tuple[PlannedTrade, ...] = ()


class Schedule:
    """Planned trades, each due at the first bar opening at or after its time."""

    def __init__(self, plans: Iterable[PlannedTrade]) -> None:
        self._plans = sorted(plans, key=lambda plan: plan.at)
        self._due_ms = [(plan.at - EPOCH) // MILLISECOND for plan in self._plans]
        self._next = 0

    def __call__(self, bar: Bar) -> Sequence[PlannedTrade]:
        i = self._next
        if i >= len(self._due_ms) or self._due_ms[i] > bar.opened_ms:
            return NOTHING
        while i < len(self._due_ms) and self._due_ms[i] <= bar.opened_ms:
            i += 1
        due, self._next = self._plans[self._next : i], i
        return due


class DailyBias:
    """The demo rule: at the first bar of each UTC day, trade the previous day's direction.

    LONG when the previous day closed above its open (and on the first day), SHORT when it
    closed below; entry at the bar's open, the stop `stop_percent` away and the target
    `reward` times the stop's distance on the other side.
    """

    def __init__(self, stop_percent: Decimal = Decimal(2), reward: Decimal = Decimal(2)) -> None:
        if not stop_percent.is_finite() or not 0 < stop_percent < 100:
            raise InvalidInput("stop_percent", "must be above 0 and below 100")
        if not reward.is_finite() or reward <= 0:
            raise InvalidInput("reward", "must be greater than zero")
        self.stop_share = stop_percent / 100
        self.reward = reward
        self._day = -1
        self._day_open: Decimal | None = None
        self._last_close: Decimal | None = None

    def __call__(self, bar: Bar) -> Sequence[PlannedTrade]:
        day = bar.opened_ms // DAY_MS
        if day == self._day:
            self._last_close = bar.close
            return NOTHING
        side = Side.LONG
        if self._day_open is not None and self._last_close is not None:
            side = Side.SHORT if self._last_close < self._day_open else Side.LONG
        self._day, self._day_open, self._last_close = day, bar.open, bar.close
        entry = bar.open
        distance = (entry * self.stop_share).quantize(Decimal("0.01"))
        stop = entry - side.sign * distance
        target = entry + side.sign * distance * self.reward
        return (PlannedTrade(moment(bar.opened_ms), side, entry, stop, target),)
