"""Rebuild: fold the whole log into FRESH tables, then swap them in atomically.

Queries keep answering from the old tables while the fresh ones are built. The fold is the
live one (same handlers), run over rows kept in memory; the fresh tables are written in
bulk (COPY on PostgreSQL, executemany on SQLite), and the swap renames them into place
and sets the tracking position in one transaction, so a live runner simply continues.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from domain.store import EventStore
from projections.database import ProjectionDatabase
from projections.events import (
    FastDecoder,
    RawEvent,
    events_table,
    stream_events,
)
from projections.projection import Handler, MemoryRows, Projection
from projections.tables import Codec, Dialect, Table

FRESH_SUFFIX = "_new"
WRITE_CHUNK = 20_000  # rows per transaction on SQLite, so writers are not held up long
SWAP_LOCK_TIMEOUT_SECONDS = 30

Progress = Callable[[int, int, int], None]  # (position reached, target position, events read)


@dataclass(frozen=True)
class RebuildReport:
    names: tuple[str, ...]
    position: int  # the log position the fresh tables were built to
    events_read: int  # events the projections needed (others are not read at all)
    rows: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Log positions covered per second (the log's events, read or skipped)."""
        return self.position / self.seconds if self.seconds > 0 else 0.0


def rebuild(
    database: ProjectionDatabase,
    store: EventStore,
    projections: Sequence[Projection],
    *,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild `projections` to the log's current end and swap them in."""
    began = time.perf_counter()
    target = store.recorder.max_notification_id() or 0
    tables = [t for p in projections for t in p.tables]
    _create_fresh(database, tables)
    try:
        memory, read = _fold(database, store, events_table(store), projections, target, progress)
        rows = _write_fresh(database, projections, memory)
        _swap(database, projections, target)
    except BaseException:
        _drop_fresh(database, tables)
        raise
    return RebuildReport(
        names=tuple(p.name for p in projections),
        position=target,
        events_read=read,
        rows=rows,
        seconds=time.perf_counter() - began,
    )


def reshaped(database: ProjectionDatabase, projections: Sequence[Projection]) -> list[Projection]:
    """The projections whose stored tables have other columns than this release defines: a
    release that adds or drops a column rebuilds them (`robson migrate` does)."""
    return [
        p for p in projections if any(database.columns(t.name) != t.column_names for t in p.tables)
    ]


def fresh_name(table: Table) -> str:
    return table.name + FRESH_SUFFIX


def _create_fresh(database: ProjectionDatabase, tables: Sequence[Table]) -> None:
    with database.transaction() as tx:
        for table in tables:
            database.drop_table(tx, fresh_name(table))  # left by a rebuild that crashed
            database.create_table(tx, table, fresh_name(table))


def _drop_fresh(database: ProjectionDatabase, tables: Sequence[Table]) -> None:
    with database.transaction() as tx:
        for table in tables:
            database.drop_table(tx, fresh_name(table))


def _fold(
    database: ProjectionDatabase,
    store: EventStore,
    table_name: str,
    projections: Sequence[Projection],
    target: int,
    progress: Progress | None,
) -> tuple[dict[str, MemoryRows], int]:
    memory = {p.name: MemoryRows(p.tables) for p in projections}
    by_topic: dict[str, list[tuple[Handler, MemoryRows]]] = {}
    reads: dict[str, list[str]] = {}
    for projection in projections:
        for topic, fields in projection.reads.items():
            handler = projection.handler_for(topic)
            by_topic.setdefault(topic, []).append((handler, memory[projection.name]))
            reads.setdefault(topic, []).extend(fields)
    decode = FastDecoder(store, reads)
    read = 0
    collecting = gc.isenabled()
    gc.disable()  # millions of new rows and no cycles: the collector would only rescan them
    try:
        for chunk in prefetched(stream_events(database, table_name, by_topic, 0, target)):
            for notification_id, originator_id, topic, state in chunk:
                event = decode(topic, originator_id, state)
                for handler, rows in by_topic[topic]:
                    handler(event, notification_id, rows)
            read += len(chunk)
            if progress is not None:
                progress(chunk[-1][0], target, read)
    finally:
        if collecting:
            gc.enable()
    if progress is not None:
        progress(target, target, read)
    return memory, read


def prefetched(
    chunks: Generator[list[RawEvent], None, None], depth: int = 4
) -> Iterator[list[RawEvent]]:
    """Read the next chunks in a thread while this one is folded (the database works meanwhile)."""
    ready: queue.Queue[list[RawEvent] | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            ready.put(None)
        except BaseException as error:
            ready.put(error)
        finally:
            chunks.close()

    reader = threading.Thread(target=read, name="rebuild-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                reader.join(0.05)


def _write_fresh(
    database: ProjectionDatabase, projections: Sequence[Projection], memory: dict[str, MemoryRows]
) -> int:
    written = 0
    for projection in projections:
        for table in projection.tables:
            codec = Codec(table, database.dialect)
            rows = memory[projection.name].rows(table)
            params = (codec.params(row) for row in rows)
            qualified = database.qualified(fresh_name(table))
            if database.dialect is Dialect.POSTGRES:
                with database.transaction() as tx:
                    tx.copy_in(qualified, table.column_names, params)
                    database.create_indexes(tx, table, fresh_name(table))
            else:
                while chunk := list(islice(params, WRITE_CHUNK)):
                    with database.transaction() as tx:
                        tx.copy_in(qualified, table.column_names, chunk)
            written += memory[projection.name].count(table)
    return written


def _swap(database: ProjectionDatabase, projections: Sequence[Projection], target: int) -> None:
    with database.transaction() as tx:
        if database.dialect is Dialect.POSTGRES:
            # Renames wait for running queries, and new queries wait behind the renames:
            # give up (the old tables stay) rather than stall every reader behind a slow one.
            tx.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_SECONDS}s'")
        for projection in projections:
            database.lock_position(tx, projection.name)  # waits for a live batch to commit
        for projection in projections:
            for table in projection.tables:
                database.swap_in(tx, table, fresh_name(table))
            database.set_position(tx, projection.name, target)
