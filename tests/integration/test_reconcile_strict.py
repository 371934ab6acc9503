"""Reconciling an exit on Binance as documented: a look-up may not see an order for a while
after its answer was lost, and a client order id is free again once its order filled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import OrderOutcomeUnknown
from domain.ledger import Ledger, TradingConfig
from domain.position import Status
from infra.binance_exchange import BinanceExchange
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.factories import open_long, register
from tests.fakes.binance import DropConnection, FakeBinance

ORDER = "/api/v3/order"
KEY = "grace-api-key-0000000000"
SECRET = "grace-secret-0000000000"
OTHER_BTC = Decimal("1")  # held apart from the position, e.g. by another one


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance
    clock: ManualClock


@pytest.fixture
def desk(services: Services, clock: ManualClock) -> Iterator[Desk]:
    with FakeBinance(clock=lambda: clock.now().timestamp()) as fake:
        fake.set_price("BTCUSDC", Decimal("100000"))
        exchange = BinanceExchange(testnet=True, base_url=fake.url, timeout_seconds=2)
        ledger = Ledger(
            services.store,
            exchange,
            services.vault,
            clock,
            TradingConfig(trading_enabled=True),
        )
        yield Desk(ledger, fake, clock)
        exchange.close()


def tenant(desk: Desk) -> UUID:
    client_id, _ = register(desk.ledger, capital="1000")
    desk.fake.fund(KEY, SECRET, {"USDC": Decimal("10000")})
    desk.ledger.set_credentials(desk.ledger.client(client_id).email, KEY, SECRET)
    return client_id


def test_an_exit_whose_lookup_lags_past_the_grace_is_sold_exactly_once(desk: Desk) -> None:
    client_id = tenant(desk)
    position = open_long(desk.ledger, client_id)
    held = desk.fake.balances(KEY)["BTC"]
    desk.fake.fund(KEY, SECRET, {"BTC": held + OTHER_BTC})
    # The exit executes but its answer is lost, and look-ups miss it for 45 s (> the 30 s grace).
    desk.fake.lookup_delay_seconds = 45
    desk.fake.inject(DropConnection(execute=True), path=ORDER, method="POST")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.close_position(client_id, position.id)

    desk.clock.advance(timedelta(seconds=31))
    desk.ledger.reconcile(position.id)
    desk.clock.advance(timedelta(seconds=30))
    settled = desk.ledger.reconcile(position.id)

    sells = [o for o in desk.fake.orders(KEY) if o["side"] == "SELL" and o["status"] == "FILLED"]
    assert len(sells) == 1
    assert settled is not None and settled.status is Status.CLOSED
    assert desk.fake.balances(KEY)["BTC"] == OTHER_BTC + settled.dust_quantity
