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
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY

STARTUP_SECONDS = 30
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
    robson(environment, "migrate")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", "0", "--no-workers"],
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
