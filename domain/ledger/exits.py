"""Leaving a position: closing all or part of it, tightening its stop, cancelling it."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.errors import ExchangeError, TradingDisabled
from domain.ledger.orders import Leg, Orders
from domain.ledger.unit_of_work import Work
from domain.ports import MarginHolding, TradingAccount
from domain.position import ExitReason, Position, Status
from domain.sale import check_partial_exit


class Exits(Orders):
    def close_position(
        self,
        client_id: UUID,
        position_id: UUID,
        reason: ExitReason = ExitReason.MANUAL,
        trigger_price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Position:
        """Exit all (or part) of an open position. Protective exits ignore a paused policy;
        a part that would leave less than the stop can exit is refused (close it all)."""
        account = self.trading_account(client_id)
        if reason is ExitReason.MANUAL and not self.config.trading_enabled:
            raise TradingDisabled()
        current = self.position(client_id, position_id, cached=True)  # its symbol and side
        price = trigger_price or self.exchange.price(current.symbol)
        if quantity is not None:
            rules = self.exchange.symbol_rules(current.symbol)
            check_partial_exit(current.open_quantity, quantity, current.stop_price, rules, price)
        loan = self._loan(account, current)
        position, order_id = self.work.cached_first().run(
            self._trigger, client_id, position_id, reason, price, quantity, loan
        )
        return self._send(Leg.EXIT, account, position, order_id)

    def _trigger(
        self,
        work: Work,
        client_id: UUID,
        position_id: UUID,
        reason: ExitReason,
        price: Decimal,
        quantity: Decimal | None,
        loan: MarginHolding | None,
    ) -> tuple[Position, str]:
        pos = work.position(client_id, position_id)
        pos.trigger_exit(reason, price, self.clock.now(), quantity)
        order_id = pos.submit_exit(self.clock.now(), loan)
        work.save(pos)
        return pos, order_id

    def _loan(self, account: TradingAccount, position: Position) -> MarginHolding | None:
        """What a margin position's isolated account owes in its loan asset, when it can tell.

        Without an answer the exit still goes out (a stop must not wait for a read); a
        SHORT's buy-back then covers the fee but not the interest.
        """
        if not position.margin:
            return None
        try:
            holdings = self.exchange.isolated_margin(account, position.symbol)
        except ExchangeError:
            return None
        return holdings.get(position.loan_asset)

    def adjust_stop(self, client_id: UUID, position_id: UUID, new_stop: Decimal, span: int) -> bool:
        """Tighten an open position's stop; the month's budget gets back what the position
        can no longer lose (all of it once the stop is past the entry)."""
        return self.work.run(self._adjust_stop, client_id, position_id, new_stop, span)

    def _adjust_stop(
        self, work: Work, client_id: UUID, position_id: UUID, new_stop: Decimal, span: int
    ) -> bool:
        pos = work.position(client_id, position_id)
        if pos.status is not Status.OPEN:
            return False
        now = self.clock.now()
        if not pos.adjust_stop(new_stop, span, now):
            return False
        policy = work.policy(client_id)
        if policy.lower_risk(pos.id, pos.open_risk, now):
            work.save(pos, policy)
        else:
            work.save(pos)
        return True

    def cancel_position(self, client_id: UUID, position_id: UUID, reason: str) -> Position:
        return self.work.run(self._cancel, client_id, position_id, reason)

    def _cancel(self, work: Work, client_id: UUID, position_id: UUID, reason: str) -> Position:
        now = self.clock.now()
        pos = work.position(client_id, position_id)
        policy = work.policy(client_id)
        pos.cancel(reason, now)
        policy.release_risk(pos.id, now)
        work.save(pos, policy)
        return pos
