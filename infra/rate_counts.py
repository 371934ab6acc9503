"""Per-token request slots in the events' database, shared by every API replica: one row per
token (its current window, the slots taken in it, and how many the last claim got), taken
by one atomic UPSERT ... RETURNING for any number of tokens at once (the same table and
statement shape on SQLite and PostgreSQL). The row is locked while a claim decides, so
claims from every replica are served one after the other: no slot is handed out twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.rate_limit import Claim
from projections.database import ProjectionDatabase
from projections.tables import Dialect, Record

TABLE = "api_rate_limits"
SQLITE_ROWS_PER_STATEMENT = 300  # 900 parameters: under every SQLite build's limit

# What a claim gets when `taken` slots are already taken: up to `bulk` in a block, then one
# at a time up to `limit`. `excluded.hits` holds the claim's grant on an empty window,
# which the insert computes in Python (see `_first_grant`).
_GRANT = """CASE WHEN t.hits < {bulk} THEN {least}(excluded.hits, {bulk} - t.hits)
                 WHEN t.hits < {limit} THEN {least}(excluded.hits, 1) ELSE 0 END"""
# A stored window newer than the claim's keeps its count and grants nothing; an older one is
# replaced by the claim's.
_UPSERT = """
INSERT INTO {table} AS t (bucket, window_start, hits, granted) {rows}
ON CONFLICT (bucket) DO UPDATE SET
    granted = CASE WHEN t.window_start = excluded.window_start THEN {grant}
                   WHEN t.window_start > excluded.window_start THEN 0
                   ELSE excluded.hits END,
    hits = CASE WHEN t.window_start = excluded.window_start THEN t.hits + {grant}
                WHEN t.window_start > excluded.window_start THEN t.hits
                ELSE excluded.hits END,
    window_start = {greatest}(t.window_start, excluded.window_start)
RETURNING bucket, hits, granted
"""
_POSTGRES_ROWS = (
    "SELECT b, w, n, n FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS c(b, w, n)"
)

_POSTGRES_GIVE_BACK = """
UPDATE {table} AS t SET hits = GREATEST(t.hits - r.n, 0)
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS r(bucket, window_start, n)
WHERE t.bucket = r.bucket AND t.window_start = r.window_start
"""
_SQLITE_GIVE_BACK = (
    "UPDATE {table} SET hits = MAX(hits - %s, 0) WHERE bucket = %s AND window_start = %s"
)

_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    granted BIGINT NOT NULL DEFAULT 0
)
"""


def create_rate_limit_table(database: ProjectionDatabase) -> None:
    """Part of `robson migrate`; idempotent (adds `granted` to a table of an older release)."""
    table = database.qualified(TABLE)
    with database.session() as session:
        session.execute(_CREATE.format(table=table))
    if "granted" not in database.columns(TABLE):
        with database.session() as session:
            session.execute(f"ALTER TABLE {table} ADD COLUMN granted BIGINT NOT NULL DEFAULT 0")


def _first_grant(wanted: int, bulk: int) -> int:
    """A claim's grant in a window nobody has taken a slot of."""
    return min(wanted, bulk) if bulk > 0 else min(wanted, 1)


class SqlCounter:
    """Slots over connections that commit without waiting for the disk (a database opened
    with `durable=False`): a crash may forget the last few claims, so a replica restarted
    at once may admit a few more in that window; no request waits for an fsync."""

    def __init__(self, database: ProjectionDatabase) -> None:
        self.database = database
        self.table = database.qualified(TABLE)
        self.postgres = database.dialect is Dialect.POSTGRES
        self._statements: dict[tuple[int, int, int], str] = {}

    def _upsert(self, limit: int, bulk: int, rows: int) -> str:
        key = (limit, bulk, rows)
        if key not in self._statements:
            least, greatest = ("LEAST", "GREATEST") if self.postgres else ("MIN", "MAX")
            grant = _GRANT.format(bulk=int(bulk), limit=int(limit), least=least)
            values = (
                _POSTGRES_ROWS
                if self.postgres
                else "VALUES " + ",".join(["(%s, %s, %s, %s)"] * rows)
            )
            self._statements[key] = _UPSERT.format(
                table=self.table, rows=values, grant=grant, greatest=greatest
            )
        return self._statements[key]

    def claim(self, claims: Sequence[Claim], limit: int, bulk: int) -> list[tuple[int, int]]:
        """See `api.rate_limit.Counter`. One statement in autocommit mode (on SQLite, one
        for every few hundred buckets): a single round trip, atomic on its own."""
        if not claims:
            return []
        rows: list[Record] = []
        firsts = [(b, w, _first_grant(n, bulk)) for b, w, n in claims]
        with self.database.session() as session:
            if self.postgres:
                # In bucket order: replicas claiming at once lock the rows they share in the
                # same order, so neither waits for the other in a deadlock.
                columns = [list(column) for column in zip(*sorted(firsts), strict=True)]
                rows = session.execute(self._upsert(limit, bulk, 0), columns)
            else:
                for start in range(0, len(firsts), SQLITE_ROWS_PER_STATEMENT):
                    chunk = firsts[start : start + SQLITE_ROWS_PER_STATEMENT]
                    params = [p for b, w, n in chunk for p in (b, w, n, n)]
                    rows += session.execute(self._upsert(limit, bulk, len(chunk)), params)
        found = {bucket: (int(taken), int(granted)) for bucket, taken, granted in rows}
        return [found[bucket] for bucket, _, _ in claims]

    def give_back(self, unused: Sequence[Claim]) -> None:
        if not unused:
            return
        with self.database.session() as session:
            if self.postgres:
                columns = [list(column) for column in zip(*sorted(unused), strict=True)]
                session.execute(_POSTGRES_GIVE_BACK.format(table=self.table), columns)
            else:
                session.executemany(
                    _SQLITE_GIVE_BACK.format(table=self.table),
                    [(n, bucket, window) for bucket, window, n in unused],
                )

    def close(self) -> None:
        self.database.close()
