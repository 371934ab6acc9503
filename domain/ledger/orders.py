"""Sending an order and settling its outcome, the same way for an entry and an exit: its
client order id is recorded before it is sent, and an outcome that is not definite is looked
up by that id, never re-sent blindly."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from uuid import UUID

from domain.drawdown import loss_percent, month_of
from domain.errors import (
    DomainError,
    ExchangeUnavailable,
    InsufficientBalance,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)
from domain.ledger.base import LedgerBase
from domain.ledger.unit_of_work import Work
from domain.policy import Policy
from domain.ports import MarginEffect, OrderRequest, OrderResult, OrderStatus, TradingAccount
from domain.position import Position, Status


class Leg(Enum):
    ENTRY = "entry"
    EXIT = "exit"


def order_for(
    leg: Leg, position: Position, order_id: str, reference_price: Decimal | None = None
) -> OrderRequest:
    """A margin entry borrows what it needs; a margin exit repays the loan from its proceeds.
    `reference_price`: the price just seen, if any (see `OrderRequest`)."""
    if leg is Leg.ENTRY:
        return OrderRequest(
            symbol=position.symbol,
            side=position.side.entry_order_side,
            client_order_id=order_id,
            quantity=position.quantity,
            margin=MarginEffect.MARGIN_BUY if position.margin else None,
            leverage=position.leverage if position.margin else None,
            reference_price=reference_price,
        )
    return OrderRequest(
        symbol=position.symbol,
        side=position.side.exit_order_side,
        client_order_id=order_id,
        quantity=position.exit_order_quantity,
        margin=MarginEffect.AUTO_REPAY if position.margin else None,
        is_exit=True,
        reference_price=reference_price,
    )


class Orders(LedgerBase):
    def _send(
        self,
        leg: Leg,
        account: TradingAccount,
        position: Position,
        order_id: str,
        reference_price: Decimal | None = None,
    ) -> Position:
        """Place the order; a refusal is recorded, an unknown outcome asked about once. A rate
        limit is a refusal too: the exchange turned the request away unhandled."""
        request = order_for(leg, position, order_id, reference_price)
        try:
            result = self.exchange.place_order(account, request)
        except (OrderRejected, InsufficientBalance, RateLimited) as refused:
            self._failed(leg, position.client_id, position.id, order_id, refused.message)
            raise
        except OrderOutcomeUnknown:
            # Ask once straight away; if still unknown, reconciliation settles it later.
            found = self._find(account, position.symbol, order_id)
            if found is None:
                raise
            result = found
        return self._settle(leg, position.client_id, position.id, order_id, result, position)

    def _find(self, account: TradingAccount, symbol: str, order_id: str) -> OrderResult | None:
        """One immediate look-up after an unknown outcome; None when it cannot tell yet."""
        try:
            return self.exchange.find_order(account, symbol, order_id)
        except (OrderOutcomeUnknown, ExchangeUnavailable):
            return None

    def _settle(
        self,
        leg: Leg,
        client_id: UUID,
        position_id: UUID,
        order_id: str,
        result: OrderResult,
        loaded: Position | None = None,
    ) -> Position:
        """Record a definite outcome; the position already loaded serves the first attempt."""
        if result.status is OrderStatus.PENDING:
            return self.position(client_id, position_id)
        if result.executed_quantity <= 0:
            return self._failed(leg, client_id, position_id, order_id, "Order was not executed")
        position = loaded or self.position(client_id, position_id)
        fee_prices = self._fee_prices(position, result)
        work = self.work.holding(position)
        if leg is Leg.ENTRY:
            entered = work.run(
                self._entry_filled, client_id, position_id, order_id, result, fee_prices
            )
            return self._entry_settled(entered)
        return work.cached_first().run(
            self._exit_filled, client_id, position_id, order_id, result, fee_prices
        )

    def _entry_settled(self, position: Position) -> Position:
        """What follows an entry's fill (the insurance stop, see `Insurance`)."""
        return position

    def _fee_prices(self, position: Position, result: OrderResult) -> dict[str, Decimal]:
        """Quote prices of fee assets other than the pair's own (e.g. BNB), when known."""
        prices: dict[str, Decimal] = {}
        for asset in result.fees:
            if asset in (position.base_asset, position.quote_asset):
                continue
            try:
                prices[asset] = self.exchange.price(f"{asset}{position.quote_asset}")
            except DomainError:
                continue  # kept unvalued in the event's raw fees
        return prices

    def _entry_filled(
        self,
        work: Work,
        client_id: UUID,
        position_id: UUID,
        order_id: str,
        result: OrderResult,
        fee_prices: dict[str, Decimal],
    ) -> Position:
        pos = work.position(client_id, position_id)
        if pos.status is not Status.ENTERING:
            return pos  # already settled by another process: idempotent
        pos.record_entry_fill(
            order_id,
            result.exchange_order_id,
            result.average_price,
            result.executed_quantity,
            result.fees,
            result.executed_at,
            fee_prices,
        )
        work.save(pos)
        return pos

    def _exit_filled(
        self,
        work: Work,
        client_id: UUID,
        position_id: UUID,
        order_id: str,
        result: OrderResult,
        fee_prices: dict[str, Decimal],
    ) -> Position:
        """The fill's P&L is realised in the month's policy, which may pause trading."""
        pos = work.position(client_id, position_id)
        if pos.exit_order_id != order_id:
            return pos  # already settled: idempotent (the position is this call's own)
        policy = work.policy(client_id)
        pos.record_exit_fill(
            order_id,
            result.exchange_order_id,
            result.average_price,
            result.executed_quantity,
            result.fees,
            result.executed_at,
            fee_prices,
        )
        self._realise(work, pos, result.executed_at, policy)
        return pos

    def _realise(
        self, work: Work, pos: Position, executed_at: datetime, policy: Policy | None = None
    ) -> None:
        """Save an exit fill with its P&L realised in the month's policy (which may pause)."""
        policy = policy or work.policy(pos.client_id)
        fill_pnl = pos.exits[-1]["pnl"]
        month = month_of(executed_at)
        still_open = pos.open_risk if pos.status is not Status.CLOSED else Decimal(0)
        now = self.clock.now()
        reason = pos.exit_reason.value if pos.exit_reason else None
        policy.realise(
            pos.id,
            month,
            fill_pnl,
            still_open,
            now,
            filled_at=executed_at,
            exit_reason=reason,
            closed=pos.status is Status.CLOSED,
        )
        policy.observe_drawdown(
            month,
            loss_percent(policy.capital_base(month), policy.realised_pnl(month), Decimal(0)),
            now,
        )
        work.save(pos, policy)

    def _failed(
        self, leg: Leg, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        """Record that the order did not execute (an entry's reserved risk comes back)."""
        failure = self._entry_failed if leg is Leg.ENTRY else self._exit_failed
        return self.work.run(failure, client_id, position_id, order_id, reason)

    def _entry_failed(
        self, work: Work, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        now = self.clock.now()
        pos = work.position(client_id, position_id)
        if pos.status is not Status.ENTERING:
            return pos
        policy = work.policy(client_id)
        pos.record_entry_failure(order_id, reason, now)
        policy.release_risk(pos.id, now)
        work.save(pos, policy)
        return pos

    def _exit_failed(
        self, work: Work, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        pos = work.position(client_id, position_id)
        if pos.exit_order_id != order_id:
            return pos
        pos.record_exit_failure(order_id, reason, self.clock.now())
        work.save(pos)
        return pos
