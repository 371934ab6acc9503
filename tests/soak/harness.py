"""What every scenario shares: its result row, the scale, and `robson` as real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)/")
STARTUP_SECONDS = 60


@dataclass
class Outcome:
    """One row of the campaign's table."""

    scenario: str
    load: str = ""
    faults: int = 0
    inputs: int = 0
    lost: int = 0
    duplicated: int = 0
    server_errors: int = 0
    misreported: int = 0  # an error reply (not "outcome unknown") about an order that executed
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.duplicated or self.server_errors or self.misreported or self.findings
        )


def scale() -> float:
    """SOAK_SCALE (default 1): 0.2 runs a fifth of every scenario's load, for a quick look."""
    return max(0.01, float(os.environ.get("SOAK_SCALE") or "1"))


def scaled(full: int, least: int = 1) -> int:
    return max(least, round(full * scale()))


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for `robson`: its own home, the test key, paper unless told."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_"))}
    env.pop("TRADING_ENABLED", None)
    env.update(
        ROBSON_HOME=str(home),
        RBS_CREDENTIAL_ENCRYPTION_KEY=TEST_KEY,
        ROBSON_EXCHANGE="paper",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def robson_argv(*argv: str) -> list[str]:
    return [sys.executable, "-m", "infra.cli", *argv]


def robson(env: dict[str, str], *argv: str, timeout: float = 120) -> str:
    done = subprocess.run(
        robson_argv(*argv),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"robson {' '.join(argv)} failed: {done.stderr[-2000:]}")
    return done.stdout


def new_client(env: dict[str, str], name: str, email: str, *flags: str) -> dict[str, Any]:
    """`robson client create` with `flags`; its reply (client_id, token)."""
    created: dict[str, Any] = json.loads(
        robson(env, "client", "create", "--name", name, "--email", email, *flags)
    )
    return created


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


@contextmanager
def workdir(name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"soak-{name}-") as path:
        yield Path(path)


class Spawned:
    """A `robson` process whose output goes to a file (no pipe to fill up and block it)."""

    def __init__(self, env: dict[str, str], log: Path, *argv: str) -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            robson_argv(*argv), cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_text(self, text: str, timeout: float = STARTUP_SECONDS) -> bool:
        return wait_until(
            lambda: text in self.output() or self.process.poll() is not None, timeout
        ) and (text in self.output())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._out.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(timeout=30)
        self._out.close()


@contextmanager
def serving(env: dict[str, str], log: Path, *flags: str) -> Iterator[tuple[Spawned, str]]:
    """`robson serve` on a free port; yields the process and its URL."""
    server = Spawned(env, log, "serve", "--port", "0", *flags)
    try:
        found: list[str] = []

        def listening() -> bool:
            match = LISTENING.search(server.output())
            if match:
                found.append(match.group(1))
            return bool(match) or server.process.poll() is not None

        wait_until(listening, STARTUP_SECONDS)
        if not found:
            raise RuntimeError("robson serve did not start:\n" + server.output()[-3000:])
        yield server, found[0]
    finally:
        server.stop()
