"""Paper exchange: Binance-like fills at the current paper price, balances kept as events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from domain.errors import (
    ConcurrencyConflict,
    ExchangeUnavailable,
    FilterFailure,
    InsufficientBalance,
    InvalidInput,
)
from domain.identity import NAMESPACE
from domain.market import BTCUSDC, OrderSide, SymbolRules
from domain.ports import (
    Balance,
    Clock,
    MarginEffect,
    OrderRequest,
    OrderResult,
    OrderStatus,
    TradingAccount,
)
from domain.store import CONFLICT_ATTEMPTS, EventStore, retry_on_conflict

TAKER_FEE = Decimal("0.001")
MAX_LEVERAGE = Decimal(10)
SYMBOLS: dict[str, SymbolRules] = {BTCUSDC.symbol: BTCUSDC}


def market_id(symbol: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/markets/{symbol}")


def account_id(client_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"/paper/accounts/{client_id}")


def order_id(client_id: UUID, client_order_id: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/orders/{client_id}/{client_order_id}")


class PaperMarket(Aggregate):
    """The last price set for a symbol (CLI, API or a demo price source)."""

    class Opened(Aggregate.Created):
        symbol: str
        price: Decimal

    @event(Opened)
    def __init__(self, symbol: str, price: Decimal) -> None:
        self.symbol = symbol
        self.price = price

    class PriceSet(Aggregate.Event):
        price: Decimal

        def apply(self, aggregate: Any) -> None:
            aggregate.price = self.price

    def set_price(self, price: Decimal, now: datetime) -> None:
        self.trigger_event(self.PriceSet, timestamp=now, price=price)


class PaperAccount(Aggregate):
    """One tenant's paper balances. Its orders are aggregates of their own (see PaperOrder)."""

    class Funded(Aggregate.Created):
        client_id: UUID
        balances: dict[str, Decimal]

    @event(Funded)
    def __init__(self, client_id: UUID, balances: dict[str, Decimal]) -> None:
        self.client_id = client_id
        self.free: dict[str, Decimal] = dict(balances)
        self.borrowed: dict[str, Decimal] = {}
        self.orders_filled = 0

    class BalancesChanged(Aggregate.Event):
        client_order_id: str
        changes: dict[str, Decimal]
        borrowed_changes: dict[str, Decimal]

        def apply(self, aggregate: Any) -> None:
            for asset, delta in self.changes.items():
                aggregate.free[asset] = aggregate.free.get(asset, Decimal(0)) + delta
            for asset, delta in self.borrowed_changes.items():
                aggregate.borrowed[asset] = aggregate.borrowed.get(asset, Decimal(0)) + delta
            aggregate.orders_filled += 1

    def fill(
        self,
        order: OrderRequest,
        rules: SymbolRules,
        quantity: Decimal,
        price: Decimal,
        now: datetime,
    ) -> PaperOrder:
        """Move the balances and return the filled order, to be saved in one transaction."""
        base, quote = rules.base_asset, rules.quote_asset
        notional = quantity * price
        changes: dict[str, Decimal] = {}
        borrowed: dict[str, Decimal] = {}
        if order.side is OrderSide.BUY:
            fee = {base: quantity * TAKER_FEE}
            needed = notional
            if order.margin is MarginEffect.MARGIN_BUY:
                shortfall = max(Decimal(0), needed - self.free.get(quote, Decimal(0)))
                borrowed[quote] = shortfall
                changes[quote] = shortfall
            self._require(quote, needed, changes.get(quote, Decimal(0)))
            changes[quote] = changes.get(quote, Decimal(0)) - needed
            received = quantity - fee[base]
            changes[base] = received
            if order.margin is MarginEffect.AUTO_REPAY:
                repay = min(received, self.borrowed.get(base, Decimal(0)))
                changes[base] -= repay
                borrowed[base] = -repay
        else:
            fee = {quote: notional * TAKER_FEE}
            if order.margin is MarginEffect.MARGIN_BUY:
                shortfall = max(Decimal(0), quantity - self.free.get(base, Decimal(0)))
                borrowed[base] = shortfall
                changes[base] = shortfall
            self._require(base, quantity, changes.get(base, Decimal(0)))
            changes[base] = changes.get(base, Decimal(0)) - quantity
            received = notional - fee[quote]
            changes[quote] = received
            if order.margin is MarginEffect.AUTO_REPAY:
                repay = min(received, self.borrowed.get(quote, Decimal(0)))
                changes[quote] -= repay
                borrowed[quote] = -repay
        self._check_leverage(borrowed, rules, price)
        self.trigger_event(
            self.BalancesChanged,
            timestamp=now,
            client_order_id=order.client_order_id,
            changes=changes,
            borrowed_changes={k: v for k, v in borrowed.items() if v},
        )
        return PaperOrder._create(
            PaperOrder.Filled,
            id=order_id(self.client_id, order.client_order_id),
            timestamp=now,
            client_order_id=order.client_order_id,
            exchange_order_id=f"P{self.orders_filled}",
            symbol=rules.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fees=fee,
        )

    def _check_leverage(
        self, new_borrowing: dict[str, Decimal], rules: SymbolRules, price: Decimal
    ) -> None:
        """Isolated margin lends at most (10 − 1) × the net collateral, valued at the price."""

        def value(asset: str, amount: Decimal) -> Decimal:
            return amount * price if asset == rules.base_asset else amount

        assets = {*self.borrowed, *new_borrowing}
        debt = sum(
            (
                value(a, self.borrowed.get(a, Decimal(0)) + new_borrowing.get(a, Decimal(0)))
                for a in assets
            ),
            Decimal(0),
        )
        if debt <= 0:
            return
        held = sum((value(a, v) for a, v in self.free.items()), Decimal(0))
        owed = sum((value(a, v) for a, v in self.borrowed.items()), Decimal(0))
        if debt > (held - owed) * (MAX_LEVERAGE - 1):
            raise InsufficientBalance(
                rules.quote_asset,
                f"Insufficient margin: borrowing {debt:.2f} {rules.quote_asset} needs at least "
                f"{debt / (MAX_LEVERAGE - 1):.2f} {rules.quote_asset} of collateral",
            )

    class Borrowed(Aggregate.Event):
        asset: str
        amount: Decimal

        def apply(self, aggregate: Any) -> None:
            aggregate.free[self.asset] = aggregate.free.get(self.asset, Decimal(0)) + self.amount
            aggregate.borrowed[self.asset] = (
                aggregate.borrowed.get(self.asset, Decimal(0)) + self.amount
            )

    class Repaid(Aggregate.Event):
        asset: str
        amount: Decimal

        def apply(self, aggregate: Any) -> None:
            aggregate.free[self.asset] -= self.amount
            aggregate.borrowed[self.asset] -= self.amount

    def borrow(
        self, asset: str, amount: Decimal, rules: SymbolRules, price: Decimal, now: datetime
    ) -> None:
        if not amount.is_finite() or amount <= 0:
            raise InvalidInput("amount", "must be a positive number")
        self._check_leverage({asset: amount}, rules, price)
        self.trigger_event(self.Borrowed, timestamp=now, asset=asset, amount=amount)

    def repay(self, asset: str, amount: Decimal, now: datetime) -> None:
        owed = self.borrowed.get(asset, Decimal(0))
        if not amount.is_finite() or amount <= 0 or amount > owed:
            raise InvalidInput("amount", f"must be above 0 and at most the {owed} {asset} owed")
        self._require(asset, amount, Decimal(0))
        self.trigger_event(self.Repaid, timestamp=now, asset=asset, amount=amount)

    def _require(self, asset: str, amount: Decimal, credit: Decimal) -> None:
        available = self.free.get(asset, Decimal(0)) + credit
        if available <= 0:
            raise InsufficientBalance(asset)
        if amount > available:
            raise InsufficientBalance(
                asset, f"Insufficient {asset}: the order needs {amount}, available {available}"
            )


