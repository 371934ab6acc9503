"""Settling an order whose outcome was not known when it was sent."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from domain.ledger.orders import Leg, Orders
from domain.position import Position, Status

# How long an order may be in flight before reconciliation treats its sender as gone.
RECONCILE_GRACE = timedelta(seconds=30)


class Reconciliation(Orders):
    def reconcile(self, position_id: UUID, grace: timedelta = RECONCILE_GRACE) -> Position | None:
        """Settle an order whose outcome is unknown by asking the exchange for its client id.

        Found: record the fill. Not found: an entry is given up (the moment has passed);
        an exit is sent again with the SAME client order id, so it can never fill twice.
        """
        position = self.store.load(position_id, Position)
        if position is None or position.order_in_flight is None:
            return position
        if self.clock.now() - position.modified_on < grace:
            return position  # its sender may still be waiting for the answer
        order_id = position.order_in_flight
        account = self.trading_account(position.client_id)
        found = self.exchange.find_order(account, position.symbol, order_id)
        leg = Leg.ENTRY if position.status is Status.ENTERING else Leg.EXIT
        if found is not None:
            return self._settle(leg, position.client_id, position.id, order_id, found)
        if leg is Leg.ENTRY:
            return self._failed(
                leg,
                position.client_id,
                position.id,
                order_id,
                "Entry order never reached the exchange",
            )
        return self._send(leg, account, position, order_id)
