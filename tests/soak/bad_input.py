"""Scenarios 5 and 6: bad input against `robson serve` over HTTP. First the corpus of
tests/integration/test_api_validation.py and random mutations of it (wrong types, huge
numbers, unicode, unknown fields, oversize and malformed bodies); then the `st` command line
with every check. The server's own /metrics counts its 5xx answers as a second witness."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.integration.test_api_validation import BAD_BODIES
from tests.soak.harness import (
    ROOT,
    Outcome,
    base_env,
    new_client,
    robson,
    scaled,
    serving,
    workdir,
)

SEED = 20261206
ANSWER_SECONDS = 15
ST_SECONDS = 420
SERVER_ERROR = re.compile(r'robson_http_requests_total\{[^}]*status="5\d\d"[^}]*\} (\d+)')
POSTS = sorted({path for path, *_ in BAD_BODIES})
GETS = [
    "/api/trade/history/?days={v}&limit={v}",
    "/api/trade/pnl/?period={v}&months={v}",
    "/api/positions/?status={v}",
    "/api/positions/{v}/",
    "/api/trade/balance/?asset={v}",
]
NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    1e308,
    -1e308,
    10**400,
    2**63,
    "",
    " ",
    "0",
    "-0",
    "1e999999",
    "NaN",
    "-Infinity",
    "0x10",
    "1_000",
    "98000.000000001",
    "٣٤٥",
    "９８０００",
    "\u0000",
    "\ud800",
    "🙂" * 50,
    "x" * 10_000,
    "<script>",
    "'; DROP TABLE x; --",
    [],
    [98000],
    {},
    {"$gt": 0},
    [[[[[[]]]]]],
    "LONG",
    "SHORT",
    "BTCUSDC",
    "btcusdc",
    "00000000-0000-0000-0000-000000000000",
    98000,
    "98000",
    0.1,
    "true",
]
RAW_BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b'"text"', "application/json"),
    (b"\xff\xfe\xfd", "application/json"),
    (b'{"stop_price": 98000, "stop_price": "x"}', "application/json"),
    (b'{"stop_price": 1' + b"0" * 5000 + b"}", "application/json"),
    (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    (b"stop_price=98000", "application/x-www-form-urlencoded"),
    (b'{"stop_price": 98000}', "text/plain"),
    (b"x" * (2 * 1024 * 1024), "application/json"),  # oversize
]


def server_errors(http: httpx.Client) -> int:
    return sum(int(n) for n in SERVER_ERROR.findall(http.get("/metrics").text))


@contextmanager
def tenant_server(name: str) -> Iterator[tuple[str, dict[str, str], dict[str, str], Path]]:
    """`robson serve --no-workers` on paper with a trader and an operator; a high rate limit
    so every request reaches the handlers."""
    with workdir(name) as home:
        env = base_env(home, ROBSON_RATE_LIMIT="1000000/hour")
        robson(env, "migrate")
        trader = new_client(env, "Bad", "bad@example.com")
        operator = new_client(env, "Ops", "ops@example.com", "--operator")
        with serving(env, home / "serve.log", "--no-workers") as (_, url):
            with httpx.Client(base_url=url, timeout=30) as http:
                price = {"symbol": "BTCUSDC", "price": "100000"}
                ops = {"Authorization": f"Bearer {operator['token']}"}
                http.post("/api/paper/price/", headers=ops, json=price).raise_for_status()
            yield url, {"Authorization": f"Bearer {trader['token']}"}, ops, home


def _mutation(rng: random.Random) -> tuple[str, Any]:
    path, body, *_ = rng.choice(BAD_BODIES)
    body = dict(body) if isinstance(body, dict) else {}
    for _ in range(rng.randint(1, 3)):
        field = rng.choice([*body, "stop_price", "quantity", "amount", "side", "symbol", "ü"])
        body[field] = rng.choice(NASTY)
    return rng.choice(POSTS) if rng.random() < 0.3 else path, body


def _send(
    outcome: Outcome,
    counts: dict[str, int],
    what: str,
    call: Callable[..., httpx.Response],
    path: str,
    **kwargs: Any,
) -> httpx.Response | None:
    """One request; no answer within the client's timeout is a finding of its own."""
    try:
        reply = call(path, **kwargs)
    except httpx.TimeoutException:
        outcome.inputs += 1
        counts["no answer"] = counts.get("no answer", 0) + 1
        outcome.findings.append(f"{what}: no answer within {ANSWER_SECONDS}s")
        return None
    _tally(outcome, reply, what, counts)
    return reply


