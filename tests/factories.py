"""Builders for tests: a registered client, a sized plan, an open position."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from domain.ledger import Ledger, PlanRequest
from domain.market import Side
from domain.position import Position


def register(ledger: Ledger, capital: str = "1000", operator: bool = False) -> tuple[UUID, str]:
    """A new client with its policy; returns (client id, token)."""
    reg = ledger.register_client(
        "Trader", f"trader-{uuid4().hex[:8]}@example.com", Decimal(capital), operator
    )
    return reg.client_id, reg.token


def long_plan(stop: str = "98000", **overrides: object) -> PlanRequest:
    fields: dict[str, object] = {
        "symbol": "BTCUSDC",
        "side": Side.LONG,
        "stop_price": Decimal(stop),
    }
    fields.update(overrides)
    return PlanRequest(**fields)  # type: ignore[arg-type]


def open_long(
    ledger: Ledger, client_id: UUID, stop: str = "98000", **overrides: object
) -> Position:
    return ledger.plan_validate_execute(client_id, long_plan(stop, **overrides))


# --- pure, in-memory builders for unit tests (no event store, explicit UTC times) ---

from collections.abc import Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402
from uuid import uuid5  # noqa: E402

from domain.assistant.proposal import TradeProposal  # noqa: E402
from domain.client import Client  # noqa: E402
from domain.market import BTCUSDC, SymbolRules  # noqa: E402
from domain.policy import Policy  # noqa: E402
from domain.position import ExitReason  # noqa: E402
from domain.read_models import PositionRow  # noqa: E402

UNIT_NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UNIT_CLIENT_ID = uuid5(UUID(int=0), "unit-test-client")


def trade_proposal() -> TradeProposal:
    """The assistant's proposal of a LONG of 0.005 BTC at 100000, stop 98000, made at UNIT_NOW."""
    return TradeProposal.propose(
        client_id=UNIT_CLIENT_ID,
        conversation_id=uuid4(),
        position_id=uuid4(),
        symbol="BTCUSDC",
        side=Side.LONG,
        entry_price=Decimal(100000),
        stop_price=Decimal(98000),
        target_price=None,
        quantity=Decimal("0.005"),
        risk_amount=Decimal(10),
        now=UNIT_NOW,
    )


def later(minutes: int) -> datetime:
    """`UNIT_NOW` plus some minutes: events get distinct, increasing timestamps."""
    return UNIT_NOW + timedelta(minutes=minutes)


def planned_position(
    side: Side = Side.LONG,
    entry: str = "50000",
    stop: str | None = "49000",
    target: str | None = None,
    quantity: str = "0.1",
    capital: str = "1000",
    rules: SymbolRules = BTCUSDC,
    position_id: UUID | None = None,
    now: datetime = UNIT_NOW,
    margin: bool = False,
) -> Position:
    """A PLANNED position built in memory with `Position.plan`."""
    return Position.plan(
        position_id=position_id or uuid4(),
        client_id=UNIT_CLIENT_ID,
        rules=rules,
        side=side,
        entry_price=Decimal(entry),
        stop_price=None if stop is None else Decimal(stop),
        target_price=None if target is None else Decimal(target),
        quantity=Decimal(quantity),
        capital_base=Decimal(capital),
        now=now,
        margin=margin,
        leverage=Decimal(2) if margin else Decimal(1),
    )


def opened_position(
    side: Side = Side.LONG,
    entry: str = "50000",
    stop: str = "49000",
    quantity: str = "0.1",
    fill_price: str | None = None,
    fees: dict[str, Decimal] | None = None,
    margin: bool = False,
) -> Position:
    """PLAN → VALIDATE (no violations) → submit entry → entry fill, all in memory."""
    position = planned_position(side=side, entry=entry, stop=stop, quantity=quantity, margin=margin)
    position.validate([], later(1))
    order_id = position.submit_entry(later(2))
    position.record_entry_fill(
        order_id,
        "ex-entry",
        Decimal(fill_price or entry),
        Decimal(quantity),
        fees if fees is not None else {},
        later(3),
    )
    return position


def exit_fully_or_partly(
    position: Position,
    price: str,
    fees: dict[str, Decimal] | None = None,
    quantity: str | None = None,
    minute: int = 10,
) -> str:
    """Trigger, submit and fill one exit; returns its client order id."""
    position.trigger_exit(
        ExitReason.MANUAL,
        Decimal(price),
        later(minute),
        None if quantity is None else Decimal(quantity),
    )
    order_id = position.submit_exit(later(minute + 1))
    position.record_exit_fill(
        order_id,
        f"ex-{order_id}",
        Decimal(price),
        position.exit_order_quantity,
        fees if fees is not None else {},
        later(minute + 2),
    )
    return order_id


def configured_policy(capital: str = "1000", now: datetime = UNIT_NOW) -> Policy:
    return Policy.configure(UNIT_CLIENT_ID, Decimal(capital), now)


def registered_client(
    email: str = "trader@example.com", name: str = "Trader", now: datetime = UNIT_NOW
) -> Client:
    return Client.register(name, email, False, now)


def event_names(events: Sequence[object]) -> list[str]:
    """Class names of domain events, e.g. of `collect_events()`: `["TradingPaused"]`."""
    return [type(e).__name__ for e in events]


def position_row(**overrides: Any) -> PositionRow:
    """A positions read-model row: an open 0.005 BTCUSDC long at 100000, stop 98000."""
    fields: dict[str, Any] = {
        "position_id": uuid4(),
        "client_id": UNIT_CLIENT_ID,
        "symbol": "BTCUSDC",
        "side": "LONG",
        "status": "open",
        "quantity": Decimal("0.005"),
        "open_quantity": Decimal("0.004995"),
        "entry_price": Decimal(100000),
        "initial_stop": Decimal(98000),
        "current_stop": Decimal(98000),
        "target_price": None,
        "realised_pnl": Decimal(0),
        "orders_in_flight": (),
        "margin": False,
        "planned_at": UNIT_NOW,
        "updated_at": UNIT_NOW,
        "updated_notification_id": 1,
    }
    return PositionRow(**(fields | overrides))
