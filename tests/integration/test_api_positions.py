"""Positions, intents (PLAN -> VALIDATE -> EXECUTE), policy and audit over HTTP."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from starlette.testclient import TestClient

from infra.bootstrap import Services
from tests.integration.test_api_support import Tenant, buy, new_tenant, set_price

# --- positions ---


def test_list_filters_by_status(api: TestClient, alice: Tenant) -> None:
    kept = buy(api, alice)["position_id"]
    sold = buy(api, alice, quantity="0.001")["position_id"]
    api.post(f"/api/positions/{sold}/close/", headers=alice.headers)
    everything = api.get("/api/positions/", headers=alice.headers).json()["positions"]
    assert {p["id"] for p in everything} == {kept, sold}
    open_ = api.get("/api/positions/?status=open", headers=alice.headers).json()["positions"]
    closed = api.get("/api/positions/?status=closed", headers=alice.headers).json()["positions"]
    assert [p["id"] for p in open_] == [kept]
    assert [p["id"] for p in closed] == [sold]
    assert api.get("/api/positions/?status=lost", headers=alice.headers).status_code == 422


def test_detail_shows_the_position_and_its_full_history(api: TestClient, alice: Tenant) -> None:
    position_id = buy(api, alice, target_price="110000")["position_id"]
    reply = api.get(f"/api/positions/{position_id}/", headers=alice.headers)
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == position_id
    assert body["symbol"] == "BTCUSDC" and body["side"] == "LONG" and body["status"] == "open"
    assert body["quantity"] == "0.00500000"
    assert body["entry_price"] == "100000.00000000"
    assert body["stop_price"] == body["initial_stop_price"] == "98000.00000000"
    assert body["target_price"] == "110000.00000000"
    assert body["pnl"] == "0.00000000"
    assert [e["type"] for e in body["events"]] == [
        "Position.Planned",
        "Position.Validated",
        "Position.EntrySubmitted",
        "Position.EntryFilled",
        "Position.ExchangeStopSubmitted",
        "Position.ExchangeStopResting",
    ]
    assert [e["version"] for e in body["events"]] == [1, 2, 3, 4, 5, 6]
    # Protected at the (paper) exchange: a stop-limit at the stop, its limit 0.5% below.
    assert body["exchange_stop"] == {
        "protected": True,
        "state": "resting",
        "client_order_id": body["events"][4]["payload"]["client_order_id"],
        "stop_price": "98000.00000000",
        "limit_price": "97510.00000000",
        "quantity": "0.00499000",
        "note": None,
    }
    assert body["events"][0]["payload"]["stop_price"] == "98000"


def test_unknown_positions_are_not_found(api: TestClient, alice: Tenant) -> None:
    missing = uuid4()
    for method, path in [
        ("GET", f"/api/positions/{missing}/"),
        ("POST", f"/api/positions/{missing}/close/"),
        ("POST", f"/api/intents/{missing}/validate/"),
        ("POST", f"/api/intents/{missing}/execute/"),
    ]:
        reply = api.request(method, path, headers=alice.headers)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.json()["success"] is False
    assert api.get("/api/positions/not-a-uuid/", headers=alice.headers).status_code == 404


def test_close_in_part_then_in_full_then_again(api: TestClient, alice: Tenant) -> None:
    position_id = buy(api, alice)["position_id"]
    path = f"/api/positions/{position_id}/close/"
    part = api.post(path, headers=alice.headers, json={"quantity": "0.002"})
    assert part.status_code == 200, part.text
    assert part.json()["message"] == "Position partly closed"
    assert part.json()["position"]["open_quantity"] == "0.00299500"
    rest = api.post(path, headers=alice.headers)
    assert rest.json()["position"]["status"] == "closed"
    again = api.post(path, headers=alice.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    trades = api.get("/api/trade/history/", headers=alice.headers).json()["trades"]
    assert sorted(t["quantity"] for t in trades) == ["0.00200000", "0.00299000"]


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        pytest.param(
            "0.00025",
            "would leave 0.00004 BTC, less than the smallest order the exchange accepts at "
            "98000 (0.00006 BTC), so its stop could never exit it; close it all, or at most "
            "0.00023 BTC",
            id="leaves dust",
        ),
        pytest.param(
            "0.00003",
            "the smallest sellable amount is 0.00005 BTC (5 USDC at 100000)",
            id="below the notional minimum",
        ),
    ],
)
def test_a_partial_close_that_would_leave_dust_is_refused_and_sends_nothing(
    api: TestClient, alice: Tenant, quantity: str, reason: str
) -> None:
    position_id = buy(api, alice, amount="30")["position_id"]  # 0.0002997 held
    path = f"/api/positions/{position_id}/close/"

    refused = api.post(path, headers=alice.headers, json={"quantity": quantity})

    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "quantity"
    assert reason in refused.json()["error"]
    detail = api.get(f"/api/positions/{position_id}/", headers=alice.headers).json()
    assert (detail["status"], detail["open_quantity"]) == ("open", "0.00029970")
    assert "ExitTriggered" not in [e["type"] for e in detail["events"]]
    most = api.post(path, headers=alice.headers, json={"quantity": "0.00023"})
    assert most.status_code == 200, most.text
    assert most.json()["position"]["open_quantity"] == "0.00006970"


# --- intents ---


def test_plan_validate_execute_step_by_step(api: TestClient, alice: Tenant) -> None:
    planned = api.post(
        "/api/intents/", headers=alice.headers, json={"stop_price": "98000", "side": "LONG"}
    )
    assert planned.status_code == 201, planned.text
    intent = planned.json()["intent"]
    assert intent["status"] == "planned" and intent["quantity"] == "0.00500000"
    early = api.post(f"/api/intents/{intent['id']}/execute/", headers=alice.headers)
    assert early.status_code == 409  # EXECUTE only from VALIDATED
    validated = api.post(f"/api/intents/{intent['id']}/validate/", headers=alice.headers)
    assert validated.status_code == 200
    assert validated.json()["intent"]["status"] == "validated"
    executed = api.post(f"/api/intents/{intent['id']}/execute/", headers=alice.headers)
    assert executed.status_code == 200, executed.text
    assert executed.json()["intent"]["status"] == "open"
    twice = api.post(f"/api/intents/{intent['id']}/validate/", headers=alice.headers)
    assert twice.status_code == 409


def test_a_plan_without_a_stop_is_recorded_and_rejected_at_validate(
    api: TestClient, alice: Tenant
) -> None:
    planned = api.post("/api/intents/", headers=alice.headers, json={"quantity": "0.001"})
    assert planned.status_code == 201
    intent_id = planned.json()["intent"]["id"]
    rejected = api.post(f"/api/intents/{intent_id}/validate/", headers=alice.headers)
    assert rejected.status_code == 422
    body = rejected.json()
    assert body["position_id"] == intent_id
    assert [v["rule"] for v in body["violations"]] == ["no_stop"]
    assert api.get(f"/api/positions/{intent_id}/", headers=alice.headers).json()["status"] == (
        "rejected"
    )


# --- policy ---


def test_policy_state_shows_the_budget(api: TestClient, alice: Tenant) -> None:
    buy(api, alice)
    body = api.get("/api/policy/", headers=alice.headers).json()
    assert body["month"] == "2026-11"
    assert body["capital"] == body["capital_base"] == "1000.00000000"
    assert body["risk_percent"] == "1"
    assert body["drawdown_limit_percent"] == "4"
    assert body["realised_pnl"] == "0.00000000"
    assert body["open_risk"] == "9.99000000"  # 0.004995 BTC held, 2000 above the stop
    assert body["remaining_budget"] == "30.01000000"
    assert body["paused"] is False and body["pause_reason"] is None
    assert body["alerts"] == []


def test_a_drawdown_pause_blocks_buys_until_a_review_resumes_trading(
    api: TestClient, alice: Tenant, operator: Tenant
) -> None:
    not_paused = api.post("/api/policy/resume/", headers=alice.headers, json={"note": "x"})
    assert not_paused.status_code == 409
    buy(api, alice)
    set_price(api, operator, "90000")  # far through the stop: about 5% of capital lost
    api.post("/api/trade/sell-btc/", headers=alice.headers)
    set_price(api, operator, "100000")
    policy = api.get("/api/policy/", headers=alice.headers).json()
    assert policy["paused"] is True
    assert "limit" in policy["pause_reason"]
    assert policy["alerts"] == ["2%", "3%"]
    blocked = api.post("/api/trade/buy-btc/", headers=alice.headers, json={"stop_price": "99900"})
    assert blocked.status_code == 422
    assert "policy_paused" in [v["rule"] for v in blocked.json()["violations"]]
    no_note = api.post("/api/policy/resume/", headers=alice.headers, json={})
    assert no_note.status_code == 422 and no_note.json()["field"] == "note"
    resumed = api.post(
        "/api/policy/resume/", headers=alice.headers, json={"note": "Reviewed the losses"}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == {"success": True, "paused": False, "resumed_by": alice.email}
    assert api.get("/api/policy/", headers=alice.headers).json()["paused"] is False
    events = [
        json.loads(line)
        for line in api.get("/api/audit/events/", headers=alice.headers).text.splitlines()
    ]
    resumes = [e for e in events if e["topic"].endswith("Policy.TradingResumed")]
    assert [e["payload"]["by"] for e in resumes] == [alice.email]
    assert resumes[0]["payload"]["note"] == "Reviewed the losses"


# --- audit ---


def test_audit_streams_the_callers_events_as_ndjson(
    api: TestClient, alice: Tenant, services: Services
) -> None:
    bob = new_tenant(services)
    buy(api, alice)
    buy(api, bob)
    reply = api.get("/api/audit/events/", headers=alice.headers)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in reply.text.splitlines()]
    assert records, "alice has events"
    assert all(
        "token_hash" not in r["payload"] or r["payload"]["token_hash"] == "[REDACTED]"
        for r in records
    )
    streams = {r["stream_id"] for r in records}
    assert str(alice.client_id) in streams and str(bob.client_id) not in streams
    ids = [r["notification_id"] for r in records]
    assert ids == sorted(ids)
    # `since` resumes after a notification id (the tenant's own streams: client and policy).
    policy_events = [r for r in records if r["topic"].startswith("domain.policy:")]
    after = api.get(
        f"/api/audit/events/?since={policy_events[0]['notification_id']}", headers=alice.headers
    )
    resumed = [json.loads(line) for line in after.text.splitlines()]
    assert [r["notification_id"] for r in resumed if r["topic"].startswith("domain.policy:")] == [
        r["notification_id"] for r in policy_events[1:]
    ]


def test_only_the_operator_reads_another_clients_events(
    api: TestClient, alice: Tenant, services: Services
) -> None:
    operator = new_tenant(services, operator=True)
    buy(api, alice)
    denied = api.get(f"/api/audit/events/?client={alice.email}", headers=operator.headers)
    assert denied.status_code == 200
    streams = {json.loads(line)["stream_id"] for line in denied.text.splitlines()}
    assert str(alice.client_id) in streams
    tenant = api.get(f"/api/audit/events/?client={operator.email}", headers=alice.headers)
    assert tenant.status_code == 403
    unknown = api.get("/api/audit/events/?client=nobody@example.com", headers=operator.headers)
    assert unknown.status_code == 404
    own = api.get(f"/api/audit/events/?client={alice.email.upper()}", headers=alice.headers)
    assert own.status_code == 200
