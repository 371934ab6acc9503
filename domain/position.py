"""Position: PLAN → VALIDATE → EXECUTE, fills, stop moves and exits, as one state machine.

The exits (`domain.position_exits`) and the insurance stop (`domain.exchange_stop`) are mixed
in; their events are redefined here, so every event is stored as `domain.position:Position.*`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import IllegalTransition, InvalidInput, Violation
from domain.exchange_stop import ExchangeStop
from domain.identity import client_order_id, position_of_order
from domain.market import Side, SymbolRules
from domain.pnl import fees_in_quote
from domain.position_exits import ExitFill, ExitReason, PositionExits, decimals
from domain.position_status import Status

__all__ = ["ExitReason", "Position", "Status"]


class Position(PositionExits, ExchangeStop, LedgerAggregate):
    class Planned(Aggregate.Created):
        client_id: UUID
        symbol: str
        base_asset: str
        quote_asset: str
        side: Side
        entry_price: Decimal
        stop_price: Decimal | None
        target_price: Decimal | None
        quantity: Decimal
        risk_amount: Decimal
        capital_base: Decimal
        margin: bool
        leverage: Decimal
        lot_step: Decimal
        min_quantity: Decimal

    @event(Planned)
    def __init__(
        self,
        client_id: UUID,
        symbol: str,
        base_asset: str,
        quote_asset: str,
        side: Side,
        entry_price: Decimal,
        stop_price: Decimal | None,
        target_price: Decimal | None,
        quantity: Decimal,
        risk_amount: Decimal,
        capital_base: Decimal,
        margin: bool,
        leverage: Decimal,
        lot_step: Decimal,
        min_quantity: Decimal,
    ) -> None:
        self.client_id = client_id
        self.symbol = symbol
        self.base_asset = base_asset
        self.quote_asset = quote_asset
        self.side = side
        self.entry_price = entry_price
        self.initial_stop = stop_price
        self.stop_price = stop_price
        self.target_price = target_price
        self.quantity = quantity
        self.risk_amount = risk_amount
        self.capital_base = capital_base
        self.margin = margin
        self.leverage = leverage
        self.lot_step = lot_step
        self.min_quantity = min_quantity
        self.dust_quantity = Decimal(0)
        self.status = Status.PLANNED
        self.violations: list[dict[str, str]] = []
        self.orders_sent = 0
        self.entry_order_id: str | None = None
        self.filled_quantity = Decimal(0)
        self.open_quantity = Decimal(0)
        self.average_entry_price: Decimal | None = None
        self.entry_fees: dict[str, Decimal] = {}
        self.entry_fees_quote = Decimal(0)
        self.opened_at: datetime | None = None
        self.exit_reason: ExitReason | None = None
        self.trigger_price: Decimal | None = None
        self.exit_order_id: str | None = None
        # When the in-flight order's id was first recorded, and which attempt of it is out.
        self.order_recorded_at: datetime | None = None
        self.order_attempt = 1
        self.exit_quantity = Decimal(0)
        self.exit_order_quantity = Decimal(0)  # more than exit_quantity when it repays a loan
        self.exit_interest = Decimal(0)  # loan interest the exit order repays (borrowed asset)
        self.realised_pnl = Decimal(0)
        self.exit_fees_quote = Decimal(0)
        self.exits: list[ExitFill] = []
        self.closed_at: datetime | None = None
        self.note: str | None = None

    @classmethod
    def plan(
        cls,
        position_id: UUID,
        client_id: UUID,
        rules: SymbolRules,
        side: Side,
        entry_price: Decimal,
        stop_price: Decimal | None,
        target_price: Decimal | None,
        quantity: Decimal,
        capital_base: Decimal,
        now: datetime,
        margin: bool = False,
        leverage: Decimal = Decimal(1),
    ) -> Position:
        """Record the intention. Invalid *plans* are recorded and rejected by VALIDATE;
        only values that cannot describe a trade at all are refused here."""
        for name, value in (("entry_price", entry_price), ("quantity", quantity)):
            if not value.is_finite() or value < 0:
                raise InvalidInput(name, "must be a finite, non-negative number")
        if entry_price == 0:
            raise InvalidInput("entry_price", "must be greater than zero")
        for name, price in (("stop_price", stop_price), ("target_price", target_price)):
            if price is not None and (not price.is_finite() or price <= 0):
                raise InvalidInput(name, "must be a finite number greater than zero")
        if not leverage.is_finite() or not 1 <= leverage <= 10:
            raise InvalidInput("leverage", "must be between 1 and 10")
        risk = quantity * abs(entry_price - stop_price) if stop_price is not None else Decimal(0)
        return cls._create(
            cls.Planned,
            id=position_id,
            timestamp=now,
            client_id=client_id,
            symbol=rules.symbol,
            base_asset=rules.base_asset,
            quote_asset=rules.quote_asset,
            side=side,
            entry_price=entry_price,
            stop_price=stop_price,
            target_price=target_price,
            quantity=quantity,
            risk_amount=risk,
            capital_base=capital_base,
            margin=margin,
            leverage=leverage,
            lot_step=rules.step_size,
            min_quantity=rules.min_qty,
        )

    def _require(self, *allowed: Status, action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"Cannot {action} a position that is {self.status.value} "
                f"(allowed from: {', '.join(s.value for s in allowed)})"
            )

    # --- VALIDATE ---

    class Validated(Aggregate.Event):
        risk_amount: Decimal

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.VALIDATED

    class Rejected(Aggregate.Event):
        violations: list[dict[str, str]]

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.REJECTED
            aggregate.violations = list(self.violations)

    def validate(self, violations: Sequence[Violation], now: datetime) -> None:
        self._require(Status.PLANNED, action="validate")
        if violations:
            self.trigger_event(
                self.Rejected,
                timestamp=now,
                violations=[{"rule": v.rule, "reason": v.reason} for v in violations],
            )
        else:
            self.trigger_event(self.Validated, timestamp=now, risk_amount=self.risk_amount)

    # --- EXECUTE: entry ---

    class EntrySubmitted(Aggregate.Event):
        client_order_id: str

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.ENTERING
            aggregate.entry_order_id = self.client_order_id
            aggregate.orders_sent += 1
            aggregate.order_recorded_at = self.timestamp
            aggregate.order_attempt = 1

    class EntryFilled(Aggregate.Event):
        client_order_id: str
        exchange_order_id: str
        price: Decimal
        quantity: Decimal
        fees: dict[str, Decimal]
        fees_quote: Decimal
        held_quantity: Decimal

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.OPEN
            aggregate.average_entry_price = self.price
            aggregate.filled_quantity = self.quantity
            aggregate.open_quantity = self.held_quantity
            aggregate.entry_fees = dict(self.fees)
            aggregate.entry_fees_quote = self.fees_quote
            aggregate.opened_at = self.timestamp

    class EntryFailed(Aggregate.Event):
        client_order_id: str
        reason: str

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.CANCELLED
            aggregate.note = self.reason

    def submit_entry(self, now: datetime) -> str:
        """Record the entry order's id BEFORE it is sent; returns that id."""
        self._require(Status.VALIDATED, action="execute")
        order_id = client_order_id(self.id, self.orders_sent + 1)
        self.trigger_event(self.EntrySubmitted, timestamp=now, client_order_id=order_id)
        return order_id

    def record_entry_fill(
        self,
        order_id: str,
        exchange_order_id: str,
        price: Decimal,
        quantity: Decimal,
        fees: Mapping[str, Decimal],
        now: datetime,
        fee_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        if self.status is not Status.ENTERING or order_id != self.entry_order_id:
            raise IllegalTransition(f"No entry order {order_id} is awaiting a fill")
        if quantity <= 0 or price <= 0:
            raise InvalidInput("fill", "an entry fill needs a positive price and quantity")
        fees = decimals(fees)
        fee_quote = fees_in_quote(fees, self.base_asset, self.quote_asset, price, fee_prices)
        # A fee taken in the base asset of a buy reduces what is held.
        held = quantity
        if self.side is Side.LONG:
            held -= fees.get(self.base_asset, Decimal(0))
        self.trigger_event(
            self.EntryFilled,
            timestamp=now,
            client_order_id=order_id,
            exchange_order_id=exchange_order_id,
            price=price,
            quantity=quantity,
            fees=fees,
            fees_quote=fee_quote,
            held_quantity=held,
        )

    def record_entry_failure(self, order_id: str, reason: str, now: datetime) -> None:
        if self.status is not Status.ENTERING or order_id != self.entry_order_id:
            raise IllegalTransition(f"No entry order {order_id} is in flight")
        self.trigger_event(self.EntryFailed, timestamp=now, client_order_id=order_id, reason=reason)

    # --- the stop ---

    class StopAdjusted(Aggregate.Event):
        from_stop: Decimal
        to_stop: Decimal
        span_step: int

        def apply(self, aggregate: Position) -> None:
            aggregate.stop_price = self.to_stop

    def adjust_stop(self, new_stop: Decimal, span_step: int, now: datetime) -> bool:
        """Tighten the stop; returns False (and records nothing) when it would not move."""
        self._require(Status.OPEN, action="adjust the stop of")
        current = self.stop_price
        assert current is not None  # an open position always passed the stop rule
        tighter = new_stop > current if self.side is Side.LONG else new_stop < current
        if not tighter:
            return False
        self.trigger_event(
            self.StopAdjusted,
            timestamp=now,
            from_stop=current,
            to_stop=new_stop,
            span_step=span_step,
        )
        return True

    # --- the insurance stop's fill is an exit ---

    def record_exchange_stop_fill(
        self,
        order_id: str,
        exchange_order_id: str,
        price: Decimal,
        quantity: Decimal,
        fees: Mapping[str, Decimal],
        now: datetime,
        fee_prices: Mapping[str, Decimal] | None = None,
        filled_id: str | None = None,
    ) -> None:
        """The insurance stop filled at the exchange: that fill IS the exit, recorded once
        (its client order id becomes the exit order's), with its own price and fees.
        `filled_id`: the order that filled when it was the one a replacement cancels."""
        if self.exchange_stop_id != order_id or not self.exchange_stop_working:
            raise IllegalTransition(f"No insurance stop {order_id} is working")
        self._require(Status.OPEN, action="record an exchange stop fill of")
        assert self.exchange_stop_price is not None
        closes = min(quantity, self.open_quantity)  # a SHORT's buy-back buys a little more
        self.trigger_event(self.ExchangeStopFilled, timestamp=now, client_order_id=order_id)
        self.trigger_event(
            self.ExitTriggered,
            timestamp=now,
            reason=ExitReason.STOP_LOSS_AT_EXCHANGE,
            trigger_price=self.exchange_stop_price,
            quantity=closes,
        )
        exit_id = filled_id or order_id
        self.trigger_event(
            self.ExitSubmitted,
            timestamp=now,
            client_order_id=exit_id,
            quantity=closes,
            order_quantity=quantity,
        )
        self.record_exit_fill(exit_id, exchange_order_id, price, quantity, fees, now, fee_prices)

    # --- before any order ---

    class Cancelled(Aggregate.Event):
        reason: str

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.CANCELLED
            aggregate.note = self.reason

    def cancel(self, reason: str, now: datetime) -> None:
        self._require(Status.PLANNED, Status.VALIDATED, Status.REJECTED, action="cancel")
        self.trigger_event(self.Cancelled, timestamp=now, reason=reason)

    # --- derived facts ---

    @property
    def order_in_flight(self) -> str | None:
        if self.status is Status.ENTERING:
            return self.entry_order_id
        return self.exit_order_id

    def _in_flight_sequence(self) -> int:
        found = position_of_order(self.order_in_flight or "")
        if found is None:
            raise IllegalTransition("The order in flight has no id of this position")
        return found[1]

    @property
    def order_attempt_ids(self) -> list[str]:
        """Every id the order in flight has been sent under, first attempt first."""
        if self.order_in_flight is None:
            return []
        sequence = self._in_flight_sequence()
        return [client_order_id(self.id, sequence, n) for n in range(1, self.order_attempt + 1)]

    @property
    def open_risk(self) -> Decimal:
        """What the rest of the position loses if the current stop is hit (≥ 0)."""
        if self.stop_price is None or self.average_entry_price is None:
            return self.risk_amount
        loss = (self.average_entry_price - self.stop_price) * self.side.sign * self.open_quantity
        return max(Decimal(0), loss)
