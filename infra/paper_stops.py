"""Stop-limit orders resting on the paper exchange, like Binance's STOP_LOSS_LIMIT: setting a
paper price at or through a stop triggers it, and it fills at that price when the price is
within its limit (a price gapped beyond the limit leaves it working, as a limit order would).

The paper exchange holds no funds for a resting stop (Binance locks them): the ledger always
cancels its insurance stop before it sells, so nothing here relies on the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import FilterFailure, InsufficientBalance, OrderRejected
from domain.identity import NAMESPACE
from domain.market import OrderSide, SymbolRules
from domain.ports import (
    Clock,
    MarginEffect,
    OrderRequest,
    OrderResult,
    OrderStatus,
    StopOrderRequest,
    TradingAccount,
)
from domain.store import EventStore, retry_on_conflict
from infra.paper_accounts import PaperAccount


def stop_id(client_id: UUID, client_order_id: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/stops/{client_id}/{client_order_id}")


def book_id(symbol: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/stop-books/{symbol}")


class PaperStop(LedgerAggregate):
    """One resting stop of one tenant; it ends cancelled or filled (then a PaperOrder)."""

    class Rested(Aggregate.Created):
        client_id: UUID
        client_order_id: str
        symbol: str
        side: OrderSide
        quantity: Decimal
        stop_price: Decimal
        limit_price: Decimal
        margin: bool

    @event(Rested)
    def __init__(
        self,
        client_id: UUID,
        client_order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        stop_price: Decimal,
        limit_price: Decimal,
        margin: bool,
    ) -> None:
        self.client_id = client_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.stop_price = stop_price
        self.limit_price = limit_price
        self.margin = margin
        self.open = True

    class Closed(Aggregate.Event):
        how: str  # "cancelled" or "filled"

        def apply(self, aggregate: PaperStop) -> None:
            aggregate.open = False

    def close(self, how: str, now: datetime) -> None:
        self.trigger_event(self.Closed, timestamp=now, how=how)

    def fill_price(self, price: Decimal) -> Decimal | None:
        """The price it fills at when the market is at `price`, or None (not triggered, or
        beyond its limit)."""
        if self.side is OrderSide.SELL:
            return price if self.limit_price <= price <= self.stop_price else None
        return price if self.stop_price <= price <= self.limit_price else None

    def market_order(self, margin_effect: MarginEffect | None) -> OrderRequest:
        return OrderRequest(
            symbol=self.symbol,
            side=self.side,
            client_order_id=self.client_order_id,
            quantity=self.quantity,
            margin=margin_effect,
        )

    def result(self) -> OrderResult:
        """Working: PENDING; cancelled: REJECTED (nothing executed), like a look-up says."""
        return OrderResult(
            client_order_id=self.client_order_id,
            exchange_order_id=f"S{self.id.hex[:12]}",
            status=OrderStatus.PENDING if self.open else OrderStatus.REJECTED,
            executed_quantity=Decimal(0),
            average_price=Decimal(0),
            quote_quantity=Decimal(0),
            fees={},
            executed_at=self.modified_on,
        )


class PaperStopBook(LedgerAggregate):
    """Which stops rest on one symbol, so a price change finds them without a scan."""

    class Opened(Aggregate.Created):
        symbol: str

    @event(Opened)
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.resting: list[tuple[str, str]] = []  # (client id, client order id)

    class Added(Aggregate.Event):
        client_id: str
        client_order_id: str

        def apply(self, aggregate: PaperStopBook) -> None:
            aggregate.resting.append((self.client_id, self.client_order_id))

    class Removed(Aggregate.Event):
        client_id: str
        client_order_id: str

        def apply(self, aggregate: PaperStopBook) -> None:
            aggregate.resting.remove((self.client_id, self.client_order_id))

    def add(
        self, client_id: UUID, order: StopOrderRequest, rules: SymbolRules, now: datetime
    ) -> None:
        """filters.md "MAX_NUM_ALGO_ORDERS": at most so many open stops per account and symbol."""
        mine = [c for c, _ in self.resting if c == str(client_id)]
        if len(mine) >= rules.max_algo_orders:
            raise FilterFailure(
                "MAX_NUM_ALGO_ORDERS",
                f"Filter failure: MAX_NUM_ALGO_ORDERS ({rules.max_algo_orders} stop orders "
                f"already rest on {rules.symbol})",
            )
        self.trigger_event(
            self.Added,
            timestamp=now,
            client_id=str(client_id),
            client_order_id=order.client_order_id,
        )

    def remove(self, client_id: UUID, client_order_id: str, now: datetime) -> None:
        if (str(client_id), client_order_id) in self.resting:
            self.trigger_event(
                self.Removed,
                timestamp=now,
                client_id=str(client_id),
                client_order_id=client_order_id,
            )


class PaperStopOrders:
    """Mixed into `PaperExchange`: rest, replace, cancel and trigger paper stop orders."""

    store: EventStore
    clock: Clock

    symbol_rules: Callable[[str], SymbolRules]  # these three: PaperExchange's own
    price: Callable[[str], Decimal]
    _account: Callable[[UUID], PaperAccount]

    def place_stop(self, account: TradingAccount, order: StopOrderRequest) -> OrderResult:
        rules = self.symbol_rules(order.symbol)
        problems = rules.order_problems(order.quantity, order.limit_price)
        if problems:
            raise FilterFailure(problems[0].split(":")[0], problems[0])
        price = self.price(rules.symbol)
        # errors.md: "Order would trigger immediately." when the stop is already crossed.
        crossed = (
            price <= order.stop_price
            if order.side is OrderSide.SELL
            else (price >= order.stop_price)
        )
        if crossed:
            raise OrderRejected("Order would trigger immediately.")

        def command() -> OrderResult:
            existing = self.store.load(stop_id(account.client_id, order.client_order_id), PaperStop)
            if existing is not None:
                return existing.result()  # the same id again: the first one's answer
            book = self._book(rules.symbol)
            now = self.clock.now()
            book.add(account.client_id, order, rules, now)
            stop = PaperStop._create(
                PaperStop.Rested,
                id=stop_id(account.client_id, order.client_order_id),
                timestamp=now,
                client_id=account.client_id,
                client_order_id=order.client_order_id,
                symbol=rules.symbol,
                side=order.side,
                quantity=order.quantity,
                stop_price=order.stop_price,
                limit_price=order.limit_price,
                margin=order.margin is not None,
            )
            self.store.save(book, stop)
            return stop.result()

        return retry_on_conflict(command)

    def replace_stop(
        self, account: TradingAccount, old_client_order_id: str, order: StopOrderRequest
    ) -> OrderResult | None:
        if (
            self.cancel_order(account, order.symbol, old_client_order_id, order.margin is not None)
            is None
        ):
            return None
        return self.place_stop(account, order)

    def cancel_order(
        self, account: TradingAccount, symbol: str, client_order_id: str, margin: bool
    ) -> OrderResult | None:
        rules = self.symbol_rules(symbol)

        def command() -> OrderResult | None:
            stop = self.store.load(stop_id(account.client_id, client_order_id), PaperStop)
            if stop is None or not stop.open:
                return None  # errors.md -2011 "Unknown order sent."
            book = self._book(rules.symbol)
            now = self.clock.now()
            stop.close("cancelled", now)
            book.remove(account.client_id, client_order_id, now)
            self.store.save(stop, book)
            return stop.result()

        return retry_on_conflict(command)

    def find_stop(self, client_id: UUID, client_order_id: str) -> OrderResult | None:
        stop = self.store.load(stop_id(client_id, client_order_id), PaperStop)
        return None if stop is None else stop.result()

    def trigger_stops(self, symbol: str, price: Decimal) -> int:
        """Fill every resting stop of `symbol` that `price` triggers within its limit."""
        book = self.store.load(book_id(symbol), PaperStopBook)
        if book is None:
            return 0
        filled = 0
        for client, client_order_id in list(book.resting):
            if self._trigger(symbol, UUID(client), client_order_id, price):
                filled += 1
        return filled

    def _trigger(self, symbol: str, client_id: UUID, client_order_id: str, price: Decimal) -> bool:
        rules = self.symbol_rules(symbol)

        def command() -> bool:
            stop = self.store.load(stop_id(client_id, client_order_id), PaperStop)
            if stop is None or not stop.open:
                return False
            at = stop.fill_price(price)
            if at is None:
                return False
            now = self.clock.now()
            paper = self._account(client_id)
            effect = MarginEffect.AUTO_REPAY if stop.margin else None
            try:
                order = paper.fill(stop.market_order(effect), rules, stop.quantity, at, now)
            except InsufficientBalance:
                return False  # Binance would have held the funds; the paper account did not
            book = self._book(symbol)
            stop.close("filled", now)
            book.remove(client_id, client_order_id, now)
            self.store.save(paper, order, stop, book)
            return True

        return retry_on_conflict(command)

    def _book(self, symbol: str) -> PaperStopBook:
        book = self.store.load(book_id(symbol), PaperStopBook)
        if book is None:
            book = PaperStopBook._create(
                PaperStopBook.Opened, id=book_id(symbol), timestamp=self.clock.now(), symbol=symbol
            )
        return book
