"""Leaving a position: closing all or part of it, tightening its stop, cancelling it."""

from __future__ import annotations

from contextlib import suppress
from decimal import Decimal
from uuid import UUID

from domain.errors import DomainError, ExchangeError, TradingDisabled
from domain.exchange_stop import StopState
from domain.ledger.insurance import RELEASED, Insurance
from domain.ledger.orders import Leg
from domain.ledger.unit_of_work import Work
from domain.ports import MarginHolding, TradingAccount
from domain.position import ExitReason, Position, Status
from domain.sale import check_partial_exit


class Exits(Insurance):
    def close_position(
        self,
        client_id: UUID,
        position_id: UUID,
        reason: ExitReason = ExitReason.MANUAL,
        trigger_price: Decimal | None = None,
        quantity: Decimal | None = None,
        account: TradingAccount | None = None,
    ) -> Position:
        """Exit all (or part) of an open position. Protective exits ignore a paused policy;
        a part that would leave less than the stop can exit is refused (close it all).

        The insurance stop is cancelled first; if the exchange filled it meanwhile, its fill
        is the exit and no order is sent. A partial exit re-protects what is left.
        `account`: the tenant's, when the caller has just resolved it (`trading_account`).
        """
        if account is None:
            account = self.trading_account(client_id)
        elif account.client_id != client_id:
            raise ValueError("a tenant's account acts for that tenant's positions only")
        if reason is ExitReason.MANUAL and not self.config.trading_enabled:
            raise TradingDisabled()
        current = self.position(client_id, position_id, cached=True)  # its symbol and side
        released: str | None = None  # the insurance stop cancelled, recorded with the exit
        if current.status is Status.OPEN and current.exchange_stop_working:
            current, released = self._cancel_stop(account, current)
            if current.status is not Status.OPEN:
                if current.exchange_stop_state is StopState.FILLED:
                    return current  # the insurance stop's fill was the exit
                current.trigger_exit(reason, Decimal(1), self.clock.now())  # says why not
        try:
            price = trigger_price or self.exchange.price(current.symbol)
            if quantity is not None:
                rules = self.exchange.symbol_rules(current.symbol)
                check_partial_exit(
                    current.open_quantity, quantity, current.stop_price, rules, price
                )
            loan = self._loan(account, current)
            position, order_id = self.work.cached_first().run(
                self._trigger, client_id, position_id, reason, price, quantity, loan, released
            )
        except Exception:
            if released is not None:  # no exit after all: the cancel is recorded on its own
                with suppress(Exception):  # if not, checking the stop later finds it cancelled
                    self.work.run(self._cancelled, client_id, position_id, released, RELEASED)
            raise
        exited = self._send(Leg.EXIT, account, position, order_id, price)
        if exited.status is Status.OPEN and self._needs_stop(exited):
            try:
                return self._rest(account, exited)
            except DomainError:
                return self.position(client_id, position_id)
        return exited

    def _trigger(
        self,
        work: Work,
        client_id: UUID,
        position_id: UUID,
        reason: ExitReason,
        price: Decimal,
        quantity: Decimal | None,
        loan: MarginHolding | None,
        released: str | None = None,
    ) -> tuple[Position, str]:
        """One write: the insurance stop's cancellation (if `released`), the exit's trigger
        and its client order id, recorded before the order is sent."""
        pos = work.position(client_id, position_id)
        if released is not None:
            self._record_cancelled(pos, released, RELEASED)
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
        can no longer lose (all of it once the stop is past the entry). The insurance stop
        follows, at most once per interval (a failure there leaves the move recorded)."""
        moved: bool = self.work.run(self._adjust_stop, client_id, position_id, new_stop, span)
        if moved and self.config.exchange_stops:
            with suppress(DomainError):  # still lagging: the worker follows it again
                self.follow_exchange_stop(client_id, position_id)
        return moved

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
