"""Per-token request counts in the events' database, shared by every API replica: one row
per token (its current window and hits), added to by one atomic UPSERT ... RETURNING for
any number of tokens at once (the same table and statement shape on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.rate_limit import Hits
from projections.database import ProjectionDatabase
from projections.tables import Dialect

TABLE = "api_rate_limits"
SQLITE_ROWS_PER_STATEMENT = 300  # 900 parameters: under every SQLite build's limit

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


def create_rate_limit_table(database: ProjectionDatabase) -> None:
    """Part of `robson migrate`; idempotent."""
    with database.session() as session:
        session.execute(_CREATE.format(table=database.qualified(TABLE)))


class SqlCounter:
    """Counters over connections that commit without waiting for the disk (a database opened
    with `durable=False`): a crash may forget the last few hits, never corrupt a count, and
    no request waits for an fsync."""

    def __init__(self, database: ProjectionDatabase) -> None:
        self.database = database
        if database.dialect is Dialect.POSTGRES:
            self.statement = _POSTGRES_UPSERT.format(table=database.qualified(TABLE))

    def add(self, hits: Sequence[Hits]) -> list[int]:
        """Add each bucket's hits to its window (each bucket at most once); returns each
        bucket's count, in order: of the newer window when the stored one is newer.

        One statement in autocommit mode (on SQLite, one for every few hundred buckets):
        a single round trip, atomic on its own."""
        if not hits:
            return []
        rows: list[Any] = []
        with self.database.session() as session:
            if self.database.dialect is Dialect.POSTGRES:
                # In bucket order: replicas flushing at once lock the rows they share in the
                # same order, so neither waits for the other in a deadlock.
                columns = [list(column) for column in zip(*sorted(hits), strict=True)]
                rows = session.execute(self.statement, columns)
            else:
                for start in range(0, len(hits), SQLITE_ROWS_PER_STATEMENT):
                    chunk = hits[start : start + SQLITE_ROWS_PER_STATEMENT]
                    statement = _SQLITE_UPSERT.format(rows=",".join(["(%s, %s, %s)"] * len(chunk)))
                    rows += session.execute(statement, [p for row in chunk for p in row])
        counts = {bucket: int(count) for bucket, count in rows}
        return [counts[bucket] for bucket, _, _ in hits]

    def close(self) -> None:
        self.database.close()
