"""Chat proposals nobody confirmed: past their five minutes, expired and their positions
cancelled, so the risk VALIDATE reserved for them returns to the month's budget even when
their tenant never chats again. Part of the reconcile job."""

from __future__ import annotations

import logging
from typing import Any, Protocol
from uuid import UUID

from domain.errors import DomainError
from projections.read_models import PositionRow
from workers.jobs import Action, Job, Outcome
from workers.metrics import WorkerMetrics
from workers.watchlist import Shard

log = logging.getLogger("robson.worker")

EXPIRED = "Trade proposal expired unconfirmed; its reserved risk is released"


class AbandonedProposals(Protocol):
    """What the sweep needs of `domain.trade_proposals.TradeProposals`."""

    def abandoned(self, shard: Shard | None = None) -> list[PositionRow]: ...

    def expire(self, client_id: UUID, intent_id: UUID) -> bool: ...


def sweep_proposals(
    proposals: AbandonedProposals, shard: Shard | None, metrics: WorkerMetrics, dry_run: bool
) -> list[Action]:
    """Expire every abandoned proposal of the shard's tenants (in a dry run, only list them);
    one that fails is reported and left for the next tick."""
    actions = []
    for row in proposals.abandoned(shard):
        base: dict[str, Any] = {
            "position_id": row.position_id,
            "client_id": row.client_id,
            "symbol": row.symbol,
        }
        if dry_run:
            actions.append(Action(Job.RECONCILE, Outcome.DRY_RUN, detail=EXPIRED, **base))
            continue
        try:
            expired = proposals.expire(row.client_id, row.position_id)
        except Exception as error:
            metrics.add("errors")
            detail = error.message if isinstance(error, DomainError) else type(error).__name__
            log.warning("expiring proposal %s failed: %s", row.position_id, detail)
            actions.append(Action(Job.RECONCILE, Outcome.ERROR, detail=detail, **base))
            continue
        if expired:  # else confirmed or expired by its tenant meanwhile
            metrics.add("proposals_expired")
            actions.append(
                Action(Job.RECONCILE, Outcome.DONE, status="cancelled", detail=EXPIRED, **base)
            )
    return actions
