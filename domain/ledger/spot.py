"""The spec's spot trades: buy with a mandatory stop (sized by the 1% rule and what the
balance can pay), and sell from open LONG positions, oldest first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from domain.errors import InsufficientBalance, InvalidInput
from domain.ledger.base import UNOBSERVED, Progress
from domain.ledger.entries import Entries, PlanRequest
from domain.ledger.exits import Exits
from domain.market import Side, SymbolRules, floor_to_step
from domain.position import Position, Status

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
class Holding:
    """An open position as the tenant's list of positions shows it."""

    position_id: UUID
    symbol: str
    side: Side
    open_quantity: Decimal
    planned_at: datetime


@dataclass(frozen=True)
class Sold:
    position: Position
    fill: Position.ExitFilled


@dataclass(frozen=True)
class Sale:
    quantity: Decimal
    trades: list[Sold]


def split_sale(
    holdings: list[Holding], wanted: Decimal | None, rules: SymbolRules
) -> list[tuple[UUID, Decimal | None]]:
    """Which positions to close (None: all of it) to sell `wanted` (None: everything)."""
    plan: list[tuple[UUID, Decimal | None]] = []
    for holding in holdings:
        held = floor_to_step(holding.open_quantity, rules.step_size)
        if wanted is None or wanted >= held:
            plan.append((holding.position_id, None))
            if wanted is not None:
                wanted -= held
                if wanted <= 0:
                    break
            continue
        piece = floor_to_step(wanted, rules.step_size)
        if piece < rules.min_qty:
            raise InvalidInput(
                "quantity",
                f"would leave a piece of {wanted.normalize():f} {rules.base_asset}, below the "
                f"exchange's minimum of {rules.min_qty.normalize():f}",
            )
        plan.append((holding.position_id, piece))
        break
    return plan


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
        `holdings`, oldest first, the last one in part if needed."""
        self.ensure_can_trade(client_id)
        rules = self.exchange.symbol_rules(symbol)
        longs = [h for h in holdings if h.symbol == symbol and h.side is Side.LONG]
        longs.sort(key=lambda h: h.planned_at)
        open_total = sum(
            (floor_to_step(h.open_quantity, rules.step_size) for h in longs), Decimal(0)
        )
        if open_total <= 0:
            raise InsufficientBalance(rules.base_asset)
        if wanted is not None and wanted > open_total:
            raise InvalidInput(
                "quantity", f"at most {open_total.normalize():f} {rules.base_asset} is open"
            )
        trades: list[Sold] = []
        sold = Decimal(0)
        for position_id, piece in split_sale(longs, wanted, rules):
            progress.working_on(position_id)
            position = self.close_position(client_id, position_id, quantity=piece)
            progress.order_sent("exit")
            exits = self._events(position_id, Position.ExitFilled)
            if exits and position.status in (Status.OPEN, Status.CLOSED):
                trades.append(Sold(position, exits[-1]))
                sold += exits[-1].quantity
        return Sale(sold, trades)
