"""POST /api/guard/analyze/: the emotional-trading guard over HTTP, fed by the tenant's own
trade history from the read models (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.factories import open_long
from tests.integration.test_api_support import Tenant, new_tenant
from tests.integration.test_chat_support import caught_up

PLANNED_TRADE = {
    "symbol": "BTCUSDC",
    "side": "BUY",
    "entry_price": "100000",
    "stop_price": "98000",
    "target_price": "104000",
    "leverage": 1,
    "quantity": "0.005",
    "risk_percent": "1",
}


def analyze(api: TestClient, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/guard/analyze/", headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def signal_types(reply: dict[str, Any]) -> set[str]:
    return {s["type"] for s in reply["signals"]}


def test_a_planned_trade_with_stop_target_and_small_risk_is_low_risk(
    api: TestClient, alice: Tenant
) -> None:
    reply = analyze(
        api,
        alice,
        {"message": "Long BTC entry 100000 stop 98000 target 104000", "trade": PLANNED_TRADE},
    )

    assert set(reply) == {
        "success",
        "risk_level",
        "risk_score",
        "proceed_allowed",
        "requires_confirmation",
        "signals",
        "response_message",
        "parameters",
        "analyzed_at",
    }
    assert reply["success"] is True
    assert reply["risk_level"] == "LOW"
    assert reply["risk_score"] == 0
    assert reply["proceed_allowed"] is True
    assert reply["requires_confirmation"] is False
    assert signal_types(reply) == {"stop_defined", "target_defined", "small_risk"}
    stop = next(s for s in reply["signals"] if s["type"] == "stop_defined")
    assert stop == {
        "type": "stop_defined",
        "weight": -10,
        "evidence": "stop at 98000",
        "explanation": "A stop is defined, so the worst case is known before entering.",
    }
    assert reply["parameters"]["side"] == "LONG"
    assert reply["parameters"]["entry_price"] == "100000.00000000"
    assert reply["parameters"]["stop_price"] == "98000.00000000"
    assert reply["analyzed_at"] == "2026-11-02T09:00:00Z"


def test_an_emotional_request_is_blocked(api: TestClient, alice: Tenant) -> None:
    reply = analyze(api, alice, {"message": "Buy BTC NOW with 20x, guaranteed, no stop!"})

    assert reply["risk_level"] == "CRITICAL"
    assert reply["risk_score"] == 80
    assert reply["proceed_allowed"] is False
    assert signal_types(reply) == {
        "urgency",
        "overconfidence",
        "risk_blindness",
        "high_leverage",
    }
    assert reply["response_message"].startswith("Trade blocked")
    assert reply["parameters"]["leverage"] == "20"


@pytest.mark.parametrize("body", [{"message": ""}, {"message": "  \n "}, {}, {"trade": {}}])
def test_an_empty_message_is_a_400(api: TestClient, alice: Tenant, body: dict[str, Any]) -> None:
    response = api.post("/api/guard/analyze/", headers=alice.headers, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "message is required",
        "code": "invalid_message",
        "field": "message",
    }


def test_an_invalid_trade_field_is_named(api: TestClient, alice: Tenant) -> None:
    response = api.post(
        "/api/guard/analyze/",
        headers=alice.headers,
        json={"message": "buy", "trade": {"side": "UP", "stop_price": "-1"}},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"trade.side", "trade.stop_price"}


def test_the_guard_needs_a_token(api: TestClient) -> None:
    assert api.post("/api/guard/analyze/", json={"message": "buy"}).status_code == 401


def test_the_tenants_own_losing_streak_and_a_bigger_trade_right_after_raise_the_risk(
    api: TestClient, services: Services, clock: ManualClock, alice: Tenant
) -> None:
    assert services.paper is not None
    for _ in range(3):  # three losing trades, each closed 5 minutes after it opened
        services.paper.set_price("BTCUSDC", Decimal("100000"))
        position = open_long(services.ledger, alice.client_id, stop="98000")
        clock.advance(timedelta(minutes=5))
        services.paper.set_price("BTCUSDC", Decimal("99000"))
        services.ledger.close_position(alice.client_id, position.id)
        clock.advance(timedelta(minutes=5))
    caught_up(services)
    bigger = {**PLANNED_TRADE, "quantity": "0.01", "target_price": None, "risk_percent": None}

    reply = analyze(api, alice, {"message": "Buy BTC, stop 98000", "trade": bigger})

    assert signal_types(reply) == {"loss_streak", "revenge_trading", "stop_defined"}
    streak = next(s for s in reply["signals"] if s["type"] == "loss_streak")
    assert streak["evidence"] == "3 losing trades in a row"
    revenge = next(s for s in reply["signals"] if s["type"] == "revenge_trading")
    assert revenge["evidence"].startswith("this trade: size 0.01 > 0.00499, 5 min after a")
    assert reply["risk_score"] == 20 + 30 - 10
    assert reply["risk_level"] == "HIGH"
    assert reply["requires_confirmation"] is True  # HIGH: only with an explicit confirmation
    assert reply["proceed_allowed"] is False

    # Another tenant asking the same thing has no such history.
    bob = new_tenant(services)
    clean = analyze(api, bob, {"message": "Buy BTC, stop 98000", "trade": bigger})
    assert signal_types(clean) == {"stop_defined"}
    assert clean["risk_level"] == "LOW"
