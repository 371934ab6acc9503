"""The PostgreSQL event recorder: the library's tables and locking, one network write a command.

The library's recorder sends a write through psycopg's pipeline one statement at a time
(about a dozen socket writes, each one waking the server) and builds a composite-type array
in Python; a read goes through psycopg's cursor machinery. Here, through libpq's pipeline
mode:
- a write is one batch, sent in one socket write and answered once: BEGIN, the library's
  `SET LOCAL lock_timeout` and `LOCK TABLE … IN EXCLUSIVE MODE` (so notification ids commit
  in the order they are issued and no reader passes over a gap), NOTIFY on the library's
  channel, `INSERT … RETURNING notification_id`, COMMIT;
- a read of one aggregate's events is one prepared statement with binary results.
A write may name aggregates the command read but does not save (`unchanged`, id → version
read): its INSERT then inserts nothing if any of them has moved on, checked under the lock,
and the write fails with the library's `IntegrityError`, as a version conflict does.
Tables, lock, channel and errors are the library's own (a duplicate version is its
`IntegrityError`, a lost connection its `OperationalError`, retried as it retries), so its
notification readers, its subscriptions and a stock writer all work beside this one.
Statements are prepared once per connection, in the same batch as their first use.

While the database is away nothing waits it out: the pool fails fast and recovers at once
(`projections.connection_pool`), and a failed statement is repeated only within
`RETRY_SECONDS` of its first attempt (the library repeats it 10 times, 0.2 s apart, each
attempt waiting for a connection): enough to pass over a connection the server closed,
never long enough to keep a request past 2 s.
"""

from __future__ import annotations

import select
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import pq
from psycopg.errors import error_from_result
from psycopg.pq.abc import PGresult
from psycopg.rows import DictRow

from projections.connection_pool import FailFastPool

# Writes of up to this many events keep a prepared statement each; larger ones are parsed.
PREPARED_SIZES = 8
TEXT, BINARY = 0, 1
UNNAMED = b""
RETRY_SECONDS = 0.5
RETRY_WAIT_SECONDS = 0.05
P = ParamSpec("P")
R = TypeVar("R")


def retried_briefly(method: Callable[P, R]) -> Callable[P, R]:
    """Repeat after a lost connection (the pool replaces it) while within `RETRY_SECONDS`
    of the first attempt."""

    @wraps(method)
    def repeated(*args: P.args, **kwargs: P.kwargs) -> R:
        give_up = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                return method(*args, **kwargs)
            except (InterfaceError, OperationalError):
                if time.monotonic() >= give_up:
                    raise
                time.sleep(RETRY_WAIT_SECONDS)

    return repeated


