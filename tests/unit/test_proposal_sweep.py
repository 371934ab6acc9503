"""The reconcile job's sweep of abandoned chat proposals: one failure is reported and kept
quiet about its message, the others are still expired."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

from domain.assistant.proposals import EXPIRED_NOTE
from domain.errors import ConcurrencyConflict
from domain.read_models import PositionRow
from tests.factories import UNIT_NOW as NOW
from tests.factories import position_row
from workers.jobs import Job, Outcome
from workers.metrics import WorkerMetrics
from workers.proposal_sweep import EXPIRED, ProposalSweep
from workers.watchlist import Shard


class Proposals:
    """Abandoned rows, and what expiring each one does: why its position was cancelled,
    None (nothing was due any more), or an error."""

    def __init__(self, outcomes: list[str | Exception | None]) -> None:
        self.rows = [position_row(client_id=uuid4(), status="validated") for _ in outcomes]
        self.outcomes = {r.position_id: o for r, o in zip(self.rows, outcomes, strict=True)}
        self.asked: list[UUID] = []
        self.shards: list[Shard | None] = []

    def abandoned(self, shard: Shard | None = None) -> list[PositionRow]:
        self.shards.append(shard)
        return self.rows

    def expire(self, client_id: UUID, intent_id: UUID) -> str | None:
        self.asked.append(intent_id)
        outcome = self.outcomes[intent_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_a_failure_is_reported_by_type_only_and_the_rest_are_still_expired() -> None:
    proposals = Proposals([RuntimeError("dsn=postgres://robson:s3cret@db"), EXPIRED_NOTE, None])
    failing, expiring, confirmed_meanwhile = proposals.rows
    metrics = WorkerMetrics()

    actions = ProposalSweep(proposals)(NOW, (1, 4), metrics, dry_run=False)

    assert proposals.shards == [(1, 4)]
    assert proposals.asked == [r.position_id for r in proposals.rows]
    assert [(a.position_id, a.outcome, a.detail) for a in actions] == [
        (failing.position_id, Outcome.ERROR, "RuntimeError"),
        (expiring.position_id, Outcome.DONE, EXPIRED),
    ]
    assert all(a.job is Job.RECONCILE for a in actions)
    assert actions[1].client_id == expiring.client_id and actions[1].status == "cancelled"
    assert confirmed_meanwhile.position_id not in [a.position_id for a in actions]
    assert (metrics.errors, metrics.proposals_expired) == (1, 1)


def test_a_domain_error_is_reported_in_its_own_words() -> None:
    proposals = Proposals([ConcurrencyConflict("The trade proposal kept changing")])

    [action] = ProposalSweep(proposals)(NOW, None, WorkerMetrics(), dry_run=False)

    assert (action.outcome, action.detail) == (Outcome.ERROR, "The trade proposal kept changing")


def test_a_dry_run_lists_them_and_expires_nothing() -> None:
    proposals = Proposals([EXPIRED_NOTE, EXPIRED_NOTE])
    metrics = WorkerMetrics()

    actions = ProposalSweep(proposals)(NOW, None, metrics, dry_run=True)

    assert [a.outcome for a in actions] == [Outcome.DRY_RUN, Outcome.DRY_RUN]
    assert proposals.asked == []
    assert metrics.proposals_expired == 0


def test_it_looks_again_only_once_its_interval_has_passed() -> None:
    proposals = Proposals([None])
    sweep = ProposalSweep(proposals, every=timedelta(seconds=10))

    for seconds in (0, 9, 10, 15, 21):
        sweep(NOW + timedelta(seconds=seconds), None, WorkerMetrics(), dry_run=False)

    assert len(proposals.shards) == 3  # at 0, 10 and 21 seconds
