"""One story about new entries: the trade status, the policy reply and VALIDATE's refusal
agree while a pause awaits its review and, once resumed, until the spent month ends."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from starlette.testclient import TestClient

from infra.clock import ManualClock
from tests.integration.test_api_support import Tenant, buy, set_price

SPENT = "This month's losses used up the 4% loss budget; new entries wait until 2026-12-01 (UTC)"


def lose_past_the_limit(api: TestClient, alice: Tenant, operator: Tenant) -> None:
    """One buy sold far through its stop: about 5% of capital realised in November."""
    buy(api, alice)
    set_price(api, operator, "90000")
    assert api.post("/api/trade/sell-btc/", headers=alice.headers).status_code == 200
    set_price(api, operator, "100000")


def status(api: TestClient, alice: Tenant) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/api/trade/status/", headers=alice.headers).json()
    return body


def policy(api: TestClient, alice: Tenant) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/api/policy/", headers=alice.headers).json()
    return body


def refusal(api: TestClient, alice: Tenant) -> dict[str, str]:
    """The violations of a buy VALIDATE refuses, by rule."""
    reply = api.post("/api/trade/buy-btc/", headers=alice.headers, json={"stop_price": "99900"})
    assert reply.status_code == 422, reply.text
    return {v["rule"]: v["reason"] for v in reply.json()["violations"]}


def test_an_open_month_can_trade_with_no_reason(api: TestClient, alice: Tenant) -> None:
    buy(api, alice)  # 1% of capital at stake: 3% still to lose
    assert (status(api, alice)["can_trade"], status(api, alice)["reason"]) == (True, None)
    state = policy(api, alice)
    assert (state["can_trade"], state["reason"], state["until"]) == (True, None, None)


def test_a_pause_is_reported_alike_until_a_review(
    api: TestClient, alice: Tenant, operator: Tenant
) -> None:
    lose_past_the_limit(api, alice, operator)

    told, state = status(api, alice), policy(api, alice)

    assert (told["can_trade"], told["paused"], told["until"]) == (False, True, "after a review")
    assert (state["can_trade"], state["until"], state["reason"]) == (
        False,
        "after a review",
        told["reason"],
    )
    assert refusal(api, alice)["policy_paused"] == told["reason"]


def test_after_a_resume_every_reply_says_the_spent_month_refuses_until_it_ends(
    api: TestClient, alice: Tenant, operator: Tenant, clock: ManualClock
) -> None:
    lose_past_the_limit(api, alice, operator)
    resumed = api.post("/api/policy/resume/", headers=alice.headers, json={"note": "Reviewed"})
    assert resumed.status_code == 200, resumed.text

    told, state = status(api, alice), policy(api, alice)

    assert (told["can_trade"], told["paused"], told["reason"], told["until"]) == (
        False,
        False,
        SPENT,
        "2026-12-01",
    )
    assert (state["can_trade"], state["reason"], state["until"]) == (False, SPENT, "2026-12-01")
    assert state["remaining_budget"] == "0.00000000"  # spent, never negative
    assert Decimal(state["realised_pnl"]) < Decimal(-40)
    refused = refusal(api, alice)
    assert refused["monthly_budget_exceeded"] == SPENT  # the sentence status and policy give
    assert set(refused) == {"monthly_budget_exceeded", "daily_loss_cap"}  # today's cap too

    clock.advance(timedelta(days=30))  # 2 December: a new month, a new budget
    told = status(api, alice)
    assert (told["can_trade"], told["reason"], told["until"]) == (True, None, None)
    assert policy(api, alice)["remaining_budget"] == "40.00000000"
    buy(api, alice)
