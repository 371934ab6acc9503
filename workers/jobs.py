"""What a worker does: its jobs, the outcome of each action, and how actions are reported."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from uuid import UUID

from domain.errors import DomainError
from domain.formats import Document, money
from domain.position import ExitReason
from workers.watchlist import Shard

log = logging.getLogger("robson.worker")


class Job(Enum):
    STOPS = "stops"  # stop-loss and take-profit exits
    TRAILING = "trailing"  # the hand-span trailing stop
    RECONCILE = "reconcile"  # settle unknown order outcomes; expire abandoned proposals
    DRAWDOWN = "drawdown"  # the month's realised plus open loss: alerts and the pause


ALL_JOBS = frozenset(Job)


def parse_jobs(text: str) -> frozenset[Job]:
    """`stops,trailing,reconcile,drawdown` (any subset, any order)."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    known = {job.value: job for job in Job}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"jobs must be a comma-separated subset of {', '.join(known)}")
    return frozenset(known[name] for name in names)


def parse_shard(text: str) -> Shard:
    """`i/n`, 0 ≤ i < n: this worker watches the tenants whose client id % n == i."""
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise ValueError("shard must look like i/n, e.g. 0/4") from None
    if not 0 <= shard[0] < shard[1]:
        raise ValueError("shard i/n needs 0 <= i < n")
    return shard


class Outcome(Enum):
    DONE = "done"
    DRY_RUN = "dry_run"  # what would be done; nothing recorded or sent
    PENDING = "pending"  # sent; its outcome is left to reconciliation
    UNCHANGED = "unchanged"
    LOST_RACE = "lost_race"  # someone else acted on the position first
    ERROR = "error"


@dataclass(frozen=True)
class Action:
    """One thing a tick did (or, in a dry run, would do) to one position, or to a tenant's
    policy (the drawdown job: no position, no symbol)."""

    job: Job
    outcome: Outcome
    client_id: UUID
    position_id: UUID | None = None
    symbol: str | None = None
    price: Decimal | None = None
    reason: ExitReason | None = None
    from_stop: Decimal | None = None
    to_stop: Decimal | None = None
    span_step: int | None = None
    status: str | None = None
    detail: str | None = None

    def as_json(self) -> Document:
        """JSON-ready: ids as strings, prices as strings with 8 decimals (as the API), and
        absent fields left out."""
        found: Document = {"job": self.job.value, "outcome": self.outcome.value}
        for name in ("position_id", "client_id", "symbol"):
            if getattr(self, name) is not None:
                found[name] = str(getattr(self, name))
        for name in ("price", "from_stop", "to_stop"):
            value = getattr(self, name)
            if value is not None:
                found[name] = money(value)
        if self.reason is not None:
            found["reason"] = self.reason.value
        for name in ("span_step", "status", "detail"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


Report = Callable[[Action], None]


def log_action(action: Action) -> None:
    level = logging.WARNING if action.outcome is Outcome.ERROR else logging.INFO
    log.log(level, "%s", action.as_json())


def describe(error: Exception) -> str:
    """A domain error's own sentence; for anything else only its type (it may carry secrets)."""
    if isinstance(error, DomainError):
        return error.message
    return type(error).__name__
