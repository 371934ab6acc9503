"""Idempotency-Key on the order-placing POSTs: a retry with the same key never places a second
order, on SQLite and PostgreSQL, across restarts, per tenant, for 24 hours."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError
from starlette.testclient import TestClient

from domain.errors import ExchangeUnavailable
from infra.bootstrap import Services
from infra.clock import ManualClock
from infra.idempotency_keys import TABLE
from tests.factories import long_plan
from tests.integration.test_api_support import Tenant, new_tenant, running, services_for

BUY = "/api/trade/buy-btc/"
CHAT = "/api/chat/"
Reply = Any  # the test client's response (httpx or httpx2, as Starlette finds them)


def post(
    client: TestClient, tenant: Tenant, key: str | None, body: dict[str, Any], path: str = BUY
) -> Reply:
    headers = {**tenant.headers, **({"Idempotency-Key": key} if key is not None else {})}
    return client.post(path, headers=headers, json=body)


def positions(services: Services, tenant: Tenant) -> int:
    return len(services.read_models.positions(tenant.client_id, None, 500))


def stored_keys(services: Services, tenant: Tenant) -> int:
    database = services.idempotency_keys.database
    with database.session() as session:
        rows = session.execute(
            f"SELECT count(*) FROM {database.qualified(TABLE)} WHERE tenant = %s",
            (str(tenant.client_id),),
        )
    return int(rows[0][0])


def assert_replayed(first: Reply, again: Reply) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


def test_a_retried_buy_with_the_same_key_gets_the_first_reply_and_buys_once(
    services: Services,
) -> None:
    with running(services) as client:
        tenant = new_tenant(services)
        first = post(client, tenant, "order-1", {"stop_price": "98000"})
        assert first.status_code == 200, first.text
        again = post(client, tenant, "order-1", {"stop_price": 98000})  # same value, respelled
        assert_replayed(first, again)
        assert positions(services, tenant) == 1
        unkeyed = post(client, tenant, None, {"stop_price": "98000"})
        assert unkeyed.status_code == 200  # without a key, every request is a new order
        assert positions(services, tenant) == 2


def test_a_refusal_is_kept_and_replayed_too(services: Services) -> None:
    with running(services) as client:
        tenant = new_tenant(services)
        refused = post(client, tenant, "wrong-side", {"stop_price": "101000"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "risk_rule_violated"
        assert_replayed(refused, post(client, tenant, "wrong-side", {"stop_price": "101000"}))


def test_the_same_key_with_another_body_or_path_is_a_422(services: Services) -> None:
    with running(services) as client:
        tenant = new_tenant(services)
        assert post(client, tenant, "k", {"stop_price": "98000"}).status_code == 200
        for body, path in (
            ({"stop_price": "97000"}, BUY),
            ({}, "/api/trade/sell-btc/"),
        ):
            reused = post(client, tenant, "k", body, path)
            assert reused.status_code == 422, reused.text
            assert reused.json()["code"] == "idempotency_key_reused"
            assert reused.json()["field"] == "Idempotency-Key"
        assert positions(services, tenant) == 1


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "caf\u00e9", "tab\there", "line\x7f"],
    ids=["empty", "blank", "too-long", "not-ascii", "tab", "del"],
)
def test_a_key_that_is_not_1_to_255_printable_ascii_is_a_422_naming_the_header(
    services: Services, key: str
) -> None:
    with running(services) as client:
        tenant = new_tenant(services)
        auth = [(name.encode(), value.encode()) for name, value in tenant.headers.items()]
        headers = [*auth, (b"Idempotency-Key", key.encode("latin-1"))]
        refused = client.post(BUY, headers=headers, json={"stop_price": "98000"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "Idempotency-Key"
        twice = [*auth, (b"Idempotency-Key", b"a"), (b"Idempotency-Key", b"b")]
        assert client.post(BUY, headers=twice, json={"stop_price": "98000"}).status_code == 422
        longest = post(client, tenant, "~" * 255, {"stop_price": "98000"})
        assert longest.status_code == 200, longest.text
        assert positions(services, tenant) == 1


def test_keys_are_per_tenant(services: Services) -> None:
    with running(services) as client:
        alice, bob = new_tenant(services), new_tenant(services)
        mine = post(client, alice, "shared-key", {"stop_price": "98000"})
        theirs = post(client, bob, "shared-key", {"stop_price": "97000"})
        assert mine.status_code == theirs.status_code == 200
        assert mine.json()["position_id"] != theirs.json()["position_id"]
        assert_replayed(mine, post(client, alice, "shared-key", {"stop_price": "98000"}))
        assert_replayed(theirs, post(client, bob, "shared-key", {"stop_price": "97000"}))
        assert positions(services, alice) == positions(services, bob) == 1


def test_a_request_still_running_with_the_same_key_gets_a_409(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request is held inside the exchange; its twin is refused meanwhile, and
    gets the first reply once it has ended."""
    assert services.paper is not None
    entered, release = threading.Event(), threading.Event()
    place = services.paper.place_order

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return place(*args, **kwargs)

    monkeypatch.setattr(services.paper, "place_order", held)
    with running(services) as client:
        tenant = new_tenant(services)
        replies: list[Reply] = []
        first = threading.Thread(
            target=lambda: replies.append(post(client, tenant, "twin", {"stop_price": "98000"}))
        )
        first.start()
        try:
            assert entered.wait(30)
            twin = post(client, tenant, "twin", {"stop_price": "98000"})
        finally:
            release.set()
            first.join(30)
        assert twin.status_code == 409, twin.text
        assert twin.json()["code"] == "idempotency_key_in_progress"
        assert replies[0].status_code == 200, replies[0].text
        assert_replayed(replies[0], post(client, tenant, "twin", {"stop_price": "98000"}))
        assert positions(services, tenant) == 1


