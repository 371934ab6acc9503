"""The read models' indexes are what the release declares: the trade history's busiest read
takes its rows from one covering index, and an index a release stopped declaring is gone
after `migrate`."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.documents import history_sql
from infra.bootstrap import Services, migrate
from infra.settings import Settings
from projections.database import ProjectionDatabase
from projections.tables import Dialect, Index
from projections.trade_history import TRADES
from tests.integration.test_documents import NOW, trade_rows

postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


def history_plan(database: ProjectionDatabase, client_id: UUID) -> str:
    """The plan PostgreSQL runs the history reply with (generic, as the API's connections
    keep it), left to choose among the indexes (a table this small would be read whole)."""
    with database.session() as s:
        s.execute("SET plan_cache_mode = force_generic_plan")
        for scan in ("seqscan", "bitmapscan"):
            s.execute(f"SET enable_{scan} = off")
        statement = history_sql(database.qualified(TRADES.name))
        assert isinstance(s.raw, psycopg.Connection)
        s.raw.pgconn.prepare(b"history", statement.encode())
        since = (NOW - timedelta(days=30)).isoformat()  # EXPLAIN takes no bound parameters
        rows = s.execute(f"EXPLAIN (FORMAT JSON) EXECUTE history('{client_id}', '{since}', 100)")
    plan = rows[0][0]
    return json.dumps(plan if not isinstance(plan, str) else json.loads(plan))


@postgres_only
def test_the_history_reply_reads_a_tenants_closed_trades_from_the_covering_index_alone(
    services: Services,
) -> None:
    database = services.read_models.database
    client_id = uuid4()
    with database.transaction() as tx:
        rows = trade_rows(client_id, 300, random.Random(5))
        tx.copy_in(database.qualified(TRADES.name), TRADES.column_names, rows)
    with database.session() as s:
        s.execute(f"VACUUM ANALYZE {database.qualified(TRADES.name)}")

    plan = json.loads(history_plan(database, client_id))
    scans = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == TRADES.name:
            scans.append((node["Node Type"], node.get("Index Name"), node.get("Heap Fetches")))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    covering = next(index for index in TRADES.indexes if index.include).name(TRADES.name)
    assert ("Index Only Scan", covering, None) in scans


@postgres_only
def test_trades_are_vacuumed_every_thousand_inserts_so_recent_rows_stay_index_only(
    services: Services,
) -> None:
    database = services.read_models.database
    with database.session() as s:
        (options,) = s.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
            [database.qualified(TRADES.name)],
        )[0]
    assert "autovacuum_vacuum_insert_threshold=1000" in options
    assert "autovacuum_vacuum_insert_scale_factor=0" in options


def test_migrate_drops_the_indexes_a_release_no_longer_declares_and_keeps_the_rest(
    services: Services, settings: Settings
) -> None:
    database = services.read_models.database
    table = database.qualified(TRADES.name)
    superseded = Index(("client_id", "exit_time")).name(TRADES.name)  # before the covering one
    foreign = "trades_by_symbol"  # an operator's own, outside the naming scheme
    with database.transaction() as tx:
        tx.execute(f'CREATE INDEX "{superseded}" ON {table} ("client_id", "exit_time")')
        tx.execute(f'CREATE INDEX "{foreign}" ON {table} ("symbol")')

    migrate(settings)

    with database.session() as s:
        if database.dialect is Dialect.POSTGRES:
            found = s.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                [database.schema, TRADES.name],
            )
        else:
            found = s.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s",
                [TRADES.name],
            )
    names = {name for (name,) in found}
    assert superseded not in names
    assert foreign in names
    assert {index.name(TRADES.name) for index in TRADES.indexes} <= names