def _tally(outcome: Outcome, reply: httpx.Response, what: str, counts: dict[str, int]) -> None:
    outcome.inputs += 1
    kind = f"{reply.status_code // 100}xx"
    counts[kind] = counts.get(kind, 0) + 1
    if reply.status_code >= 500:
        outcome.server_errors += 1
        outcome.findings.append(f"{what}: {reply.status_code} {reply.text[:300]}")


def bad_input() -> Outcome:
    """Scenario 5: the validation corpus, its random mutations and malformed bodies."""
    mutations = scaled(800, 50)
    outcome = Outcome("5 bad-input corpus")
    started = time.monotonic()
    rng = random.Random(SEED)
    counts: dict[str, int] = {}
    with (
        tenant_server("input") as (url, auth, ops, _),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        for path, body, status, _field in BAD_BODIES:
            headers = ops if "paper" in path else auth
            reply = _send(
                outcome,
                counts,
                f"POST {path} {body!r:.200}",
                http.post,
                path,
                headers=headers,
                json=body,
            )
            if reply is not None and reply.status_code != status:
                outcome.findings.append(
                    f"POST {path} {body!r:.200}: {reply.status_code}, corpus expects {status}"
                )
        for raw, content_type in RAW_BODIES:
            for path in POSTS:
                headers = {**auth, "Content-Type": content_type}
                what = f"POST {path} raw {raw[:60]!r} ({len(raw)} bytes)"
                _send(outcome, counts, what, http.post, path, headers=headers, content=raw)
        for _ in range(mutations):
            if rng.random() < 0.15:
                value = str(rng.choice(NASTY))[:300]
                path = rng.choice(GETS).format(v=quote(value.encode("utf-8", "surrogatepass")))
                _send(outcome, counts, f"GET {path:.200}", http.get, path, headers=auth)
                continue
            path, body = _mutation(rng)
            try:
                content = json.dumps(body).encode()
            except ValueError:
                continue
            headers = {**(ops if "paper" in path else auth), "Content-Type": "application/json"}
            what = f"POST {path} {content[:200]!r}"
            _send(outcome, counts, what, http.post, path, headers=headers, content=content)
        # Last, as it may leave a thread busy: a stop far below any order its exit could sell.
        what = "POST /api/trade/buy-btc/ {'stop_price': 2e-08}"
        _send(
            outcome,
            counts,
            what,
            http.post,
            "/api/trade/buy-btc/",
            headers=auth,
            json={"stop_price": 2e-08},
        )
        outcome.faults = outcome.inputs
        seen = server_errors(http)
    outcome.load = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    outcome.load += f" (server /metrics: {seen} 5xx)"
    outcome.server_errors = max(outcome.server_errors, seen)
    outcome.seconds = time.monotonic() - started
    return outcome


STATS = re.compile(r"(\d+) passed|(\d+) failed|(\d+) errored|(\d+) skipped")


def schemathesis_run() -> Outcome:
    """Scenario 6: `st run` with every check against the served document."""
    examples = scaled(10, 3)
    outcome = Outcome("6 schemathesis, all checks")
    started = time.monotonic()
    with tenant_server("st") as (url, _, ops, home), httpx.Client(base_url=url, timeout=30) as http:
        report = home / "st.ndjson"
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks"}
        try:
            done = subprocess.run(
                [
                    str(ROOT / ".venv" / "bin" / "st"),
                    "--config-file",
                    "tests/integration/schemathesis.toml",
                    "run",
                    f"{url}/openapi.json",
                    "--checks",
                    "all",
                    "-H",
                    f"Authorization: {ops['Authorization']}",
                    "-n",
                    str(examples),
                    "--seed",
                    "7",
                    "--report",
                    "ndjson",
                    "--report-ndjson-path",
                    str(report),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=ST_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            outcome.findings.append(f"st did not finish within {ST_SECONDS}s")
            outcome.inputs = _requests_in(report)
            outcome.server_errors = server_errors(http)
            outcome.seconds = time.monotonic() - started
            return outcome
        text = done.stdout + done.stderr
        outcome.inputs = _requests_in(report)
        outcome.faults = outcome.inputs
        outcome.server_errors = server_errors(http)
        summary = [line for line in text.splitlines() if re.search(r"passed|failed", line)]
        outcome.load = (
            f"{examples} examples/operation; st: {summary[-1].strip(' =') if summary else '?'}"
        )
        if done.returncode != 0:
            failures = text[text.find("FAILURES") :] if "FAILURES" in text else text[-4000:]
            outcome.findings.append(f"st exited {done.returncode}:\n{failures[:6000]}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _requests_in(report: Path) -> int:
    """Requests schemathesis sent, counted from its ndjson report's interactions."""
    if not report.exists():
        return 0
    return report.read_text(errors="replace").count('"request":')