def test_of_concurrent_claims_of_one_key_exactly_one_wins(
    services: Services, clock: ManualClock
) -> None:
    now = clock.now()
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def claim() -> None:
        barrier.wait(10)
        won.append(services.idempotency_keys.claim("t", "k", "f", now, now - timedelta(days=1)))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False] * 7 + [True]


def test_a_key_outlives_a_restart(env: dict[str, str], clock: ManualClock) -> None:
    with services_for(env, clock) as first_life, running(first_life) as client:
        tenant = new_tenant(first_life)
        first = post(client, tenant, "before-restart", {"stop_price": "98000"})
        assert first.status_code == 200, first.text
    with services_for(env, clock) as second_life, running(second_life) as client:
        assert_replayed(first, post(client, tenant, "before-restart", {"stop_price": "98000"}))
        assert positions(second_life, tenant) == 1


def test_keys_are_kept_24_hours_then_forgotten_and_purged(
    services: Services, clock: ManualClock
) -> None:
    with running(services) as client:
        tenant = new_tenant(services)
        first = post(client, tenant, "daily", {"stop_price": "98000"})
        assert post(client, tenant, "other", {"stop_price": "98000"}).status_code == 200
        clock.advance(timedelta(hours=23, minutes=59))
        assert_replayed(first, post(client, tenant, "daily", {"stop_price": "98000"}))
        assert positions(services, tenant) == 2
        clock.advance(timedelta(minutes=11))  # past 24 hours, and a purge is due (10 min)
        fresh = post(client, tenant, "daily", {"stop_price": "98000"})
        assert fresh.status_code == 200, fresh.text
        assert "idempotent-replayed" not in fresh.headers
        assert fresh.json()["position_id"] != first.json()["position_id"]
        assert positions(services, tenant) == 3
        assert stored_keys(services, tenant) == 1  # "other" was purged, "daily" taken anew


def _failing(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, error: Exception, after: bool
) -> Callable[[], None]:
    """Make `owner.name` raise `error` (after doing its work, if `after`); returns the undo."""
    original = getattr(owner, name)

    def broken(*args: Any, **kwargs: Any) -> Any:
        if after:
            original(*args, **kwargs)
        raise error

    monkeypatch.setattr(owner, name, broken)
    return lambda: monkeypatch.setattr(owner, name, original)


