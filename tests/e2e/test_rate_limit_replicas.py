"""Two `robson serve` replicas on one PostgreSQL schema share each token's limit exactly:
whether a client alternates between them or floods both at once, the limit is admitted, and
not one request more."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from infra.settings import Settings
from tests.conftest import POSTGRES_URL, drop_schema
from tests.e2e.outage import environment, serve, tenant
from tests.e2e.serving import Served, robson

LIMIT = 30
REQUESTS = 80
WINDOW_SECONDS = 3600
MARGIN_SECONDS = 30  # a round never straddles two windows


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[Served]]]:
    url = f"{POSTGRES_URL}?schema=t_{uuid4().hex[:16]}"
    env = environment(str(tmp_path / "home"), url, ROBSON_RATE_LIMIT=f"{LIMIT}/hour")
    robson(env, "migrate")
    try:
        with ExitStack() as stack:
            served = [stack.enter_context(serve(env, "--no-workers")) for _ in range(2)]
            yield env, served
    finally:
        drop_schema(Settings.from_env(env))


def _within_one_window() -> None:
    """Wait for the next window when this one ends too soon for a round."""
    while WINDOW_SECONDS - datetime.now(UTC).timestamp() % WINDOW_SECONDS < MARGIN_SECONDS:
        time.sleep(1)


def _admitted(statuses: list[int]) -> int:
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(200)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_admit_exactly_the_limit_alternating_and_at_once(
    replicas: tuple[dict[str, str], list[Served]],
) -> None:
    env, served = replicas
    clients = [httpx.Client(base_url=s.url, timeout=10) for s in served]
    try:
        _within_one_window()
        alternating = tenant(env, "alternating@example.com")
        statuses = [
            clients[n % 2].get("/api/trade/status/", headers=alternating).status_code
            for n in range(REQUESTS)
        ]
        assert _admitted(statuses) == LIMIT
        assert statuses[:LIMIT] == [200] * LIMIT  # in order: the first 30 in, the rest out

        _within_one_window()
        flooding = tenant(env, "flooding@example.com")

        def request(n: int) -> int:
            return clients[n % 2].get("/api/trade/status/", headers=flooding).status_code

        with ThreadPoolExecutor(16) as pool:
            assert _admitted(list(pool.map(request, range(REQUESTS)))) == LIMIT
    finally:
        for client in clients:
            client.close()
