"""Paper trading on Binance's real prices (ROBSON_PAPER_PRICES=binance), read over real HTTP
from the fake Binance's public GET /api/v3/ticker/price, and the symbols paper trades."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from domain.errors import ConfigurationError, InvalidInput
from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import ExitReason, Status
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services, build_services
from infra.clock import ManualClock
from infra.paper_prices import CachedPrices, PricesFromBinance
from infra.settings import Settings
from tests.factories import register
from tests.fakes.binance import FakeBinance, FakeSymbol
from tests.integration.test_api_support import new_tenant, running
from workers.jobs import Job
from workers.worker import Worker

ETHUSDC = FakeSymbol("ETHUSDC", "ETH", "USDC", step_size=Decimal("0.0001"))


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance() as server:
        server.set_price("BTCUSDC", Decimal("100000"))
        server.add_symbol(ETHUSDC, Decimal("3000"))
        yield server


@pytest.fixture
def live(env: dict[str, str], clock: ManualClock, fake: FakeBinance) -> Iterator[Services]:
    real = {"ROBSON_PAPER_PRICES": "binance", "ROBSON_BINANCE_BASE_URL": fake.url}
    built = build_services(Settings.from_env({**env, **real}), clock=clock)
    yield built
    built.close()


def manual_cache(fake: FakeBinance) -> tuple[CachedPrices, list[float]]:
    """Binance prices cached 2 s on a clock the test moves."""
    now = [0.0]
    market = BinanceExchange(testnet=False, base_url=fake.url)
    return CachedPrices(market, ttl_seconds=2.0, monotonic=lambda: now[0]), now


def test_paper_fills_at_binances_last_price(live: Services, fake: FakeBinance) -> None:
    fake.set_price("BTCUSDC", Decimal("101234.56"))
    client_id, _ = register(live.ledger, capital="1000")

    position = live.ledger.plan_validate_execute(
        client_id, PlanRequest(symbol="BTCUSDC", side=Side.LONG, stop_price=Decimal("99000"))
    )

    assert position.status is Status.OPEN
    assert position.average_entry_price == Decimal("101234.56")
    assert fake.request_count("/api/v3/ticker/price") >= 1


def test_a_stop_fires_when_binances_price_crosses_it(live: Services, fake: FakeBinance) -> None:
    assert live.paper is not None
    live.paper.market, now = manual_cache(fake)
    client_id, _ = register(live.ledger, capital="1000")
    position = live.ledger.plan_validate_execute(
        client_id, PlanRequest(symbol="BTCUSDC", side=Side.LONG, stop_price=Decimal("98000"))
    )
    fake.set_price("BTCUSDC", Decimal("97500"))
    now[0] += 2.0  # the cached 100000 expires

    (action,) = Worker.from_services(live).tick()

    assert (action.job, action.reason) == (Job.STOPS, ExitReason.STOP_LOSS)
    closed = live.ledger.position(client_id, position.id)
    assert closed.status is Status.CLOSED
    assert closed.trigger_price == Decimal("97500")


def test_a_tick_costs_one_request_per_symbol(fake: FakeBinance) -> None:
    prices, now = manual_cache(fake)

    for _ in range(5):
        assert prices.price("BTCUSDC") == Decimal("100000")
        assert prices.price("ETHUSDC") == Decimal("3000")
    assert fake.request_count("/api/v3/ticker/price") == 2

    fake.set_price("BTCUSDC", Decimal("100500"))
    now[0] += 1.9
    assert prices.price("BTCUSDC") == Decimal("100000")  # still within the 2 s
    now[0] += 0.1
    assert prices.price("BTCUSDC") == Decimal("100500")
    assert fake.request_count("/api/v3/ticker/price") == 3


def test_hand_set_prices_are_refused_while_prices_are_real(live: Services) -> None:
    assert live.paper is not None
    with pytest.raises(PricesFromBinance, match="come from Binance"):
        live.paper.set_price("BTCUSDC", Decimal("1000"))
    operator = new_tenant(live, operator=True)

    with running(live) as api:
        reply = api.post(
            "/api/paper/price/",
            headers=operator.headers,
            json={"symbol": "BTCUSDC", "price": "1000"},
        )

    assert reply.status_code == 409
    assert reply.json()["code"] == "paper_prices_from_binance"
    assert "ROBSON_PAPER_PRICES=binance" in reply.json()["error"]


# --- the symbols paper trades ---


def test_paper_trades_eth_and_sol_with_binances_filters(services: Services) -> None:
    assert services.paper is not None
    eth, sol = services.paper.symbol_rules("ETHUSDC"), services.paper.symbol_rules("solusdc")
    assert (eth.tick_size, eth.step_size, eth.min_qty, eth.min_notional) == (
        Decimal("0.01"),
        Decimal("0.0001"),
        Decimal("0.0001"),
        Decimal("5"),
    )
    assert (sol.step_size, sol.min_qty) == (Decimal("0.001"), Decimal("0.001"))
    services.paper.set_price("ETHUSDC", Decimal("3000"))
    client_id, _ = register(services.ledger, capital="1000")

    position = services.ledger.plan_validate_execute(
        client_id, PlanRequest(symbol="ETHUSDC", side=Side.LONG, stop_price=Decimal("2940"))
    )

    # 1% of 1000 = 10 at risk over a 60 stop distance: 0.1666 ETH, floored to the 0.0001 step
    assert position.quantity == Decimal("0.1666")
    assert position.status is Status.OPEN


def test_the_paper_symbols_are_configurable(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "ROBSON_PAPER_SYMBOLS": "btcusdc, ETHUSDC"})
    assert settings.paper_symbols == ("BTCUSDC", "ETHUSDC")
    built = build_services(settings)
    try:
        assert built.paper is not None
        with pytest.raises(InvalidInput, match="'SOLUSDC'; supported: BTCUSDC, ETHUSDC"):
            built.paper.symbol_rules("SOLUSDC")
    finally:
        built.close()


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("ROBSON_PAPER_SYMBOLS", "BTCUSDC,DOGEUSDC", "does not know the filters of 'DOGEUSDC'"),
        ("ROBSON_PAPER_SYMBOLS", " , ", "at least one symbol"),
        ("ROBSON_PAPER_PRICES", "coingecko", "must be manual or binance"),
    ],
)
def test_unknown_paper_settings_refuse_to_start(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        Settings.from_env({name: value})
