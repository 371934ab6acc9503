"""`?as_of=`: positions, trade history, P&L and the policy as they were at an instant,
from the caller's own events up to it; an instant to come or not an instant is a 422."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from domain.ledger.spot import BuyOrder
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.integration.test_api_support import Tenant, buy, new_tenant, set_price

READS = ("/api/positions/", "/api/trade/history/", "/api/trade/pnl/", "/api/policy/")


def get(api: TestClient, tenant: Tenant, path: str, as_of: str | None = None) -> Any:
    reply = api.get(path, headers=tenant.headers, params={"as_of": as_of} if as_of else {})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_each_read_answers_as_it_would_have_before_the_sale(
    api: TestClient, alice: Tenant, operator: Tenant, services: Services, clock: ManualClock
) -> None:
    buy(api, alice, stop="99000")
    clock.advance(timedelta(hours=1))
    while_open = clock.now().isoformat()
    clock.advance(timedelta(hours=1))
    set_price(api, operator, "99500")
    assert api.post("/api/trade/sell-btc/", headers=alice.headers).status_code == 200
    bob = new_tenant(services, capital="1000")
    buy(api, bob, stop="99000")  # after the instant, and another tenant's: never seen

    now = {path: get(api, alice, path) for path in READS}
    then = {path: get(api, alice, path, while_open) for path in READS}

    assert [p["status"] for p in now["/api/positions/"]["positions"]] == ["closed"]
    assert [p["status"] for p in then["/api/positions/"]["positions"]] == ["open"]
    assert now["/api/trade/history/"]["summary"]["total_trades"] == 1
    assert [t["id"] for t in then["/api/trade/history/"]["trades"]] == [
        t["id"] for t in now["/api/trade/history/"]["trades"]
    ]
    assert then["/api/trade/history/"]["summary"] != now["/api/trade/history/"]["summary"]
    assert now["/api/trade/pnl/"] != then["/api/trade/pnl/"]
    assert now["/api/policy/"]["realised_pnl"].startswith("-")
    assert then["/api/policy/"]["realised_pnl"] == "0.00000000"
    assert then["/api/policy/"]["protections"]["open_positions"] == 1
    assert now["/api/policy/"]["protections"]["open_positions"] == 0


def test_the_present_instant_answers_as_without_it(
    api: TestClient, alice: Tenant, clock: ManualClock
) -> None:
    buy(api, alice, stop="99000")
    clock.advance(timedelta(minutes=5))
    instant = clock.now().isoformat()

    for path in READS:
        assert get(api, alice, path, instant) == get(api, alice, path), path


def raw(api: TestClient, tenant: Tenant, path: str, as_of: str | None = None) -> bytes:
    reply = api.get(path, headers=tenant.headers, params={"as_of": as_of} if as_of else {})
    assert reply.status_code == 200, reply.text
    return reply.content


def test_the_present_instant_answers_byte_for_byte_as_the_live_reads(
    api: TestClient, alice: Tenant, operator: Tenant, clock: ManualClock
) -> None:
    buy(api, alice, stop="99000")
    buy(api, alice, stop="99000")  # planned at the same instant: ordered by id
    clock.advance(timedelta(hours=1))
    set_price(api, operator, "99500")
    assert api.post("/api/trade/sell-btc/", headers=alice.headers).status_code == 200
    clock.advance(timedelta(days=1))
    buy(api, alice, stop="98500")  # open at the current price, so valued alike
    clock.advance(timedelta(minutes=5))
    instant = clock.now().isoformat()

    for path in READS:
        assert raw(api, alice, path, instant) == raw(api, alice, path), path
    assert len(get(api, alice, "/api/positions/", instant)["positions"]) == 3


def test_another_tenants_events_before_the_instant_never_appear(
    api: TestClient, alice: Tenant, services: Services, clock: ManualClock
) -> None:
    bob = new_tenant(services, capital="1000")
    theirs = buy(api, bob, stop="99000")
    buy(api, alice, stop="99000")
    clock.advance(timedelta(minutes=5))
    instant = clock.now().isoformat()

    for path in READS:
        assert raw(api, alice, path, instant) == raw(api, alice, path), path
        assert theirs["position_id"] not in raw(api, alice, path, instant).decode(), path
    bobs = get(api, bob, "/api/positions/", instant)["positions"]
    assert [p["id"] for p in bobs] == [theirs["position_id"]]


def test_events_recorded_after_a_read_with_an_earlier_time_are_in_the_next_answer(
    api: TestClient, alice: Tenant, services: Services, clock: ManualClock
) -> None:
    first = buy(api, alice, stop="99000")
    clock.advance(timedelta(hours=1))
    instant = clock.now()
    then = {path: get(api, alice, path, instant.isoformat()) for path in READS}
    assert [p["status"] for p in then["/api/positions/"]["positions"]] == ["open"]
    assert then["/api/policy/"]["protections"]["open_positions"] == 1

    clock.set(instant - timedelta(minutes=30))  # a writer whose clock is behind
    order = BuyOrder(symbol="BTCUSDC", quote_asset="USDC", stop_price=Decimal(99000))
    late = services.ledger.buy(alice.client_id, order).position
    services.ledger.close_position(alice.client_id, UUID(first["position_id"]))
    assert services.read_models.wait_for(services.store.recorder.max_notification_id() or 0)
    clock.set(instant + timedelta(hours=1))
    again = {path: get(api, alice, path, instant.isoformat()) for path in READS}

    statuses = {p["id"]: p["status"] for p in again["/api/positions/"]["positions"]}
    assert statuses == {first["position_id"]: "closed", str(late.id): "open"}
    assert again["/api/trade/history/"]["summary"]["closed_trades"] == 1
    assert again["/api/trade/history/"]["summary"]["open_trades"] == 1
    assert again["/api/trade/pnl/"] != then["/api/trade/pnl/"]
    assert again["/api/policy/"]["protections"]["open_positions"] == 1
    assert again["/api/policy/"]["realised_pnl"] != then["/api/policy/"]["realised_pnl"]


def test_before_the_first_trade_there_is_nothing_to_show(
    api: TestClient, alice: Tenant, clock: ManualClock
) -> None:
    before = (clock.now() - timedelta(seconds=1)).isoformat()
    clock.advance(timedelta(minutes=1))
    buy(api, alice, stop="99000")

    assert get(api, alice, "/api/positions/", before) == {"positions": []}
    assert get(api, alice, "/api/trade/history/", before)["trades"] == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-02T10:00:00Z", id="future"),
        pytest.param("yesterday", id="not-an-instant"),
        pytest.param("2026-11-02T08:00:00", id="no-offset"),
        pytest.param("147500", id="epoch-seconds"),
    ],
)
@pytest.mark.parametrize("path", READS)
def test_an_instant_to_come_or_not_an_instant_is_refused_on_as_of(
    api: TestClient, alice: Tenant, path: str, value: str
) -> None:
    reply = api.get(path, headers=alice.headers, params={"as_of": value})

    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == "query.as_of"
