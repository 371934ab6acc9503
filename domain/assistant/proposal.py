"""TradeProposal: a trade the assistant planned and validated, waiting for the user's word.

The model can only propose. A proposal is confirmed (or cancelled) by the user, at most once,
within five minutes; the confirmation is an event recorded BEFORE the ledger executes, so of two
concurrent confirmations optimistic concurrency lets exactly one through. Its id derives
from the position's, so the intent id a user sees (the position id) finds it directly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import IllegalTransition, NotFound
from domain.identity import NAMESPACE
from domain.market import Side

PROPOSAL_TTL = timedelta(minutes=5)


def proposal_id_for(position_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"/proposals/{position_id}")


class ProposalStatus(Enum):
    PENDING = "pending"  # waiting for the user's confirmation
    CONFIRMED = "confirmed"  # confirmed; the ledger is executing it
    EXECUTED = "executed"
    FAILED = "failed"  # confirmed, but the ledger could not execute it
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the user said no: it never executes


class ProposalNotFound(NotFound):
    code = "intent_not_found"

    def __init__(self, intent_id: UUID) -> None:
        super().__init__(f"No trade proposal {intent_id} is waiting for confirmation")


class ProposalAlreadyConfirmed(IllegalTransition):
    """A confirmation (or cancellation) of a proposal already confirmed: says what became of
    it, so a retried confirmation learns the truth and nothing is sent again."""

    code = "already_confirmed"

    def __init__(
        self, intent_id: UUID, status: ProposalStatus | None = None, outcome: str | None = None
    ) -> None:
        said = f"Trade proposal {intent_id} was already confirmed"
        if status is ProposalStatus.EXECUTED:
            said += f" and executed: position {intent_id} is {outcome}"
        elif status is ProposalStatus.FAILED:
            said += f", but its execution failed ({outcome}); ask for a new one"
        elif status is ProposalStatus.CONFIRMED:
            said += f" and is executing: see position {intent_id}"
        super().__init__(said + "; nothing was sent again")


class ProposalCancelled(IllegalTransition):
    code = "proposal_cancelled"

    def __init__(self, intent_id: UUID) -> None:
        super().__init__(
            f"Trade proposal {intent_id} was cancelled and can never be executed; ask for a new one"
        )


class ProposalExpired(IllegalTransition):
    code = "proposal_expired"

    def __init__(self, intent_id: UUID) -> None:
        super().__init__(
            f"Trade proposal {intent_id} expired unconfirmed after "
            f"{int(PROPOSAL_TTL.total_seconds() // 60)} minutes and was cancelled; "
            "ask for a new one"
        )


class TradeProposal(LedgerAggregate):
    class Proposed(Aggregate.Created):
        client_id: UUID
        conversation_id: UUID
        position_id: UUID
        symbol: str
        side: Side
        entry_price: Decimal
        stop_price: Decimal
        target_price: Decimal | None
        quantity: Decimal
        risk_amount: Decimal
        expires_at: datetime

    @event(Proposed)
    def __init__(
        self,
        client_id: UUID,
        conversation_id: UUID,
        position_id: UUID,
        symbol: str,
        side: Side,
        entry_price: Decimal,
        stop_price: Decimal,
        target_price: Decimal | None,
        quantity: Decimal,
        risk_amount: Decimal,
        expires_at: datetime,
    ) -> None:
        self.client_id = client_id
        self.conversation_id = conversation_id
        self.position_id = position_id
        self.symbol = symbol
        self.side = side
        self.entry_price = entry_price
        self.stop_price = stop_price
        self.target_price = target_price
        self.quantity = quantity
        self.risk_amount = risk_amount
        self.expires_at = expires_at
        self.status = ProposalStatus.PENDING
        self.confirmed_at: datetime | None = None
        self.outcome: str | None = None

    @classmethod
    def propose(
        cls,
        *,
        client_id: UUID,
        conversation_id: UUID,
        position_id: UUID,
        symbol: str,
        side: Side,
        entry_price: Decimal,
        stop_price: Decimal,
        target_price: Decimal | None,
        quantity: Decimal,
        risk_amount: Decimal,
        now: datetime,
    ) -> TradeProposal:
        return cls._create(
            cls.Proposed,
            id=proposal_id_for(position_id),
            timestamp=now,
            client_id=client_id,
            conversation_id=conversation_id,
            position_id=position_id,
            symbol=symbol,
            side=side,
            entry_price=entry_price,
            stop_price=stop_price,
            target_price=target_price,
            quantity=quantity,
            risk_amount=risk_amount,
            expires_at=now + PROPOSAL_TTL,
        )

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    class Confirmed(Aggregate.Event):
        def apply(self, aggregate: TradeProposal) -> None:
            aggregate.status = ProposalStatus.CONFIRMED
            aggregate.confirmed_at = self.timestamp

    class Executed(Aggregate.Event):
        position_status: str

        def apply(self, aggregate: TradeProposal) -> None:
            aggregate.status = ProposalStatus.EXECUTED
            aggregate.outcome = self.position_status

    class ExecutionFailed(Aggregate.Event):
        reason: str

        def apply(self, aggregate: TradeProposal) -> None:
            aggregate.status = ProposalStatus.FAILED
            aggregate.outcome = self.reason

    class Expired(Aggregate.Event):
        def apply(self, aggregate: TradeProposal) -> None:
            aggregate.status = ProposalStatus.EXPIRED

    class Cancelled(Aggregate.Event):
        def apply(self, aggregate: TradeProposal) -> None:
            aggregate.status = ProposalStatus.CANCELLED

    def confirm(self, now: datetime) -> None:
        """Accept the user's confirmation; raises for anything but a live, pending proposal."""
        self._require_live(now)
        self.trigger_event(self.Confirmed, timestamp=now)

    def cancel(self, now: datetime) -> None:
        """Record the user's no; raises for anything but a live, pending proposal."""
        self._require_live(now)
        self.trigger_event(self.Cancelled, timestamp=now)

    def _require_live(self, now: datetime) -> None:
        if self.status is ProposalStatus.EXPIRED:
            raise ProposalExpired(self.position_id)
        if self.status is ProposalStatus.CANCELLED:
            raise ProposalCancelled(self.position_id)
        if self.status is not ProposalStatus.PENDING:
            raise ProposalAlreadyConfirmed(self.position_id, self.status, self.outcome)
        if self.is_expired(now):
            raise ProposalExpired(self.position_id)

    def expire(self, now: datetime) -> None:
        if self.status is not ProposalStatus.PENDING:
            raise IllegalTransition(f"Cannot expire a proposal that is {self.status.value}")
        if not self.is_expired(now):
            raise IllegalTransition("The proposal has not expired yet")
        self.trigger_event(self.Expired, timestamp=now)

    def record_outcome(self, position_status: str, now: datetime) -> None:
        if self.status is ProposalStatus.CONFIRMED:
            self.trigger_event(self.Executed, timestamp=now, position_status=position_status)

    def record_failure(self, reason: str, now: datetime) -> None:
        if self.status is ProposalStatus.CONFIRMED:
            self.trigger_event(self.ExecutionFailed, timestamp=now, reason=reason)
