"""Settling an order whose outcome was not known when it was sent. A look-up that finds
nothing is no proof: Binance's look-ups can lag an execution, and an id is free again once
its order filled, so the order is sent again (under a new id) only on proof it never ran."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from domain.ledger.orders import Leg, Orders, order_for
from domain.ledger.unit_of_work import Work
from domain.market import OrderSide
from domain.ports import MarginEffect, OrderStatus, TradingAccount
from domain.position import Position, Status

# How long an order may be in flight before reconciliation treats its sender as gone.
RECONCILE_GRACE = timedelta(seconds=30)
# How long look-ups keep missing an order, from when its id was recorded, before the order
# and trade lists may prove it never executed (Binance documents no bound on the lag).
EVIDENCE_WINDOW = timedelta(minutes=2)
# The exchange stamps an order at most a recvWindow (≤ 60 s) from the time we sent it.
CLOCK_SLACK = timedelta(seconds=60)


class Reconciliation(Orders):
    def reconcile(
        self,
        position_id: UUID,
        grace: timedelta = RECONCILE_GRACE,
        window: timedelta = EVIDENCE_WINDOW,
    ) -> Position | None:
        """Settle an order whose outcome is unknown by asking the exchange for its client id.

        Found: record the fill. Not found: nothing is decided until `window` after the id was
        recorded, and then only on proof (order list, trade list, balance) that the order
        never executed: an entry is given up, an exit is sent again under a new id. An
        exchange error propagates: the caller tries again later.
        """
        position = self.store.load(position_id, Position)
        if position is None or position.order_in_flight is None:
            return position
        # The window runs from the current attempt's record, the evidence from the first's.
        last_sent = position.modified_on
        recorded = position.order_recorded_at or last_sent
        now = self.clock.now()
        if now - last_sent < grace:
            return position  # its sender may still be waiting for the answer
        order_id = position.order_in_flight
        account = self.trading_account(position.client_id)
        leg = Leg.ENTRY if position.status is Status.ENTERING else Leg.EXIT
        for attempt_id in reversed(position.order_attempt_ids):
            found = self.exchange.find_order(account, position.symbol, attempt_id)
            if found is not None and (attempt_id == order_id or found.executed_quantity > 0):
                return self._settle(leg, position.client_id, position.id, order_id, found)
        if now - last_sent < window or not self._never_executed(account, position, leg, recorded):
            return position  # look-ups may still lag: ask again later, never guess
        if leg is Leg.ENTRY:
            return self._failed(
                leg,
                position.client_id,
                position.id,
                order_id,
                "Entry order never reached the exchange",
            )
        resent = self.work.run(self._resubmit, position.client_id, position.id, order_id)
        if resent.exit_order_id is None or resent.exit_order_id == order_id:
            return resent  # settled meanwhile by another process
        return self._send(leg, account, resent, resent.exit_order_id)

    def _resubmit(self, work: Work, client_id: UUID, position_id: UUID, order_id: str) -> Position:
        """Record the exit's next attempt id before it is sent (unless settled meanwhile)."""
        pos = work.position(client_id, position_id)
        if pos.exit_order_id != order_id:
            return pos
        pos.resubmit_exit(self.clock.now())
        work.save(pos)
        return pos

    def _never_executed(
        self, account: TradingAccount, position: Position, leg: Leg, recorded: datetime
    ) -> bool:
        """True only when the account's orders, trades and balance all show that no attempt
        of the order in flight executed."""
        request = order_for(leg, position, position.order_in_flight or "")
        since = recorded - CLOCK_SLACK
        attempts = set(position.order_attempt_ids)
        orders = self.exchange.orders_since(account, position.symbol, since, margin=position.margin)
        others: set[str] = set()
        for order in orders:
            if order.client_order_id not in attempts:
                others.add(order.exchange_order_id)
            elif order.status is not OrderStatus.REJECTED or order.executed_quantity > 0:
                return False  # listed as executed or still working: the look-up will tell
        trades = self.exchange.trades_since(account, position.symbol, since, margin=position.margin)
        if any(t.side is request.side and t.exchange_order_id not in others for t in trades):
            return False  # an execution no other order explains may be this one's
        if request.margin is MarginEffect.MARGIN_BUY:
            return True  # it borrows what it spends: the balance cannot tell
        return self._still_holds(account, position, leg, request.side)

    def _still_holds(
        self, account: TradingAccount, position: Position, leg: Leg, side: OrderSide
    ) -> bool:
        """The account still holds what the order would have spent."""
        if side is OrderSide.SELL:
            asset, needed = position.base_asset, position.exit_order_quantity
            if leg is Leg.ENTRY:
                needed = position.quantity
        else:
            asset = position.quote_asset
            quantity = position.quantity if leg is Leg.ENTRY else position.exit_order_quantity
            price = position.entry_price if leg is Leg.ENTRY else position.trigger_price
            needed = quantity * (price or position.entry_price)
        if position.margin:
            held = self.exchange.isolated_margin(account, position.symbol)[asset].free
        else:
            balance = self.exchange.balances(account).get(asset)
            held = balance.total if balance is not None else Decimal(0)
        return held >= needed
