"""Hand-built positions saved through the real event store, with exact fees and times.

The ledger's paper exchange always charges 0.1%; read-model specifications need round
numbers (fees 5 + 5 USDC, exits two hours later), so these drive the domain methods
directly and save the aggregates with `store.save`, as the ledger would.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from domain.market import BTCUSDC, Side
from domain.policy import Policy
from domain.position import ExitReason, Position
from domain.store import EventStore


def filled(
    client_id: UUID,
    opened: datetime,
    side: Side = Side.LONG,
    entry: str = "50000",
    quantity: str = "0.1",
    entry_fee: str = "0",
) -> Position:
    """PLAN → VALIDATE → EXECUTE, filled at `entry` with `entry_fee` USDC, all at `opened`."""
    stop = Decimal(entry) * (Decimal("0.9") if side is Side.LONG else Decimal("1.1"))
    position = Position.plan(
        position_id=uuid4(),
        client_id=client_id,
        rules=BTCUSDC,
        side=side,
        entry_price=Decimal(entry),
        stop_price=stop,
        target_price=None,
        quantity=Decimal(quantity),
        capital_base=Decimal(1000),
        now=opened,
        margin=side is Side.SHORT,
    )
    position.validate([], opened)
    order_id = position.submit_entry(opened)
    fees = {"USDC": Decimal(entry_fee)} if Decimal(entry_fee) else {}
    position.record_entry_fill(order_id, "ex-1", Decimal(entry), Decimal(quantity), fees, opened)
    return position


def exit_fill(
    position: Position,
    price: str,
    at: datetime,
    fee: str = "0",
    quantity: str | None = None,
) -> None:
    """Trigger, submit and fill one exit (all of it unless `quantity`), at `at`."""
    position.trigger_exit(
        ExitReason.MANUAL, Decimal(price), at, None if quantity is None else Decimal(quantity)
    )
    order_id = position.submit_exit(at)
    fees = {"USDC": Decimal(fee)} if Decimal(fee) else {}
    position.record_exit_fill(
        order_id, f"ex-{order_id}", Decimal(price), position.exit_order_quantity, fees, at
    )


def closed_trade(
    store: EventStore,
    client_id: UUID,
    opened: datetime,
    hours: float = 2,
    side: Side = Side.LONG,
    entry: str = "50000",
    exit_price: str = "55000",
    quantity: str = "0.1",
    entry_fee: str = "0",
    exit_fee: str = "0",
) -> Position:
    """A whole round trip, saved: returns the closed position."""
    position = filled(client_id, opened, side, entry, quantity, entry_fee)
    exit_fill(position, exit_price, opened + timedelta(hours=hours), exit_fee)
    store.save(position)
    return position


def save(store: EventStore, *aggregates: Position | Policy) -> int:
    """Save and return the last notification id written."""
    recordings = store.save(*aggregates)
    return recordings[-1].notification.id


def realise(store: EventStore, policy: Policy, month: str, pnl: str, at: datetime) -> int:
    """Record realised P&L in the policy without observing the drawdown (the rule's job)."""
    policy.realise(uuid4(), month, Decimal(pnl), Decimal(0), at)
    return save(store, policy)
