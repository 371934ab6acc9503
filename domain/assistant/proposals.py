"""Trades proposed in chat: PLAN + VALIDATE now, EXECUTE only on the user's explicit word.

A confirmation is saved before the ledger executes anything; when two arrive together the
second save conflicts, re-reads the proposal and is refused, so a trade executes once.
A proposal not confirmed within five minutes expires, and one the user cancels is cancelled;
either way its position is cancelled, releasing the risk that VALIDATE reserved for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.assistant.proposal import (
    PROPOSAL_TTL,
    ProposalCancelled,
    ProposalExpired,
    ProposalNotFound,
    ProposalStatus,
    TradeProposal,
    proposal_id_for,
)
from domain.errors import ConcurrencyConflict, DomainError, OrderOutcomeUnknown
from domain.formats import Document, iso, maybe_money, money
from domain.ledger import Ledger, PlanRequest
from domain.market import Side
from domain.position import Position, Status
from domain.read_models import PositionRow, ReadModels
from domain.store import CONFLICT_ATTEMPTS, retry_on_conflict

A = TypeVar("A", bound=Aggregate)
CANCELLED_NOTE = "Trade proposal cancelled by the trader"
EXPIRED_NOTE = "Trade proposal expired unconfirmed"


class AggregateStore(Protocol):
    """The event store as these use cases need it (a test may slip a barrier in between)."""

    def load(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

    def save(self, *objs: Aggregate) -> object: ...


@dataclass(frozen=True)
class Proposed:
    """What PLAN + VALIDATE made of a proposed trade; `expires_at` is None when rejected."""

    position: Position
    expires_at: datetime | None

    @property
    def awaiting_confirmation(self) -> bool:
        return self.expires_at is not None


@dataclass(frozen=True)
class Confirmation:
    intent_id: UUID
    side: Side
    position: Document  # the position as the execution left it


class TradeProposals:
    def __init__(self, ledger: Ledger, read_models: ReadModels, store: AggregateStore) -> None:
        self.ledger = ledger
        self.read_models = read_models
        self.store = store
        self._nothing_to_sweep: set[UUID] = set()  # validated positions (see abandoned)

    def propose(self, client_id: UUID, conversation_id: UUID, request: PlanRequest) -> Proposed:
        """PLAN and VALIDATE; a validated position waits for confirmation, never executes."""
        planned = self.ledger.plan_position(client_id, request)
        position = self.ledger.validate_position(client_id, planned.id)
        if position.status is not Status.VALIDATED:
            return Proposed(position, None)
        assert position.stop_price is not None  # VALIDATE requires a stop
        proposal = TradeProposal.propose(
            client_id=client_id,
            conversation_id=conversation_id,
            position_id=position.id,
            symbol=position.symbol,
            side=position.side,
            entry_price=position.entry_price,
            stop_price=position.stop_price,
            target_price=position.target_price,
            quantity=position.quantity,
            risk_amount=position.risk_amount,
            now=self.ledger.clock.now(),
        )
        self.store.save(proposal)
        return Proposed(position, proposal.expires_at)

    def confirm(self, client_id: UUID, intent_id: UUID) -> Confirmation:
        proposal = self._confirmed(client_id, intent_id)
        try:
            position = self.ledger.execute_position(client_id, proposal.position_id)
        except OrderOutcomeUnknown:
            raise  # reconciliation settles the position; the proposal stays confirmed
        except DomainError as exc:
            reason = exc.message
            self._update(client_id, intent_id, lambda p, now: p.record_failure(reason, now))
            self._release(client_id, intent_id, f"Execution failed: {reason}")
            raise
        status = position.status.value
        self._update(client_id, intent_id, lambda p, now: p.record_outcome(status, now))
        return Confirmation(intent_id, position.side, execution_document(position))

    def cancel(self, client_id: UUID, intent_id: UUID) -> Side:
        """Record the user's no on a pending proposal, then cancel its position, releasing
        the risk VALIDATE reserved; the proposal's side. Saved with optimistic concurrency
        against a confirmation: of the two, only the first recorded counts."""

        def command() -> tuple[Side, ProposalStatus | None]:
            now = self.ledger.clock.now()
            proposal = self.proposal(client_id, intent_id)
            if proposal.status is ProposalStatus.PENDING and proposal.is_expired(now):
                return proposal.side, ProposalStatus.EXPIRED
            if proposal.status is ProposalStatus.CANCELLED:
                return proposal.side, ProposalStatus.CANCELLED
            proposal.cancel(now)  # refuses anything but a live, pending proposal
            self.store.save(proposal)
            return proposal.side, None

        side, earlier = retry_on_conflict(command)
        if earlier is ProposalStatus.EXPIRED:
            self.expire(client_id, intent_id)
            raise ProposalExpired(intent_id)
        # Also on a second cancellation: a crash between the two steps left the risk held.
        self._release(client_id, intent_id, CANCELLED_NOTE)
        if earlier is ProposalStatus.CANCELLED:
            raise ProposalCancelled(intent_id)
        return side

    def _confirmed(self, client_id: UUID, intent_id: UUID) -> TradeProposal:
        for _ in range(CONFLICT_ATTEMPTS):
            now = self.ledger.clock.now()
            proposal = self.proposal(client_id, intent_id)
            if proposal.status is ProposalStatus.PENDING and proposal.is_expired(now):
                self.expire(client_id, intent_id)
                raise ProposalExpired(intent_id)
            proposal.confirm(now)  # refuses anything but a live, pending proposal
            try:
                self.store.save(proposal)
            except IntegrityError:
                continue  # another writer came first: read again, decide again
            return proposal
        raise ConcurrencyConflict("The trade proposal kept changing; try again")

    def proposal(self, client_id: UUID, intent_id: UUID) -> TradeProposal:
        found = self.store.load(proposal_id_for(intent_id), TradeProposal)
        if found is None or found.client_id != client_id:
            raise ProposalNotFound(intent_id)  # another tenant's looks like none at all
        return found

    def _update(
        self,
        client_id: UUID,
        intent_id: UUID,
        change: Callable[[TradeProposal, datetime], None],
    ) -> None:
        def command() -> None:
            proposal = self.proposal(client_id, intent_id)
            change(proposal, self.ledger.clock.now())
            self.store.save(proposal)

        retry_on_conflict(command)

    # --- expiry ---

    def expire_stale(self, client_id: UUID) -> list[UUID]:
        """Expire this tenant's proposals left unconfirmed past five minutes; their ids."""
        now = self.ledger.clock.now()
        expired = []
        for row in self.read_models.positions(client_id, Status.VALIDATED.value, 500):
            proposal = self._pending(row)
            if proposal and proposal.is_expired(now) and self.expire(client_id, row.position_id):
                expired.append(row.position_id)
        return expired

    def abandoned(self, shard: tuple[int, int] | None = None) -> list[PositionRow]:
        """Every tenant's proposals left unconfirmed past five minutes, and those that ended
        unexecuted (expired, cancelled, failed) while their position still holds its risk: a
        stop between recording the end and cancelling the position. A worker expires them and
        releases the risk, even when their tenant never chats again."""
        now = self.ledger.clock.now()
        rows = self.read_models.validated_before(now - PROPOSAL_TTL, shard)
        # A position validated through the API may wait for days: read that it has no
        # proposal once, not on every sweep. Forget it once it stops waiting.
        self._nothing_to_sweep &= {row.position_id for row in rows}
        found = []
        for row in rows:
            if row.position_id in self._nothing_to_sweep:
                continue
            proposal = self.store.load(proposal_id_for(row.position_id), TradeProposal)
            if proposal is None or proposal.client_id != row.client_id:
                self._nothing_to_sweep.add(row.position_id)
            elif release_note(proposal) is not None or (
                proposal.status is ProposalStatus.PENDING and proposal.is_expired(now)
            ):
                found.append(row)
        return found

    def _pending(self, row: PositionRow) -> TradeProposal | None:
        """The position's proposal while it waits for confirmation."""
        proposal = self.store.load(proposal_id_for(row.position_id), TradeProposal)
        if proposal is None or proposal.client_id != row.client_id:
            return None
        return proposal if proposal.status is ProposalStatus.PENDING else None

    def expire(self, client_id: UUID, intent_id: UUID) -> str | None:
        """Expire the proposal if it is still pending past its time, and cancel its position,
        releasing the risk VALIDATE reserved. Of a proposal that ended unexecuted before, the
        release is finished if a stop interrupted it. Why its position was cancelled; None
        when nothing was (or is no longer) due."""

        def command() -> str | None:
            now = self.ledger.clock.now()
            proposal = self.proposal(client_id, intent_id)
            if proposal.status is ProposalStatus.PENDING and proposal.is_expired(now):
                proposal.expire(now)
                self.store.save(proposal)
            return release_note(proposal)

        note = retry_on_conflict(command)
        if note is None or not self._release(client_id, intent_id, note):
            return None
        return note

    def _release(self, client_id: UUID, position_id: UUID, reason: str) -> bool:
        """Cancel a position that never reached the exchange, releasing its reserved risk;
        False when it had gone on (or was cancelled) already."""
        position = self.ledger.position(client_id, position_id)
        if position.status not in (Status.PLANNED, Status.VALIDATED):
            return False
        self.ledger.cancel_position(client_id, position_id, reason)
        return True


