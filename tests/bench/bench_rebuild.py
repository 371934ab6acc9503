"""Rebuild throughput on PostgreSQL: fold a large log into fresh tables and swap them in.

Generates BENCH_EVENTS (default 1,000,000) realistic events with the domain's own methods
(tenants, policies, positions with partial exits, paper fills and prices), encodes them with
the store's mapper and COPYs them into a fresh schema's events table. Then it times the raw
read of that table (COPY ... TO STDOUT through psycopg) and the rebuild of every projection.
Generation runs in one process per CPU; each process owns its tenants and its own paper
market, so the log's aggregates stay consistent.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

from domain.client import Client
from domain.drawdown import loss_percent, month_of
from domain.identity import NAMESPACE
from domain.market import BTCUSDC, Side
from domain.paper_market import PaperMarket
from domain.policy import Policy
from domain.ports import MarginEffect, OrderRequest
from domain.position import ExitReason, Position
from domain.store import EventStore
from infra.bootstrap import build_services, migrate, postgres_target
from infra.paper_accounts import PaperAccount
from infra.settings import Settings
from projections.catalog import all_projections, all_tables
from projections.progress import TerminalProgress
from projections.rebuild import rebuild
from tests.conftest import connect

StoredRow = tuple[UUID | str, int, str, bytes]
POSTGRES_URL = os.environ.get(
    "ROBSON_BENCH_POSTGRES_URL",
    os.environ.get("ROBSON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)
START = datetime(2025, 1, 1, tzinfo=UTC)
POSITIONS_PER_TENANT = 40


class _Chunk:
    """Tenants of one generator process, traded one position at a time over 18 months."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.rows: list[StoredRow] = []
        self.market = PaperMarket._create(
            PaperMarket.Opened,
            id=uuid5(NAMESPACE, f"/bench/markets/{seed}"),
            timestamp=START,
            symbol="BTCUSDC",
            price=Decimal(60000),
        )
        self.price = Decimal(60000)
        self._keep(self.market)

    def _keep(self, *aggregates: Any) -> None:
        to_stored = self.store.mapper.to_stored_event
        for aggregate in aggregates:
            for event in aggregate.collect_events():
                stored = to_stored(event)
                self.rows.append(
                    (stored.originator_id, stored.originator_version, stored.topic, stored.state)
                )

    def _tick(self, now: datetime) -> Decimal:
        move = Decimal(self.random.randint(-300, 300))
        self.price = max(Decimal(20000), self.price + move)
        self.market.set_price(self.price, now)
        return self.price

    def tenant(self, index: int, seed: int) -> None:
        now = START + timedelta(minutes=self.random.randint(0, 600))
        client = Client.register("Bench", f"bench-{seed}-{index}@example.com", False, now)
        client.issue_token("t1", f"token-{index}", now)
        policy = Policy.configure(client.id, Decimal(10000), now)
        account = PaperAccount._create(
            PaperAccount.Funded,
            id=uuid4(),
            timestamp=now,
            client_id=client.id,
            balances={"USDC": Decimal(100000)},
        )
        self._keep(client, policy, account)
        for _ in range(POSITIONS_PER_TENANT):
            now += timedelta(hours=self.random.randint(6, 300))
            self._position(client.id, policy, account, now)
            self._keep(self.market)

    def _position(
        self, client_id: UUID, policy: Policy, account: PaperAccount, now: datetime
    ) -> None:
        """One position the way the ledger records it: plan, validate, fills, exits, P&L."""
        side = Side.LONG if self.random.random() < 0.7 else Side.SHORT
        entry = self._tick(now)
        span = Decimal(self.random.randint(200, 1500))
        stop = entry - span if side is Side.LONG else entry + span
        quantity = Decimal("0.05")
        position = Position.plan(
            uuid4(),
            client_id,
            BTCUSDC,
            side,
            entry,
            stop,
            None,
            quantity,
            Decimal(10000),
            now,
            margin=side is Side.SHORT,
        )
        month = month_of(now)
        policy.start_month(month, now)
        position.validate([], now)
        if self.random.random() < 0.05:
            position.cancel("changed my mind", now)
            self._keep(position, policy)
            return
        policy.reserve_risk(position.id, position.risk_amount, now)
        order_id = position.submit_entry(now)
        margin = MarginEffect.MARGIN_BUY if position.margin else None
        request = OrderRequest(
            "BTCUSDC", side.entry_order_side, order_id, quantity=quantity, margin=margin
        )
        entry_order = account.fill(request, BTCUSDC, quantity, entry, now)
        position.record_entry_fill(order_id, "1", entry, quantity, entry_order.fees, now)
        self._keep(entry_order)
        for step in range(self.random.randint(0, 2)):
            now += timedelta(minutes=self.random.randint(5, 240))
            self._tick(now)
            position.adjust_stop(stop + side.sign * span * step / 2, step, now)
        parts = 2 if self.random.random() < 0.2 else 1
        for part in range(parts):
            now += timedelta(minutes=self.random.randint(10, 2000))
            exit_price = self._tick(now)
            rest = part == parts - 1
            position.trigger_exit(
                ExitReason.MANUAL, exit_price, now, None if rest else position.open_quantity / 2
            )
            order_id = position.submit_exit(now)
            repay = MarginEffect.AUTO_REPAY if position.margin else None
            exit_request = OrderRequest(
                "BTCUSDC",
                side.exit_order_side,
                order_id,
                quantity=position.exit_order_quantity,
                margin=repay,
            )
            exit_order = account.fill(
                exit_request, BTCUSDC, position.exit_order_quantity, exit_price, now
            )
            position.record_exit_fill(
                order_id, "2", exit_price, position.exit_order_quantity, exit_order.fees, now
            )
            self._keep(exit_order)
            month = month_of(now)
            policy.start_month(month, now)
            policy.realise(position.id, month, position.exits[-1]["pnl"], Decimal(0), now)
            policy.observe_drawdown(
                month,
                loss_percent(policy.capital_base(month), policy.realised_pnl(month), Decimal(0)),
                now,
            )
        self._keep(position, policy, account)


