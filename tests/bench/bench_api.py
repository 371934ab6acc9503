"""Read endpoints under load: GET /api/trade/history/ and /api/trade/pnl/ over 100,000 closed
trades in PostgreSQL, beside a bare Starlette JSON endpoint served the same way.

Both servers are `uvicorn` processes with the same settings (one process, asyncio, h11, no
access log); the load generator is a minimal keep-alive HTTP/1.1 client in this process, on
loopback. Each endpoint gets a closed-loop run (bounded concurrency: the most it can serve)
and an open-loop run at a fixed rate (latency measured from each request's scheduled send
time, so a slow reply delays no later measurement). Goals: p99 < 25 ms at 200 requests/s,
and at least 40% of the bare endpoint's throughput.

The machine's speed drifts by a factor of two within minutes, so both servers stay up and
the endpoints are measured in turn, `ROUNDS` times. In each round the closed-loop runs come
first, back to back, with the bare endpoint measured before, between and after the others
(about a second apart): each endpoint's throughput is compared with the mean of the bare
runs just before and just after it. The open-loop runs follow. The median of the rounds'
shares is reported beside every round's share and the worst p99.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.drawdown import month_of
from infra.bootstrap import build_services, migrate
from infra.settings import Settings
from projections.pnl import PERIOD_TYPES, PNL_PERIODS, period_keys
from projections.tables import Codec, Dialect
from projections.trade_history import TRADES
from tests.conftest import POSTGRES_URL, TEST_KEY, drop_schema
from tests.e2e.serving import listening

TRADES_TOTAL = int(os.environ.get("BENCH_TRADES", "100000"))
TENANTS = os.environ.get("BENCH_TENANTS", "")  # default: 1000, then 100
CALLERS = 100  # requests cycle over this many tenants' tokens (each stays in the auth cache)
CLOSED_LOOP_REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
WARMUP = 300
P99_GOAL_MS = 25.0
THROUGHPUT_GOAL = 0.40
LISTENING = re.compile(r"Uvicorn running on (http://[\d.]+:\d+)")


# --- the bare endpoint, served by uvicorn exactly like `robson serve` serves the API ---


async def bare(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


bare_app = Starlette(routes=[Route("/bare", bare)])


def serve_bare() -> None:
    uvicorn.run(
        bare_app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="info",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


# --- data: 100,000 closed trades, loaded straight into the read-model tables ---


def _trades(clients: Sequence[UUID], now: datetime) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    per_client = TRADES_TOTAL // len(clients)
    for client_id in clients:
        for _ in range(per_client):
            exit_time = now - timedelta(seconds=rng.randrange(365 * 86400))
            entry_time = exit_time - timedelta(minutes=rng.randrange(5, 5000))
            entry = Decimal(rng.randrange(60_000, 110_000))
            exit_price = entry + Decimal(rng.randrange(-3000, 3000))
            quantity = Decimal(rng.randrange(100, 1000)) / Decimal(100000)
            fees = (entry + exit_price) * quantity / 1000
            pnl = (exit_price - entry) * quantity - fees
            hours = Decimal((exit_time - entry_time).total_seconds()) / 3600
            yield {
                "position_id": uuid4(),
                "exit_sequence": 1,
                "client_id": client_id,
                "symbol": "BTCUSDC",
                "side": "LONG",
                "quantity": quantity,
                "entry_price": entry,
                "exit_price": exit_price,
                "pnl": pnl,
                "pnl_percentage": (pnl * 100 / (entry * quantity)).quantize(Decimal("0.01")),
                "is_winner": pnl > 0,
                "is_closed": True,
                "duration_hours": hours.quantize(Decimal("0.1")),
                "entry_time": entry_time,
                "exit_time": exit_time,
                "fees": fees,
                "activity_time": exit_time,
            }


def load_trades(settings: Settings, clients: Sequence[UUID], now: datetime) -> float:
    """COPY the trades and their P&L periods in, then vacuum them; returns the seconds it
    took."""
    started = time.perf_counter()
    services = build_services(settings)
    database = services.read_models.database
    periods: dict[tuple[UUID, str, str], list[Any]] = defaultdict(
        lambda: [Decimal(0), 0, 0, 0, Decimal(0)]
    )
    trades = Codec(TRADES, Dialect.POSTGRES)  # each row with its derived document

    def rows() -> Iterator[tuple[Any, ...]]:
        for trade in _trades(clients, now):
            for kind, key in zip(PERIOD_TYPES, period_keys(trade["exit_time"]), strict=True):
                p = periods[(trade["client_id"], kind, key)]
                p[0] += trade["pnl"]
                p[1] += 1
                p[2] += 1 if trade["is_winner"] else 0
                p[3] += 0 if trade["is_winner"] else 1
                p[4] += trade["quantity"] * (trade["entry_price"] + trade["exit_price"])
            yield trades.params(trade)

    try:
        with database.transaction() as tx:
            tx.copy_in(database.qualified(TRADES.name), TRADES.column_names, rows())
            tx.copy_in(
                database.qualified(PNL_PERIODS.name),
                PNL_PERIODS.column_names,
                ((c, kind, key, *values) for (c, kind, key), values in periods.items()),
            )
        # The state autovacuum keeps a live database in: statistics, and the visibility map
        # that lets the history's read take its rows from the covering index alone (rows
        # newer than the last vacuum are read from the table, as every row is without it).
        with database.session() as session:
            session.execute(f"VACUUM ANALYZE {database.qualified(TRADES.name)}")
            session.execute(f"VACUUM ANALYZE {database.qualified(PNL_PERIODS.name)}")
    finally:
        services.close()
    return time.perf_counter() - started


# --- servers ---


@contextmanager
def server(argv: Sequence[str], env: dict[str, str]) -> Iterator[str]:
    """A uvicorn process; yields its base URL once it listens."""
    with listening(argv, env, pattern=LISTENING, seconds=60, graceful=True) as served:
        yield served.url


# --- load: a minimal keep-alive HTTP/1.1 client (httpx costs the generator ~1 ms a request) ---


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send a prepared GET; read the whole reply; return its status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = CONTENT_LENGTH.search(head)
        if found is None:
            raise RuntimeError(f"no Content-Length in {head!r}")
        await self.reader.readexactly(int(found.group(1)))
        return status

    def close(self) -> None:
        self.writer.close()


CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class Pool:
    """Idle connections reused; a new one opened whenever all are busy."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: list[Connection] = []
        self.opened: list[Connection] = []

    async def get(self, request: bytes) -> int:
        connection = self.idle.pop() if self.idle else None
        if connection is not None:
            try:
                status = await connection.get(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                connection = None  # the server closed an idle keep-alive connection
        if connection is None:
            connection = await Connection.open(self.host, self.port)
            self.opened.append(connection)
            status = await connection.get(request)
        self.idle.append(connection)
        return status

    def close(self) -> None:
        for connection in self.opened:
            connection.close()


def prepared(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class Run:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def closed_loop(pool: Pool, requests: list[bytes]) -> Run:
    """`CONCURRENCY` requests in flight until `CLOSED_LOOP_REQUESTS` are answered."""
    latencies: list[float] = []
    errors = 0
    cursor = iter(range(CLOSED_LOOP_REQUESTS))

    async def worker() -> None:
        nonlocal errors
        for i in cursor:
            sent = time.perf_counter()
            status = await pool.get(requests[i % len(requests)])
            latencies.append((time.perf_counter() - sent) * 1000)
            errors += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return Run(CLOSED_LOOP_REQUESTS, time.perf_counter() - started, latencies, errors)


async def open_loop(pool: Pool, requests: list[bytes]) -> Run:
    """`RATE` requests per second for `RATE_SECONDS`, each timed from its scheduled start."""
    total = int(RATE * RATE_SECONDS)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        status = await pool.get(requests[i % len(requests)])
        latencies.append((loop.time() - due) * 1000)
        errors += status != 200

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return Run(total, time.perf_counter() - began, latencies, errors)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    requests: list[bytes]


@dataclass(frozen=True)
class Measured:
    closed: Run
    opened: Run
    bare_rate: float  # the mean of the bare endpoint's closed-loop runs around `closed`

    @property
    def share(self) -> float:
        return self.closed.rate / self.bare_rate


async def measure(bare: Target, targets: Sequence[Target]) -> dict[str, list[Measured]]:
    """`ROUNDS` rounds of each target's closed loop between two of the bare endpoint's,
    then every open loop; each round printed as it ends."""
    pools = {t.name: Pool(t.url) for t in (bare, *targets)}
    measured: dict[str, list[Measured]] = defaultdict(list)
    try:
        for t in (bare, *targets):
            for i in range(WARMUP):
                assert await pools[t.name].get(t.requests[i % len(t.requests)]) == 200
        for round_ in range(1, ROUNDS + 1):
            before = first = await closed_loop(pools[bare.name], bare.requests)
            closed = []
            for t in targets:
                run = await closed_loop(pools[t.name], t.requests)
                after = await closed_loop(pools[bare.name], bare.requests)
                closed.append((run, (before.rate + after.rate) / 2))
                before = after
            print(f"round {round_} of {ROUNDS}:", flush=True)
            opened = await open_loop(pools[bare.name], bare.requests)
            print("  " + describe(bare.name, first, opened), flush=True)
            for t, (run, bare_rate) in zip(targets, closed, strict=True):
                m = Measured(run, await open_loop(pools[t.name], t.requests), bare_rate)
                measured[t.name].append(m)
                print(f"  {describe(t.name, m.closed, m.opened)} | {m.share:.1%}", flush=True)
        return measured
    finally:
        for pool in pools.values():
            pool.close()


def describe(name: str, closed: Run, opened: Run) -> str:
    return (
        f"{name:<24} {closed.rate:8,.0f} req/s (c={CONCURRENCY}: p50 "
        f"{statistics.median(closed.latencies_ms):6.2f} ms, p99 {closed.percentile(99):6.2f} ms)"
        f" | at {RATE:.0f} req/s: p50 {statistics.median(opened.latencies_ms):6.2f} ms, "
        f"p99 {opened.percentile(99):6.2f} ms | errors {closed.errors + opened.errors}"
    )


def verdict(name: str, shares: list[float], worst_p99: float) -> str:
    share = statistics.median(shares)
    rounds = ", ".join(f"{s:.1%}" for s in shares)
    return (
        f"{name}: {share:.1%} of the bare throughput (median of {rounds}; "
        f"{'meets' if share >= THROUGHPUT_GOAL else 'below'} the 40% goal); "
        f"worst p99 {worst_p99:.1f} ms at {RATE:.0f} req/s "
        f"({'meets' if worst_p99 < P99_GOAL_MS else 'above'} the 25 ms goal)"
    )


def main() -> None:
    """Two shapes of the same 100,000 trades: many quiet tenants, fewer busy ones."""
    for tenants in [int(TENANTS)] if TENANTS else [1000, 100]:
        with tempfile.TemporaryDirectory() as home:
            run_bench(home, tenants)


def run_bench(home: str, tenants: int) -> None:
    schema = f"bench_api_{uuid4().hex[:10]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_"))},
        "ROBSON_DATABASE_URL": f"{POSTGRES_URL}?schema={schema}",
        "RBS_CREDENTIAL_ENCRYPTION_KEY": TEST_KEY,
        "ROBSON_HOME": home,
        # Requests are still counted (in memory, shared each second); none may be refused.
        "ROBSON_RATE_LIMIT": "1000000000/hour",
    }
    settings = Settings.from_env(env)
    migrate(settings)
    try:
        services = build_services(settings)
        try:
            tokens = {}
            for n in range(tenants):
                reg = services.ledger.register_client(
                    "Bench", f"bench-{n}-{uuid4().hex[:6]}@example.com", Decimal(10000)
                )
                tokens[reg.client_id] = reg.token
        finally:
            services.close()
        now = datetime.now(UTC)
        seconds = load_trades(settings, list(tokens), now)
        window = TRADES_TOTAL // tenants * 30 // 365
        print(
            f"\n{TRADES_TOTAL:,} closed trades for {tenants} tenants loaded into PostgreSQL "
            f"in {seconds:.1f} s; about {window} of each tenant's trades fall in the history's "
            f"default 30 days (this month: {month_of(now)})",
            flush=True,
        )
        auth = [{"Authorization": f"Bearer {t}"} for t in list(tokens.values())[:CALLERS]]
        api_argv = [sys.executable, "-m", "infra.cli", "serve", "--port", "0", "--no-workers"]
        bare_argv = [sys.executable, "-c", "from tests.bench.bench_api import serve_bare as s; s()"]
        with server(bare_argv, env) as bare_url, server(api_argv, env) as api_url:
            bare = Target("bare JSON endpoint", bare_url, [prepared("/bare", {})])
            targets = [
                Target(f"GET {path.partition('?')[0]}", api_url, [prepared(path, h) for h in auth])
                for path in ["/api/trade/history/", "/api/trade/pnl/?period=monthly&months=12"]
            ]
            measured = asyncio.run(measure(bare, targets))
        for name, rounds in measured.items():
            worst_p99 = max(m.opened.percentile(99) for m in rounds)
            print(verdict(name, [m.share for m in rounds], worst_p99), flush=True)
    finally:
        drop_schema(settings)


if __name__ == "__main__":
    main()
