"""Read-model tables described once, stored the same way on SQLite and PostgreSQL.

Money and quantities are exact: NUMERIC on PostgreSQL, the Decimal's string on SQLite.
Times are UTC: timestamptz on PostgreSQL, a fixed-width ISO string on SQLite (so it sorts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

# The drivers (sqlite3, psycopg) give and take untyped values: which Python type a column's
# value has follows its `Kind`, known at run time only. So rows are untyped here and become
# typed values where they are read (`domain.read_models`' dataclasses).
Row = dict[str, Any]
Record = tuple[Any, ...]  # a result row, in the table's column order
Key = Record
Convert = Callable[[Any], object]  # one column's value to or from its SQLite form
T = TypeVar("T")


class Kind(Enum):
    UUID = "uuid"
    TEXT = "text"
    MONEY = "money"  # any exact decimal: prices, quantities, P&L, percentages
    INT = "int"
    BOOL = "bool"
    TIME = "time"


class Dialect(Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


_DDL_TYPES: dict[Dialect, dict[Kind, str]] = {
    Dialect.POSTGRES: {
        Kind.UUID: "uuid",
        Kind.TEXT: "text",
        Kind.MONEY: "numeric",
        Kind.INT: "bigint",
        Kind.BOOL: "boolean",
        Kind.TIME: "timestamptz",
    },
    Dialect.SQLITE: {
        Kind.UUID: "TEXT",
        Kind.TEXT: "TEXT",
        Kind.MONEY: "TEXT",
        Kind.INT: "INTEGER",
        Kind.BOOL: "INTEGER",
        Kind.TIME: "TEXT",
    },
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False
    # Computed from the row's other columns each time the row is written, so handlers
    # (and a rebuild's rows in memory) never carry it: only rows that reach a table pay.
    derived: Callable[[Row], object] | None = None


@dataclass(frozen=True)
class Index:
    """A secondary index on `columns`. On PostgreSQL it also carries the `include` columns,
    so a read of nothing else never visits the table (an index-only scan); SQLite has no such
    clause and indexes the key alone."""

    columns: tuple[str, ...]
    include: tuple[str, ...] = ()

    def name(self, physical: str) -> str:
        covering = "__covering" if self.include else ""
        return f"{physical}__{'_'.join(self.columns)}{covering}__idx"


@dataclass(frozen=True)
class Table:
    """A table's logical name, columns, primary key and secondary indexes."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    # PostgreSQL: vacuum after this many inserted rows (the default waits for the table to
    # grow by a fifth), so the visibility map that index-only scans need covers recent rows.
    vacuum_after_inserts: int | None = None

    @property
    def postgres_options(self) -> str:
        """The table's storage parameters, as `ALTER TABLE … SET (…)` takes them."""
        if self.vacuum_after_inserts is None:
            return ""
        return (
            f"autovacuum_vacuum_insert_threshold = {self.vacuum_after_inserts}, "
            "autovacuum_vacuum_insert_scale_factor = 0"
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def key_of(self, row: Row) -> Key:
        if len(self.key) == 1:
            return (row[self.key[0]],)
        return tuple(row[name] for name in self.key)


def quote(identifier: str) -> str:
    """A quoted SQL identifier (names come from code, never from input)."""
    return '"' + identifier.replace('"', '""') + '"'


def create_table_sql(table: Table, qualified: str, dialect: Dialect) -> str:
    types = _DDL_TYPES[dialect]
    columns = ", ".join(
        f"{quote(c.name)} {types[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    key = ", ".join(quote(k) for k in table.key)
    return f"CREATE TABLE IF NOT EXISTS {qualified} ({columns}, PRIMARY KEY ({key}))"


# --- values in and out of each dialect ---


def time_text(moment: datetime) -> str:
    """Fixed-width UTC text: lexical order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _to_sqlite(kind: Kind) -> Convert:
    if kind is Kind.UUID:
        return str
    if kind is Kind.MONEY:
        return str
    if kind is Kind.TIME:
        return time_text
    if kind is Kind.BOOL:
        return int
    return _same


def _from_sqlite(kind: Kind) -> Convert:
    if kind is Kind.UUID:
        return UUID
    if kind is Kind.MONEY:
        return Decimal
    if kind is Kind.TIME:
        return datetime.fromisoformat
    if kind is Kind.BOOL:
        return bool
    return _same


def _same(value: T) -> T:
    return value


class Codec:
    """Converts a table's rows to parameter tuples and result tuples back to rows."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.names = table.column_names
        if dialect is Dialect.SQLITE:
            self._out = tuple(_to_sqlite(c.kind) for c in table.columns)
            self._in = tuple(_from_sqlite(c.kind) for c in table.columns)
        else:
            self._out = tuple(_same for _ in table.columns)
            self._in = tuple(_same for _ in table.columns)
        self._positions = {name: i for i, name in enumerate(self.names)}
        self._key_out = tuple(self._out[self._positions[k]] for k in table.key)
        self._pick = itemgetter(*self.names)
        self._converted = tuple((i, out) for i, out in enumerate(self._out) if out is not _same)
        self._loaded = tuple((i, load) for i, load in enumerate(self._in) if load is not _same)
        self._derived = tuple((c.name, c.derived) for c in table.columns if c.derived)

    def param(self, column: str, value: object) -> object:
        """One value as a statement parameter for `column`."""
        return None if value is None else self._out[self._positions[column]](value)

    def params(self, row: Row) -> tuple[object, ...]:
        if self._derived:
            row = row | {name: derive(row) for name, derive in self._derived}
        values: tuple[object, ...] = self._pick(row)
        if not self._converted:
            return values
        converted = list(values)
        for i, out in self._converted:
            if converted[i] is not None:
                converted[i] = out(converted[i])
        return tuple(converted)

    def key_params(self, key: Key) -> tuple[object, ...]:
        return tuple(
            None if value is None else out(value)
            for value, out in zip(key, self._key_out, strict=True)
        )

    def row(self, values: Sequence[object]) -> Row:
        return dict(zip(self.names, self.values(values), strict=True))

    def values(self, values: Sequence[object]) -> Record:
        """A result tuple with every value in its Python type (for dumps and queries); only
        the columns the dialect stores differently are converted."""
        if not self._loaded:
            return tuple(values)
        loaded = list(values)
        for i, load in self._loaded:
            if loaded[i] is not None:
                loaded[i] = load(loaded[i])
        return tuple(loaded)