def _generate(seed: int, tenants: int) -> list[StoredRow]:
    chunk = _Chunk(seed)
    for index in range(tenants):
        chunk.tenant(index, seed)
    return chunk.rows


def generate(events: int) -> Iterator[list[StoredRow]]:
    """About `events` stored events, in chunks generated in parallel."""
    per_tenant = 16 * POSITIONS_PER_TENANT  # measured average, roughly
    tenants = max(1, events // per_tenant)
    workers = max(1, min(os.cpu_count() or 1, 8))
    chunks = max(workers * 4, 1)
    sizes = [tenants // chunks + (1 if i < tenants % chunks else 0) for i in range(chunks)]
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_generate, range(chunks), sizes)


def _load(settings: Settings, wanted: int) -> int:
    assert settings.database_url is not None
    schema = postgres_target(settings.database_url).schema
    loaded = 0
    with connect(settings) as conn, conn.cursor() as cursor:
        statement = (
            f'COPY "{schema}".robson_events (originator_id, originator_version, topic, state) '
            "FROM STDIN (FORMAT BINARY)"
        )
        with cursor.copy(statement) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for rows in generate(wanted):
                for row in rows:
                    copy.write_row(row)
                loaded += len(rows)
        cursor.execute(f'ANALYZE "{schema}".robson_events')
    return loaded


def _raw_read(settings: Settings) -> tuple[int, float]:
    """The events table read raw: COPY ... TO STDOUT through psycopg, rows parsed."""
    assert settings.database_url is not None
    schema = postgres_target(settings.database_url).schema
    began = time.perf_counter()
    count = 0
    with connect(settings) as conn, conn.cursor() as cursor:
        statement = (
            "COPY (SELECT notification_id, originator_id, topic, state "
            f'FROM "{schema}".robson_events ORDER BY notification_id) TO STDOUT (FORMAT BINARY)'
        )
        with cursor.copy(statement) as copy:
            copy.set_types(["int8", "uuid", "text", "bytea"])
            for _ in copy.rows():
                count += 1
    return count, time.perf_counter() - began


def _page_read(settings: Settings) -> tuple[int, float]:
    """The same rows in binary keyset pages: how the rebuild reads (before decoding)."""
    assert settings.database_url is not None
    schema = postgres_target(settings.database_url).schema
    statement = (
        "SELECT notification_id, originator_id, topic, state "
        f'FROM "{schema}".robson_events WHERE notification_id > %s '
        "ORDER BY notification_id LIMIT 5000"
    )
    began = time.perf_counter()
    count = last = 0
    with connect(settings) as conn, conn.cursor(binary=True) as cursor:
        while rows := cursor.execute(statement, (last,)).fetchall():
            count += len(rows)
            last = rows[-1][0]
    return count, time.perf_counter() - began


def _cpu_seconds() -> float:
    """User + system time of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _drop(settings: Settings) -> None:
    assert settings.database_url is not None
    schema = postgres_target(settings.database_url).schema
    with connect(settings) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    wanted = int(os.environ.get("BENCH_EVENTS", "1000000"))
    home = Path(tempfile.mkdtemp(prefix="robson-bench-"))
    env = {
        "ROBSON_HOME": str(home),
        "ROBSON_DATABASE_URL": f"{POSTGRES_URL}?schema=bench_{uuid4().hex[:12]}",
        "RBS_CREDENTIAL_ENCRYPTION_KEY": "Xw2m4X7u0bO3Yg9a6mJ3F3tZ1rG6H8c9vQ2sL5kN1pE=",
    }
    settings = Settings.from_env(env)
    migrate(settings)
    try:
        began = time.perf_counter()
        loaded = _load(settings, wanted)
        print(f"generated and loaded {loaded:,} events in {time.perf_counter() - began:.1f} s")
        raw_count, raw_seconds = _raw_read(settings)
        page_count, page_seconds = _page_read(settings)
        raw_rate = raw_count / raw_seconds
        services = build_services(settings)
        cpu_before = _cpu_seconds()
        try:
            report = rebuild(
                services.read_models.database,
                services.store,
                all_projections(),
                progress=TerminalProgress(sys.stderr),
            )
            cpu = _cpu_seconds() - cpu_before
            rows = {t.name: len(services.read_models.database.dump(t)) for t in all_tables()}
        finally:
            services.close()
        rate = loaded / report.seconds
        print(
            f"rebuild: {loaded:,} events in {report.seconds:.1f} s = {rate:,.0f} ev/s; "
            f"raw COPY read {raw_rate:,.0f} ev/s; ratio {rate / raw_rate:.2f}"
        )
        print(
            f"  {report.events_read:,} events needed by the projections (the rest are "
            "skipped in SQL); binary keyset pages read "
            f"{page_count / page_seconds:,.0f} ev/s; {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  rebuild CPU (this process, not PostgreSQL's): {cpu:.1f} s = "
            f"{loaded / cpu:,.0f} events per CPU-second"
        )
        print("  rows: " + ", ".join(f"{name} {count:,}" for name, count in rows.items()))
    finally:
        _drop(settings)


if __name__ == "__main__":
    main()
