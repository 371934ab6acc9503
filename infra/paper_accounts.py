"""The paper exchange's simulated state: prices, tenant accounts and filled orders, as events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import InsufficientBalance, InvalidInput
from domain.identity import NAMESPACE
from domain.market import BTCUSDC, OrderSide, SymbolRules
from domain.ports import OrderRequest, OrderResult, OrderStatus
from infra.paper_margin import (
    isolated_debt,
    isolated_fill,
    isolated_free,
    isolated_loan,
    isolated_repayment,
    trade_legs,
)

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
        self.borrowed: dict[str, Decimal] = {}  # the spot wallet's loans, before isolated accounts
        self.isolated: dict[str, dict[str, Decimal]] = {}  # symbol -> asset -> free
        self.isolated_borrowed: dict[str, dict[str, Decimal]] = {}  # symbol -> asset -> owed
        self.orders_filled = 0

    def fill(
        self,
        order: OrderRequest,
        rules: SymbolRules,
        quantity: Decimal,
        price: Decimal,
        now: datetime,
    ) -> PaperOrder:
        """Move the balances and return the filled order, to be saved in one transaction."""
        if order.margin is None:
            fee = self._spot_fill(order, rules, quantity, price, now)
        else:
            fee = isolated_fill(self, order, rules, quantity, price, now)
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

    def _spot_fill(
        self,
        order: OrderRequest,
        rules: SymbolRules,
        quantity: Decimal,
        price: Decimal,
        now: datetime,
    ) -> dict[str, Decimal]:
        spent, paid, got, received, fee = trade_legs(order.side, rules, quantity, price)
        self._require(spent, paid, Decimal(0))
        self.trigger_event(
            self.BalancesChanged,
            timestamp=now,
            client_order_id=order.client_order_id,
            changes={spent: -paid, got: received},
            borrowed_changes={},
        )
        return fee

    class IsolatedChanged(Aggregate.Event):
        """One symbol's isolated margin account changed: collateral moved in from the spot
        wallet (or back, negative), an order filled in it, or a loan was taken or repaid."""

        symbol: str
        client_order_id: str  # "" for a loan or a repayment outside an order
        transfer: dict[str, Decimal]
        changes: dict[str, Decimal]
        borrowed_changes: dict[str, Decimal]

        def apply(self, aggregate: PaperAccount) -> None:
            held = isolated_free(aggregate, self.symbol)
            owed = isolated_debt(aggregate, self.symbol)
            for asset, amount in self.transfer.items():
                aggregate.free[asset] = aggregate.free.get(asset, Decimal(0)) - amount
                held[asset] = held.get(asset, Decimal(0)) + amount
            for asset, delta in self.changes.items():
                held[asset] = held.get(asset, Decimal(0)) + delta
            for asset, delta in self.borrowed_changes.items():
                owed[asset] = owed.get(asset, Decimal(0)) + delta
            if self.client_order_id:
                aggregate.orders_filled += 1

    # Before isolated accounts, margin fills, loans and repayments moved the spot wallet
    # itself: these events are kept so that those accounts still replay.

    class BalancesChanged(Aggregate.Event):
        client_order_id: str
        changes: dict[str, Decimal]
        borrowed_changes: dict[str, Decimal]

        def apply(self, aggregate: PaperAccount) -> None:
            for asset, delta in self.changes.items():
                aggregate.free[asset] = aggregate.free.get(asset, Decimal(0)) + delta
            for asset, delta in self.borrowed_changes.items():
                aggregate.borrowed[asset] = aggregate.borrowed.get(asset, Decimal(0)) + delta
            aggregate.orders_filled += 1

    class Borrowed(Aggregate.Event):
        asset: str
        amount: Decimal

        def apply(self, aggregate: PaperAccount) -> None:
            aggregate.free[self.asset] = aggregate.free.get(self.asset, Decimal(0)) + self.amount
            aggregate.borrowed[self.asset] = (
                aggregate.borrowed.get(self.asset, Decimal(0)) + self.amount
            )

    class Repaid(Aggregate.Event):
        asset: str
        amount: Decimal

        def apply(self, aggregate: PaperAccount) -> None:
            aggregate.free[self.asset] -= self.amount
            aggregate.borrowed[self.asset] -= self.amount

    def borrow(
        self, asset: str, amount: Decimal, rules: SymbolRules, price: Decimal, now: datetime
    ) -> None:
        if not amount.is_finite() or amount <= 0:
            raise InvalidInput("amount", "must be a positive number")
        isolated_loan(self, asset, amount, rules, price, now)

    def repay(self, asset: str, amount: Decimal, rules: SymbolRules, now: datetime) -> None:
        owed = isolated_debt(self, rules.symbol).get(asset, Decimal(0))
        if not amount.is_finite() or amount <= 0 or amount > owed:
            raise InvalidInput("amount", f"must be above 0 and at most the {owed} {asset} owed")
        isolated_repayment(self, asset, amount, rules, now)

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
