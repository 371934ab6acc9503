"""A position's exits: triggered by a rule or by hand, submitted with the order id recorded
first, filled in parts (P&L net of fees and of a margin loan's interest) until it closes.

Mixed into `Position`, which redefines these events as its own: they are stored under
`domain.position:Position.<Event>` like every other event of the position.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, TypedDict
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from domain.errors import IllegalTransition, InvalidInput
from domain.identity import client_order_id
from domain.market import ASSET_PRECISION, Side, floor_to_step
from domain.pnl import fees_in_quote, realised_pnl
from domain.ports import MarginHolding
from domain.position_status import Status
from domain.repayment import buy_back

if TYPE_CHECKING:
    from domain.position import Position


class ExitReason(Enum):
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    MANUAL = "MANUAL"
    STOP_LOSS_AT_EXCHANGE = "STOP_LOSS_AT_EXCHANGE"  # the insurance stop filled


class ExitFill(TypedDict):
    """One exit fill as the position keeps it."""

    client_order_id: str
    price: Decimal
    quantity: Decimal
    pnl: Decimal
    at: datetime


def decimals(fees: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {asset: Decimal(amount) for asset, amount in fees.items()}


class PositionExits:
    """The exit half of `Position`'s state machine (OPEN → CLOSING → OPEN or CLOSED)."""

    if TYPE_CHECKING:
        # What the exits read of the rest of the position.
        id: UUID
        status: Status
        side: Side
        base_asset: str
        quote_asset: str
        margin: bool
        lot_step: Decimal
        min_quantity: Decimal
        orders_sent: int
        order_attempt: int
        filled_quantity: Decimal
        open_quantity: Decimal
        average_entry_price: Decimal | None
        entry_fees_quote: Decimal
        exit_quantity: Decimal
        exit_order_id: str | None
        exit_order_quantity: Decimal
        exit_interest: Decimal
        realised_pnl: Decimal
        exit_fees_quote: Decimal
        exits: list[ExitFill]

        def trigger_event(
            self, event_class: type[CanMutateAggregate[UUID]], **kwargs: object
        ) -> None: ...

        def _require(self, *allowed: Status, action: str) -> None: ...

        def _in_flight_sequence(self) -> int: ...

    # --- exits ---

    class ExitTriggered(Aggregate.Event):
        reason: ExitReason
        trigger_price: Decimal
        quantity: Decimal

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.CLOSING
            aggregate.exit_reason = self.reason
            aggregate.trigger_price = self.trigger_price
            aggregate.exit_quantity = self.quantity

    class ExitSubmitted(Aggregate.Event):
        client_order_id: str
        quantity: Decimal
        # A margin SHORT's buy-back asks for more than it closes, to repay the fee and interest.
        order_quantity: Decimal | None = None
        interest: Decimal = Decimal(0)  # a margin exit repays it first, in `loan_asset`

        def apply(self, aggregate: Position) -> None:
            aggregate.exit_order_id = self.client_order_id
            aggregate.exit_order_quantity = self.order_quantity or self.quantity
            aggregate.exit_interest = self.interest
            aggregate.orders_sent += 1
            aggregate.order_recorded_at = self.timestamp
            aggregate.order_attempt = 1

    class ExitResubmitted(Aggregate.Event):
        """The exit is sent again, under its next attempt's id: the previous attempt was
        shown never to have executed (see `domain.ledger.reconciliation`)."""

        client_order_id: str
        attempt: int

        def apply(self, aggregate: Position) -> None:
            aggregate.exit_order_id = self.client_order_id
            aggregate.order_attempt = self.attempt

    class ExitFilled(Aggregate.Event):
        client_order_id: str
        exchange_order_id: str
        price: Decimal
        quantity: Decimal
        fees: dict[str, Decimal]
        fees_quote: Decimal
        realised_pnl: Decimal  # net of fees and of the loan interest repaid
        interest_quote: Decimal = Decimal(0)

        def apply(self, aggregate: Position) -> None:
            aggregate.open_quantity -= self.quantity
            aggregate.realised_pnl += self.realised_pnl
            aggregate.exit_fees_quote += self.fees_quote
            aggregate.exit_order_id = None
            aggregate.exits.append(
                {
                    "client_order_id": self.client_order_id,
                    "price": self.price,
                    "quantity": self.quantity,
                    "pnl": self.realised_pnl,
                    "at": self.timestamp,
                }
            )
            aggregate.status = Status.OPEN

    class ExitFailed(Aggregate.Event):
        client_order_id: str
        reason: str

        def apply(self, aggregate: Position) -> None:
            aggregate.exit_order_id = None
            aggregate.status = Status.OPEN
            aggregate.note = self.reason

    class Closed(Aggregate.Event):
        realised_pnl: Decimal
        fees_quote: Decimal
        dust_quantity: Decimal  # below the exchange's minimum lot: left in the account

        def apply(self, aggregate: Position) -> None:
            aggregate.status = Status.CLOSED
            aggregate.dust_quantity = self.dust_quantity
            aggregate.open_quantity = Decimal(0)
            aggregate.closed_at = self.timestamp

    def trigger_exit(
        self,
        reason: ExitReason,
        trigger_price: Decimal,
        now: datetime,
        quantity: Decimal | None = None,
    ) -> None:
        self._require(Status.OPEN, action="exit")
        wanted = self.open_quantity if quantity is None else quantity
        qty = floor_to_step(min(wanted, self.open_quantity), self.lot_step)
        if wanted <= 0 or wanted > self.open_quantity or qty < self.min_quantity:
            raise InvalidInput(
                "quantity",
                f"must be at least {self.min_quantity} and at most the open quantity "
                f"{self.sellable_quantity}",
            )
        self.trigger_event(
            self.ExitTriggered,
            timestamp=now,
            reason=reason,
            trigger_price=trigger_price,
            quantity=qty,
        )

    def submit_exit(self, now: datetime, loan: MarginHolding | None = None) -> str:
        """Record the exit order's id BEFORE it is sent; returns that id.

        A margin exit repays the interest of `loan` (the isolated account's debt in
        `loan_asset`) first; a SHORT's buy-back is sized to repay the loan after the fee,
        see `domain.repayment`.
        """
        if self.status is not Status.CLOSING or self.exit_order_id is not None:
            raise IllegalTransition("No exit is waiting to be submitted")
        order_id = client_order_id(self.id, self.orders_sent + 1)
        repays: dict[str, Decimal] = {}
        if self.margin and self.side is Side.SHORT:
            cover = buy_back(self.exit_quantity, loan, self.entry_fee_rate, self.lot_step)
            repays = {"order_quantity": cover.order_quantity, "interest": cover.interest}
        elif self.margin and loan is not None and loan.interest:
            repays = {"interest": loan.interest}
        self.trigger_event(
            self.ExitSubmitted,
            timestamp=now,
            client_order_id=order_id,
            quantity=self.exit_quantity,
            **repays,
        )
        return order_id

    def resubmit_exit(self, now: datetime) -> str:
        """Record the exit's next attempt id BEFORE it is sent again; returns that id."""
        if self.status is not Status.CLOSING or self.exit_order_id is None:
            raise IllegalTransition("No exit is in flight to be sent again")
        attempt = self.order_attempt + 1
        order_id = client_order_id(self.id, self._in_flight_sequence(), attempt)
        self.trigger_event(
            self.ExitResubmitted, timestamp=now, client_order_id=order_id, attempt=attempt
        )
        return order_id

    def record_exit_fill(
        self,
        order_id: str,
        exchange_order_id: str,
        price: Decimal,
        quantity: Decimal,
        fees: Mapping[str, Decimal],
        now: datetime,
        fee_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        if self.exit_order_id != order_id:
            raise IllegalTransition(f"No exit order {order_id} is awaiting a fill")
        if (
            quantity <= 0
            or price <= 0
            or quantity > max(self.open_quantity, self.exit_order_quantity)
        ):
            raise InvalidInput(
                "fill", "an exit fill needs a positive price and at most the quantity ordered"
            )
        assert self.average_entry_price is not None
        fees = decimals(fees)
        fee_quote = fees_in_quote(fees, self.base_asset, self.quote_asset, price, fee_prices)
        interest_quote = Decimal(0)
        if self.margin:
            # A SHORT's buy-back buys more than it closes (the rest pays the fee and the
            # interest); a partial fill closes, and repays, its share of both.
            filled = min(Decimal(1), quantity / self.exit_order_quantity)
            if self.side is Side.SHORT:
                quantity = min(
                    self.open_quantity, (self.exit_quantity * filled).quantize(ASSET_PRECISION)
                )
            interest = {self.loan_asset: self.exit_interest * filled}
            interest_quote = fees_in_quote(interest, self.base_asset, self.quote_asset, price)
        held = self.held_at_entry
        closing = self.open_quantity - quantity < self.min_quantity
        exited_before = held - self.open_quantity
        # The closing exit carries the rest of the entry fee, so the total is always charged.
        entry_share = self.entry_fees_quote * (
            (held - exited_before) / held if closing else quantity / held
        )
        pnl = (
            realised_pnl(
                self.side, self.average_entry_price, price, quantity, entry_share, fee_quote
            )
            - interest_quote
        )
        self.trigger_event(
            self.ExitFilled,
            timestamp=now,
            client_order_id=order_id,
            exchange_order_id=exchange_order_id,
            price=price,
            quantity=quantity,
            fees=fees,
            fees_quote=fee_quote,
            realised_pnl=pnl,
            interest_quote=interest_quote,
        )
        if self.open_quantity < self.min_quantity:
            self.trigger_event(
                self.Closed,
                timestamp=now,
                realised_pnl=self.realised_pnl,
                fees_quote=self.entry_fees_quote + self.exit_fees_quote,
                dust_quantity=self.open_quantity,
            )

    def record_exit_failure(self, order_id: str, reason: str, now: datetime) -> None:
        if self.exit_order_id != order_id:
            raise IllegalTransition(f"No exit order {order_id} is in flight")
        self.trigger_event(self.ExitFailed, timestamp=now, client_order_id=order_id, reason=reason)

    # --- derived facts of the exits ---

    @property
    def sellable_quantity(self) -> Decimal:
        return floor_to_step(self.open_quantity, self.lot_step)

    @property
    def loan_asset(self) -> str:
        """What a margin position borrows: the base asset it sells short, or the quote
        asset a LONG buys with."""
        return self.base_asset if self.side is Side.SHORT else self.quote_asset

    @property
    def entry_fee_rate(self) -> Decimal:
        """The fee rate the entry paid, valued in the quote asset: the exit's rate too."""
        if self.average_entry_price is None or not self.filled_quantity:
            return Decimal(0)
        return self.entry_fees_quote / (self.average_entry_price * self.filled_quantity)

    @property
    def held_at_entry(self) -> Decimal:
        return self.open_quantity + sum((e["quantity"] for e in self.exits), Decimal(0))
