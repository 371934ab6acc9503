"""Two `robson serve` processes on one PostgreSQL schema share Idempotency-Keys: a retry that
reaches the other replica gets the first reply, not a second order."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import httpx
import pytest

from infra.settings import Settings
from tests.conftest import POSTGRES_URL, drop_schema
from tests.e2e.test_serve import LISTENING, STARTUP_SECONDS, _lines, environment, robson

__all__ = ["environment"]  # the fixture, shared with test_serve


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """One `robson serve --no-workers` on a free port; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", "0", "--no-workers"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    url, seen = None, []
    while url is None and time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if found := LISTENING.search(line):
            url = found.group(1)
    try:
        assert url is not None, "server did not start:\n" + "".join(seen)
        yield url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)
        process.stdout.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_on_one_postgres_schema_share_idempotency_keys(
    environment: dict[str, str],
) -> None:
    environment["ROBSON_DATABASE_URL"] = f"{POSTGRES_URL}?schema=t_{uuid4().hex[:16]}"
    settings = Settings.from_env(environment)
    try:
        robson(environment, "migrate")
        created = json.loads(
            robson(environment, "client", "create", "--name", "Two", "--email", "two@example.com")
        )
        auth = {"Authorization": f"Bearer {created['token']}"}
        keyed = {**auth, "Idempotency-Key": "across-replicas"}
        ops = ("client", "create", "--name", "Ops", "--email", "ops@example.com", "--operator")
        market = {"Authorization": f"Bearer {json.loads(robson(environment, *ops))['token']}"}
        with serving(environment) as one, serving(environment) as two:
            with httpx.Client(base_url=one, timeout=20) as first:
                price = first.post(
                    "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": 100000}
                )
                assert price.status_code == 200, price.text
                bought = first.post(
                    "/api/trade/buy-btc/", headers=keyed, json={"stop_price": 98000}
                )
                assert bought.status_code == 200, bought.text
            with httpx.Client(base_url=two, timeout=20) as second:
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
