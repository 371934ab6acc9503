"""`robson worker` as a real process: signals, and a SIGKILL between sending an exit and
recording its fill, against the fake Binance server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import pytest

from domain.identity import client_order_id
from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import Position, Status
from infra.bootstrap import Services, build_services
from infra.settings import Settings
from tests.factories import register
from tests.fakes.binance import Delay, FakeBinance

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BTC = "BTCUSDC"
KEY = "worker-test-api-key-0001"
SECRET = "worker-test-secret-never-logged"
D = Decimal


def robson(*argv: str) -> list[str]:
    return [sys.executable, "-m", "infra.cli", *argv]


def process_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONUNBUFFERED": "1"}


def start_worker(env: dict[str, str], **streams: Any) -> subprocess.Popen[str]:
    """`robson worker` running in the background; `streams`: Popen's stdout and stderr."""
    return subprocess.Popen(robson("worker"), cwd=ROOT, env=process_env(env), text=True, **streams)


def run_worker(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`robson worker --once` (and `argv`) run to its end, its output captured."""
    return subprocess.run(
        robson("worker", "--once", *argv),
        cwd=ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def funded_fake() -> Iterator[FakeBinance]:
    """The fake Binance with 10000 USDC on KEY's account and BTC at 90000."""
    with FakeBinance() as server:
        server.fund(KEY, SECRET, {"USDC": D(10000)})
        server.set_price(BTC, D(90000))
        yield server


@dataclass(frozen=True)
class Opened:
    env: dict[str, str]  # the test's environment, on the fake Binance
    services: Services
    client_id: UUID
    position: Position


@contextmanager
def opened_on_binance(env: dict[str, str], fake: FakeBinance, **extra: str) -> Iterator[Opened]:
    """A tenant trading on the fake Binance with KEY, holding a LONG of 0.001 BTC bought at
    90000 with its stop at 88200; `extra`: more settings."""
    binance = {
        **env,
        "ROBSON_EXCHANGE": "binance",
        "ROBSON_BINANCE_BASE_URL": fake.url,
        "TRADING_ENABLED": "True",
        **extra,
    }
    services = build_services(Settings.from_env(binance))
    try:
        client_id, _ = register(services.ledger)
        services.ledger.set_credentials(services.ledger.client(client_id).email, KEY, SECRET)
        position = services.ledger.plan_validate_execute(
            client_id,
            PlanRequest(BTC, Side.LONG, stop_price=D(88200), quantity=D("0.001")),
        )
        yield Opened(binance, services, client_id, position)
    finally:
        services.close()


def wait_for_line(stream: IO[str], text: str) -> list[str]:
    """Read lines until one contains `text` (EOF: the process died first)."""
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never appeared; the process wrote: {''.join(seen)}")


def test_sigterm_finishes_the_tick_and_exits_cleanly(env: dict[str, str]) -> None:
    worker = start_worker(env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert worker.stderr is not None
        wait_for_line(worker.stderr, "worker started")
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "worker stopped after" in err


def eventually(fake: FakeBinance, predicate: Callable[[], bool], timeout: float) -> bool:
    """The fake signals only finished requests, and the exit's is held open: so look again
    every 50 ms as well."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.wait_for(predicate, timeout=0.05):
            return True
    return False


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with funded_fake() as server:
        yield server


def test_a_worker_killed_mid_exit_is_completed_once_after_a_restart(
    env: dict[str, str], fake: FakeBinance
) -> None:
    # Robson's own exit; test_insurance_process.py: the stop at the exchange.
    with opened_on_binance(env, fake, ROBSON_EXCHANGE_STOPS="False") as opened:
        services, client_id, position = opened.services, opened.client_id, opened.position
        assert position.status is Status.OPEN
        # The next order executes at once, but its answer never comes back in time.
        fake.inject(Delay(120), path="/api/v3/order", method="POST")
        fake.set_price(BTC, D(88000))

        doomed = start_worker(opened.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Executed by the fake, its answer held back: the worker is waiting for it.
            exit_id = client_order_id(position.id, 2)
            assert eventually(fake, lambda: fake.order(KEY, exit_id) is not None, timeout=60)
        finally:
            doomed.kill()  # SIGKILL: no cleanup of any kind
            doomed.wait(timeout=30)
        assert doomed.returncode == -signal.SIGKILL

        crashed = services.ledger.position(client_id, position.id)
        assert crashed.status is Status.CLOSING
        assert crashed.exit_order_id == exit_id  # recorded before it was sent

        restarted = run_worker(opened.env, "--reconcile-grace", "0")
        assert restarted.returncode == 0, restarted.stderr
        actions = [json.loads(line) for line in restarted.stdout.splitlines()]
        assert [(a["job"], a["outcome"], a.get("status")) for a in actions] == [
            ("reconcile", "done", "closed")
        ]

        closed = services.ledger.position(client_id, position.id)
        assert closed.status is Status.CLOSED
        assert len(closed.exits) == 1
        assert closed.exits[0]["price"] == D(88000)
        sells = [
            r for r in fake.orders_received(order_type="MARKET") if r.params.get("side") == "SELL"
        ]
        assert len(sells) == 1  # found by its client order id, never sent again
        assert sells[0].client_order_id == exit_id
        assert SECRET not in restarted.stderr + restarted.stdout
