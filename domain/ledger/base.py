"""What every use case of the ledger shares: its ports, its settings and the tenant-scoped
reads (a tenant never sees another's client, policy or position)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.client import Client
from domain.errors import CredentialsMissing
from domain.ledger.past import PastStates
from domain.ledger.unit_of_work import UnitOfWork, load_client, load_policy, load_position
from domain.policy import Policy
from domain.ports import (
    ApiCredentials,
    Balance,
    Cipher,
    Clock,
    Exchange,
    MarginHolding,
    TradingAccount,
)
from domain.position import Position
from domain.store import EventStore


@dataclass(frozen=True)
class TradingConfig:
    trading_enabled: bool
    operator_credentials: ApiCredentials | None = None
    fee_buffer: Decimal = Decimal(0)
    exchange_stops: bool = True  # rest an insurance stop at the exchange after each entry
    exchange_stop_slippage: Decimal = Decimal("0.005")  # its limit, this far beyond the stop
    exchange_stop_interval: timedelta = timedelta(seconds=60)  # it moves at most this often


class LedgerBase:
    def __init__(
        self,
        store: EventStore,
        exchange: Exchange,
        cipher: Cipher,
        clock: Clock,
        config: TradingConfig,
    ) -> None:
        self.store = store
        self.exchange = exchange
        self.cipher = cipher
        self.clock = clock
        self.config = config
        self.work = UnitOfWork(store)
        self.past = PastStates(store)

    @property
    def live(self) -> bool:
        """Orders reach a real exchange (production or testnet), not the paper one."""
        return self.exchange.is_live

    # --- tenant-scoped reads ---

    def client(self, client_id: UUID) -> Client:
        return load_client(self.store, client_id)

    def credentials_for(self, client: Client) -> ApiCredentials | None:
        """The tenant's own keys; the operator's environment keys serve only the operator."""
        if client.api_key_ciphertext is not None and client.secret_key_ciphertext is not None:
            return ApiCredentials(
                self.cipher.decrypt(client.api_key_ciphertext),
                self.cipher.decrypt(client.secret_key_ciphertext),
            )
        if client.is_operator:
            return self.config.operator_credentials
        return None

    def trading_account(self, client_id: UUID) -> TradingAccount:
        """Whose keys act for the tenant; the paper exchange needs none (no load at all)."""
        if not self.exchange.is_live:
            return TradingAccount(client_id)
        return self.account_for(self.client(client_id))

    def account_for(self, client: Client) -> TradingAccount:
        credentials = self.credentials_for(client)
        if self.exchange.is_live and credentials is None:
            raise CredentialsMissing()
        return TradingAccount(client.id, credentials)

    def policy(self, client_id: UUID, cached: bool = False) -> Policy:
        """`cached=True` only in a command that saves the policy or checks it unchanged."""
        return load_policy(self.store, client_id, cached)

    def position(self, client_id: UUID, position_id: UUID, cached: bool = False) -> Position:
        """`cached=True` only in a command that saves the position (see `EventStore.load`)."""
        return load_position(self.store, client_id, position_id, cached)

    def history(self, aggregate_id: UUID) -> list[DomainEventProtocol[UUID]]:
        """Every event recorded of one aggregate, oldest first (the caller scopes the tenant)."""
        return list(self.store.events.get(aggregate_id))

    def balances(self, client_id: UUID) -> dict[str, Balance]:
        """The tenant's exchange balances, by asset."""
        return self.exchange.balances(self.trading_account(client_id))

    def isolated_margin(
        self, client_id: UUID, symbols: Iterable[str]
    ) -> dict[str, dict[str, MarginHolding]]:
        """The tenant's isolated margin accounts of these symbols: collateral, loan, interest."""
        account = self.trading_account(client_id)
        return {symbol: self.exchange.isolated_margin(account, symbol) for symbol in symbols}


class Progress(Protocol):
    """Told what a multi-step use case is doing as it goes, so an entry point can name the
    position in an error reply and count the orders sent even when a later step fails."""

    def working_on(self, position_id: UUID) -> None: ...

    def order_sent(self, kind: str) -> None: ...


class Unobserved:
    def working_on(self, position_id: UUID) -> None:
        return None

    def order_sent(self, kind: str) -> None:
        return None


UNOBSERVED = Unobserved()
