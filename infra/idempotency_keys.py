"""The API's Idempotency-Key records in the events' database, shared by every replica and
kept across restarts: one row per (tenant, key). A claim is one INSERT ... ON CONFLICT that
takes over only an expired row, so of concurrent claims exactly one returns a row (the same
statement on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from api.idempotency import KeyRecord, State, StoredReply
from projections.database import ProjectionDatabase
from projections.tables import Dialect

TABLE = "api_idempotency_keys"

_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    tenant TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status INTEGER,
    headers TEXT,
    body {blob},
    position_id TEXT,
    PRIMARY KEY (tenant, idem_key)
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS {name} ON {table} (created_at)"

_CLAIM = """
INSERT INTO {table} AS k (tenant, idem_key, fingerprint, state, created_at)
VALUES (%s, %s, %s, 'pending', %s)
ON CONFLICT (tenant, idem_key) DO UPDATE SET
    fingerprint = excluded.fingerprint, state = excluded.state,
    created_at = excluded.created_at,
    status = NULL, headers = NULL, body = NULL, position_id = NULL
WHERE k.created_at < %s
RETURNING created_at
"""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Epoch microseconds: one comparable integer on both databases."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def create_idempotency_table(database: ProjectionDatabase) -> None:
    """Part of `robson migrate`; idempotent."""
    blob = "BYTEA" if database.dialect is Dialect.POSTGRES else "BLOB"
    table = database.qualified(TABLE)
    with database.transaction() as tx:
        tx.execute(_CREATE.format(table=table, blob=blob))
        tx.execute(_INDEX.format(name=f'"{TABLE}__created_at__idx"', table=table))


class SqlIdempotencyKeys:
    """`api.idempotency.KeyStore` over autocommit connections (each statement atomic on
    its own). Durable commits: a claim a crash forgot could let a retry order twice."""

    def __init__(self, database: ProjectionDatabase) -> None:
        self.database = database
        self.table = database.qualified(TABLE)

    def claim(
        self, tenant: str, key: str, fingerprint: str, now: datetime, expired: datetime
    ) -> bool:
        with self.database.session() as session:
            rows = session.execute(
                _CLAIM.format(table=self.table),
                (tenant, key, fingerprint, _micros(now), _micros(expired)),
            )
        return bool(rows)

    def find(self, tenant: str, key: str, expired: datetime) -> KeyRecord | None:
        with self.database.session() as session:
            rows = session.execute(
                f"SELECT fingerprint, state, status, headers, body, position_id, created_at "
                f"FROM {self.table} WHERE tenant = %s AND idem_key = %s AND created_at >= %s",
                (tenant, key, _micros(expired)),
            )
        if not rows:
            return None
        fingerprint, state, status, headers, body, position_id, created_at = rows[0]
        reply = None
        if status is not None and body is not None:
            pairs = [(str(name), str(value)) for name, value in json.loads(headers)]
            reply = StoredReply(int(status), pairs, bytes(body))
        claimed_at = EPOCH + timedelta(microseconds=int(created_at))
        return KeyRecord(str(fingerprint), State(state), reply, position_id, claimed_at)

    def finish(self, tenant: str, key: str, reply: StoredReply) -> None:
        with self.database.session() as session:
            session.execute(
                f"UPDATE {self.table} SET state = 'done', status = %s, headers = %s, body = %s "
                "WHERE tenant = %s AND idem_key = %s AND state = 'pending'",
                (reply.status, json.dumps(list(reply.headers)), reply.body, tenant, key),
            )

    def interrupt(self, tenant: str, key: str, position_id: str) -> None:
        with self.database.session() as session:
            session.execute(
                f"UPDATE {self.table} SET state = 'unknown', position_id = %s "
                "WHERE tenant = %s AND idem_key = %s AND state = 'pending'",
                (position_id, tenant, key),
            )

    def release(self, tenant: str, key: str) -> None:
        with self.database.session() as session:
            session.execute(
                f"DELETE FROM {self.table} "
                "WHERE tenant = %s AND idem_key = %s AND state = 'pending'",
                (tenant, key),
            )

    def purge(self, expired: datetime) -> int:
        with self.database.session() as session:
            rows = session.execute(
                f"DELETE FROM {self.table} WHERE created_at < %s RETURNING 1",
                (_micros(expired),),
            )
        return len(rows)

    def close(self) -> None:
        self.database.close()
