"""`robson serve` as a real process on a free port, driven over HTTP like a client would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.e2e.serving import new_client, robson, robson_serve

ALERT_SECONDS = 60  # a deadline for slow machines: the worker looks every few seconds


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_"))}
    env.update(
        ROBSON_HOME=str(tmp_path / "home"),
        RBS_CREDENTIAL_ENCRYPTION_KEY=TEST_KEY,
        ROBSON_EXCHANGE="paper",
        PYTHONUNBUFFERED="1",
    )
    env.pop("TRADING_ENABLED", None)
    return env


@pytest.fixture
def server(environment: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving(environment, "--no-workers") as started:
        yield started


@pytest.fixture
def server_with_workers(
    environment: dict[str, str],
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving(environment) as started:
        yield started


@contextmanager
def serving(
    environment: dict[str, str], *flags: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`robson serve` on a free port with `flags`; yields the process and its URL."""
    robson(environment, "migrate")
    with robson_serve(environment, *flags) as served:
        yield served.process, served.url


@pytest.mark.slow
def test_a_client_buys_sells_and_reads_its_pnl_from_a_real_server(
    environment: dict[str, str], server: tuple[subprocess.Popen[str], str]
) -> None:
    process, url = server
    auth = new_client(environment, "e2e@example.com").headers
    market = new_client(environment, "ops@example.com", "--operator").headers
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        price = http.post(
            "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": 100000}
        )
        assert price.status_code == 200, price.text

        bought = http.post("/api/trade/buy-btc/", headers=auth, json={"stop_price": "98000"})
        assert bought.status_code == 200, bought.text
        assert bought.json()["trade"]["quantity"] == "0.00500000"

        moved = http.post(
            "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": "104000"}
        )
        assert moved.status_code == 200

        sold = http.post("/api/trade/sell-btc/", headers=auth, json={})
        assert sold.status_code == 200, sold.text
        assert sold.json()["quantity"] == "0.00499000"

        history = http.get("/api/trade/history/", headers=auth).json()
        assert history["summary"]["closed_trades"] == 1
        assert history["summary"]["winners"] == 1
        pnl = http.get("/api/trade/pnl/?period=monthly", headers=auth).json()
        assert Decimal(pnl["overall"]["total_pnl"]) > 0
        assert pnl["overall"]["total_pnl"] == history["summary"]["total_pnl"]
        assert http.get("/api/trade/status/").status_code == 401
        assert "robson_http_requests_total" in http.get("/metrics").text

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


@pytest.mark.slow
def test_an_open_loss_past_2_percent_of_capital_is_alerted_by_the_running_worker(
    environment: dict[str, str], server_with_workers: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = server_with_workers
    auth = new_client(environment, "open@example.com").headers
    market = new_client(environment, "ops@example.com", "--operator").headers
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post(
            "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": "100000"}
        ).is_success
        # Three positions of 0.005 BTC, each risking 1% of the 1000 capital at its stop.
        for _ in range(3):
            bought = http.post("/api/trade/buy-btc/", headers=auth, json={"stop_price": "98000"})
            assert bought.status_code == 200, bought.text
        assert http.get("/api/policy/", headers=auth).json()["alerts"] == []

        # 98100 is above every stop: nothing exits, but 0.015 BTC held lose 28.50 (2.85%).
        assert http.post(
            "/api/paper/price/", headers=market, json={"symbol": "BTCUSDC", "price": "98100"}
        ).is_success
        deadline = time.monotonic() + ALERT_SECONDS
        policy = http.get("/api/policy/", headers=auth).json()
        while policy["alerts"] != ["2%"] and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the server, not waiting for time to pass
            policy = http.get("/api/policy/", headers=auth).json()

        assert policy["alerts"] == ["2%"], policy
        assert policy["paused"] is False
        assert Decimal(policy["realised_pnl"]) == 0
        assert Decimal("2") <= Decimal(policy["loss_percent"]) < Decimal("3")
        open_positions = http.get("/api/positions/?status=open", headers=auth).json()
        assert len(open_positions["positions"]) == 3
