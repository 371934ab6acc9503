"""A ledger trading at the fake Binance through the real adapter, over the test's own store
and vault, and tenants whose own keys are funded there: shared by the Binance ledger tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from uuid import UUID

from domain.ledger import Ledger, TradingConfig
from domain.ports import Clock
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services
from tests.factories import register
from tests.fakes.binance import FakeBinance


@contextmanager
def ledger_at(
    fake: FakeBinance,
    services: Services,
    config: TradingConfig,
    clock: Clock | None = None,
    timeout_seconds: float = 2,
) -> Iterator[Ledger]:
    """`clock`: the services' own unless given."""
    exchange = BinanceExchange(testnet=True, base_url=fake.url, timeout_seconds=timeout_seconds)
    try:
        yield Ledger(services.store, exchange, services.vault, clock or services.clock, config)
    finally:
        exchange.close()


def funded_tenant(
    ledger: Ledger, fake: FakeBinance, key: str, secret: str, usdc: str = "10000"
) -> UUID:
    """A new client (capital 1000) trading with its own keys, which hold `usdc` at the fake."""
    client_id, _ = register(ledger, capital="1000")
    fake.fund(key, secret, {"USDC": Decimal(usdc)})
    ledger.set_credentials(ledger.client(client_id).email, key, secret)
    return client_id
