"""Two `robson serve` processes on one PostgreSQL schema share Idempotency-Keys: a retry that
reaches the other replica gets the first reply, not a second order."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from infra.settings import Settings
from tests.conftest import POSTGRES_URL, drop_schema
from tests.e2e.serving import new_client, robson, robson_serve
from tests.e2e.test_serve import environment

__all__ = ["environment"]  # the fixture, shared with test_serve


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_on_one_postgres_schema_share_idempotency_keys(
    environment: dict[str, str],
) -> None:
    environment["ROBSON_DATABASE_URL"] = f"{POSTGRES_URL}?schema=t_{uuid4().hex[:16]}"
    settings = Settings.from_env(environment)
    try:
        robson(environment, "migrate")
        auth = new_client(environment, "two@example.com").headers
        keyed = {**auth, "Idempotency-Key": "across-replicas"}
        market = new_client(environment, "ops@example.com", "--operator").headers
        with (
            robson_serve(environment, "--no-workers") as one,
            robson_serve(environment, "--no-workers") as two,
        ):
            with httpx.Client(base_url=one.url, timeout=20) as first:
                price = first.post(
                    "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": 100000}
                )
                assert price.status_code == 200, price.text
                bought = first.post(
                    "/api/trade/buy-btc/", headers=keyed, json={"stop_price": 98000}
                )
                assert bought.status_code == 200, bought.text
            with httpx.Client(base_url=two.url, timeout=20) as second:
                again = second.post(
                    "/api/trade/buy-btc/", headers=keyed, json={"stop_price": 98000}
                )
                assert again.status_code == 200, again.text
                assert again.content == bought.content
                assert again.headers["idempotent-replayed"] == "true"
                other = second.post(
                    "/api/trade/buy-btc/", headers=keyed, json={"stop_price": 97000}
                )
                assert other.status_code == 422
                assert other.json()["code"] == "idempotency_key_reused"
                listed = second.get("/api/positions/", headers=auth).json()["positions"]
                assert len(listed) == 1
    finally:
        drop_schema(settings)
