"""A flash crash: one price move crosses the stops of 1,000 open positions of 100 tenants
(each with its own Binance keys) while every order call to the fake Binance takes 50 ms.

Measured: from the start of the tick that sees the move to the exchange's answer to the
last exit, beside the same run with one position (the single-exit baseline), in the same
process, on SQLite and on PostgreSQL, through the real python-binance client over HTTP; and
the CPU the worker's process (and the fake's) spent in that tick: near the tick's length
times the cores, the run is short of CPU, not waiting on the exchange or the database.
Sent one after another, 1,000 exits would need at least 50 s. Goal: the last within 5 s.

The fake Binance runs in a process of its own (a real exchange is another machine: its CPU
must not count against the worker's); BENCH_FLASH_FAKE=thread runs it in this process, as the
tests do. The fake's weight limit is lifted while the book is opened (1,000 entries take more
than a minute's weight), then the crash runs in a fresh minute under Binance's 6,000.
BENCH_FLASH_TENANTS, BENCH_FLASH_PER_TENANT and BENCH_FLASH_BACKENDS (e.g. "sqlite")
shorten a run.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.ledger import Ledger, TradingConfig
from domain.position import Status
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services, build_services, migrate
from infra.settings import Settings
from tests.conftest import drop_schema, test_env
from tests.factories import open_long, register
from tests.fakes.binance import FakeBinance
from tests.fakes.remote import RemoteFake
from workers.exit_pool import DEFAULT_CONCURRENCY
from workers.jobs import Outcome
from workers.worker import Worker

D = Decimal
BTC = "BTCUSDC"
TENANTS = int(os.environ.get("BENCH_FLASH_TENANTS", "100"))
PER_TENANT = int(os.environ.get("BENCH_FLASH_PER_TENANT", "10"))
BACKENDS = os.environ.get("BENCH_FLASH_BACKENDS", "sqlite,postgres").split(",")
FAKE_IN = os.environ.get("BENCH_FLASH_FAKE", "process")
LATENCY = 0.05
GOAL_SECONDS = 5.0


class Answers:
    """When the exchange answered each exit (the worker's own clock: perf_counter)."""

    def __init__(self, place: Callable[..., Any]) -> None:
        self.place = place
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        try:
            return self.place(*args)
        finally:
            with self.lock:
                self.times.append(time.perf_counter())


def crash(services: Services, fake: Any, tenants: int, per_tenant: int) -> dict[str, Any]:
    """Open the book, cross every stop with one price move, time the tick that sees it."""
    exchange = BinanceExchange(
        testnet=True, base_url=fake.url, timeout_seconds=10, weight_limit=10**9
    )
    config = TradingConfig(trading_enabled=True)
    ledger = Ledger(services.store, exchange, services.vault, services.clock, config)
    fake.weight_limit = 10**9
    fake.order_latency_seconds = 0
    fake.set_price(BTC, D(100000))
    positions = []
    opened = time.perf_counter()
    for t in range(tenants):
        client_id, _ = register(ledger, capital="1000")
        key, secret = f"flash{t:03}-{id(ledger)}-key-000000", f"flash{t:03}-secret-0000000000"
        fake.fund(key, secret, {"USDC": D(10000)})
        ledger.set_credentials(ledger.client(client_id).email, key, secret)
        for i in range(per_tenant):
            stop = str(99000 + 10 * i)
            positions.append(open_long(ledger, client_id, stop=stop, quantity=D("0.001")))
    setup = time.perf_counter() - opened
    worker = Worker(
        ledger,
        services.read_models,
        catch_up=services.projections.run_once,
        report=lambda action: None,
    )
    worker.startup()
    worker.tick()  # a quiet tick: the book is indexed, nothing is due
    fake.order_latency_seconds = LATENCY
    fake.used_weight = 0  # a fresh minute for the crash, under Binance's own limit
    fake.weight_limit = 6000
    answers = Answers(exchange.place_order)
    exchange.place_order = answers  # type: ignore[method-assign,assignment]
    fake.set_price(BTC, D(98000))
    fake_cpu = fake.cpu_seconds() if isinstance(fake, RemoteFake) else float("nan")
    cpu = time.process_time()
    started = time.perf_counter()
    actions = worker.tick()
    ended = time.perf_counter()
    cpu = time.process_time() - cpu
    if isinstance(fake, RemoteFake):
        fake_cpu = fake.cpu_seconds() - fake_cpu
    weight = fake.used_weight
    worker.close()
    exchange.close()
    done = sum(a.outcome is Outcome.DONE for a in actions)
    closed = sum(ledger.position(p.client_id, p.id).status is Status.CLOSED for p in positions)
    waits = sorted(at - started for at in answers.times)
    return {
        "n": len(positions),
        "setup": setup,
        "last": waits[-1] if waits else float("nan"),
        "p50": waits[len(waits) // 2] if waits else float("nan"),
        "p90": waits[len(waits) * 9 // 10] if waits else float("nan"),
        "cpu": cpu,
        "fake_cpu": fake_cpu,
        "tick": ended - started,
        "done": done,
        "closed": closed,
        "errors": worker.metrics.errors,
        "weight": weight,
    }


def fake_binance() -> RemoteFake | FakeBinance:
    return FakeBinance() if FAKE_IN == "thread" else RemoteFake(FakeBinance)


def run(backend: str, tenants: int, per_tenant: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home, fake_binance() as fake:
        settings = Settings.from_env(test_env(Path(home), backend))
        migrate(settings)
        services = build_services(settings)
        try:
            return crash(services, fake, tenants, per_tenant)
        finally:
            services.close()
            drop_schema(settings)


def main() -> None:
    for backend in BACKENDS:
        report(backend)


def report(backend: str) -> None:
    print(
        f"Flash crash on {backend}: one move crosses every stop; each order call to the fake "
        f"Binance (in {'this process' if FAKE_IN == 'thread' else 'a process of its own'}) "
        f"takes {LATENCY * 1000:.0f} ms; exit pool of {DEFAULT_CONCURRENCY}"
    )
    rows = [
        ("single exit (baseline)", run(backend, 1, 1)),
        ("flash crash", run(backend, TENANTS, PER_TENANT)),
    ]
    print(
        f"    {'run':<24} {'positions':>9} {'closed':>7} {'errors':>6} "
        f"{'p50 answer s':>12} {'p90 s':>6} {'last answer s':>13} {'tick s':>7} "
        f"{'cpu s':>6} {'fake cpu s':>10} {'weight':>6} {'setup s':>8}"
    )
    for name, r in rows:
        print(
            f"    {name:<24} {r['n']:>9,} {r['closed']:>7,} {r['errors']:>6} "
            f"{r['p50']:>12.3f} {r['p90']:>6.2f} {r['last']:>13.3f} {r['tick']:>7.3f} "
            f"{r['cpu']:>6.2f} {r['fake_cpu']:>10.2f} {r['weight']:>6} "
            f"{r['setup']:>8.1f}",
            flush=True,
        )
    flash = rows[1][1]
    sequential = flash["n"] * LATENCY
    verdict = "ok" if flash["last"] <= GOAL_SECONDS else "ABOVE GOAL"
    print(
        f"    last of {flash['n']:,} exits answered {flash['last']:.2f} s after the tick began "
        f"(sent one by one: >= {sequential:.0f} s; goal <= {GOAL_SECONDS:.0f} s: {verdict}); "
        f"{flash['last'] / max(rows[0][1]['last'], 1e-9):.1f}x the single exit",
        flush=True,
    )


if __name__ == "__main__":
    main()
