"""The SQLite event recorder: the library's, with writes that check what the command read.

A write may name aggregates the command read but does not save (`unchanged`, id → version
read). They are checked after the inserts, in the same transaction: by then it holds
SQLite's write lock, so no other writer can move them on before it commits. If one has
moved on, the transaction rolls back and the write fails with the library's
`IntegrityError`, as a version conflict does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor


class CheckedSQLiteRecorder(SQLiteApplicationRecorder):
    checks_unchanged = True

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        unchanged: Mapping[UUID, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        inserted = super()._insert_events(c, stored_events, **kwargs)
        for aggregate_id, version in (unchanged or {}).items():
            c.execute(
                f"SELECT 1 FROM {self.events_table_name}"
                " WHERE originator_id = ? AND originator_version > ? LIMIT 1",
                (aggregate_id.hex, version),
            )
            if c.fetchone() is not None:
                raise IntegrityError("An aggregate the command read has changed since")
        return inserted