class PaperOrder(Aggregate):
    """A filled paper order, one stream per client order id: a second fill is impossible."""

    class Filled(Aggregate.Created):
        client_order_id: str
        exchange_order_id: str
        symbol: str
        side: OrderSide
        quantity: Decimal
        price: Decimal
        fees: dict[str, Decimal]

    @event(Filled)
    def __init__(
        self,
        client_order_id: str,
        exchange_order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        fees: dict[str, Decimal],
    ) -> None:
        self.client_order_id = client_order_id
        self.exchange_order_id = exchange_order_id
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.price = price
        self.fees = dict(fees)

    def result(self) -> OrderResult:
        return OrderResult(
            client_order_id=self.client_order_id,
            exchange_order_id=self.exchange_order_id,
            status=OrderStatus.FILLED,
            executed_quantity=self.quantity,
            average_price=self.price,
            quote_quantity=self.quantity * self.price,
            fees=dict(self.fees),
            executed_at=self.created_on,
        )


class PaperExchange:
    """The embedded default exchange. Orders with a known client order id are never refilled."""

    name = "paper"
    is_live = False

    def __init__(self, store: EventStore, clock: Clock, opening_balance: Decimal) -> None:
        self.store = store
        self.clock = clock
        self.opening_balance = opening_balance

    def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = SYMBOLS.get(symbol.upper())
        if rules is None:
            raise InvalidInput(
                "symbol", f"unknown symbol {symbol!r}; supported: {', '.join(SYMBOLS)}"
            )
        return rules

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        rules = self.symbol_rules(symbol)
        if not price.is_finite() or price <= 0:
            raise InvalidInput("price", "must be a finite number greater than zero")
        price = rules.round_price_down(price)
        if price <= 0:
            raise InvalidInput("price", f"must be at least the tick size {rules.tick_size}")

        def command() -> Decimal:
            market = self.store.load(market_id(rules.symbol), PaperMarket)
            now = self.clock.now()
            if market is None:
                market = PaperMarket._create(
                    PaperMarket.Opened,
                    id=market_id(rules.symbol),
                    timestamp=now,
                    symbol=rules.symbol,
                    price=price,
                )
            else:
                market.set_price(price, now)
            self.store.save(market)
            return price

        return retry_on_conflict(command)

    def price(self, symbol: str) -> Decimal:
        rules = self.symbol_rules(symbol)
        market = self.store.load(market_id(rules.symbol), PaperMarket)
        if market is None:
            raise ExchangeUnavailable(
                f"No paper price for {rules.symbol} yet: set one with "
                f"`robson paper price {rules.symbol} <price>` or POST /api/paper/price/"
            )
        return market.price

    def _account(self, client_id: UUID) -> PaperAccount:
        account = self.store.load(account_id(client_id), PaperAccount)
        if account is None:
            account = PaperAccount._create(
                PaperAccount.Funded,
                id=account_id(client_id),
                timestamp=self.clock.now(),
                client_id=client_id,
                balances={"USDC": self.opening_balance},
            )
        return account

    def balances(self, account: TradingAccount) -> dict[str, Balance]:
        paper = self._account(account.client_id)
        return {asset: Balance(asset, free) for asset, free in paper.free.items()}

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        rules = self.symbol_rules(order.symbol)
        price = self.price(rules.symbol)
        if order.quantity is not None:
            quantity = order.quantity
        else:
            assert order.quote_amount is not None
            quantity = rules.round_quantity(order.quote_amount / price)
        problems = rules.order_problems(quantity, price)
        if problems:
            raise FilterFailure(problems[0].split(":")[0], problems[0])

        for _ in range(CONFLICT_ATTEMPTS):
            paper = self._account(account.client_id)
            try:
                filled = paper.fill(order, rules, quantity, price, self.clock.now())
            except InsufficientBalance:
                already = self.find_order(account, rules.symbol, order.client_order_id)
                if already is None:
                    raise
                return already  # a retry of an order that was filled (and spent the balance)
            try:
                self.store.save(paper, filled)
            except IntegrityError:
                # This client order id was filled already (its stream exists), or another
                # order moved the balance first: never fill twice, otherwise try again.
                already = self.find_order(account, rules.symbol, order.client_order_id)
                if already is not None:
                    return already
                continue
            return filled.result()
        raise ConcurrencyConflict("The paper account kept changing; try again")

    def find_order(
        self, account: TradingAccount, symbol: str, client_order_id: str
    ) -> OrderResult | None:
        found = self.store.load(order_id(account.client_id, client_order_id), PaperOrder)
        return None if found is None else found.result()

    def orders_filled(self, client_id: UUID) -> int:
        """How many orders this tenant's paper account has filled."""
        return self._account(client_id).orders_filled

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        rules = self.symbol_rules(symbol)
        price = self.price(rules.symbol)

        def command() -> None:
            paper = self._account(account.client_id)
            paper.borrow(asset, amount, rules, price, self.clock.now())
            self.store.save(paper)

        retry_on_conflict(command)

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        def command() -> None:
            paper = self._account(account.client_id)
            paper.repay(asset, amount, self.clock.now())
            self.store.save(paper)

        retry_on_conflict(command)

    def borrowed(self, client_id: UUID) -> dict[str, Decimal]:
        return {a: v for a, v in self._account(client_id).borrowed.items() if v}
