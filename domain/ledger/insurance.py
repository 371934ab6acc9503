"""The insurance stop's use cases: rest it after an entry fills, follow the trailing stop,
cancel it before Robson's own exit, and record it as the exit when it filled at the exchange
(found by the worker, by reconciliation or at start-up) exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from domain.errors import (
    DomainError,
    ExchangeUnavailable,
    FilterFailure,
    IllegalTransition,
    InsufficientBalance,
    OrderOutcomeUnknown,
    OrderRejected,
)
from domain.exchange_stop import StopState
from domain.ledger.orders import Orders
from domain.ledger.unit_of_work import Work
from domain.market import Side
from domain.ports import (
    MarginEffect,
    OrderResult,
    OrderStatus,
    StopOrderRequest,
    TradingAccount,
)
from domain.position import Position, Status
from domain.repayment import buy_back

DISPLACED = "displaced by a position with more at risk (the exchange's stop-order limit)"
RELEASED = "cancelled before Robson's own exit"


class Insurance(Orders):
    # --- resting one ---

    def protect(self, client_id: UUID, position_id: UUID) -> Position:
        """Rest (or re-rest) the insurance stop of an open position that has none working."""
        position = self.position(client_id, position_id)
        if not self._needs_stop(position):
            return position
        account = self.trading_account(client_id)
        return self._rest(account, position)

    def _entry_settled(self, position: Position) -> Position:
        """An entry filled: protect it at the exchange; a failure never undoes the entry."""
        if not self._needs_stop(position):
            return position
        try:
            return self._rest(self.trading_account(position.client_id), position)
        except DomainError:
            return self.position(position.client_id, position.id)

    def _needs_stop(self, position: Position) -> bool:
        return (
            self.config.exchange_stops
            and position.status is Status.OPEN
            and position.stop_price is not None
            and not position.exchange_stop_working  # none, cancelled, refused, or filled in part
        )

    def _rest(self, account: TradingAccount, position: Position) -> Position:
        position, order_id = self.work.run(self._submit_stop, position.client_id, position.id)
        return self._send_stop(account, position, order_id)

    def _submit_stop(self, work: Work, client_id: UUID, position_id: UUID) -> tuple[Position, str]:
        pos = work.position(client_id, position_id)
        assert pos.stop_price is not None
        rules = self.exchange.symbol_rules(pos.symbol)
        stop = rules.protective_stop(pos.side, pos.stop_price)
        limit = rules.stop_limit(pos.side, stop, self.config.exchange_stop_slippage)
        quantity = pos.sellable_quantity
        if pos.margin and pos.side is Side.SHORT:  # buy back the fee too: the loan is repaid
            quantity = buy_back(
                pos.open_quantity, None, pos.entry_fee_rate, pos.lot_step
            ).order_quantity
        order_id = pos.submit_exchange_stop(stop, limit, quantity, self.clock.now())
        work.save(pos)
        return pos, order_id

    def _stop_request(self, position: Position, order_id: str) -> StopOrderRequest:
        assert position.exchange_stop_price is not None
        assert position.exchange_stop_limit is not None
        return StopOrderRequest(
            symbol=position.symbol,
            side=position.side.exit_order_side,
            client_order_id=order_id,
            quantity=position.exchange_stop_quantity,
            stop_price=position.exchange_stop_price,
            limit_price=position.exchange_stop_limit,
            margin=MarginEffect.AUTO_REPAY if position.margin else None,
        )

    def _send_stop(self, account: TradingAccount, position: Position, order_id: str) -> Position:
        """Send the recorded stop (a replacement when it replaces one); settle the answer."""
        request = self._stop_request(position, order_id)
        replaces = position.exchange_stop_replaces
        try:
            if replaces is None:
                result: OrderResult | None = self.exchange.place_stop(account, request)
            else:
                result = self.exchange.replace_stop(account, replaces, request)
        except (OrderRejected, InsufficientBalance) as refused:
            reason = refused.message
            if isinstance(refused, FilterFailure) and refused.filter_name == "MAX_NUM_ALGO_ORDERS":
                reason = (
                    f"{position.symbol} already rests the most stop orders the exchange allows; "
                    "Robson's own stop monitor protects this position"
                )
            return self._stop_refused(position, order_id, reason)
        except OrderOutcomeUnknown:
            return self.position(position.client_id, position.id)  # checked again later
        if result is None:  # the order it replaces is no longer open: did it fill?
            assert replaces is not None
            return self._stop_gone(account, position, replaces, order_id)
        return self._stop_answer(position, order_id, result)

    def _stop_answer(self, position: Position, order_id: str, result: OrderResult) -> Position:
        if result.status is OrderStatus.PENDING and result.executed_quantity <= 0:
            return self.work.run(self._resting, position.client_id, position.id, order_id, result)
        if result.executed_quantity > 0:
            return self._stop_filled(position, order_id, result)
        return self._stop_refused(position, order_id, "The exchange did not rest the stop order")

    def _resting(
        self, work: Work, client_id: UUID, position_id: UUID, order_id: str, result: OrderResult
    ) -> Position:
        pos = work.position(client_id, position_id)
        if pos.exchange_stop_id == order_id and pos.exchange_stop_state is StopState.SENDING:
            pos.record_exchange_stop_resting(order_id, result.exchange_order_id, self.clock.now())
            work.save(pos)
        return pos

    def _stop_refused(self, position: Position, order_id: str, reason: str) -> Position:
        def refused(work: Work, client_id: UUID, position_id: UUID) -> Position:
            pos = work.position(client_id, position_id)
            if pos.exchange_stop_id == order_id and pos.exchange_stop_state is StopState.SENDING:
                pos.record_exchange_stop_refused(order_id, reason, self.clock.now())
                work.save(pos)
            return pos

        return self.work.run(refused, position.client_id, position.id)

    def _stop_gone(
        self, account: TradingAccount, position: Position, old_id: str, new_id: str
    ) -> Position:
        """A replacement found its old order closed: record that order's fill as the exit."""
        found = self.exchange.find_order(account, position.symbol, old_id)
        if found is not None and found.executed_quantity > 0:
            if found.status is OrderStatus.PENDING:
                raise ExchangeUnavailable(f"Insurance stop {old_id} is filling; try again")
            return self._stop_filled(position, new_id, found, filled_id=old_id)
        return self._stop_refused(position, new_id, f"Insurance stop {old_id} was closed")

    # --- the fill ---

    def _stop_filled(
        self,
        position: Position,
        order_id: str,
        result: OrderResult,
        filled_id: str | None = None,
    ) -> Position:
        """Record the insurance order's fill as the exit (once: a second call finds it done)."""
        fee_prices = self._fee_prices(position, result)

        def filled(work: Work, client_id: UUID, position_id: UUID) -> Position:
            pos = work.position(client_id, position_id)
            if pos.exchange_stop_id != order_id or not pos.exchange_stop_working:
                return pos  # settled already
            if pos.status is not Status.OPEN:
                raise IllegalTransition("An exit of Robson's own is in flight")
            pos.record_exchange_stop_fill(
                order_id,
                result.exchange_order_id,
                result.average_price,
                result.executed_quantity,
                result.fees,
                result.executed_at,
                fee_prices,
                filled_id=filled_id,
            )
            self._realise(work, pos, result.executed_at)
            return pos

        return self.work.run(filled, position.client_id, position.id)

    # --- following the trailing stop ---

    def follow_exchange_stop(self, client_id: UUID, position_id: UUID) -> bool:
        """Move the insurance order up to the position's stop, at most once per interval.
        Returns True while it still lags behind (to be tried again later)."""
        position = self.position(client_id, position_id)
        now = self.clock.now()
        if not position.exchange_stop_lags(self.config.exchange_stop_interval, now):
            return self._lagging(position)
        account = self.trading_account(client_id)
        position = self._rest(account, position)
        return self._lagging(position)

    def _lagging(self, position: Position) -> bool:
        if not position.protected_at_exchange or position.status is not Status.OPEN:
            return False
        assert position.exchange_stop_price is not None and position.stop_price is not None
        return (position.stop_price - position.exchange_stop_price) * position.side.sign > 0

    # --- before Robson's own exit ---

    def _release_stop(
        self,
        account: TradingAccount,
        position: Position,
        reason: str = RELEASED,
    ) -> Position:
        """Cancel the insurance order before an exit of Robson's own. If the exchange filled
        it meanwhile, that fill is recorded as the exit instead (never two exits)."""
        position, cancelled = self._cancel_stop(account, position)
        if cancelled is None:
            return position
        return self.work.run(self._cancelled, position.client_id, position.id, cancelled, reason)

    def _cancel_stop(
        self, account: TradingAccount, position: Position
    ) -> tuple[Position, str | None]:
        """Cancel the insurance order at the exchange; a fill found meanwhile is recorded.
        Returns the position and the id of the order cancelled, whose cancellation the
        caller records (`_record_cancelled`), or None when there is nothing to record."""
        if not position.exchange_stop_working:
            return position, None
        order_id = position.exchange_stop_id
        assert order_id is not None
        cancelled = self.exchange.cancel_order(account, position.symbol, order_id, position.margin)
        if cancelled is None:
            found = self.exchange.find_order(account, position.symbol, order_id)
            if found is not None and found.status is OrderStatus.PENDING:
                raise ExchangeUnavailable(
                    f"Insurance stop {order_id} could not be cancelled yet; try again"
                )
            if found is None and position.exchange_stop_state is StopState.RESTING:
                raise ExchangeUnavailable(
                    f"The exchange does not show insurance stop {order_id} yet; try again"
                )
            cancelled = found
        if cancelled is not None and cancelled.executed_quantity > 0:
            position = self._stop_filled(position, order_id, cancelled)
            if position.status is not Status.OPEN:
                return position, None
        return position, order_id

    def _cancelled(
        self, work: Work, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        pos = work.position(client_id, position_id)
        if self._record_cancelled(pos, order_id, reason):
            work.save(pos)
        return pos

    def _record_cancelled(self, pos: Position, order_id: str, reason: str) -> bool:
        """Record the insurance order's cancellation, unless already recorded (or replaced)."""
        if pos.exchange_stop_id != order_id or not pos.exchange_stop_working:
            return False
        pos.record_exchange_stop_cancelled(order_id, reason, self.clock.now())
        return True

    # --- found later: worker, reconciliation, start-up ---

    def check_exchange_stop(self, client_id: UUID, position_id: UUID) -> Position:
        """Ask the exchange about the insurance order: a fill becomes the exit; one being
        sent is settled by what the exchange shows; an open position without one gets one."""
        position = self.position(client_id, position_id)
        if position.status is not Status.OPEN:
            return position
        account = self.trading_account(client_id)
        order_id = position.exchange_stop_id
        if order_id is not None and position.exchange_stop_working:
            found = self.exchange.find_order(account, position.symbol, order_id)
            if found is None:
                if position.exchange_stop_state is StopState.SENDING:
                    return self._send_stop(account, position, order_id)  # same id: no twin
                return position
            if found.status is not OrderStatus.PENDING or found.executed_quantity > 0:
                if found.executed_quantity > 0:
                    return self._stop_filled(position, order_id, found)
                return self._stop_refused(position, order_id, "closed at the exchange")
            if position.exchange_stop_state is StopState.SENDING:
                return self._stop_answer(position, order_id, found)
        return position

    def insure_positions(self, client_id: UUID, position_ids: Iterable[UUID]) -> list[Position]:
        """Check the insurance stops of one tenant's positions on ONE symbol; then, within
        the exchange's stop-order limit for the symbol (MAX_NUM_ALGO_ORDERS), protect the
        positions with the most at risk: rest theirs, move those that lag, and cancel the
        stops of the least at risk when more would be needed than the exchange allows."""
        checked = [self.check_exchange_stop(client_id, pid) for pid in position_ids]
        live = [p for p in checked if p.status is Status.OPEN and p.stop_price is not None]
        if not live or not self.config.exchange_stops:
            return checked
        account = self.trading_account(client_id)
        limit = self.exchange.symbol_rules(live[0].symbol).max_algo_orders
        ranked = sorted(live, key=lambda p: (p.open_risk, str(p.id)), reverse=True)
        settled: dict[UUID, Position] = {}
        for position in ranked[limit:]:
            if position.exchange_stop_working:
                settled[position.id] = self._release_stop(account, position, DISPLACED)
        for position in ranked[:limit]:
            if self._needs_stop(position):
                settled[position.id] = self._rest(account, position)
            elif position.protected_at_exchange:
                self.follow_exchange_stop(client_id, position.id)
                settled[position.id] = self.position(client_id, position.id)
        return [settled.get(p.id, p) for p in checked]
