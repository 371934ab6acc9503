"""Tenant isolation: tenant B, with its own valid token, never sees or touches tenant A's data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from infra.bootstrap import Services
from tests.integration.test_api_support import (
    BACKENDS,
    Tenant,
    buy,
    new_tenant,
    set_price,
    shared_api,
)


@dataclass(frozen=True)
class World:
    """Tenant A with an open position, a closed trade and a planned intent; tenant B fresh."""

    a: Tenant
    b: Tenant
    open_id: str
    closed_id: str
    intent_id: str


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, TestClient]]:
    """One database per backend for the whole table: B's attempts change nothing of A's."""
    with shared_api(str(request.param), tmp_path_factory.mktemp("isolation")) as pair:
        yield pair


@pytest.fixture(scope="module")
def api(shared: tuple[Services, TestClient]) -> TestClient:
    return shared[1]


@pytest.fixture(scope="module")
def world(shared: tuple[Services, TestClient]) -> World:
    services, api = shared
    a, b = new_tenant(services), new_tenant(services)
    closed_id = buy(api, a, quantity="0.001")["position_id"]
    api.post(f"/api/positions/{closed_id}/close/", headers=a.headers)
    open_id = buy(api, a)["position_id"]
    planned = api.post("/api/intents/", headers=a.headers, json={"stop_price": "98000"})
    set_price(api, new_tenant(services, operator=True), "99000")
    return World(a, b, open_id, closed_id, planned.json()["intent"]["id"])


Check = Callable[[Any], bool]


def _empty_positions(body: Any) -> bool:
    return bool(body["positions"] == [])


def _no_trades(body: Any) -> bool:
    return bool(body["trades"] == [] and body["summary"]["total_trades"] == 0)


def _no_pnl(body: Any) -> bool:
    return bool(body["periods"] == [] and body["overall"]["total_trades"] == 0)


def _own_balance(body: Any) -> bool:
    return bool(
        body["data"] == [{"asset": "USDC", "free": "10000.00000000", "locked": "0.00000000"}]
    )


def _own_policy(body: Any) -> bool:
    return bool(body["open_risk"] == "0.00000000" and body["realised_pnl"] == "0.00000000")


# (method, path with {open}/{closed}/{intent}/{a_email} placeholders, body, status, check)
CASES: list[tuple[str, str, dict[str, Any] | None, int, Check | None]] = [
    ("GET", "/api/positions/{open}/", None, 404, None),
    ("GET", "/api/positions/{closed}/", None, 404, None),
    ("POST", "/api/positions/{open}/close/", {}, 404, None),
    ("POST", "/api/positions/{open}/close/", {"quantity": "0.001"}, 404, None),
    ("POST", "/api/intents/{intent}/validate/", None, 404, None),
    ("POST", "/api/intents/{intent}/execute/", None, 404, None),
    ("GET", "/api/positions/", None, 200, _empty_positions),
    ("GET", "/api/positions/?status=open", None, 200, _empty_positions),
    ("GET", "/api/positions/?status=closed", None, 200, _empty_positions),
    ("GET", "/api/trade/history/", None, 200, _no_trades),
    ("GET", "/api/trade/pnl/?period=daily", None, 200, _no_pnl),
    ("GET", "/api/trade/balance/", None, 200, _own_balance),
    ("GET", "/api/policy/", None, 200, _own_policy),
    ("POST", "/api/trade/sell-btc/", {}, 400, None),
    ("GET", "/api/audit/events/?client={a_email}", None, 403, None),
]


@pytest.mark.parametrize(
    ("method", "template", "body", "status", "check"),
    CASES,
    ids=[f"{m} {t}" for m, t, *_ in CASES],
)
def test_tenant_b_cannot_reach_tenant_a(
    api: TestClient,
    world: World,
    method: str,
    template: str,
    body: dict[str, Any] | None,
    status: int,
    check: Check | None,
) -> None:
    path = template.format(
        open=world.open_id, closed=world.closed_id, intent=world.intent_id, a_email=world.a.email
    )
    reply = api.request(method, path, headers=world.b.headers, json=body)
    assert reply.status_code == status, reply.text
    if check is not None:
        assert check(reply.json()), reply.text
    # Whatever B did, A's data is as it was.
    mine = api.get(f"/api/positions/{world.open_id}/", headers=world.a.headers).json()
    assert mine["status"] == "open" and mine["open_quantity"] == "0.00499500"
    intent = api.get(f"/api/positions/{world.intent_id}/", headers=world.a.headers).json()
    assert intent["status"] == "planned"


def test_the_audit_stream_holds_only_the_callers_events(api: TestClient, world: World) -> None:
    records = [
        json.loads(line)
        for line in api.get("/api/audit/events/", headers=world.b.headers).text.splitlines()
    ]
    streams = {r["stream_id"] for r in records}
    assert streams and str(world.a.client_id) not in streams
    assert not streams & {world.open_id, world.closed_id, world.intent_id}
    assert all(r["payload"].get("client_id") in (None, str(world.b.client_id)) for r in records)
