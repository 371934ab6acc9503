"""The spec's trading endpoints over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from domain.errors import FilterFailure, OrderOutcomeUnknown
from domain.ledger import Ledger
from domain.ports import ApiCredentials, OrderRequest, OrderResult, TradingAccount
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services, build_services
from infra.clock import ManualClock
from infra.paper_exchange import PaperExchange
from infra.settings import Settings
from tests.fakes.binance import DropConnection, FakeBinance, RawResponse
from tests.integration.test_api_support import (
    Tenant,
    buy,
    new_tenant,
    running,
    services_for,
    set_price,
)

MONEY = re.compile(r"^-?\d+\.\d{8}$")
ORDER = "/api/v3/order"


# --- status and balance ---


def test_status_reports_the_configuration_for_the_caller(api: TestClient, alice: Tenant) -> None:
    reply = api.get("/api/trade/status/", headers=alice.headers)
    assert reply.status_code == 200
    body = reply.json()
    assert body["trading_enabled"] is True
    assert body["environment"] == "paper"
    assert body["has_credentials"] is False  # paper needs none
    assert body["can_trade"] is True
    assert body["user"] == alice.email
    assert body["timestamp"] == "2026-11-02T09:00:00Z"


def test_balance_of_one_asset_and_of_every_non_zero_asset(api: TestClient, alice: Tenant) -> None:
    one = api.get("/api/trade/balance/?asset=usdc", headers=alice.headers).json()
    assert one == {
        "success": True,
        "environment": "paper",
        "data": {"asset": "USDC", "free": "10000.00000000", "locked": "0.00000000"},
        "isolated_margin": [],  # no margin position, no isolated account
    }
    buy(api, alice)
    every = api.get("/api/trade/balance/", headers=alice.headers).json()["data"]
    assert every == [
        {"asset": "BTC", "free": "0.00499500", "locked": "0.00000000"},
        {"asset": "USDC", "free": "9500.00000000", "locked": "0.00000000"},
    ]
    none = api.get("/api/trade/balance/?asset=ETH", headers=alice.headers).json()["data"]
    assert none == {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"}


# --- buy ---


def test_buy_with_only_a_stop_buys_the_one_percent_quantity(api: TestClient, alice: Tenant) -> None:
    reply = buy(api, alice, stop="98000")
    trade = reply["trade"]
    # Capital 1000, 1% = 10 at risk over a 2000 stop distance: 0.005 BTC (the spec's example).
    assert trade["quantity"] == "0.00500000"
    assert trade["price"] == "100000.00000000"
    assert trade["total_cost"] == "500.00000000"
    assert trade["fee"] == "0.50000000"  # 0.1% of 0.005 BTC, valued in USDC
    assert trade["side"] == "BUY" and trade["symbol"] == "BTCUSDC"
    assert trade["stop_price"] == "98000.00000000"
    assert trade["binance_order_id"]
    assert reply["environment"] == "paper"
    assert reply["message"] == "Bought 0.00500000 BTC"
    assert all(MONEY.match(trade[k]) for k in ("quantity", "price", "total_cost", "fee"))
    # The caller reads its own write straight away.
    listed = api.get("/api/positions/", headers=alice.headers).json()["positions"]
    assert [p["id"] for p in listed] == [reply["position_id"]]
    assert listed[0]["status"] == "open"


def test_buy_by_amount_and_by_quantity(api: TestClient, alice: Tenant) -> None:
    by_amount = buy(api, alice, stop="99000", amount="300")
    assert by_amount["trade"]["quantity"] == "0.00300000"
    by_quantity = buy(api, alice, stop="99000", quantity=0.002)
    assert by_quantity["trade"]["quantity"] == "0.00200000"


def test_buy_without_a_stop_is_blocked_with_the_reason(api: TestClient, alice: Tenant) -> None:
    reply = api.post("/api/trade/buy-btc/", headers=alice.headers, json={"quantity": "0.001"})
    assert reply.status_code == 422
    body = reply.json()
    assert body["success"] is False
    assert body["field"] == "stop_price"
    assert "stop-loss" in body["error"]
    assert api.get("/api/positions/", headers=alice.headers).json()["positions"] == []


def test_buy_risking_more_than_one_percent_is_blocked_with_the_maximum_quantity(
    api: TestClient, alice: Tenant
) -> None:
    reply = api.post(
        "/api/trade/buy-btc/",
        headers=alice.headers,
        json={"quantity": "0.006", "stop_price": "98000"},
    )
    assert reply.status_code == 422
    body = reply.json()
    assert body["code"] == "risk_rule_violated"
    assert "maximum allowed quantity is 0.005" in body["error"]
    assert [v["rule"] for v in body["violations"]] == ["risk_above_limit"]
    # The rejected plan is on record, and nothing was bought.
    rejected = api.get(f"/api/positions/{body['position_id']}/", headers=alice.headers).json()
    assert rejected["status"] == "rejected"
    balance = api.get("/api/trade/balance/?asset=USDC", headers=alice.headers).json()
    assert balance["data"]["free"] == "10000.00000000"


def test_buy_lists_every_violation_at_once(api: TestClient, alice: Tenant) -> None:
    reply = api.post(
        "/api/trade/buy-btc/",
        headers=alice.headers,
        json={"quantity": "0.5", "stop_price": "101000", "target_price": "90000"},
    )
    assert reply.status_code == 422
    rules = [v["rule"] for v in reply.json()["violations"]]
    assert rules[:3] == ["stop_wrong_side", "target_wrong_side", "risk_above_limit"]


def test_without_a_quantity_the_one_percent_size_is_capped_by_the_balance(
    env: dict[str, str], clock: ManualClock
) -> None:
    with services_for(env, clock, ROBSON_PAPER_BALANCE="300") as services:
        tenant = new_tenant(services, capital="1000")
        with running(services) as api:
            trade = buy(api, tenant, stop="98000")["trade"]
    # 0.005 BTC would cost 500 USDC; 300 USDC buys 0.003.
    assert trade["quantity"] == "0.00300000"


def test_trading_disabled_gives_the_spec_sentence(env: dict[str, str], clock: ManualClock) -> None:
    with services_for(env, clock, TRADING_ENABLED="False") as services:
        tenant = new_tenant(services)
        with running(services) as api:
            status = api.get("/api/trade/status/", headers=tenant.headers).json()
            reply = api.post(
                "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": "98000"}
            )
            sell = api.post("/api/trade/sell-btc/", headers=tenant.headers, json={})
    assert status["trading_enabled"] is False and status["can_trade"] is False
    assert reply.status_code == 403
    assert reply.json() == {
        "success": False,
        "error": "Trading is disabled. Set TRADING_ENABLED=True to enable.",
        "code": "trading_disabled",
    }
    assert sell.status_code == 403


def test_no_usdc_gives_the_spec_sentence(env: dict[str, str], clock: ManualClock) -> None:
    with services_for(env, clock, ROBSON_PAPER_BALANCE="0") as services:
        tenant = new_tenant(services)
        with running(services) as api:
            reply = api.post(
                "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": "98000"}
            )
    assert reply.status_code == 400
    assert reply.json() == {
        "success": False,
        "error": "No USDC available for trading",
        "code": "insufficient_balance",
    }


# --- production (Binance, here the fake server) ---

# python-binance's Client takes (or creates) an asyncio event loop in the thread that builds
# it and never closes it; built in a request thread, that loop leaks when the thread ends.
# These tests build the adapter's clients up front, in the test's own thread.


@pytest.fixture
def production(env: dict[str, str], clock: ManualClock) -> Iterator[tuple[Services, FakeBinance]]:
    settings = Settings.from_env(
        {
            **env,
            "ROBSON_EXCHANGE": "binance",
            "BINANCE_USE_TESTNET": "False",
            "TRADING_ENABLED": "1",
        }
    )
    with FakeBinance() as fake:
        fake.set_price("BTCUSDC", Decimal("100000"))
        exchange = BinanceExchange(testnet=False, base_url=fake.url, timeout_seconds=2)
        services = build_services(settings, clock=clock, exchange=exchange)
        exchange.price("BTCUSDC")  # the public client, built in this thread
        try:
            yield services, fake
        finally:
            services.close()
            exchange.close()


def funded_tenant(services: Services, fake: FakeBinance, key: str, secret: str) -> Tenant:
    """A new tenant trading with its own keys, which hold 10000 USDC at the fake Binance."""
    tenant = new_tenant(services)
    fake.fund(key, secret, {"USDC": Decimal(10000)})
    services.ledger.set_credentials(tenant.email, key, secret)
    services.exchange.balances(TradingAccount(tenant.client_id, ApiCredentials(key, secret)))
    return tenant


def test_production_without_credentials_gives_the_spec_sentence(
    production: tuple[Services, FakeBinance],
) -> None:
    services, _ = production
    tenant = new_tenant(services)
    with running(services) as api:
        status = api.get("/api/trade/status/", headers=tenant.headers).json()
        reply = api.post(
            "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": "98000"}
        )
        balance = api.get("/api/trade/balance/", headers=tenant.headers)
    assert status["environment"] == "production"
    assert status["has_credentials"] is False and status["can_trade"] is False
    assert reply.status_code == 400
    assert reply.json() == {
        "success": False,
        "error": "Binance API credentials not configured for production mode",
        "code": "credentials_missing",
    }
    assert balance.status_code == 400


def test_the_first_production_trade_is_celebrated_once(
    production: tuple[Services, FakeBinance],
) -> None:
    services, fake = production
    tenant = funded_tenant(services, fake, "tenant-api-key-000000000", "tenant-secret-000000000")
    with running(services) as api:
        first = buy(api, tenant)
        second = buy(api, tenant)
    assert first["message"] == "🎉 Historic first production trade executed!"
    assert first["environment"] == "production"
    assert first["trade"]["binance_order_id"]
    assert second["message"] == "Bought 0.00500000 BTC"


def test_an_order_whose_outcome_is_unknown_is_202_naming_the_position(
    production: tuple[Services, FakeBinance],
) -> None:
    services, fake = production
    tenant = funded_tenant(services, fake, "unsure-api-key-000000000", "unsure-secret-000000000")
    # The order executes but its answer is lost, and so is the immediate look-up.
    fake.inject(RawResponse(503, "unavailable", execute=True), path=ORDER, method="POST")
    fake.inject(DropConnection(execute=False), path=ORDER, method="GET")
    with running(services) as api:
        reply = api.post(
            "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": "98000"}
        )
        body = reply.json()
        assert reply.status_code == 202, reply.text
        assert body["code"] == "order_outcome_unknown"
        assert "reconciliation is pending" in body["error"]
        assert body["position_id"] in body["error"]
        detail = api.get(f"/api/positions/{body['position_id']}/", headers=tenant.headers)
        assert detail.json()["status"] == "entering"


def test_only_the_operator_moves_the_shared_paper_market(
    api: TestClient, alice: Tenant, operator: Tenant, services: Services
) -> None:
    assert services.paper is not None
    before = services.paper.price("BTCUSDC")
    body = {"symbol": "BTCUSDC", "price": "1000"}  # would fire every tenant's long stops

    refused = api.post("/api/paper/price/", headers=alice.headers, json=body)

    assert refused.status_code == 403
    assert refused.json()["code"] == "operator_only"
    assert services.paper.price("BTCUSDC") == before
    moved = api.post("/api/paper/price/", headers=operator.headers, json=body)
    assert moved.status_code == 200, moved.text
    assert services.paper.price("BTCUSDC") == Decimal(1000)


def test_the_paper_price_endpoint_exists_only_on_paper(
    production: tuple[Services, FakeBinance],
) -> None:
    services, _ = production
    operator = new_tenant(services, operator=True)
    with running(services) as api:
        reply = api.post(
            "/api/paper/price/", headers=operator.headers, json={"symbol": "BTCUSDC", "price": 1}
        )
    assert reply.status_code == 404
    assert reply.json()["code"] == "not_found"


def test_no_price_yet_is_503(env: dict[str, str], clock: ManualClock) -> None:
    with services_for(env, clock, price=None) as services:
        tenant = new_tenant(services)
        with running(services) as api:
            reply = api.post(
                "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": "98000"}
            )
    assert reply.status_code == 503
    assert reply.json()["code"] == "exchange_unavailable"
    assert "No paper price for BTCUSDC" in reply.json()["error"]


# --- sell ---


def test_sell_everything_closes_every_open_long(
    api: TestClient, alice: Tenant, operator: Tenant, clock: ManualClock
) -> None:
    first = buy(api, alice)
    clock.advance(timedelta(minutes=5))
    second = buy(api, alice, stop="99000", quantity="0.002")
    set_price(api, operator, "104000")
    reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # Oldest first; each position sells what it holds in whole lot steps.
    assert [t["id"] for t in body["trades"]] == [first["position_id"], second["position_id"]]
    assert [t["quantity"] for t in body["trades"]] == ["0.00499000", "0.00199000"]
    assert body["quantity"] == "0.00698000"
    assert all(t["side"] == "SELL" and t["price"] == "104000.00000000" for t in body["trades"])
    assert all(t["position_status"] == "closed" for t in body["trades"])
    positions = api.get("/api/positions/?status=open", headers=alice.headers).json()
    assert positions["positions"] == []


def test_selling_part_splits_the_oldest_positions_first(
    api: TestClient, alice: Tenant, clock: ManualClock
) -> None:
    older = buy(api, alice, quantity="0.003")
    clock.advance(timedelta(minutes=5))
    newer = buy(api, alice, quantity="0.002")
    reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={"quantity": "0.004"})
    assert reply.status_code == 200, reply.text
    trades = reply.json()["trades"]
    # The older position (0.002997 held after the fee) is sold whole, then 0.00101 of the newer.
    assert [(t["id"], t["quantity"], t["position_status"]) for t in trades] == [
        (older["position_id"], "0.00299000", "closed"),
        (newer["position_id"], "0.00101000", "open"),
    ]
    still_open = api.get(f"/api/positions/{newer['position_id']}/", headers=alice.headers)
    assert still_open.json()["open_quantity"] == "0.00098800"


def test_selling_more_than_is_open_or_with_nothing_open(api: TestClient, alice: Tenant) -> None:
    nothing = api.post("/api/trade/sell-btc/", headers=alice.headers, json={})
    assert nothing.status_code == 400
    assert nothing.json()["error"] == "No BTC available for trading"
    buy(api, alice, quantity="0.001")
    too_much = api.post("/api/trade/sell-btc/", headers=alice.headers, json={"quantity": "1"})
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "quantity"


def btc_held(api: TestClient, tenant: Tenant) -> str:
    reply = api.get("/api/trade/balance/?asset=BTC", headers=tenant.headers)
    assert reply.status_code == 200, reply.text
    free: str = reply.json()["data"]["free"]
    return free


def test_the_spec_sale_after_two_30_usdc_buys_sells_exactly_that_in_sellable_parts(
    api: TestClient, alice: Tenant, clock: ManualClock
) -> None:
    older = buy(api, alice, amount="30")
    clock.advance(timedelta(minutes=5))
    newer = buy(api, alice, amount="30")
    # 0.0003 bought each time, 0.0000003 of it taken as the fee: 0.0002997 held each.
    assert btc_held(api, alice) == "0.00059940"

    reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={"quantity": 0.0003})

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["success"] is True and body["quantity"] == "0.00030000"
    # 0.00029 whole + 0.00001 (1 USDC) would fail the 5 USDC minimum: two sellable parts,
    # each position keeping enough for its stop at 98000 to sell (at least 0.00006).
    assert [(t["id"], t["quantity"], t["position_status"]) for t in body["trades"]] == [
        (older["position_id"], "0.00023000", "open"),
        (newer["position_id"], "0.00007000", "open"),
    ]
    assert btc_held(api, alice) == "0.00029940"


def test_a_sale_that_would_leave_dust_sells_nothing_and_says_what_can_be_sold(
    api: TestClient, alice: Tenant
) -> None:
    position = buy(api, alice, amount="30")  # 0.0002997 held

    reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={"quantity": "0.00026"})

    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["field"] == "quantity"
    assert "the nearest amounts that can be sold are 0.00023 and 0.00029 BTC" in body["error"]
    assert btc_held(api, alice) == "0.00029970"
    detail = api.get(f"/api/positions/{position['position_id']}/", headers=alice.headers).json()
    assert (detail["status"], detail["open_quantity"]) == ("open", "0.00029970")
    assert "ExitTriggered" not in [e["type"] for e in detail["events"]]


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ("0.00003", "the smallest sellable amount is 0.00005 BTC (5 USDC at 100000)"),
        ("0.000205", "must be a multiple of the lot step 0.00001 BTC"),
        ("0.0003", "at most 0.00029 BTC is held in open positions"),
    ],
)
def test_a_sale_the_exchange_would_refuse_is_refused_before_any_order(
    api: TestClient, alice: Tenant, quantity: str, reason: str
) -> None:
    buy(api, alice, amount="30")

    reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={"quantity": quantity})

    assert reply.status_code == 422, reply.text
    assert (reply.json()["field"], reply.json()["success"]) == ("quantity", False)
    assert reason in reply.json()["error"]
    assert btc_held(api, alice) == "0.00029970"


def running_on(services: Services, exchange: Any) -> AbstractContextManager[TestClient]:
    """The app, its ledger trading on `exchange` (a wrapper of the paper exchange that
    misbehaves) over the same store, vault, clock and configuration."""
    ledger = Ledger(
        services.store, exchange, services.vault, services.clock, services.ledger.config
    )
    return running(dataclasses.replace(services, ledger=ledger))


class RefusesAfter:
    """The paper exchange, refusing every order after the first `allowed` (as when the price
    moved between two parts of a sale and a part fell below the NOTIONAL minimum)."""

    def __init__(self, paper: PaperExchange, allowed: int) -> None:
        self.paper = paper
        self.name = paper.name
        self.is_live = paper.is_live
        self.allowed = allowed

    def __getattr__(self, name: str) -> object:
        return getattr(self.paper, name)

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        if self.allowed <= 0:
            raise FilterFailure("NOTIONAL", "Binance refused the order: Filter failure: NOTIONAL")
        self.allowed -= 1
        return self.paper.place_order(account, order)


def test_a_part_refused_after_others_sold_is_reported_as_not_sold_never_as_failed(
    services: Services, alice: Tenant, clock: ManualClock
) -> None:
    assert services.paper is not None
    with running(services) as api:
        older = buy(api, alice, amount="30")
        clock.advance(timedelta(minutes=5))
        buy(api, alice, amount="30")
    with running_on(services, RefusesAfter(services.paper, allowed=1)) as api:
        reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={})

        assert reply.status_code == 202, reply.text
        body = reply.json()
        assert body["success"] is True
        assert (body["quantity"], body["unsold_quantity"]) == ("0.00029000", "0.00029000")
        assert body["message"].startswith("Sold 0.00029000 BTC; 0.00029000 BTC was not sold")
        assert "NOTIONAL" in body["message"]
        assert [(t["id"], t["position_status"]) for t in body["trades"]] == [
            (older["position_id"], "closed")
        ]
        assert btc_held(api, alice) == "0.00030940"  # 0.0002997 + the older one's dust


class UnconfirmedAfter(RefusesAfter):
    """The paper exchange, executing every order after the first `allowed` but never
    answering for it (a timeout), nor when asked about it straight away."""

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        if self.allowed <= 0:
            self.paper.place_order(account, order)
            raise OrderOutcomeUnknown("Binance did not answer in time")
        self.allowed -= 1
        return self.paper.place_order(account, order)

    def find_order(self, account: TradingAccount, symbol: str, order_id: str) -> OrderResult:
        raise OrderOutcomeUnknown("Binance did not answer in time")


def test_a_part_sent_but_unconfirmed_is_reported_pending_and_the_rest_is_not_sent(
    services: Services, alice: Tenant, clock: ManualClock
) -> None:
    assert services.paper is not None
    with running(services) as api:
        for _ in range(3):
            buy(api, alice, amount="30")
            clock.advance(timedelta(minutes=5))
    with running_on(services, UnconfirmedAfter(services.paper, allowed=1)) as api:
        reply = api.post("/api/trade/sell-btc/", headers=alice.headers, json={})

        assert reply.status_code == 202, reply.text
        body = reply.json()
        assert (body["quantity"], body["pending_quantity"], body["unsold_quantity"]) == (
            "0.00029000",
            "0.00029000",
            "0.00029000",
        )
        assert body["message"] == (
            "Sold 0.00029000 BTC; 0.00029000 BTC sent, not yet confirmed by the exchange; "
            "0.00029000 BTC was not sold: not sent while an earlier part is unconfirmed "
            "(Binance did not answer in time)"
        )
        assert len(body["trades"]) == 1
        assert services.paper.orders_filled(alice.client_id) == 5  # 3 entries, 2 exits


# --- history and P&L ---


def test_history_lists_trades_with_pnl_and_a_summary(
    api: TestClient, alice: Tenant, operator: Tenant, clock: ManualClock
) -> None:
    buy(api, alice)
    set_price(api, operator, "104000")
    api.post("/api/trade/sell-btc/", headers=alice.headers, json={})
    buy(api, alice, stop="102000")
    reply = api.get("/api/trade/history/?days=30&limit=100", headers=alice.headers)
    assert reply.status_code == 200
    body = reply.json()
    closed = [t for t in body["trades"] if t["is_closed"]]
    assert len(closed) == 1
    assert closed[0]["entry_price"] == "100000.00000000"
    assert closed[0]["exit_price"] == "104000.00000000"
    assert closed[0]["is_winner"] is True
    assert Decimal(closed[0]["pnl"]) > 0
    assert body["summary"]["closed_trades"] == 1
    assert body["summary"]["open_trades"] == 1
    assert body["summary"]["winners"] == 1
    assert body["summary"]["win_rate"] == "100.0%"
    assert body["summary"]["total_pnl"] == closed[0]["pnl"]
    limited = api.get("/api/trade/history/?limit=1", headers=alice.headers).json()
    assert len(limited["trades"]) == 1


@pytest.mark.parametrize(
    ("period", "key"),
    [("daily", "2026-11-02"), ("weekly", "2026-W45"), ("monthly", "2026-11"), ("yearly", "2026")],
)
def test_pnl_by_period(
    api: TestClient, alice: Tenant, operator: Tenant, period: str, key: str
) -> None:
    buy(api, alice)
    set_price(api, operator, "98000")
    api.post("/api/trade/sell-btc/", headers=alice.headers, json={})
    reply = api.get(f"/api/trade/pnl/?period={period}&months=12", headers=alice.headers)
    assert reply.status_code == 200
    body = reply.json()
    assert body["period_type"] == period
    assert [p["period"] for p in body["periods"]] == [key]
    assert body["periods"][0]["losers"] == 1
    assert body["periods"][0]["win_rate"] == "0.0%"
    assert Decimal(body["overall"]["total_pnl"]) < 0
    assert body["overall"]["total_pnl"] == body["periods"][0]["cumulative_pnl"]


@pytest.mark.parametrize(
    "query", ["period=hourly", "months=0", "months=abc", "days=0", "limit=100000"]
)
def test_history_and_pnl_reject_bad_queries(api: TestClient, alice: Tenant, query: str) -> None:
    path = "/api/trade/history/" if query.startswith(("days", "limit")) else "/api/trade/pnl/"
    reply = api.get(f"{path}?{query}", headers=alice.headers)
    assert reply.status_code == 422
    assert reply.json()["field"].startswith("query.")
