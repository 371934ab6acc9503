"""Chat proposals nobody confirmed: past their five minutes, expired and their positions
cancelled, so the risk VALIDATE reserved for them returns to the month's budget even when
their tenant never chats again. A proposal that ended unexecuted but whose position still
holds its risk (a stop came between the two steps) has its release finished. Part of the
reconcile job."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol, TypedDict
from uuid import UUID

from domain.read_models import PositionRow
from workers.jobs import Action, Job, Outcome, describe
from workers.metrics import WorkerMetrics
from workers.watchlist import Shard

log = logging.getLogger("robson.worker")

EXPIRED = "Trade proposal expired unconfirmed; its reserved risk is released"
RELEASED = "; its reserved risk is released"
SWEEP_EVERY = timedelta(seconds=10)  # proposals live five minutes: no need to look every tick


class AbandonedProposals(Protocol):
    """What the sweep needs of `domain.assistant.proposals.TradeProposals`."""

    def abandoned(self, shard: Shard | None = None) -> list[PositionRow]: ...

    def expire(self, client_id: UUID, intent_id: UUID) -> str | None: ...


class _Subject(TypedDict):
    """Which proposal an action is about."""

    position_id: UUID
    client_id: UUID
    symbol: str


class ProposalSweep:
    """Expires every abandoned proposal of the shard's tenants, at most once per `every`."""

    def __init__(self, proposals: AbandonedProposals, every: timedelta = SWEEP_EVERY) -> None:
        self.proposals = proposals
        self.every = every
        self.swept_at: datetime | None = None

    def __call__(
        self, now: datetime, shard: Shard | None, metrics: WorkerMetrics, dry_run: bool
    ) -> list[Action]:
        """In a dry run, only list them; one that fails is reported and left for the next
        sweep."""
        if self.swept_at is not None and now - self.swept_at < self.every:
            return []
        self.swept_at = now
        actions = []
        for row in self.proposals.abandoned(shard):
            base: _Subject = {
                "position_id": row.position_id,
                "client_id": row.client_id,
                "symbol": row.symbol,
            }
            if dry_run:
                actions.append(Action(Job.RECONCILE, Outcome.DRY_RUN, detail=EXPIRED, **base))
                continue
            try:
                released = self.proposals.expire(row.client_id, row.position_id)
            except Exception as error:
                metrics.add("errors")
                detail = describe(error)
                log.warning("expiring proposal %s failed: %s", row.position_id, detail)
                actions.append(Action(Job.RECONCILE, Outcome.ERROR, detail=detail, **base))
                continue
            if released is not None:  # else confirmed or released by its tenant meanwhile
                metrics.add("proposals_expired")
                detail = released + RELEASED
                actions.append(
                    Action(Job.RECONCILE, Outcome.DONE, status="cancelled", detail=detail, **base)
                )
        return actions
