"""Per-token request counts in the events' database, shared by every API replica: one row
per token (its current window and hits), added to by one atomic UPSERT ... RETURNING for
any number of tokens at once (the same table and statement shape on SQLite and PostgreSQL).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.postgres import PostgresDatastore, PostgresRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteRecorder

from domain.store import EventStore
from infra.settings import ConfigurationError, Settings

TABLE = "api_rate_limits"
SQLITE_ROWS_PER_STATEMENT = 300  # 900 parameters: under every SQLite build's limit

Hits = tuple[str, int, int]  # bucket, window start (epoch seconds), hits to add

# A stored window newer than the one added to keeps its count: late hits of a past window
# are dropped. An older one is replaced.
_SQLITE_UPSERT = f"""
INSERT INTO {TABLE} (bucket, window_start, hits) VALUES {{rows}}
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN {TABLE}.window_start = excluded.window_start
                THEN {TABLE}.hits + excluded.hits
                WHEN {TABLE}.window_start > excluded.window_start
                THEN {TABLE}.hits ELSE excluded.hits END,
    window_start = MAX({TABLE}.window_start, excluded.window_start)
RETURNING bucket, hits
"""

_POSTGRES_UPSERT = """
INSERT INTO {table} AS t (bucket, window_start, hits)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN t.window_start = excluded.window_start THEN t.hits + excluded.hits
                WHEN t.window_start > excluded.window_start THEN t.hits
                ELSE excluded.hits END,
    window_start = GREATEST(t.window_start, excluded.window_start)
RETURNING bucket, hits
"""

_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
)
"""


def _datastore(store: EventStore) -> SQLiteDatastore | PostgresDatastore:
    recorder: Any = store.recorder
    if isinstance(recorder, SQLiteRecorder | PostgresRecorder):
        return recorder.datastore
    raise ConfigurationError(f"rate limits need SQLite or PostgreSQL, not {type(recorder)}")


def _postgres_table(datastore: PostgresDatastore) -> str:
    schema = datastore.schema.replace('"', '""')
    return f'"{schema}".{TABLE}'


def create_rate_limit_table(store: EventStore) -> None:
    """Part of `robson migrate`; idempotent."""
    datastore = _datastore(store)
    if isinstance(datastore, PostgresDatastore):
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(_CREATE.format(table=_postgres_table(datastore)).encode())
    else:
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(_CREATE.format(table=TABLE))


class SqlCounter:
    """Counters over connections of their own that commit without waiting for the disk
    (`synchronous_commit=off`, SQLite `synchronous=NORMAL`): a crash may forget the last few
    hits, never corrupt a count, and no request waits for an fsync.
    """

    def __init__(self, settings: Settings, pool_size: int = 4) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._pg: Any = None
        self._lite: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._closed = False
        if settings.is_postgres:
            from infra.bootstrap import postgres_target

            assert settings.database_url is not None
            target = postgres_target(settings.database_url)
            schema = target.schema.replace('"', '""')
            self.statement = _POSTGRES_UPSERT.format(table=f'"{schema}".{TABLE}')
            self._pg_kwargs = {
                "dbname": target.dbname,
                "host": target.host,
                "port": target.port,
                "user": target.user,
                "password": target.password,
                "autocommit": True,
                "options": "-c synchronous_commit=off",
            }

    def add(self, hits: Sequence[Hits]) -> list[int]:
        """Add each bucket's hits to its window (each bucket at most once); returns each
        bucket's count, in order: of the newer window when the stored one is newer.

        One statement in autocommit mode (on SQLite, one for every few hundred buckets):
        a single round trip, atomic on its own."""
        if not hits:
            return []
        if self.settings.is_postgres:
            # In bucket order: replicas flushing at once lock the rows they share in the same
            # order, so neither waits for the other in a deadlock.
            columns = [list(column) for column in zip(*sorted(hits), strict=True)]
            with self._postgres().connection() as pg:
                rows = pg.execute(self.statement.encode(), columns).fetchall()
        else:
            rows = []
            for start in range(0, len(hits), SQLITE_ROWS_PER_STATEMENT):
                rows += self._sqlite_add(hits[start : start + SQLITE_ROWS_PER_STATEMENT])
        counts = {bucket: int(count) for bucket, count in rows}
        return [counts[bucket] for bucket, _, _ in hits]

    def _sqlite_add(self, hits: Sequence[Hits]) -> list[Any]:
        statement = _SQLITE_UPSERT.format(rows=",".join(["(?, ?, ?)"] * len(hits)))
        connection = self._sqlite()
        try:
            # fetchall: SQLite commits an UPSERT ... RETURNING only once it is fully stepped
            return connection.execute(statement, [p for row in hits for p in row]).fetchall()
        finally:
            self._lite.put(connection)

    def _postgres(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("the rate-limit counter is closed")
            if self._pg is None:
                from psycopg_pool import ConnectionPool

                self._pg = ConnectionPool(
                    kwargs=self._pg_kwargs, min_size=1, max_size=self.pool_size, open=False
                )
                self._pg.open(wait=True, timeout=30.0)
            return self._pg

    def _sqlite(self) -> sqlite3.Connection:
        try:
            return self._lite.get_nowait()
        except queue.Empty:
            connection = sqlite3.connect(
                self.settings.sqlite_path,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pg = self._pg, None
        if pool is not None:
            pool.close()
        while True:
            try:
                self._lite.get_nowait().close()
            except queue.Empty:
                break
