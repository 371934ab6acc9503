"""Time travel: the read models as one tenant's events up to an instant left them.

The tenant's events (its policy's and its positions', by the positions table) are read in
one statement, decoded once (only the fields the projections read) and kept; each request
folds those recorded at or before its instant, in log order, with the live projections'
own handlers into rows in memory, and `PastReadModels` answers from them as the SQL read
models answer from their tables.

What is kept is only the log itself, which never changes: every request first reads what
was recorded since (usually nothing), so an event recorded late with an earlier timestamp
is in the next answer. Folds start from kept states of the first N events of the tenant's
log (every `CHECKPOINT_EVENTS`), valid whatever comes later since the log only grows."""

from __future__ import annotations

import json
import sqlite3
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.identity import policy_id_for
from domain.position import Position
from domain.store import EventStore
from projections.database import TRACKING, ProjectionDatabase
from projections.events import FastDecoder, events_table
from projections.past import PastReadModels
from projections.positions import POSITIONS, PositionsProjection
from projections.projection import Handler, LayeredRows, Projection
from projections.tables import Dialect, Key, Record, Row, quote

CHECKPOINT_EVENTS = 500
RANGE_EVENTS = 5_000  # a catch-up over fewer log ids walks them; more, looks up each aggregate
CACHED_EVENTS = 100_000  # over every tenant (about 1 MB a 1,000); least recently asked go first

Tables = Mapping[str, Mapping[Key, Row]]


@dataclass(frozen=True)
class Recorded:
    notification_id: int
    timestamp: datetime
    event: object
    handlers: tuple[Handler, ...]


@dataclass
class TenantLog:
    """One tenant's events in log order, read up to `watermark`, with kept fold states."""

    events: list[Recorded] = field(default_factory=list)
    latest: list[datetime] = field(default_factory=list)  # latest timestamp of events[: i + 1]
    earliest: list[datetime] = field(default_factory=list)  # earliest timestamp of events[i:]
    watermark: int = 0
    checkpoints: list[Tables] = field(default_factory=list)  # state after i * N events
    lock: threading.Lock = field(default_factory=threading.Lock)


class MergedTables(Mapping[str, Mapping[Key, Row]]):
    """A layer's tables, each merged the first time it is read."""

    def __init__(self, rows: LayeredRows) -> None:
        self.rows = rows
        self.merged: dict[str, Mapping[Key, Row]] = {}

    def __getitem__(self, name: str) -> Mapping[Key, Row]:
        found = self.merged.get(name)
        if found is None:
            found = self.merged[name] = self.rows.merged(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows.base)

    def __len__(self) -> int:
        return len(self.rows.base)


