"""A real `robson serve` whose PostgreSQL stops and starts again: every request is answered,
503 `database_unavailable` while it is away (liveness stays 200), normally once it is back.

The client's own timeout is a few seconds, so a request left hanging fails the test; how
fast the answers come is measured by tests/bench/bench_outage.py, not asserted here.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.outage import ENDPOINTS, call, cluster, environment, serve, tenant
from tests.e2e.serving import robson

CLIENT_TIMEOUT_SECONDS = 5.0  # a hang fails the test
RECOVERY_DEADLINE_SECONDS = 30.0


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.TimeoutException:
        return False


@pytest.mark.slow
def test_every_request_is_answered_503_while_the_database_is_away_and_normally_after(
    tmp_path: Path,
) -> None:
    with cluster() as postgres:
        env = environment(str(tmp_path / "home"), f"{postgres.url}?schema=robson")
        robson(env, "migrate")
        alice = tenant(env, "alice@example.com")
        bob = tenant(env, "bob@example.com")  # first seen during the outage: not cached
        market = tenant(env, "ops@example.com", operator=True)
        with (
            serve(env) as served,
            httpx.Client(base_url=served.url, timeout=CLIENT_TIMEOUT_SECONDS) as http,
        ):
            price = {"symbol": "BTCUSDC", "price": "100000"}
            assert http.post("/api/paper/price/", headers=market, json=price).status_code == 200
            for method, path in ENDPOINTS:
                assert call(http, method, path, alice).status_code == 200, path

            postgres.stop()
            assert http.get("/healthz").json() == {"status": "ok"}
            for auth in (alice, bob):
                for method, path in ENDPOINTS:
                    reply = call(http, method, path, auth)
                    assert reply.status_code == 503, (path, reply.text)
                    if path == "/readyz":
                        assert reply.json()["database"] == "unreachable"
                        continue
                    body = reply.json()
                    assert body["code"] == "database_unavailable", (path, body)
                    if "position_id" in body:  # an order may have gone out: never "failed"
                        assert body["outcome"] == "unknown"
            assert http.get("/healthz").status_code == 200

            postgres.start()
            deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
            while not _ready(http) and time.monotonic() < deadline:
                time.sleep(0.1)  # polling the service's own readiness
            for auth in (alice, bob):
                for method, path in ENDPOINTS:
                    reply = call(http, method, path, auth)
                    assert reply.status_code == 200, (path, reply.text)
            bought = call(http, "POST", "/api/trade/buy-btc/", bob).json()
            assert bought["success"] is True and bought["trade"]["quantity"]
