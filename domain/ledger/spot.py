"""The spec's spot trades: buy with a mandatory stop (sized by the 1% rule and what the
balance can pay), and sell from open LONG positions, oldest first, whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from domain.errors import DomainError, InsufficientBalance, OrderOutcomeUnknown, OrderRejected
from domain.ledger.base import UNOBSERVED, Progress
from domain.ledger.entries import Entries, PlanRequest
from domain.ledger.exits import Exits
from domain.market import Side
from domain.position import Position
from domain.sale import Holding, Part, split_sale

E = TypeVar("E")


@dataclass(frozen=True)
class BuyOrder:
    """Without a quantity or a quote amount, the buy is sized by the 1% rule."""

    symbol: str
    quote_asset: str  # what the buy spends
    stop_price: Decimal
    target_price: Decimal | None = None
    quantity: Decimal | None = None
    quote_amount: Decimal | None = None


@dataclass(frozen=True)
class Bought:
    position: Position
    fill: Position.EntryFilled | None  # None: sent, the exchange has not confirmed it yet


@dataclass(frozen=True)
class Sold:
    position: Position
    fill: Position.ExitFilled


@dataclass(frozen=True)
class Sale:
    """What a sale sold; a part the exchange refused after earlier parts executed is
    `unsold` (nothing of it executed), one it has not confirmed yet is `pending`."""

    quantity: Decimal
    trades: list[Sold]
    unsold: Decimal = Decimal(0)
    pending: Decimal = Decimal(0)
    reason: str | None = None


class Spot(Entries, Exits):
    """Market buys and sells that return the facts a trade reply shows."""

    def free_balance(self, client_id: UUID, asset: str) -> Decimal:
        balance = self.exchange.balances(self.trading_account(client_id)).get(asset)
        return balance.free if balance is not None else Decimal(0)

    def buy(self, client_id: UUID, order: BuyOrder, progress: Progress = UNOBSERVED) -> Bought:
        """PLAN → VALIDATE → EXECUTE a market buy; an order the exchange did not execute
        raises, one it has not confirmed yet comes back without a fill."""
        self.ensure_can_trade(client_id)
        available = self.free_balance(client_id, order.quote_asset)
        if available <= 0:
            raise InsufficientBalance(order.quote_asset)
        by_rule = order.quantity is None and order.quote_amount is None
        request = PlanRequest(
            symbol=order.symbol,
            side=Side.LONG,
            stop_price=order.stop_price,
            target_price=order.target_price,
            quantity=order.quantity,
            quote_amount=order.quote_amount,
            spendable=available if by_rule else None,
        )
        position = self.plan_validate_execute(client_id, request, progress)
        self._ensure_executed(position)
        fills = self._events(position.id, Position.EntryFilled)
        return Bought(position, fills[-1] if fills else None)

    def _events(self, position_id: UUID, kind: type[E]) -> list[E]:
        """The position's events of one kind, oldest first."""
        return [e for e in self.store.events.get(position_id) if isinstance(e, kind)]

    def sell(
        self,
        client_id: UUID,
        symbol: str,
        wanted: Decimal | None,
        holdings: Iterable[Holding],
        progress: Progress = UNOBSERVED,
    ) -> Sale:
        """Sell `wanted` (None: all) from the open LONG positions of `symbol` among
        `holdings`; the whole sale is checked before its first order (see `split_sale`)."""
        self.ensure_can_trade(client_id)
        rules = self.exchange.symbol_rules(symbol)
        longs = [h for h in holdings if h.symbol == symbol and h.side is Side.LONG]
        longs.sort(key=lambda h: h.planned_at)
        if not any(rules.round_quantity(h.open_quantity) > 0 for h in longs):
            raise InsufficientBalance(rules.base_asset)
        parts = split_sale(longs, wanted, rules, self.exchange.price(symbol))
        trades: list[Sold] = []
        sold = pending = Decimal(0)
        for n, part in enumerate(parts):
            progress.working_on(part.position_id)
            before = len(self._events(part.position_id, Position.ExitFilled))
            try:
                position = self.close_position(
                    client_id, part.position_id, quantity=None if part.whole else part.quantity
                )
            except OrderOutcomeUnknown as unknown:
                if n == 0:
                    raise
                pending += part.quantity
                reason = f"not sent while an earlier part is unconfirmed ({unknown.message})"
                return self._stopped(sold, trades, parts[n + 1 :], pending, reason)
            except DomainError as refused:
                if n == 0:
                    raise  # nothing sold: the refusal is the reply
                return self._stopped(sold, trades, parts[n:], pending, refused.message)
            progress.order_sent("exit")
            exits = self._events(part.position_id, Position.ExitFilled)
            if position.order_in_flight is not None:
                pending += part.quantity
            elif len(exits) > before:
                trades.append(Sold(position, exits[-1]))
                sold += exits[-1].quantity
            elif n == 0:
                raise OrderRejected(position.note or "The order was not executed")
            else:
                note = position.note or "The order was not executed"
                return self._stopped(sold, trades, parts[n:], pending, note)
        return Sale(sold, trades, pending=pending)

    @staticmethod
    def _stopped(
        sold: Decimal, trades: list[Sold], unsent: list[Part], pending: Decimal, reason: str
    ) -> Sale:
        """A part failed after others executed: what executed stands, the rest is not sold."""
        unsold = sum((p.quantity for p in unsent), Decimal(0))
        return Sale(sold, trades, unsold=unsold, pending=pending, reason=reason)
