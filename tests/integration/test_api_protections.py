"""The protections through the API: VALIDATE refuses with the rule and its reason, and the
trade status and the policy reply say the same, with when it lifts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from starlette.testclient import TestClient

from domain.position import ExitReason
from domain.protections import ProtectionSettings
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.integration.test_api_support import Tenant, buy, set_price

D = Decimal


def protect(services: Services, alice: Tenant, **settings: Any) -> None:
    services.ledger.configure_policy(
        alice.client_id, D(1000), protection=ProtectionSettings(**settings)
    )


def policy(api: TestClient, alice: Tenant) -> dict[str, Any]:
    reply = api.get("/api/policy/", headers=alice.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def refusal(api: TestClient, alice: Tenant) -> dict[str, str]:
    """The violations of a buy VALIDATE refuses, by rule."""
    reply = api.post("/api/trade/buy-btc/", headers=alice.headers, json={"stop_price": "99000"})
    assert reply.status_code == 422, reply.text
    return {v["rule"]: v["reason"] for v in reply.json()["violations"]}


def test_the_policy_reply_shows_the_default_protections(api: TestClient, alice: Tenant) -> None:
    buy(api, alice, stop="99000")  # the month's first entry records its capital base
    shown = policy(api, alice)["protections"]

    assert shown == {
        "stop_out_limit": 3,
        "stop_out_window_hours": 24,
        "cooldown_hours": 24,
        "consecutive_stop_outs": 0,
        "cooldown_until": None,
        "daily_loss_limit_percent": "4",
        "daily_loss_limit": "40.00000000",
        "today_realised_pnl": "0.00000000",
        "max_open_positions": 1000,
        "open_positions": 1,
    }


def test_a_stop_out_run_refuses_entries_until_the_cooldown_ends(
    api: TestClient, alice: Tenant, operator: Tenant, services: Services, clock: ManualClock
) -> None:
    protect(services, alice, stop_out_limit=1, daily_loss_limit_percent=D(10))
    position = buy(api, alice, stop="99000")
    set_price(api, operator, "98900")
    position_id = UUID(position["position_id"])
    services.ledger.close_position(alice.client_id, position_id, ExitReason.STOP_LOSS)
    set_price(api, operator, "100000")
    until = (clock.now() + timedelta(hours=24)).isoformat()

    reason = refusal(api, alice)["stop_out_cooldown"]
    assert reason == f"1 consecutive stop-outs within 24 h: no new entries until {until}"
    state = policy(api, alice)
    assert (state["can_trade"], state["reason"], state["until"]) == (False, reason, until)
    assert state["protections"]["cooldown_until"] == until
    status = api.get("/api/trade/status/", headers=alice.headers).json()
    assert (status["can_trade"], status["until"]) == (False, until)

    clock.advance(timedelta(hours=24))
    assert policy(api, alice)["can_trade"] is True
    buy(api, alice, stop="99000")


def test_the_days_loss_cap_refuses_entries_until_the_next_utc_day(
    api: TestClient, alice: Tenant, operator: Tenant, services: Services, clock: ManualClock
) -> None:
    protect(services, alice, daily_loss_limit_percent=D(1))  # a cap of 10
    buy(api, alice, stop="99000")
    set_price(api, operator, "98000")
    assert api.post("/api/trade/sell-btc/", headers=alice.headers).status_code == 200
    set_price(api, operator, "100000")
    tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()

    reason = refusal(api, alice)["daily_loss_cap"]
    assert "reached the daily cap of 1% (10)" in reason
    assert reason.endswith(f"new entries wait until {tomorrow} (UTC)")
    state = policy(api, alice)
    assert (state["can_trade"], state["until"]) == (False, tomorrow)
    assert D(state["protections"]["today_realised_pnl"]) <= D(-10)

    clock.advance(timedelta(hours=15))  # 00:00 UTC the next day
    assert policy(api, alice)["can_trade"] is True


def test_a_position_beyond_the_maximum_is_refused_until_one_closes(
    api: TestClient, alice: Tenant, services: Services
) -> None:
    protect(services, alice, max_open_positions=1)
    buy(api, alice, stop="99000")

    reason = refusal(api, alice)["max_open_positions"]
    assert reason == "1 positions are open or awaiting entry, the maximum of 1"
    state = policy(api, alice)
    assert (state["until"], state["protections"]["open_positions"]) == (
        "an open position closes",
        1,
    )

    assert api.post("/api/trade/sell-btc/", headers=alice.headers).status_code == 200
    assert policy(api, alice)["protections"]["open_positions"] == 0
    buy(api, alice, stop="99000")
