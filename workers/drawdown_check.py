"""The drawdown job: every few seconds, each tenant's realised loss of the month plus the
open loss of its open positions at the last price (`projections.drawdown_rule`), so the
alerts at 2% and 3% and the pause at the limit are recorded before any position exits."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from projections.drawdown_rule import Observation
from workers.jobs import Action, Job, Outcome, describe
from workers.metrics import WorkerMetrics

log = logging.getLogger("robson.worker")

CHECK_EVERY = timedelta(seconds=5)  # it reads every tenant's month: not on every tick


class MonthlyLossRule(Protocol):
    """What the check needs of `projections.drawdown_rule.DrawdownRule`."""

    dry_run: bool

    def run_once(self) -> list[Observation]: ...


class DrawdownCheck:
    """Runs the rule at most once per `every`; a failure is logged and counted, never raised."""

    def __init__(self, rule: MonthlyLossRule, every: timedelta = CHECK_EVERY) -> None:
        self.rule = rule
        self.every = every
        self.checked_at: datetime | None = None

    def __call__(self, now: datetime, metrics: WorkerMetrics) -> list[Action]:
        if self.checked_at is not None and now - self.checked_at < self.every:
            return []
        self.checked_at = now
        try:
            observations = self.rule.run_once()
        except Exception as error:
            metrics.add("errors")
            log.warning("drawdown check failed: %s", describe(error))
            return []
        outcome = Outcome.DRY_RUN if self.rule.dry_run else Outcome.DONE
        if outcome is Outcome.DONE:
            metrics.add("drawdown_alerts", sum(len(seen.alerts) for seen in observations))
            metrics.add("drawdown_pauses", sum(seen.pause for seen in observations))
        return [
            Action(Job.DRAWDOWN, outcome, seen.client_id, detail=describe_observation(seen))
            for seen in observations
        ]


def describe_observation(seen: Observation) -> str:
    """`monthly loss 3.9990%: alerts at 2%, 3%; trading paused`."""
    reached = []
    if seen.alerts:
        levels = ", ".join(f"{level.normalize():f}%" for level in seen.alerts)
        reached.append(f"alert{'s' if len(seen.alerts) > 1 else ''} at {levels}")
    if seen.pause:
        reached.append("trading paused")
    return f"monthly loss {seen.loss_percent.quantize(Decimal('0.0001'))}%: {'; '.join(reached)}"
