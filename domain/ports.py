"""Ports: what the domain needs from the outside world, as Protocols and plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Protocol
from uuid import UUID

from domain.market import OrderSide, SymbolRules


@dataclass(frozen=True)
class ApiCredentials:
    api_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class TradingAccount:
    """Whose money an order moves: the tenant, and the keys that may act for it (None on paper)."""

    client_id: UUID
    credentials: ApiCredentials | None = None


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True)
class MarginHolding:
    """One asset of an isolated margin account: what it owes (principal and interest) and
    what is free (for the quote asset, the collateral)."""

    asset: str
    borrowed: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)
    free: Decimal = Decimal(0)

    @property
    def owed(self) -> Decimal:
        return self.borrowed + self.interest


class MarginEffect(Enum):
    """Isolated-margin side effects, as Binance names them."""

    NO_SIDE_EFFECT = "NO_SIDE_EFFECT"
    MARGIN_BUY = "MARGIN_BUY"
    AUTO_REPAY = "AUTO_REPAY"


@dataclass(frozen=True)
class OrderRequest:
    """A MARKET order. Exactly one of `quantity` (base) and `quote_amount` (quote) is set."""

    symbol: str
    side: OrderSide
    client_order_id: str
    quantity: Decimal | None = None
    quote_amount: Decimal | None = None
    margin: MarginEffect | None = None  # None = spot; otherwise an isolated-margin order
    leverage: Decimal | None = None  # a margin entry's: its collateral is the value / leverage
    is_exit: bool = False  # closes exposure: goes out ahead of everything else
    # The price the sender has just seen (an exit's trigger): an exchange may check its
    # filters against it instead of asking for the price again.
    reference_price: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.quantity is None) == (self.quote_amount is None):
            raise ValueError("exactly one of quantity and quote_amount must be given")


@dataclass(frozen=True)
class StopOrderRequest:
    """A STOP_LOSS_LIMIT exit resting at the exchange: at `stop_price` it becomes a limit order
    at `limit_price`. `margin` is AUTO_REPAY on isolated margin, None on spot."""

    symbol: str
    side: OrderSide
    client_order_id: str
    quantity: Decimal
    stop_price: Decimal
    limit_price: Decimal
    margin: MarginEffect | None = None


class OrderStatus(Enum):
    FILLED = "FILLED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"  # executed in part and no longer working (EXPIRED)
    REJECTED = "REJECTED"
    PENDING = "PENDING"  # still working on the exchange


@dataclass(frozen=True)
class OrderResult:
    """What the exchange executed for one order: average price and fees per asset."""

    client_order_id: str
    exchange_order_id: str
    status: OrderStatus
    executed_quantity: Decimal
    average_price: Decimal
    quote_quantity: Decimal
    fees: dict[str, Decimal]
    executed_at: datetime


@dataclass(frozen=True)
class OrderRecord:
    """One order an account's order list shows: enough to tell whether it executed."""

    client_order_id: str
    exchange_order_id: str
    side: OrderSide
    status: OrderStatus
    executed_quantity: Decimal


@dataclass(frozen=True)
class Trade:
    """One execution an account's trade list shows, and the exchange order it belongs to."""

    exchange_order_id: str
    side: OrderSide
    quantity: Decimal
    executed_at: datetime


class Exchange(Protocol):
    """Spot and isolated-margin MARKET orders, idempotent by client order id.

    A result that is not a definite answer raises `OrderOutcomeUnknown`; the caller then
    looks the order up with `find_order`, and sends it again (under a new client order id)
    only once the order and trade lists since its submission prove it never executed.
    """

    name: str
    is_live: bool  # True when orders move real (or testnet) exchange balances with API keys

    def symbol_rules(self, symbol: str) -> SymbolRules: ...

    def price(self, symbol: str) -> Decimal: ...

    def balances(self, account: TradingAccount) -> dict[str, Balance]: ...

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult: ...

    def find_order(
        self, account: TradingAccount, symbol: str, client_order_id: str
    ) -> OrderResult | None: ...

    def orders_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[OrderRecord]:
        """Every order on `symbol` placed from `since` on (isolated margin when `margin`);
        raises `ExchangeUnavailable` when it cannot list them all."""
        ...

    def trades_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[Trade]:
        """Every execution on `symbol` from `since` on; raises when it cannot list them all."""
        ...

    def place_stop(self, account: TradingAccount, order: StopOrderRequest) -> OrderResult:
        """Rest a stop-limit order; PENDING while it rests (an outcome not known raises
        `OrderOutcomeUnknown`, and the order is then looked up by its client order id)."""
        ...

    def replace_stop(
        self, account: TradingAccount, old_client_order_id: str, order: StopOrderRequest
    ) -> OrderResult | None:
        """Cancel the resting stop `old_client_order_id` and rest `order` instead. None when
        the old order was no longer open (filled, or gone): nothing new was placed."""
        ...

    def cancel_order(
        self, account: TradingAccount, symbol: str, client_order_id: str, margin: bool
    ) -> OrderResult | None:
        """Cancel an open order; the cancelled order's state (what it executed before), or
        None when the exchange knows no OPEN order by that id (it filled, or never arrived)."""
        ...

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None: ...

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None: ...

    def isolated_margin(self, account: TradingAccount, symbol: str) -> dict[str, MarginHolding]:
        """Both assets of the `symbol` isolated margin account (zeros when it has none)."""
        ...


class Cipher(Protocol):
    """Field-level encryption for secrets kept in events (only ciphertext is ever stored)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
