"""A real `robson serve` process for the end-to-end tests, the browser tests and the screenshot
script: started on a free port over a fresh ROBSON_HOME (SQLite, paper exchange), with its
workers, and Chromium from Debian driven by Playwright. `listening` starts any server process
and waits for the URL it prints: the other e2e modules and the benchmarks use it."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.conftest import TEST_KEY

if TYPE_CHECKING:  # the benchmarks start servers too, without a browser
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STARTUP_SECONDS = 30
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)/")


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_", "GROQ_"))}
    env.update(
        ROBSON_HOME=str(home),
        RBS_CREDENTIAL_ENCRYPTION_KEY=TEST_KEY,
        ROBSON_EXCHANGE="paper",
        ROBSON_POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **extra,
    )
    env.pop("TRADING_ENABLED", None)
    return env


def robson(env: Mapping[str, str], *argv: str) -> str:
    """Run a `robson` command to its end; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Client:
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_client(env: Mapping[str, str], email: str, *flags: str) -> Client:
    created = json.loads(robson(env, "client", "create", "--name", email, "--email", email, *flags))
    return Client(email, created["token"])


@dataclass(frozen=True)
class Server:
    url: str
    env: Mapping[str, str]
    operator: Client

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def set_price(self, price: str, symbol: str = "BTCUSDC") -> None:
        """Move the paper market, as `POST /api/paper/price/` with the operator's token."""
        with self.http() as http:
            reply = http.post(
                "/api/paper/price/",
                headers=self.operator.headers,
                json={"symbol": symbol, "price": price},
            )
            assert reply.status_code == 200, reply.text

    def get(self, client: Client, path: str) -> Any:
        with self.http() as http:
            reply = http.get(path, headers=client.headers)
            assert reply.status_code == 200, reply.text
            return reply.json()

    def post(self, client: Client, path: str, body: Mapping[str, Any]) -> Any:
        with self.http() as http:
            reply = http.post(path, headers=client.headers, json=dict(body))
            assert reply.status_code in {200, 201}, reply.text
            return reply.json()


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@dataclass
class Served:
    """A started process, the URL it listens on, and what it wrote (all of it once stopped)."""

    process: subprocess.Popen[str]
    url: str
    output: list[str]


@contextmanager
def listening(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    pattern: re.Pattern[str] = LISTENING,
    seconds: float = STARTUP_SECONDS,
    graceful: bool = False,
) -> Iterator[Served]:
    """Start `argv` and yield once a line of its output matches `pattern` (group 1: the URL).
    When the block ends it is stopped: SIGTERM first if `graceful`, else SIGKILL."""
    process = subprocess.Popen(
        list(argv), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + seconds
    url = None
    seen: list[str] = []
    while url is None and time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if found := pattern.search(line):
            url = found.group(1)
    try:
        assert url is not None, "server did not start:\n" + "".join(seen)
        yield Served(process, url, seen)
    finally:
        if process.poll() is None and graceful:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        elif process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)  # the pipe reaches EOF once the process is gone
        process.stdout.close()
        while not lines.empty():
            seen.append(lines.get())


def robson_serve(
    env: Mapping[str, str],
    *flags: str,
    seconds: float = STARTUP_SECONDS,
    graceful: bool = False,
) -> AbstractContextManager[Served]:
    """`robson serve` with `flags` on a free port (the database already migrated)."""
    argv = [sys.executable, "-m", "infra.cli", "serve", "--port", "0", *flags]
    return listening(argv, env, seconds=seconds, graceful=graceful)


@contextmanager
def serving(env: Mapping[str, str], price: str = "100000") -> Iterator[Server]:
    """`robson serve` (workers included) on a free port, with an operator and a price."""
    robson(env, "migrate")
    operator = new_client(env, "operator@example.com", "--operator")
    with robson_serve(env, graceful=True) as served:
        server = Server(served.url, env, operator)
        server.set_price(price)
        yield server


def chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium (never a downloaded one)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
