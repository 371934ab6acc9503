"""Ledger command throughput beside the raw single-row transaction rate of the same database.

Each position is four commands (plan, validate, execute, close); execute and close each
commit three transactions (order id recorded, exchange fill, fill recorded).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import psycopg

from domain.ledger import PlanRequest
from domain.market import Side
from infra.bootstrap import build_services, migrate, postgres_target
from infra.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_KEY, drop_schema

POSITIONS = int(os.environ.get("BENCH_POSITIONS", "300"))
RAW_TRANSACTIONS = int(os.environ.get("BENCH_RAW_TRANSACTIONS", "2000"))


def ledger_rate(settings: Settings) -> float:
    services = build_services(settings)
    try:
        ledger, paper = services.ledger, services.paper
        assert paper is not None
        paper.set_price("BTCUSDC", Decimal("100000"))
        reg = ledger.register_client(
            "Bench", f"bench-{uuid4().hex[:8]}@example.com", Decimal(10**6)
        )
        plan = PlanRequest(
            symbol="BTCUSDC", side=Side.LONG, stop_price=Decimal("98000"), quantity=Decimal("0.001")
        )
        started = time.perf_counter()
        for _ in range(POSITIONS):
            position = ledger.plan_position(reg.client_id, plan)
            ledger.validate_position(reg.client_id, position.id)
            ledger.execute_position(reg.client_id, position.id)
            ledger.close_position(reg.client_id, position.id)
        elapsed = time.perf_counter() - started
    finally:
        services.close()
    return POSITIONS * 4 / elapsed


def raw_sqlite_rate(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, state BLOB)")
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
        conn.execute(f'CREATE TABLE "{target.schema}".raw (id bigserial PRIMARY KEY, state bytea)')
        conn.commit()
        started = time.perf_counter()
        for _ in range(RAW_TRANSACTIONS):
            conn.execute(f'INSERT INTO "{target.schema}".raw (state) VALUES (%s)', (payload,))
            conn.commit()
        elapsed = time.perf_counter() - started
    return RAW_TRANSACTIONS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {"ROBSON_HOME": home, "RBS_CREDENTIAL_ENCRYPTION_KEY": TEST_KEY}
        sqlite_settings = Settings.from_env(env)
        migrate(sqlite_settings)
        raw = raw_sqlite_rate(Path(home) / "raw.sqlite3")
        commands = ledger_rate(sqlite_settings)
        report("SQLite", commands, raw)

        env["ROBSON_DATABASE_URL"] = f"{POSTGRES_URL}?schema=bench_{uuid4().hex[:12]}"
        pg_settings = Settings.from_env(env)
        migrate(pg_settings)
        try:
            raw = raw_postgres_rate(pg_settings)
            commands = ledger_rate(pg_settings)
            report("PostgreSQL", commands, raw)
        finally:
            drop_schema(pg_settings)


def report(backend: str, commands: float, raw: float) -> None:
    ratio = commands / raw
    verdict = "meets" if ratio >= 0.5 else "below"
    print(
        f"ledger {backend}: {commands:,.0f} commands/s ({commands / 4:,.0f} positions/s "
        f"planned+validated+executed+closed); raw single-row transactions {raw:,.0f}/s; "
        f"ratio {ratio:.2f} ({verdict} the 0.50 goal)",
        flush=True,
    )


if __name__ == "__main__":
    main()
