"""`robson serve` as a real process on a free port, driven over HTTP like a client would."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY

STARTUP_SECONDS = 30
ALERT_SECONDS = 60  # a deadline for slow machines: the worker looks every few seconds
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)/")


def robson(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


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
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", "0", *flags],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    seen: list[str] = []
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
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)  # the pipe reaches EOF once the process is gone
        process.stdout.close()


@pytest.mark.slow
def test_a_client_buys_sells_and_reads_its_pnl_from_a_real_server(
    environment: dict[str, str], server: tuple[subprocess.Popen[str], str]
) -> None:
    process, url = server
    created = json.loads(
        robson(environment, "client", "create", "--name", "E2E", "--email", "e2e@example.com")
    )
    auth = {"Authorization": f"Bearer {created['token']}"}
    ops = ("client", "create", "--name", "Ops", "--email", "ops@example.com", "--operator")
    operator = json.loads(robson(environment, *ops))
    market = {"Authorization": f"Bearer {operator['token']}"}
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
    created = json.loads(
        robson(environment, "client", "create", "--name", "Open", "--email", "open@example.com")
    )
    auth = {"Authorization": f"Bearer {created['token']}"}
    ops = ("client", "create", "--name", "Ops", "--email", "ops@example.com", "--operator")
    market = {"Authorization": f"Bearer {json.loads(robson(environment, *ops))['token']}"}
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