class TimeTravel:
    """Builds `PastReadModels` for a tenant at an instant (thread-safe)."""

    def __init__(
        self, database: ProjectionDatabase, store: EventStore, projections: Sequence[Projection]
    ) -> None:
        self.database = database
        self.store = store
        self.tables = tuple(t for p in projections for t in p.tables)
        handlers: dict[str, list[Handler]] = {}
        reads: dict[str, list[str]] = {}
        for projection in projections:
            for topic, fields in projection.reads.items():
                handlers.setdefault(topic, []).append(projection.handler_for(topic))
                reads.setdefault(topic, ["timestamp"]).extend(fields)
        self.handlers = {topic: tuple(found) for topic, found in handlers.items()}
        unseen = positions_unseen(handlers)
        if unseen:  # a catch-up finds changed positions by the positions projection's rows
            raise ValueError(f"position events the positions projection ignores: {unseen}")
        self.decode = FastDecoder(store, reads)
        self.tenant = self._tenant_statement()
        self.by_range = self._events_statement(sorted(handlers), by_range=True)
        self.by_aggregate = self._events_statement(sorted(handlers), by_range=False)
        self.tenants: OrderedDict[UUID, TenantLog] = OrderedDict()
        self.lock = threading.Lock()

    def read_models(self, client_id: UUID, as_of: datetime) -> PastReadModels:
        log = self._log(client_id)
        with log.lock:
            self._catch_up(log, client_id)
            count = len(log.events)
            self._checkpoint(log)
            prefix = bisect_right(log.latest, as_of)  # events[:prefix] are all at or before
            start = prefix // CHECKPOINT_EVENTS
            base = log.checkpoints[start]
            earliest = log.earliest
        self._forget_beyond(CACHED_EVENTS)
        rows = LayeredRows(base)
        events = log.events
        for recorded in events[start * CHECKPOINT_EVENTS : prefix]:
            for handler in recorded.handlers:
                handler(recorded.event, recorded.notification_id, rows)
        for i in range(prefix, count):  # later in the log; some may be earlier in time
            if earliest[i] > as_of:
                break
            recorded = events[i]
            if recorded.timestamp <= as_of:
                for handler in recorded.handlers:
                    handler(recorded.event, recorded.notification_id, rows)
        return PastReadModels(MergedTables(rows))

    def forget(self) -> None:
        with self.lock:
            self.tenants.clear()

    # --- the kept log ---

    def _log(self, client_id: UUID) -> TenantLog:
        with self.lock:
            log = self.tenants.get(client_id)
            if log is None:
                log = self.tenants[client_id] = TenantLog()
                log.checkpoints.append({t.name: {} for t in self.tables})
            self.tenants.move_to_end(client_id)
            return log

    def _forget_beyond(self, kept: int) -> None:
        with self.lock:
            total = sum(len(log.events) for log in self.tenants.values())
            while total > kept and len(self.tenants) > 1:
                _, log = self.tenants.popitem(last=False)
                total -= len(log.events)

    def _catch_up(self, log: TenantLog, client_id: UUID) -> None:
        """Append the tenant's events recorded after the watermark, up to the positions
        projection's position, which becomes the watermark. That position and the ids of
        the tenant's positions changed since the watermark are read in one statement (one
        snapshot): every position with events up to there is among them, so no event at or
        below the new watermark can be missed later (even if a rebuild moves it back)."""
        database = self.database
        sqlite = database.dialect is Dialect.SQLITE
        client = str(client_id) if sqlite else client_id
        with database.session() as session:
            found = session.execute(self.tenant, (PositionsProjection.name, client, log.watermark))
            head = found[0][0] if found else None
            if head is None or int(head) <= log.watermark:
                return  # nothing the projections have seen since
            ids = [policy_id_for(client_id), *(UUID(str(i)) for _, i in found if i is not None)]
            by_range = int(head) - log.watermark <= RANGE_EVENTS
            statement = self.by_range if by_range else self.by_aggregate
            raw = session.raw
            rows: list[Record]
            if isinstance(raw, sqlite3.Connection):
                params = (json.dumps([i.hex for i in ids]), log.watermark, int(head))
                rows = raw.execute(statement, params).fetchall()
            else:
                listed = [str(i) for i in ids] if by_range else ids
                with raw.cursor(binary=True) as cursor:
                    cursor.execute(statement, (listed, log.watermark, int(head)))
                    rows = cursor.fetchall()
        decode, handlers, latest = self.decode, self.handlers, log.latest
        for notification_id, originator_id, topic, state in rows:
            event: Any = decode(topic, originator_id, bytes(state))
            moment: datetime = event.timestamp
            latest.append(max(latest[-1], moment) if latest else moment)
            log.events.append(Recorded(notification_id, moment, event, handlers[topic]))
        if rows:  # a new list: a fold under way keeps the one it took
            kept = len(log.earliest)
            earliest = log.earliest + [r.timestamp for r in log.events[kept:]]
            for i in range(len(earliest) - 2, -1, -1):
                if earliest[i + 1] < earliest[i]:
                    earliest[i] = earliest[i + 1]
                elif i < kept:
                    break  # and so are all before it (kept minima only grow along the log)
            log.earliest = earliest
        log.watermark = int(head)

    def _checkpoint(self, log: TenantLog) -> None:
        """Keep the fold states of the first N, 2N… events of the log. All at once, with the
        events: what a process keeps is then made in one go, not a little with each read
        (each little would make the collector's full passes come sooner)."""
        while len(log.checkpoints) * CHECKPOINT_EVENTS <= len(log.events):
            start = (len(log.checkpoints) - 1) * CHECKPOINT_EVENTS
            rows = LayeredRows(log.checkpoints[-1])
            for recorded in log.events[start : start + CHECKPOINT_EVENTS]:
                for handler in recorded.handlers:
                    handler(recorded.event, recorded.notification_id, rows)
            log.checkpoints.append({t.name: rows.merged(t.name) for t in self.tables})

    def _tenant_statement(self) -> str:
        """The positions projection's position (`%s` 1) on every row, with the ids of the
        tenant's (`%s` 2) positions it has changed after the watermark (`%s` 3), and one
        row more without. Every event the fold reads of a position is one the positions
        projection applies, setting the row's `updated_notification_id` to its id: the
        positions with events after the watermark, up to that position, are these."""
        database = self.database
        head = (
            f"(SELECT {quote('position')} FROM {database.qualified(TRACKING.name)} "
            f"WHERE {quote('name')} = %s)"
        )
        return (
            f"WITH head AS (SELECT {head} AS at) "
            f"SELECT (SELECT at FROM head), {quote('position_id')} "
            f"FROM {database.qualified(POSITIONS.name)} WHERE {quote('client_id')} = %s "
            f"AND {quote('updated_notification_id')} > %s "
            "UNION ALL SELECT (SELECT at FROM head), NULL"
        )

    def _events_statement(self, topics: Sequence[str], by_range: bool) -> str:
        """Events of the listed aggregates (`%s` 1) after a watermark (2) up to a position
        (3), in log order. `by_range` walks the log's ids from the watermark, otherwise each
        aggregate is looked up by id (the range then is no index condition: a plan that ANDs
        it with each look-up reads the whole range each time)."""
        sqlite = self.database.dialect is Dialect.SQLITE
        nid = "rowid" if sqlite else "notification_id"
        listed = "(SELECT value FROM json_each(%s))" if sqlite else "ANY(%s)"
        if by_range:  # `+` and `::text` keep the aggregates' index out of the plan
            where = f"{'+originator_id IN' if sqlite else 'originator_id::text ='} {listed} "
            where += f"AND {nid} > %s AND {nid} <= %s"
        else:
            where = f"originator_id {'IN' if sqlite else '='} {listed} "
            where += f"AND {nid} + 0 > %s AND {nid} + 0 <= %s"
        statement = (
            f"SELECT {nid}, originator_id, topic, state "
            f"FROM {self.database.qualified(events_table(self.store))} WHERE {where} "
            f"AND topic IN ({', '.join(_quoted(t) for t in topics)}) ORDER BY {nid}"
        )
        return statement.replace("%s", "?") if sqlite else statement


def positions_unseen(topics: Iterable[str]) -> list[str]:
    """The position events among `topics` that the positions projection does not apply."""
    applied = PositionsProjection().topics
    position = get_topic(Position) + "."
    return sorted(t for t in topics if t.startswith(position) and t not in applied)


def _quoted(text: str) -> str:
    """A topic as an SQL string literal (topics come from code, never from input)."""
    return "'" + text.replace("'", "''") + "'"
