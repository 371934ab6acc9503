"""The read models' connections: the events' own database (SQLite file or PostgreSQL schema).

Writers take the database's write lock up front (`BEGIN IMMEDIATE` on SQLite, the tracking
row `FOR UPDATE` on PostgreSQL), so a projection's rows and its tracking position always
commit together, and two runners can never apply the same batch.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import NotRequired, TypedDict

import psycopg
from psycopg.rows import TupleRow

from projections.connection_pool import CONNECT_TIMEOUT_SECONDS, FailFastPool
from projections.tables import (
    Codec,
    Column,
    Dialect,
    Kind,
    Record,
    Table,
    create_table_sql,
    quote,
)

TRACKING = Table(
    name="robson_projections",
    columns=(
        Column("name", Kind.TEXT),
        Column("position", Kind.INT),
        Column("updated_at", Kind.TIME),
    ),
    key=("name",),
)
SQLITE_BUSY_SECONDS = 30.0


@dataclass(frozen=True)
class PostgresParams:
    dbname: str
    host: str
    port: str
    user: str
    password: str
    schema: str


PgConnection = psycopg.Connection[TupleRow]


class PostgresKwargs(TypedDict):
    """psycopg's connection arguments for the read models' database."""

    dbname: str
    host: str
    port: str
    user: str
    password: str
    autocommit: bool
    connect_timeout: int
    options: str
    application_name: NotRequired[str]  # how the server lists the connection


@lru_cache(maxsize=512)
def _sqlite_sql(statement: str) -> str:
    return statement.replace("%s", "?")


class Session:
    """One connection in use: statements are written with %s placeholders on both dialects."""

    def __init__(self, raw: sqlite3.Connection | PgConnection, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[object] = ()) -> list[Record]:
        raw = self.raw
        if isinstance(raw, sqlite3.Connection):
            return list(raw.execute(_sqlite_sql(statement), tuple(params)).fetchall())
        with raw.cursor() as cursor:
            cursor.execute(statement, tuple(params))
            return list(cursor.fetchall()) if cursor.description is not None else []

    def executemany(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        raw = self.raw
        if isinstance(raw, sqlite3.Connection):
            raw.executemany(_sqlite_sql(statement), rows)
            return
        batch = list(rows)
        if batch:
            with raw.cursor() as cursor:
                cursor.executemany(statement, batch)

    def copy_in(
        self, qualified: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
    ) -> None:
        """Bulk load: COPY on PostgreSQL, executemany on SQLite."""
        names = ", ".join(quote(c) for c in columns)
        raw = self.raw
        if isinstance(raw, sqlite3.Connection):
            marks = ", ".join("%s" for _ in columns)
            self.executemany(f"INSERT INTO {qualified} ({names}) VALUES ({marks})", rows)
            return
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {qualified} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)


class ProjectionDatabase:
    """Connections to the database holding the events, shared by the runner and the queries.

    `durable=False`: commits do not wait for the disk (PostgreSQL `synchronous_commit=off`,
    SQLite `synchronous=NORMAL`), for data a crash may set back a little but never corrupt.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        sqlite_path: Path | None = None,
        postgres: PostgresParams | None = None,
        pool_size: int = 4,
        durable: bool = True,
    ) -> None:
        self.dialect = dialect
        self.durable = durable
        self.sqlite_path = sqlite_path
        self.postgres = postgres
        self.schema = postgres.schema if postgres else None
        self._pool_size = pool_size
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._pg_pool: FailFastPool[psycopg.Connection[TupleRow]] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.tracking = Codec(TRACKING, dialect)

    # --- naming ---

    def qualified(self, physical: str) -> str:
        if self.dialect is Dialect.POSTGRES:
            assert self.schema is not None
            return f"{quote(self.schema)}.{quote(physical)}"
        return quote(physical)

    # --- connections ---

    def _sqlite_connect(self) -> sqlite3.Connection:
        assert self.sqlite_path is not None
        conn = sqlite3.connect(
            str(self.sqlite_path),
            isolation_level=None,
            check_same_thread=False,
            timeout=SQLITE_BUSY_SECONDS,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        if not self.durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _postgres_pool(self) -> FailFastPool[psycopg.Connection[TupleRow]]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the projection database is closed")
            if self._pg_pool is None:
                # Fails fast while the database is away; opened without waiting for it.
                self._pg_pool = FailFastPool(
                    kwargs=self.postgres_kwargs(), min_size=1, max_size=self._pool_size, open=False
                )
                self._pg_pool.open()
            return self._pg_pool

    def postgres_kwargs(self) -> PostgresKwargs:
        params = self.postgres
        assert params is not None
        return {
            "dbname": params.dbname,
            "host": params.host,
            "port": params.port,
            "user": params.user,
            "password": params.password,
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": "-c timezone=UTC" + ("" if self.durable else " -c synchronous_commit=off"),
        }

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A connection in autocommit mode: each statement sees the latest commit."""
        if self.dialect is Dialect.POSTGRES:
            with self._postgres_pool().connection() as pg:
                yield Session(pg, self.dialect)
            return
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._sqlite_connect()
        try:
            yield Session(conn, self.dialect)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        finally:
            if self._closed or self._idle.qsize() >= self._pool_size:
                conn.close()
            else:
                self._idle.put(conn)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.session() as session:
            raw = session.raw
            if not isinstance(raw, sqlite3.Connection):
                with raw.transaction():
                    yield session
                return
            raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield session
            except BaseException:
                raw.rollback()
                raise
            raw.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pg_pool = self._pg_pool, None
        if pool is not None:
            pool.close()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break

    # --- tables ---

    def create_tables(self, tables: Sequence[Table], names: Sequence[str]) -> None:
        """Idempotent: every table, its indexes and a tracking row per projection name."""
        with self.transaction() as tx:
            for table in (TRACKING, *tables):
                self.create_table(tx, table, table.name)
                # A table of an older shape gets its indexes with its rebuilt copy.
                if self._columns(tx, table.name) == table.column_names:
                    self.create_indexes(tx, table, table.name)
                    self.drop_undeclared_indexes(tx, table)
            now = datetime.now(UTC)
            for name in names:
                tx.execute(
                    f"INSERT INTO {self.qualified(TRACKING.name)} "
                    "(name, position, updated_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO NOTHING",
                    self.tracking.params({"name": name, "position": 0, "updated_at": now}),
                )

    def columns(self, physical: str) -> tuple[str, ...]:
        """The table's columns as the database has them, in order (none: no such table)."""
        with self.session() as s:
            return self._columns(s, physical)

    def _columns(self, s: Session, physical: str) -> tuple[str, ...]:
        if self.dialect is Dialect.POSTGRES:
            statement = (
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
            )
            params: tuple[object, ...] = (self.schema, physical)
        else:
            statement, params = "SELECT name FROM pragma_table_info(%s) ORDER BY cid", (physical,)
        return tuple(str(name) for (name,) in s.execute(statement, params))

    def create_table(self, tx: Session, table: Table, physical: str) -> None:
        tx.execute(create_table_sql(table, self.qualified(physical), self.dialect))
        if table.postgres_options and self.dialect is Dialect.POSTGRES:  # new, or older
            tx.execute(f"ALTER TABLE {self.qualified(physical)} SET ({table.postgres_options})")

    def create_indexes(self, tx: Session, table: Table, physical: str) -> None:
        for index in table.indexes:
            cols = ", ".join(quote(c) for c in index.columns)
            include = ""
            if index.include and self.dialect is Dialect.POSTGRES:
                include = f" INCLUDE ({', '.join(quote(c) for c in index.include)})"
            tx.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(index.name(physical))} "
                f"ON {self.qualified(physical)} ({cols}){include}"
            )

    def drop_undeclared_indexes(self, tx: Session, table: Table) -> None:
        """Drop the table's secondary indexes this release no longer declares (a covering
        index that replaced a plain one on the same key, say): each costs every write."""
        if self.dialect is Dialect.POSTGRES:
            assert self.schema is not None
            statement = "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
            params: tuple[object, ...] = (self.schema, table.name)
            schema = f"{quote(self.schema)}."
        else:
            statement = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s"
            params, schema = (table.name,), ""
        declared = {index.name(table.name) for index in table.indexes}
        for (name,) in tx.execute(statement, params):
            ours = name.startswith(f"{table.name}__") and name.endswith("__idx")
            if ours and name not in declared:
                tx.execute(f"DROP INDEX IF EXISTS {schema}{quote(name)}")

    def drop_table(self, tx: Session, physical: str) -> None:
        tx.execute(f"DROP TABLE IF EXISTS {self.qualified(physical)}")

    def swap_in(self, tx: Session, table: Table, fresh: str) -> None:
        """Replace `table` by the fresh copy inside the caller's transaction."""
        self.drop_table(tx, table.name)
        tx.execute(f"ALTER TABLE {self.qualified(fresh)} RENAME TO {quote(table.name)}")
        if self.dialect is Dialect.POSTGRES:
            assert self.schema is not None
            tx.execute(
                f"ALTER INDEX {quote(self.schema)}.{quote(fresh + '_pkey')} "
                f"RENAME TO {quote(table.name + '_pkey')}"
            )
            for index in table.indexes:
                tx.execute(
                    f"ALTER INDEX {quote(self.schema)}.{quote(index.name(fresh))}"
                    f" RENAME TO {quote(index.name(table.name))}"
                )
        else:  # SQLite cannot rename an index: build it under its own name
            for index in table.indexes:
                tx.execute(f"DROP INDEX IF EXISTS {quote(index.name(fresh))}")
            self.create_indexes(tx, table, table.name)

    def dump(self, table: Table) -> list[Record]:
        """Every row in key order, values in their Python types (tests compare these)."""
        codec = Codec(table, self.dialect)
        cols = ", ".join(quote(c) for c in table.column_names)
        order = ", ".join(quote(k) for k in table.key)
        with self.session() as s:
            rows = s.execute(f"SELECT {cols} FROM {self.qualified(table.name)} ORDER BY {order}")
        return [codec.values(r) for r in rows]

    # --- tracking ---

    def positions(self, names: Sequence[str]) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(f"SELECT name, position FROM {self.qualified(TRACKING.name)}")
        found = {str(name): int(position) for name, position in rows}
        return {name: found.get(name, 0) for name in names}

    def lock_position(self, tx: Session, name: str) -> int | None:
        """The projection's position, locked until the transaction ends (None: unknown)."""
        lock = " FOR UPDATE" if self.dialect is Dialect.POSTGRES else ""
        rows = tx.execute(
            f"SELECT position FROM {self.qualified(TRACKING.name)} WHERE name = %s{lock}",
            (name,),
        )
        return int(rows[0][0]) if rows else None

    def set_position(self, tx: Session, name: str, position: int) -> None:
        params = self.tracking.params(
            {"name": name, "position": position, "updated_at": datetime.now(UTC)}
        )
        tx.execute(
            f"INSERT INTO {self.qualified(TRACKING.name)} (name, position, updated_at) "
            "VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE "
            "SET position = excluded.position, updated_at = excluded.updated_at",
            params,
        )
