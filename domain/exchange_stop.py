"""The insurance stop: a stop-limit exit resting at the exchange for an open position, so the
position stays protected while Robson (its worker, database or network) is down.

Its client order id is recorded before it is sent, like every order; it follows the trailing
stop (never looser than it was), and Robson cancels it before any exit of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import ClassVar, TypedDict
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol

from domain.errors import IllegalTransition
from domain.identity import client_order_id
from domain.market import Side


class StopState(Enum):
    NONE = "none"  # never placed
    SENDING = "sending"  # recorded, the exchange's answer not known yet
    RESTING = "resting"  # working at the exchange: the position is protected
    CANCELLED = "cancelled"  # Robson cancelled it (its own exit, or a displacement)
    FILLED = "filled"  # it triggered and filled: that was the exit
    REFUSED = "refused"  # the exchange would not rest it (see the note)


class ExchangeStop:
    """Mixed into Position; the class attributes are the state of a position without one."""

    exchange_stop_id: str | None = None
    exchange_stop_price: Decimal | None = None
    exchange_stop_limit: Decimal | None = None
    exchange_stop_quantity: Decimal = Decimal(0)
    exchange_stop_state: StopState = StopState.NONE
    exchange_stop_moved_at: datetime | None = None
    exchange_stop_replaces: str | None = None  # the order a replacement cancels
    exchange_stop_note: str | None = None
    orders_sent: int  # the aggregate's count of the orders it has sent

    class ExchangeStopSubmitted(Aggregate.Event):
        client_order_id: str
        stop_price: Decimal
        limit_price: Decimal
        quantity: Decimal
        replaces: str | None

        def apply(self, aggregate: ExchangeStop) -> None:
            aggregate.orders_sent += 1
            aggregate.exchange_stop_replaces = self.replaces
            aggregate.exchange_stop_id = self.client_order_id
            aggregate.exchange_stop_price = self.stop_price
            aggregate.exchange_stop_limit = self.limit_price
            aggregate.exchange_stop_quantity = self.quantity
            aggregate.exchange_stop_state = StopState.SENDING
            aggregate.exchange_stop_note = None

    class ExchangeStopResting(Aggregate.Event):
        client_order_id: str
        exchange_order_id: str

        def apply(self, aggregate: ExchangeStop) -> None:
            aggregate.exchange_stop_state = StopState.RESTING
            aggregate.exchange_stop_replaces = None
            aggregate.exchange_stop_moved_at = self.timestamp

    class _ExchangeStopEnded(Aggregate.Event):
        """The order is no longer working, for the `reason` noted; `ended` names the state."""

        ended: ClassVar[StopState]
        client_order_id: str
        reason: str

        def apply(self, aggregate: ExchangeStop) -> None:
            aggregate.exchange_stop_state = self.ended
            aggregate.exchange_stop_replaces = None
            aggregate.exchange_stop_note = self.reason

    class ExchangeStopRefused(_ExchangeStopEnded):
        ended = StopState.REFUSED

    class ExchangeStopCancelled(_ExchangeStopEnded):
        ended = StopState.CANCELLED

    class ExchangeStopFilled(Aggregate.Event):
        client_order_id: str

        def apply(self, aggregate: ExchangeStop) -> None:
            aggregate.exchange_stop_state = StopState.FILLED
            aggregate.exchange_stop_replaces = None

    # --- commands (the aggregate's own state machine guards them) ---

    @property
    def exchange_stop_working(self) -> bool:
        """An insurance order is (or may be) working at the exchange."""
        return self.exchange_stop_state in (StopState.SENDING, StopState.RESTING)

    @property
    def protected_at_exchange(self) -> bool:
        return self.exchange_stop_state is StopState.RESTING

    def submit_exchange_stop(
        self, stop_price: Decimal, limit_price: Decimal, quantity: Decimal, now: datetime
    ) -> str:
        """Record a new insurance order (replacing the resting one, if any) before it is sent."""
        self._require_open_for_stop()
        if self.exchange_stop_state is StopState.SENDING:
            raise IllegalTransition("An insurance stop is already being sent")
        replaces = self.exchange_stop_id if self.protected_at_exchange else None
        seq = self.orders_sent + 1
        order_id = client_order_id(self.id, seq)  # type: ignore[attr-defined]
        self.trigger_event(  # type: ignore[attr-defined]
            self.ExchangeStopSubmitted,
            timestamp=now,
            client_order_id=order_id,
            stop_price=stop_price,
            limit_price=limit_price,
            quantity=quantity,
            replaces=replaces,
        )
        return order_id

    def record_exchange_stop_resting(
        self, order_id: str, exchange_order_id: str, now: datetime
    ) -> None:
        self._require_stop(order_id, StopState.SENDING)
        self.trigger_event(  # type: ignore[attr-defined]
            self.ExchangeStopResting,
            timestamp=now,
            client_order_id=order_id,
            exchange_order_id=exchange_order_id,
        )

    def record_exchange_stop_refused(self, order_id: str, reason: str, now: datetime) -> None:
        self._require_stop(order_id, StopState.SENDING)
        self.trigger_event(  # type: ignore[attr-defined]
            self.ExchangeStopRefused, timestamp=now, client_order_id=order_id, reason=reason
        )

    def record_exchange_stop_cancelled(self, order_id: str, reason: str, now: datetime) -> None:
        self._require_stop(order_id, StopState.SENDING, StopState.RESTING)
        self.trigger_event(  # type: ignore[attr-defined]
            self.ExchangeStopCancelled, timestamp=now, client_order_id=order_id, reason=reason
        )

    def exchange_stop_lags(self, interval: timedelta, now: datetime) -> bool:
        """The resting order is looser than the position's stop and may be moved now."""
        if not self.protected_at_exchange or self.exchange_stop_price is None:
            return False
        stop: Decimal | None = self.stop_price  # type: ignore[attr-defined]
        if stop is None:
            return False
        side: Side = self.side  # type: ignore[attr-defined]
        if (stop - self.exchange_stop_price) * side.sign <= 0:
            return False
        moved = self.exchange_stop_moved_at
        return moved is None or now - moved >= interval

    def _require_open_for_stop(self) -> None:
        status = getattr(self, "status", None)
        if status is None or status.value != "open":
            raise IllegalTransition("Only an open position rests a stop at the exchange")

    def _require_stop(self, order_id: str, *states: StopState) -> None:
        if self.exchange_stop_id != order_id or self.exchange_stop_state not in states:
            raise IllegalTransition(f"No insurance stop {order_id} is {states[0].value}")


class _Replayed(ExchangeStop):
    orders_sent = 0


_STOP_EVENTS = (
    ExchangeStop.ExchangeStopSubmitted,
    ExchangeStop.ExchangeStopResting,
    ExchangeStop.ExchangeStopRefused,
    ExchangeStop.ExchangeStopCancelled,
    ExchangeStop.ExchangeStopFilled,
)


class ExchangeStopSummary(TypedDict):
    protected: bool
    state: str
    client_order_id: str | None
    stop_price: Decimal | None
    limit_price: Decimal | None
    quantity: Decimal
    note: str | None


def exchange_stop_summary(events: Iterable[DomainEventProtocol[UUID]]) -> ExchangeStopSummary:
    """What a position's log says of its insurance stop, for a read (no aggregate loaded)."""
    state = _Replayed()
    for event in events:
        if isinstance(event, _STOP_EVENTS):
            event.apply(state)
    return {
        "protected": state.protected_at_exchange,
        "state": state.exchange_stop_state.value,
        "client_order_id": state.exchange_stop_id,
        "stop_price": state.exchange_stop_price,
        "limit_price": state.exchange_stop_limit,
        "quantity": state.exchange_stop_quantity,
        "note": state.exchange_stop_note,
    }