def test_a_failure_before_any_order_frees_the_key_for_a_retry(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert services.paper is not None
    heal = _failing(
        monkeypatch, services.paper, "balances", ExchangeUnavailable("exchange down"), False
    )
    with running(services) as client:
        tenant = new_tenant(services)
        down = post(client, tenant, "retry-me", {"stop_price": "98000"})
        assert down.status_code == 503, down.text
        assert positions(services, tenant) == 0
        heal()
        retried = post(client, tenant, "retry-me", {"stop_price": "98000"})
        assert retried.status_code == 200, retried.text
        assert "idempotent-replayed" not in retried.headers
        assert_replayed(retried, post(client, tenant, "retry-me", {"stop_price": "98000"}))
        assert positions(services, tenant) == 1


def test_a_failure_after_the_order_may_have_executed_never_orders_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order fills, then the database fails: the 503 is not kept as the answer, and a
    retry with the key is told the outcome is unknown (naming the position), never sent on."""
    heal = _failing(
        monkeypatch,
        services.ledger,
        "execute_position",
        OperationalError("connection lost"),
        True,
    )
    with running(services) as client:
        tenant = new_tenant(services)
        lost = post(client, tenant, "filled", {"stop_price": "98000"})
        assert lost.status_code == 503, lost.text
        heal()
        retried = post(client, tenant, "filled", {"stop_price": "98000"})
        assert retried.status_code == 409, retried.text
        assert retried.json()["code"] == "idempotency_key_outcome_unknown"
        assert retried.json()["position_id"] == lost.json()["position_id"]
        assert positions(services, tenant) == 1


def test_every_order_placing_operation_documents_the_header(services: Services) -> None:
    placing = {
        ("post", "/api/trade/buy-btc/"),
        ("post", "/api/trade/sell-btc/"),
        ("post", "/api/margin/position/open/"),
        ("post", "/api/intents/{id}/execute/"),
        ("post", "/api/positions/{id}/close/"),
        ("post", "/api/chat/confirm/"),
        ("post", "/api/chat/"),  # "confirm <id>" executes a proposed trade
    }
    with running(services) as client:
        document = client.get("/openapi.json").json()
    documented = set()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            if "Idempotency-Key" in names:
                documented.add((method, path))
                assert {"409", "422"} <= set(operation["responses"])
    assert documented == placing


def test_a_reply_that_could_not_be_kept_is_still_sent_and_its_key_never_reused(
    services: Services, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order filled but its reply could not be stored (the database went away): the
    client still gets the true reply; a retry is held off, then told the outcome is unknown
    once the first could no longer be running, and nothing is ordered twice."""
    _failing(monkeypatch, services.idempotency_keys, "finish", OperationalError("gone"), False)
    with running(services) as client:
        tenant = new_tenant(services)
        first = post(client, tenant, "unsaved", {"stop_price": "98000"})
        assert first.status_code == 200, first.text
        running_still = post(client, tenant, "unsaved", {"stop_price": "98000"})
        assert running_still.json()["code"] == "idempotency_key_in_progress"
        clock.advance(timedelta(minutes=6))
        stale = post(client, tenant, "unsaved", {"stop_price": "98000"})
        assert stale.status_code == 409, stale.text
        assert stale.json()["code"] == "idempotency_key_outcome_unknown"
        assert positions(services, tenant) == 1


def proposed(services: Services, tenant: Tenant) -> str:
    """A trade proposed in chat, waiting for the tenant's "confirm <id>"."""
    proposal = services.assistant.proposals.propose(tenant.client_id, uuid4(), long_plan())
    assert proposal.awaiting_confirmation
    return str(proposal.position.id)


def test_a_retried_chat_confirmation_with_the_same_key_gets_the_first_reply_and_buys_once(
    services: Services,
) -> None:
    with running(services) as client:
        tenant = new_tenant(services, capital="1000")
        intent_id = proposed(services, tenant)
        message = {"message": f"confirm {intent_id}"}
        first = post(client, tenant, "chat-1", message, CHAT)
        assert first.status_code == 200, first.text
        assert first.json()["execution"]["status"] == "open"

        again = post(client, tenant, "chat-1", message, CHAT)

        assert_replayed(first, again)
        assert paper_orders(services, tenant) == 1
        reused = post(client, tenant, "chat-1", {"message": f"confirm  {intent_id}"}, CHAT)
        assert reused.status_code == 422, reused.text
        assert reused.json()["code"] == "idempotency_key_reused"
        assert reused.json()["field"] == "Idempotency-Key"
        unkeyed = post(client, tenant, None, message, CHAT)
        assert unkeyed.status_code == 409  # without a key, the proposal itself refuses
        assert unkeyed.json()["code"] == "already_confirmed"
        assert paper_orders(services, tenant) == 1


def paper_orders(services: Services, tenant: Tenant) -> int:
    assert services.paper is not None
    return services.paper.orders_filled(tenant.client_id)
