"""Isolated-margin sizing and opening over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from domain.market import BTCUSDC, Side
from domain.sizing import margin_size
from infra.bootstrap import Services
from tests.integration.test_api_support import Tenant

CALCULATE = "/api/margin/position/calculate/"
OPEN = "/api/margin/position/open/"


def test_calculate_sizes_by_the_one_percent_rule(api: TestClient, alice: Tenant) -> None:
    reply = api.post(
        CALCULATE,
        headers=alice.headers,
        json={"side": "LONG", "entry_price": 100000, "stop_price": 98000},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "symbol": "BTCUSDC",
        "side": "LONG",
        "quantity": "0.00500000",
        "position_value": "500.00000000",
        "margin_required": "166.66666667",  # leverage 3 by default
        "risk_amount": "10.00000000",
        "risk_percent": "1.0000",
        "stop_distance": "2000.00000000",
        "stop_distance_percent": "2.0000",
        "is_capped": False,
        "cap_reason": None,
    }


def test_calculate_caps_the_margin_at_half_the_capital(api: TestClient, alice: Tenant) -> None:
    # A 0.1% stop sizes 0.1 BTC (10000 USDC); at 1x that is far above half of 1000.
    reply = api.post(
        CALCULATE,
        headers=alice.headers,
        json={
            "side": "SHORT",
            "entry_price": "100000",
            "stop_price": "100100",
            "leverage": 1,
            "capital": "1000",
        },
    )
    body = reply.json()
    assert body["is_capped"] is True
    assert body["quantity"] == "0.00500000"
    assert body["margin_required"] == "500.00000000"
    assert body["risk_amount"] == "0.50000000"
    assert "50% of capital" in body["cap_reason"]


def test_the_cap_never_lets_margin_exceed_half_the_capital() -> None:
    for entry, stop, leverage in [("100000", "99990", "1"), ("100000", "99000", "2")]:
        size = margin_size(
            Side.LONG,
            Decimal(entry),
            Decimal(stop),
            Decimal(1000),
            Decimal(leverage),
            Decimal(1),
            BTCUSDC,
        )
        assert size.margin_required <= Decimal(500)
        assert size.risk_amount <= Decimal(10)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stop_price": 101000}, "stop_price"),  # wrong side for a LONG
        ({"leverage": 11}, "leverage"),
        ({"risk_percent": 2}, "risk_percent"),
        ({"side": "UP"}, "side"),
        ({"symbol": "DOGEUSDC"}, "symbol"),
        ({"capital": -5}, "capital"),
    ],
)
def test_calculate_rejects_what_can_never_be_valid(
    api: TestClient, alice: Tenant, change: dict[str, Any], field: str
) -> None:
    body = {"side": "LONG", "entry_price": 100000, "stop_price": 98000, **change}
    reply = api.post(CALCULATE, headers=alice.headers, json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field


def test_a_dry_run_is_recorded_and_reported_but_sends_nothing_and_reserves_nothing(
    api: TestClient, alice: Tenant
) -> None:
    reply = api.post(
        OPEN,
        headers=alice.headers,
        json={"side": "LONG", "entry_price": 100000, "stop_price": 98000},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["mode"] == "DRY_RUN"
    assert body["valid"] is True and body["violations"] == []
    assert body["calculation"]["quantity"] == "0.00500000"
    detail = api.get(f"/api/positions/{body['position_id']}/", headers=alice.headers).json()
    assert detail["status"] == "cancelled"
    kinds = [e["type"] for e in detail["events"]]
    assert kinds == ["Position.Planned", "Position.Validated", "Position.Cancelled"]
    policy = api.get("/api/policy/", headers=alice.headers).json()
    assert policy["open_risk"] == "0.00000000"
    balance = api.get("/api/trade/balance/?asset=USDC", headers=alice.headers).json()
    assert balance["data"]["free"] == "10000.00000000"


def test_a_dry_run_that_would_be_rejected_says_why(api: TestClient, alice: Tenant) -> None:
    reply = api.post(
        OPEN,
        headers=alice.headers,
        json={"side": "LONG", "entry_price": 100000, "stop_price": 98000, "capital": 2000},
    )
    body = reply.json()
    assert reply.status_code == 200
    assert body["valid"] is False
    assert [v["rule"] for v in body["violations"]] == ["risk_above_limit"]


@pytest.mark.parametrize(
    ("side", "stop", "order_side_quantity"),
    [("LONG", "98000", "0.00500000"), ("SHORT", "102000", "0.00500000")],
)
def test_opening_for_real_on_paper_records_the_stop(
    api: TestClient, alice: Tenant, side: str, stop: str, order_side_quantity: str
) -> None:
    reply = api.post(
        OPEN,
        headers=alice.headers,
        json={
            "side": side,
            "entry_price": 100000,
            "stop_price": stop,
            "dry_run": False,
            "leverage": 2,
        },
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["mode"] == "PAPER"
    assert body["status"] == "open"
    assert body["quantity"] == order_side_quantity
    assert body["stop_price"] == f"{stop}.00000000"
    assert body["entry_order_id"]
    detail = api.get(f"/api/positions/{body['position_id']}/", headers=alice.headers).json()
    assert detail["side"] == side and detail["margin"] is True
    assert detail["initial_stop_price"] == f"{stop}.00000000"


def test_a_paper_margin_long_posts_only_its_collateral_and_shows_its_loan(
    api: TestClient, alice: Tenant
) -> None:
    opened = api.post(
        OPEN,
        headers=alice.headers,
        json={
            "side": "LONG",
            "entry_price": 100000,
            "stop_price": 98000,
            "dry_run": False,
            "leverage": 2,
        },
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["calculation"]["margin_required"] == "250.00000000"

    balance = api.get("/api/trade/balance/", headers=alice.headers).json()

    # 0.005 BTC at 100000 = 500 USDC at 2x: 250 of collateral leaves the 10000 wallet,
    # the other 250 is borrowed in the BTCUSDC isolated account.
    assert {b["asset"]: b["free"] for b in balance["data"]} == {"USDC": "9750.00000000"}
    assert balance["isolated_margin"] == [
        {
            "symbol": "BTCUSDC",
            "assets": [
                {
                    "asset": "BTC",
                    "free": "0.00499500",
                    "borrowed": "0.00000000",
                    "interest": "0.00000000",
                    "net_asset": "0.00499500",
                },
                {
                    "asset": "USDC",
                    "free": "0.00000000",
                    "borrowed": "250.00000000",
                    "interest": "0.00000000",
                    "net_asset": "-250.00000000",
                },
            ],
        }
    ]


def test_closing_a_paper_margin_long_repays_the_loan_and_returns_the_rest(
    api: TestClient, alice: Tenant, services: Services
) -> None:
    body = {"side": "LONG", "entry_price": 100000, "stop_price": 98000, "dry_run": False}
    opened = api.post(OPEN, headers=alice.headers, json={**body, "leverage": 2}).json()

    closed = api.post(f"/api/positions/{opened['position_id']}/close/", headers=alice.headers)

    assert closed.status_code == 200, closed.text
    balance = api.get("/api/trade/balance/", headers=alice.headers).json()
    assert balance["isolated_margin"] == []
    assert services.paper is not None
    assert services.paper.borrowed(alice.client_id) == {}
    spot = {b["asset"]: b["free"] for b in balance["data"]}
    # 9750 + 0.00499 BTC sold (the lot step) at 100000 less 0.1% fee, less the 250 repaid;
    # the 0.000005 BTC the step left behind comes back to the spot wallet too.
    assert spot == {"USDC": "9998.50100000", "BTC": "0.00000500"}