def release_note(proposal: TradeProposal) -> str | None:
    """Why the position of a proposal that ended without executing is cancelled; None while
    the proposal may still execute (pending or confirmed) or has."""
    if proposal.status is ProposalStatus.EXPIRED:
        return EXPIRED_NOTE
    if proposal.status is ProposalStatus.CANCELLED:
        return CANCELLED_NOTE
    if proposal.status is ProposalStatus.FAILED:
        return f"Execution failed: {proposal.outcome}"
    return None


def proposal_document(proposed: Proposed) -> Document:
    position = proposed.position
    return {
        "intent_id": str(position.id),
        "status": "awaiting_confirmation" if proposed.awaiting_confirmation else "rejected",
        "valid": proposed.awaiting_confirmation,
        "violations": [dict(v) for v in position.violations],
        "symbol": position.symbol,
        "side": position.side.value,
        "quantity": money(position.quantity),
        "entry_price": money(position.entry_price),
        "stop_price": maybe_money(position.stop_price),
        "target_price": maybe_money(position.target_price),
        "risk_amount": money(position.risk_amount),
        "expires_at": iso(proposed.expires_at),
    }


def execution_document(position: Position) -> Document:
    return {
        "id": str(position.id),
        "symbol": position.symbol,
        "side": position.side.value,
        "status": position.status.value,
        "quantity": money(position.filled_quantity or position.quantity),
        "open_quantity": money(position.open_quantity),
        "entry_price": money(position.average_entry_price or position.entry_price),
        "stop_price": maybe_money(position.stop_price),
        "target_price": maybe_money(position.target_price),
        "risk_amount": money(position.risk_amount),
        "note": position.note,
    }