def fail_fast(datastore: PostgresDatastore) -> None:
    """Give the library's datastore a `FailFastPool` in place of its own, with the same
    connections (the library configures them on connect), before it is used."""
    pool = datastore.pool
    datastore.pool = FailFastPool(  # type: ignore[assignment]
        connection_class=pool.connection_class,
        kwargs=pool.kwargs,
        min_size=pool.min_size,
        max_size=pool.max_size,
        open=False,
        configure=datastore.after_connect_func(),
        max_lifetime=pool.max_lifetime,
    )
    pool.close()


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Batch:
    """Statements queued on one connection in pipeline mode, sent in one write with one Sync.

    A connection left in an unknown state (an exception before every result was taken) is
    closed, so the pool replaces it and no later caller reads this batch's results."""

    def __init__(self, conn: psycopg.Connection[DictRow], prepared: set[bytes]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.prepared = prepared  # the names this connection has parsed
        self.parsing: dict[int, bytes] = {}  # result index -> the name its command parsed
        self.count = 0

    def __enter__(self) -> Batch:
        self.pgconn.enter_pipeline_mode()
        return self

    def __exit__(self, *_: object) -> None:
        if self.pgconn.transaction_status == pq.TransactionStatus.IDLE:  # all answered
            try:
                self.pgconn.exit_pipeline_mode()
                return
            except psycopg.Error:
                pass
        if not self.conn.closed:
            self.conn.close()

    def run(
        self,
        name: bytes,
        sql: bytes,
        params: Sequence[bytes] = (),
        formats: Sequence[int] = (),
        result_format: int = TEXT,
    ) -> int:
        """Queue a statement, parsed first unless this connection knows it; its result index."""
        if name not in self.prepared:  # never the unnamed statement
            self.pgconn.send_prepare(name, sql)
            if name != UNNAMED:
                self.parsing[self.count] = name
            self.count += 1
        self.pgconn.send_query_prepared(
            name, params, param_formats=formats or None, result_format=result_format
        )
        self.count += 1
        return self.count - 1

    def results(self) -> list[PGresult]:
        """Send it all and take every result. The first error is raised as psycopg's, once the
        transaction it broke is rolled back."""
        results = self._synced()
        for index, name in self.parsing.items():
            if results[index].status == pq.ExecStatus.COMMAND_OK:
                self.prepared.add(name)
        failed = [r for r in results if r.status == pq.ExecStatus.FATAL_ERROR]
        if failed:
            if self.pgconn.transaction_status == pq.TransactionStatus.INERROR:
                self.pgconn.send_query_params(b"ROLLBACK", None)
                self._synced()
            raise error_from_result(failed[0], encoding="utf-8")
        return results

    def _synced(self) -> list[PGresult]:
        """Sync, flush, and every result up to the Sync's (a statement's own error included)."""
        pgconn = self.pgconn
        pgconn.pipeline_sync()
        while pgconn.flush():
            select.select([], [pgconn.socket], [])
        results: list[PGresult] = []
        while True:
            while pgconn.is_busy():
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                continue  # the end of one statement's results
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                return results
            results.append(result)


def _unretried(method: Callable[P, R]) -> Callable[P, R]:
    """The library's method without its retry decorator (which keeps its signature)."""
    unwrapped: Callable[P, R] = getattr(method, "__wrapped__", method)
    return unwrapped


class LeanPostgresRecorder(PostgresApplicationRecorder):
    """`PostgresApplicationRecorder` writing in one batch and reading one aggregate in one
    statement; everything else is the library's."""

    checks_unchanged = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._table = f"{quoted(self.datastore.schema)}.{quoted(self.events_table_name)}"
        self._id_type = self.datastore.originator_id_type
        self._opening = [
            (b"robson_begin", b"BEGIN"),
            (
                b"robson_lock_timeout",
                f"SET LOCAL lock_timeout = '{self.datastore.lock_timeout}s'".encode(),
            ),
            (b"robson_lock", f"LOCK TABLE {self._table} IN EXCLUSIVE MODE".encode()),
            (b"robson_notify", f"NOTIFY {quoted(self.channel_name)}".encode()),
        ]
        select_sql = (
            f"SELECT originator_version, topic, state FROM {self._table}"
            f" WHERE originator_id = $1::{self._id_type}"
        )
        order = " ORDER BY originator_version ASC"
        self._select_all = (select_sql + order).encode()
        self._select_after = (select_sql + " AND originator_version > $2::bigint" + order).encode()
        self._insert_sqls: dict[tuple[int, int], bytes] = {}  # (events, unchanged) -> SQL
        # The statement names each connection has prepared; forgotten with the connection.
        self._prepared: weakref.WeakKeyDictionary[psycopg.Connection[DictRow], set[bytes]] = (
            weakref.WeakKeyDictionary()
        )

    def _insert_sql(self, size: int, unchanged: int) -> bytes:
        """Insert `size` events: four parameters each, then an id and the version read of
        each unchanged aggregate (each checked by a range scan of the primary key)."""
        rows = ", ".join(
            f"(${4 * i + 1}::{self._id_type}, ${4 * i + 2}::bigint, ${4 * i + 3}::text,"
            f" ${4 * i + 4}::bytea)"
            for i in range(size)
        )
        values = f"VALUES {rows}"
        if unchanged:
            first = 4 * size + 1
            values = f"SELECT * FROM ({values}) AS new WHERE " + " AND ".join(
                f"NOT EXISTS (SELECT 1 FROM {self._table} WHERE originator_id ="
                f" ${first + 2 * i}::{self._id_type} AND originator_version >"
                f" ${first + 2 * i + 1}::bigint)"
                for i in range(unchanged)
            )
        return (
            f"INSERT INTO {self._table} (originator_id, originator_version, topic, state)"
            f" {values} RETURNING notification_id"
        ).encode()

    @retried_briefly
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        unchanged: Mapping[UUID, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        size = len(stored_events)
        params: list[bytes] = []
        for event in stored_events:
            params += (
                str(event.originator_id).encode(),
                b"%d" % event.originator_version,
                event.topic.encode(),
                event.state,
            )
        unchanged = unchanged or {}
        for aggregate_id, version in unchanged.items():
            params += (str(aggregate_id).encode(), b"%d" % version)
        shape = (size, len(unchanged))
        if size <= PREPARED_SIZES:
            name = b"robson_insert_%d_%d" % shape
            sql = self._insert_sqls.get(shape) or self._insert_sqls.setdefault(
                shape, self._insert_sql(*shape)
            )
        else:
            name, sql = UNNAMED, self._insert_sql(*shape)
        formats = (TEXT, TEXT, TEXT, BINARY) * size + (TEXT, TEXT) * len(unchanged)
        with self._batch() as batch:
            for statement, opening in self._opening:
                batch.run(statement, opening)
            insert = batch.run(name, sql, params, formats)
            batch.run(b"robson_commit", b"COMMIT")
            inserted = batch.results()[insert]
        if inserted.ntuples != size:  # nothing inserted: an unchanged aggregate had moved on
            raise IntegrityError("An aggregate the command read has changed since")
        return [int(inserted.get_value(row, 0) or b"") for row in range(inserted.ntuples)]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        events: Sequence[StoredEvent]
        if lte is not None or desc or limit is not None:  # snapshots' reads: rare
            events = retried_briefly(_unretried(PostgresApplicationRecorder.select_events))(
                self, originator_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
        else:
            events = self._select_events(originator_id, gt)
        return events

    # The library's own reads, with its ten retries replaced by brief ones.

    @retried_briefly
    def max_notification_id(self) -> int | None:
        found: int | None = _unretried(PostgresApplicationRecorder.max_notification_id)(self)
        return found

    @retried_briefly
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        found: Sequence[Notification] = _unretried(
            PostgresApplicationRecorder.select_notifications
        )(self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start)
        return found

    @retried_briefly
    def _select_events(self, originator_id: UUID | str, gt: int | None) -> list[StoredEvent]:
        params = [str(originator_id).encode()]
        if gt is None:
            name, sql = b"robson_select_all", self._select_all
        else:
            name, sql = b"robson_select_after", self._select_after
            params.append(b"%d" % gt)
        with self._batch() as batch:
            index = batch.run(name, sql, params, result_format=BINARY)
            rows = batch.results()[index]
        if self._id_type == "uuid" and not isinstance(originator_id, UUID):
            originator_id = UUID(originator_id)
        return [
            StoredEvent(
                originator_id=originator_id,
                originator_version=int.from_bytes(rows.get_value(row, 0) or b"", signed=True),
                topic=(rows.get_value(row, 1) or b"").decode(),
                state=rows.get_value(row, 2) or b"",
            )
            for row in range(rows.ntuples)
        ]

    @contextmanager
    def _batch(self) -> Iterator[Batch]:
        """A batch on a pooled connection; the library's context maps psycopg's errors."""
        with (
            self.datastore.get_connection() as conn,
            Batch(conn, self._prepared.setdefault(conn, set())) as batch,
        ):
            yield batch
