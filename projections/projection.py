"""A projection folds domain events into table rows; the same fold serves live and rebuild.

Handlers read and write rows through `Rows`. Live, `LiveRows` loads each row it is asked
for inside the batch's transaction and writes back what changed; in a rebuild, `MemoryRows`
starts empty and keeps everything in memory until the fresh tables are written in bulk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from projections.database import ProjectionDatabase, Session
from projections.tables import Codec, Key, Row, Table, quote

# Each handler takes the event class it is registered for; a table of them can only say "some".
Handler = Callable[[Any, int, "Rows"], None]


class StreamEvent(Protocol):
    """What every event of an aggregate's stream carries (a rebuild's events carry only
    these and the fields their handler declares)."""

    @property
    def originator_id(self) -> UUID: ...

    @property
    def timestamp(self) -> datetime: ...


class Rows(Protocol):
    """Rows returned by `get` are live: change them in place. `put` adds or replaces a row."""

    def get(self, table: Table, key: Key) -> Row | None: ...

    def put(self, table: Table, row: Row) -> None: ...

    def delete(self, table: Table, key: Key) -> None: ...


@dataclass(frozen=True)
class On:
    """A handler and the event fields it reads (a rebuild decodes only those)."""

    handler: Handler
    reads: tuple[str, ...] = ()


class Projection(ABC):
    """Subclasses name themselves, list their tables and map event classes to handlers."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self) -> None:
        registered = self.handlers()
        self._handlers = {cls: on.handler for cls, on in registered.items()}
        self._by_topic = {get_topic(cls): on.handler for cls, on in registered.items()}
        self.reads = {
            get_topic(cls): ("originator_id", *on.reads) for cls, on in registered.items()
        }
        self.topics = frozenset(self.reads)

    @abstractmethod
    def handlers(self) -> Mapping[type, On]:
        """The events this projection folds, each with its handler and the fields it reads."""

    def handler_for(self, topic: str) -> Handler:
        return self._by_topic[topic]

    def apply(self, event: object, notification_id: int, rows: Rows) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, notification_id, rows)


class MemoryRows:
    """Rows of fresh tables, all in memory: what a rebuild folds into."""

    def __init__(self, tables: tuple[Table, ...]) -> None:
        self.data: dict[str, dict[Key, Row]] = {t.name: {} for t in tables}

    def get(self, table: Table, key: Key) -> Row | None:
        return self.data[table.name].get(key)

    def put(self, table: Table, row: Row) -> None:
        self.data[table.name][table.key_of(row)] = row

    def delete(self, table: Table, key: Key) -> None:
        self.data[table.name].pop(key, None)

    def rows(self, table: Table) -> Iterator[Row]:
        return iter(self.data[table.name].values())

    def count(self, table: Table) -> int:
        return len(self.data[table.name])


class LayeredRows:
    """Rows over a base that is never changed: a row is copied the first time it is asked
    for, so many folds can start from the same base (rows hold only immutable values)."""

    def __init__(self, base: Mapping[str, Mapping[Key, Row]]) -> None:
        self.base = base
        self.own: dict[str, dict[Key, Row | None]] = {name: {} for name in base}

    def get(self, table: Table, key: Key) -> Row | None:
        own = self.own[table.name]
        if key in own:
            return own[key]
        found = self.base[table.name].get(key)
        row = None if found is None else dict(found)
        own[key] = row
        return row

    def put(self, table: Table, row: Row) -> None:
        self.own[table.name][table.key_of(row)] = row

    def delete(self, table: Table, key: Key) -> None:
        self.own[table.name][key] = None

    def merged(self, name: str) -> dict[Key, Row]:
        """The table's rows, the base's with this layer's changes over them."""
        own = self.own[name]
        if not own:
            return dict(self.base[name])
        rows = {**self.base[name], **own}
        for key, row in own.items():
            if row is None:
                del rows[key]
        return rows  # type: ignore[return-value]  # the None rows were just removed


def _identical(a: Row | None, b: Row | None) -> bool:
    """Equal values AND equal representations (Decimal('1.0') differs from Decimal('1.00'))."""
    if a is None or b is None:
        return a is b
    for name, value in a.items():
        other = b.get(name)
        if type(value) is not type(other) or value != other:
            return False
        if isinstance(value, Decimal) and str(value) != str(other):
            return False
    return True


class LiveRows:
    """Rows loaded on demand inside one batch transaction; `flush` writes what changed."""

    def __init__(self, db: ProjectionDatabase, tx: Session, tables: tuple[Table, ...]) -> None:
        self.db = db
        self.tx = tx
        self.codecs = {t.name: Codec(t, db.dialect) for t in tables}
        self.current: dict[str, dict[Key, Row | None]] = {t.name: {} for t in tables}
        self.loaded: dict[str, dict[Key, Row | None]] = {t.name: {} for t in tables}

    def get(self, table: Table, key: Key) -> Row | None:
        current = self.current[table.name]
        if key not in current:
            found = self._select(table, key)
            self.loaded[table.name][key] = None if found is None else dict(found)
            current[key] = found
        return current[key]

    def put(self, table: Table, row: Row) -> None:
        key = table.key_of(row)
        if key not in self.loaded[table.name]:
            self.get(table, key)
        self.current[table.name][key] = row

    def delete(self, table: Table, key: Key) -> None:
        if key not in self.loaded[table.name]:
            self.get(table, key)
        self.current[table.name][key] = None

    def _select(self, table: Table, key: Key) -> Row | None:
        codec = self.codecs[table.name]
        cols = ", ".join(quote(c) for c in table.column_names)
        where = " AND ".join(f"{quote(k)} = %s" for k in table.key)
        rows = self.tx.execute(
            f"SELECT {cols} FROM {self.db.qualified(table.name)} WHERE {where}",
            codec.key_params(key),
        )
        return codec.row(rows[0]) if rows else None

    def flush(self) -> int:
        """Write every changed row; returns how many rows were written or deleted."""
        written = 0
        for name, current in self.current.items():
            codec = self.codecs[name]
            table = codec.table
            loaded = self.loaded[name]
            upserts = []
            deletes = []
            for key, row in current.items():
                if _identical(row, loaded.get(key)):
                    continue
                if row is None:
                    deletes.append(codec.key_params(key))
                else:
                    upserts.append(codec.params(row))
            if deletes:
                where = " AND ".join(f"{quote(k)} = %s" for k in table.key)
                self.tx.executemany(f"DELETE FROM {self.db.qualified(name)} WHERE {where}", deletes)
            if upserts:
                self.tx.executemany(upsert_sql(self.db.qualified(name), table), upserts)
            written += len(upserts) + len(deletes)
        return written


def upsert_sql(qualified: str, table: Table) -> str:
    cols = ", ".join(quote(c) for c in table.column_names)
    marks = ", ".join("%s" for _ in table.column_names)
    keys = ", ".join(quote(k) for k in table.key)
    others = [c for c in table.column_names if c not in table.key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
        if others
        else "DO NOTHING"
    )
    return f"INSERT INTO {qualified} ({cols}) VALUES ({marks}) ON CONFLICT ({keys}) {action}"
