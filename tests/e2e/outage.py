"""A real `robson serve` over a disposable PostgreSQL, and the requests a client makes while
the database is away: shared by the outage test and its benchmark."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import TEST_KEY
from tests.e2e.disposable_postgres import DisposablePostgres

STARTUP_SECONDS = 60
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)/")
# Every kind of request: the probes, reads of each read path, and a command.
ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET", "/readyz"),
    ("GET", "/api/positions/"),
    ("GET", "/api/trade/history/"),
    ("GET", "/api/trade/pnl/"),
    ("GET", "/api/policy/"),
    ("GET", "/api/trade/status/"),
    ("GET", "/api/trade/balance/"),
    ("POST", "/api/trade/buy-btc/"),
)
BUY = {"stop_price": "98000", "amount": "10"}


def robson(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def environment(home: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_"))}
    env.update(
        ROBSON_HOME=home,
        ROBSON_DATABASE_URL=database_url,
        RBS_CREDENTIAL_ENCRYPTION_KEY=TEST_KEY,
        ROBSON_EXCHANGE="paper",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    env.pop("TRADING_ENABLED", None)
    return env


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    output: list[str]


@contextmanager
def serve(env: dict[str, str], *argv: str) -> Iterator[Served]:
    """`robson serve` on a free port until the block ends (killed if still running)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", "0", *argv],
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
        yield Served(process, url, seen)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)
        process.stdout.close()
        while not lines.empty():
            seen.append(lines.get())


@contextmanager
def cluster() -> Iterator[DisposablePostgres]:
    postgres = DisposablePostgres().init()
    try:
        yield postgres
    finally:
        postgres.destroy()


def tenant(env: dict[str, str], email: str, *, operator: bool = False) -> dict[str, str]:
    """A new client's auth header (an operator's may set paper prices)."""
    flags = ("--operator",) if operator else ()
    created = json.loads(
        robson(env, "client", "create", "--name", "Outage", "--email", email, *flags)
    )
    return {"Authorization": f"Bearer {created['token']}"}


def call(http: httpx.Client, method: str, path: str, auth: dict[str, str]) -> httpx.Response:
    body = BUY if method == "POST" else None
    return http.request(method, path, headers=auth, json=body)
