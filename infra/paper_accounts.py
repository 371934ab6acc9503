"""The paper exchange's simulated state: prices, tenant accounts and filled orders, as events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import InsufficientBalance, InvalidInput
from domain.identity import NAMESPACE
from domain.market import BTCUSDC, OrderSide, SymbolRules
from domain.ports import MarginEffect, OrderRequest, OrderResult, OrderStatus

TAKER_FEE = Decimal("0.001")
MAX_LEVERAGE = Decimal(10)
SYMBOLS: dict[str, SymbolRules] = {BTCUSDC.symbol: BTCUSDC}


def market_id(symbol: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/markets/{symbol}")


def account_id(client_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"/paper/accounts/{client_id}")


def order_id(client_id: UUID, client_order_id: str) -> UUID:
    return uuid5(NAMESPACE, f"/paper/orders/{client_id}/{client_order_id}")


class PaperAccount(LedgerAggregate):
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
            client_id=self.client_id,
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


class PaperOrder(LedgerAggregate):
    """A filled paper order, one stream per client order id: a second fill is impossible."""

    class Filled(Aggregate.Created):
        client_id: UUID
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
        client_id: UUID,
        client_order_id: str,
        exchange_order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        fees: dict[str, Decimal],
    ) -> None:
        self.client_id = client_id
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
