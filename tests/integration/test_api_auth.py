"""Bearer tokens, operator-only endpoints and per-token rate limits (counted in the database)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from api.auth import TokenCache
from api.rate_limit import RateLimit
from domain.errors import Unauthorized
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.integration.test_api_support import Tenant, new_tenant, running

CHEAP = "/api/positions/?limit=1"


# --- tokens ---


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer rbs_nothex_0000_secret",
        "Bearer rbs_00000000000000000000000000000000_0000_secret",
        "Bearer " + "x" * 5000,
    ],
)
def test_requests_without_a_valid_token_are_refused(
    api: TestClient, alice: Tenant, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    reply = api.get("/api/trade/status/", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.json() == {
        "success": False,
        "error": "Invalid or missing token",
        "code": "unauthorized",
    }


def test_a_tampered_token_is_refused(api: TestClient, alice: Tenant) -> None:
    tampered = alice.token[:-2] + ("AA" if not alice.token.endswith("AA") else "BB")
    reply = api.get("/api/trade/status/", headers={"Authorization": f"Bearer {tampered}"})
    assert reply.status_code == 401


def test_revoked_tokens_and_deactivated_clients_are_refused(
    services: Services, alice: Tenant
) -> None:
    second = services.ledger.issue_token(alice.email)
    with running(services, token_ttl=0) as api:
        assert api.get(CHEAP, headers=alice.headers).status_code == 200
        token_id = alice.token.split("_")[2]
        services.ledger.revoke_token(alice.client_id, token_id)
        assert api.get(CHEAP, headers=alice.headers).status_code == 401
        other = {"Authorization": f"Bearer {second}"}
        assert api.get(CHEAP, headers=other).status_code == 200
        services.ledger.set_active(alice.email, False)
        assert api.get(CHEAP, headers=other).status_code == 401


def test_the_token_cache_forgets_a_revoked_token_after_its_ttl(
    services: Services, alice: Tenant
) -> None:
    now = [0.0]
    cache = TokenCache(services.ledger, ttl=5.0, monotonic=lambda: now[0])
    key = cache.resolve(alice.token).token_key
    services.ledger.revoke_token(alice.client_id, alice.token.split("_")[2])
    now[0] = 4.9
    assert cache.cached(key) is not None  # still trusted within the TTL
    now[0] = 5.0
    assert cache.cached(key) is None
    with pytest.raises(Unauthorized):
        cache.resolve(alice.token)


def test_operator_endpoints_refuse_tenants(
    api: TestClient, alice: Tenant, services: Services
) -> None:
    operator = new_tenant(services, operator=True)
    for method, path in [("GET", "/api/projections/"), ("POST", "/api/projections/pnl/rebuild/")]:
        denied = api.request(method, path, headers=alice.headers)
        assert denied.status_code == 403, path
        assert denied.json()["code"] == "operator_only"
    status = api.get("/api/projections/", headers=operator.headers)
    assert status.status_code == 200
    assert {p["name"] for p in status.json()["projections"]} == {
        "positions",
        "trades",
        "pnl",
        "drawdown",
    }
    rebuilt = api.post("/api/projections/pnl/rebuild/", headers=operator.headers)
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["name"] == "pnl"
    unknown = api.post("/api/projections/nope/rebuild/", headers=operator.headers)
    assert unknown.status_code == 404


def test_public_endpoints_need_no_token(api: TestClient) -> None:
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"]:
        assert api.get(path).status_code == 200, path


# --- rate limits ---


# Trade history is served on the event loop, the positions list in a worker thread.
@pytest.mark.parametrize("path", [CHEAP, "/api/trade/history/?days=1"])
def test_the_request_over_the_limit_gets_429_with_retry_after(
    services: Services, alice: Tenant, clock: ManualClock, path: str
) -> None:
    bob = new_tenant(services)
    with running(services, rate_limit=RateLimit(5, "hour")) as api:
        remaining = []
        for _ in range(5):
            reply = api.get(path, headers=alice.headers)
            assert reply.status_code == 200
            assert reply.headers["x-ratelimit-limit"] == "5"
            remaining.append(reply.headers["x-ratelimit-remaining"])
        assert remaining == ["4", "3", "2", "1", "0"]
        over = api.get(path, headers=alice.headers)
        assert over.status_code == 429
        assert over.json()["code"] == "rate_limited"
        # The clock stands at 09:00:00: the hour's window ends at 10:00:00.
        assert over.headers["retry-after"] == "3600"
        assert over.headers["x-ratelimit-remaining"] == "0"
        assert int(over.headers["x-ratelimit-reset"]) == int(clock.now().timestamp()) + 3600
        # Every response counts, error replies carry the headers too.
        assert api.get(path, headers=bob.headers).headers["x-ratelimit-remaining"] == "4"
        missing = api.get(
            "/api/positions/00000000-0000-0000-0000-000000000000/", headers=bob.headers
        )
        assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "3"
        # The next window starts afresh.
        clock.advance(timedelta(hours=1))
        assert api.get(path, headers=alice.headers).status_code == 200


def test_counters_survive_a_restart(services: Services, alice: Tenant) -> None:
    with running(services, rate_limit=RateLimit(3, "hour")) as first:
        for _ in range(3):
            assert first.get(CHEAP, headers=alice.headers).status_code == 200
    # A new app instance (another replica, or after a restart) over the same database.
    with running(services, rate_limit=RateLimit(3, "hour")) as second:
        assert second.get(CHEAP, headers=alice.headers).status_code == 429


def test_the_default_limit_lets_1000_requests_an_hour_through(
    services: Services, alice: Tenant
) -> None:
    """The real default, driven concurrently in-process straight into the ASGI app."""
    assert services.settings.rate_limit == "1000/hour"

    async def hammer(app: Any, count: int) -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            gate = asyncio.Semaphore(16)

            async def one() -> int:
                async with gate:
                    return (await client.get(CHEAP, headers=alice.headers)).status_code

            return list(await asyncio.gather(*(one() for _ in range(count))))

    with running(services) as client:  # the lifespan owns the app's resources
        statuses = asyncio.run(hammer(client.app, 1001))
    assert statuses.count(200) == 1000
    assert statuses.count(429) == 1


@pytest.mark.parametrize("text", ["1000", "0/hour", "5/fortnight", "lots/hour", ""])
def test_bad_rate_limit_settings_are_refused(text: str) -> None:
    from domain.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        RateLimit.parse(text)


def test_rate_limit_settings_parse() -> None:
    assert RateLimit.parse("1000/hour") == RateLimit(1000, "hour")
    assert RateLimit.parse(" 5 / Minutes ") == RateLimit(5, "minute")
    assert RateLimit.parse("20/day").seconds == 86400
