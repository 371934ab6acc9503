"""Ledger command throughput beside the raw single-row transaction rate of the same database.

Each position is four commands (plan, validate, execute, close). Measured twice: on the
paper exchange, whose balances and orders are events in the same store (execute and close
each commit three transactions: order id recorded, paper fill, fill recorded), and on an
exchange that answers from memory, which is what the ledger costs on its own (the two
transactions per order that crash safety needs). The event store's own one-event write rate
is printed too: with six such writes per position, four commands can reach at most 4/6 of it.

The raw rate is plain psycopg's: each transaction is BEGIN, one INSERT and COMMIT as psycopg
sends them, three round trips; the event store pipelines its transaction into one, so its
one-event writes can outpace the raw rate where round trips cost more than the commit's
flush to disk.

The machine's speed drifts within minutes, so each ledger is measured in `ROUNDS` rounds,
each between two raw runs of the same database; a round's ratio compares the ledger with
the mean of the raw runs around it, and the median of the rounds' ratios is reported with
the range of those raw rates. A ledger command spends most of its time waiting for commits,
so the ratio moves with the machine's balance of round-trip and flush costs even when the
ledger's own rate does not.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import psycopg
from eventsourcing.persistence import StoredEvent

from domain.ledger import PlanRequest
from domain.market import BTCUSDC, Side, SymbolRules
from domain.ports import (
    Balance,
    MarginHolding,
    OrderRecord,
    OrderRequest,
    OrderResult,
    OrderStatus,
    StopOrderRequest,
    Trade,
    TradingAccount,
)
from infra.bootstrap import build_services, migrate, open_store, postgres_target
from infra.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_KEY, drop_schema

POSITIONS = int(os.environ.get("BENCH_POSITIONS", "100"))  # each round
RAW_TRANSACTIONS = int(os.environ.get("BENCH_RAW_TRANSACTIONS", "1000"))  # each raw run
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
GOAL = 0.50


PRICE = Decimal("100000")
FEE = Decimal("0.001")


class InstantExchange:
    """Fills every order at once at one price, 0.1% fee in the asset received; no storage."""

    name = "instant"
    is_live = False

    def symbol_rules(self, symbol: str) -> SymbolRules:
        return BTCUSDC

    def price(self, symbol: str) -> Decimal:
        return PRICE

    def balances(self, account: TradingAccount) -> dict[str, Balance]:
        return {"USDC": Balance("USDC", Decimal(10**9), Decimal(0))}

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        assert order.quantity is not None
        received = order.quantity if order.side.value == "BUY" else order.quantity * PRICE
        return OrderResult(
            client_order_id=order.client_order_id,
            exchange_order_id=order.client_order_id,
            status=OrderStatus.FILLED,
            executed_quantity=order.quantity,
            average_price=PRICE,
            quote_quantity=order.quantity * PRICE,
            fees={
                order.symbol.removeprefix("BTC") if order.side.value == "SELL" else "BTC": (
                    received * FEE
                )
            },
            executed_at=datetime.now(UTC),
        )

    def find_order(
        self, account: TradingAccount, symbol: str, client_order_id: str
    ) -> OrderResult | None:
        return None

    def orders_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[OrderRecord]:
        return []

    def trades_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[Trade]:
        return []

    def place_stop(self, account: TradingAccount, order: StopOrderRequest) -> OrderResult:
        return _unfilled(order.client_order_id, OrderStatus.PENDING)

    def replace_stop(
        self, account: TradingAccount, old_client_order_id: str, order: StopOrderRequest
    ) -> OrderResult | None:
        return self.place_stop(account, order)

    def cancel_order(
        self, account: TradingAccount, symbol: str, client_order_id: str, margin: bool
    ) -> OrderResult | None:
        return _unfilled(client_order_id, OrderStatus.REJECTED)

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        pass

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        pass

    def isolated_margin(self, account: TradingAccount, symbol: str) -> dict[str, MarginHolding]:
        return {asset: MarginHolding(asset) for asset in ("BTC", "USDC")}


def _unfilled(client_order_id: str, status: OrderStatus) -> OrderResult:
    """A stop resting (PENDING) or cancelled (REJECTED) with nothing executed."""
    return OrderResult(
        client_order_id=client_order_id,
        exchange_order_id=client_order_id,
        status=status,
        executed_quantity=Decimal(0),
        average_price=Decimal(0),
        quote_quantity=Decimal(0),
        fees={},
        executed_at=datetime.now(UTC),
    )


@contextmanager
def ledger_runs(settings: Settings, instant: bool) -> Iterator[Callable[[], float]]:
    """A ledger and one client; yields a run of `POSITIONS` positions, returning commands/s."""
    services = build_services(settings, exchange=InstantExchange() if instant else None)
    try:
        ledger = services.ledger
        if services.paper is not None:
            services.paper.set_price("BTCUSDC", PRICE)
        reg = ledger.register_client(
            "Bench", f"bench-{uuid4().hex[:8]}@example.com", Decimal(10**6)
        )
        plan = PlanRequest(
            symbol="BTCUSDC", side=Side.LONG, stop_price=Decimal("98000"), quantity=Decimal("0.001")
        )

        def run() -> float:
            started = time.perf_counter()
            for _ in range(POSITIONS):
                position = ledger.plan_position(reg.client_id, plan)
                ledger.validate_position(reg.client_id, position.id)
                ledger.execute_position(reg.client_id, position.id)
                ledger.close_position(reg.client_id, position.id)
            return POSITIONS * 4 / (time.perf_counter() - started)

        yield run
    finally:
        services.close()


def raw_sqlite_rate(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, state BLOB)")
    payload = os.urandom(300)
    started = time.perf_counter()
    for _ in range(RAW_TRANSACTIONS):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO raw (state) VALUES (?)", (payload,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return RAW_TRANSACTIONS / elapsed


def raw_postgres_rate(settings: Settings) -> float:
    assert settings.database_url is not None
    target = postgres_target(settings.database_url)
    payload = os.urandom(300)
    with psycopg.connect(
        dbname=target.dbname, host=target.host, port=target.port, user=target.user
    ) as conn:
        table = f'"{target.schema}".raw'
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, state bytea)")
        conn.commit()
        started = time.perf_counter()
        for _ in range(RAW_TRANSACTIONS):
            conn.execute(f"INSERT INTO {table} (state) VALUES (%s)", (payload,))
            conn.commit()
        elapsed = time.perf_counter() - started
    return RAW_TRANSACTIONS / elapsed


def store_write_rate(settings: Settings) -> float:
    """Single-event writes through the event store, each its own durable transaction."""
    store = open_store(settings)
    state = os.urandom(300)
    try:
        started = time.perf_counter()
        for _ in range(RAW_TRANSACTIONS):
            store.recorder.insert_events([StoredEvent(uuid4(), 1, "bench:Event", state)])
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    return RAW_TRANSACTIONS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {"ROBSON_HOME": home, "RBS_CREDENTIAL_ENCRYPTION_KEY": TEST_KEY}
        sqlite_settings = Settings.from_env(env)
        migrate(sqlite_settings)
        raw_file = Path(home) / "raw.sqlite3"
        measure("SQLite", sqlite_settings, lambda: raw_sqlite_rate(raw_file))

        env["ROBSON_DATABASE_URL"] = f"{POSTGRES_URL}?schema=bench_{uuid4().hex[:12]}"
        pg_settings = Settings.from_env(env)
        migrate(pg_settings)
        try:
            measure("PostgreSQL", pg_settings, lambda: raw_postgres_rate(pg_settings))
        finally:
            drop_schema(pg_settings)


def measure(backend: str, settings: Settings, raw: Callable[[], float]) -> None:
    before = raw()
    report_writes(backend, store_write_rate(settings), (before + raw()) / 2)
    for instant in (False, True):
        rates, raws, ratios = [], [], []
        with ledger_runs(settings, instant) as ledger:
            before = raw()
            for _ in range(ROUNDS):
                commands = ledger()
                after = raw()
                rates.append(commands)
                raws.append((before + after) / 2)
                ratios.append(commands / raws[-1])
                before = after
        report(backend, instant, rates, raws, ratios)


def report_writes(backend: str, writes: float, raw: float) -> None:
    print(
        f"event store {backend}: {writes:,.0f} one-event writes/s ({writes / raw:.2f} of the "
        f"raw rate {raw:,.0f}/s); at six writes a position, commands/s can reach at most "
        f"{writes * 4 / 6:,.0f} ({writes * 4 / 6 / raw:.2f} of the raw rate)",
        flush=True,
    )


def report(
    backend: str, instant: bool, rates: list[float], raws: list[float], ratios: list[float]
) -> None:
    ratio = statistics.median(ratios)
    commands = statistics.median(rates)
    exchange = "exchange in memory" if instant else "paper exchange"
    print(
        f"ledger {backend}, {exchange}: {commands:,.0f} commands/s "
        f"({commands / 4:,.0f} positions/s planned+validated+executed+closed); "
        f"the raw rate around the rounds {min(raws):,.0f}-{max(raws):,.0f}/s; "
        f"ratio to the raw single-row transaction rate {ratio:.2f} "
        f"(median of {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"{'meets' if ratio >= GOAL else 'below'} the {GOAL:.2f} goal)",
        flush=True,
    )


if __name__ == "__main__":
    main()
