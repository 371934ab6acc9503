"""Reading the event log for projections: pages for the live runner, one stream for rebuilds.

The live runner uses the library as is (`select_notifications` + `mapper.to_domain_event`).
A rebuild reads millions of events, so it streams raw rows and decodes them itself: the
stored JSON is parsed with the C decoder (no per-object Python hook) and only the fields
the projections read are turned into Decimal/UUID/datetime. Anything unusual (a cipher,
a compressor, an upcast event) goes through the mapper instead, so results never differ.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from json.scanner import make_scanner
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    StoredEvent,
)
from eventsourcing.utils import resolve_topic

from domain.store import EventStore
from projections.database import ProjectionDatabase
from projections.tables import Dialect

RawEvent = tuple[int, UUID | str, str, bytes]  # notification id, originator id, topic, state
STREAM_CHUNK = 5_000


def events_table(store: EventStore) -> str:
    name = getattr(store.recorder, "events_table_name", None)
    if not isinstance(name, str):
        raise TypeError("the event store's recorder has no events table")
    return name


_TIME_HEAD = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'
_TIME_START = len(_TIME_HEAD)


def stored_timestamp(state: bytes) -> datetime | None:
    """The timestamp at the head of a stored event's JSON (where the mapper writes it),
    without parsing the rest; None when it is not there (e.g. encrypted)."""
    if not state.startswith(_TIME_HEAD):
        return None
    end = state.find(b'"', _TIME_START)
    try:
        return datetime.fromisoformat(state[_TIME_START:end].decode("ascii"))
    except ValueError:
        return None


class FastDecoder:
    """Stored event → domain event carrying only the fields `reads[topic]` names.

    A handler that reads a field it did not declare fails loudly in a rebuild (the live
    runner decodes whole events with the mapper), so the two can never silently differ.
    """

    def __init__(self, store: EventStore, reads: Mapping[str, Iterable[str]]) -> None:
        self.mapper = store.mapper
        transcoder = self.mapper.transcoder
        if not isinstance(transcoder, JSONTranscoder):
            raise TypeError("the fast decoder needs the JSON transcoder")
        self.converters: dict[str, Callable[[Any], Any]] = {
            name: transcoding.decode for name, transcoding in transcoder.names.items()
        }
        # The library's own Decimal and datetime codings, without a method call in between.
        if isinstance(transcoder.names.get("decimal_str"), DecimalAsStr):
            self.converters["decimal_str"] = Decimal
        if isinstance(transcoder.names.get("datetime_iso"), DatetimeAsISO):
            self.converters["datetime_iso"] = datetime.fromisoformat
        # The C scanner itself, without json.loads' encoding sniffing and whitespace checks.
        self.scan = make_scanner(cast(Any, json.JSONDecoder()))
        plain = self.mapper.cipher is None and self.mapper.compressor is None
        self.plans: dict[str, tuple[type, tuple[str, ...]] | None] = {}
        for topic, fields in reads.items():
            cls = resolve_topic(topic)
            fast = plain and getattr(cls, "class_version", 1) == 1
            names = tuple(dict.fromkeys(f for f in fields if f != "originator_id"))
            self.plans[topic] = (cls, names) if fast else None

    def _value(self, value: object) -> object:
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                data = value["_data_"]
                if type(data) in (dict, list):  # bottom-up, as the mapper's object hook
                    data = self._value(data)
                return self.converters[value["_type_"]](data)
            return {k: self._value(v) for k, v in value.items()}
        if type(value) is list:
            return [self._value(v) for v in value]
        return value

    def __call__(self, topic: str, originator_id: UUID | str, state: bytes) -> object:
        plan = self.plans.get(topic)
        if plan is not None:
            cls, fields = plan
            if fields == ("timestamp",) and (moment := stored_timestamp(state)) is not None:
                event: object = object.__new__(cls)
                uuid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
                object.__setattr__(event, "__dict__", {"originator_id": uuid, "timestamp": moment})
                return event
            data: dict[str, object] = self.scan(state.decode(), 0)[0]
            if "class_version" not in data:
                kept: dict[str, object] = {
                    "originator_id": originator_id
                    if isinstance(originator_id, UUID)
                    else UUID(originator_id)
                }
                value = self._value
                try:
                    for name in fields:
                        found = data[name]
                        kept[name] = value(found) if type(found) in (dict, list) else found
                except KeyError:
                    pass  # not the shape this class declares: let the mapper decide
                else:
                    event = object.__new__(cls)
                    object.__setattr__(event, "__dict__", kept)
                    return event
        return self.mapper.to_domain_event(
            StoredEvent(originator_id=originator_id, originator_version=0, topic=topic, state=state)
        )


def stream_events(
    db: ProjectionDatabase, table_name: str, topics: Iterable[str], start: int, stop: int
) -> Generator[list[RawEvent], None, None]:
    """Events with start < id <= stop and one of `topics`, in id order, page by page.

    Ids up to `stop` are all committed and the log only grows, so consecutive pages are
    consistent. On PostgreSQL the pages come in psycopg's binary format (half the CPU of
    COPY rows); on SQLite, from one cursor.
    """
    table = db.qualified(table_name)
    wanted = sorted(set(topics))
    marks = ", ".join(["%s"] * len(wanted))
    if db.dialect is Dialect.POSTGRES:
        statement = (
            f"SELECT notification_id, originator_id, topic, state FROM {table} "
            f"WHERE notification_id > %s AND notification_id <= %s AND topic IN ({marks}) "
            "ORDER BY notification_id LIMIT %s"
        )
        last = start
        with db.session() as session:
            raw = session.raw
            assert not isinstance(raw, sqlite3.Connection)
            with raw.cursor(binary=True) as cursor:
                while last < stop:
                    cursor.execute(statement, (last, stop, *wanted, STREAM_CHUNK))
                    page: list[RawEvent] = cursor.fetchall()
                    if not page:
                        return
                    yield page
                    last = page[-1][0]
        return
    with db.transaction(write=False) as session:
        raw = session.raw
        assert isinstance(raw, sqlite3.Connection)
        rows = raw.execute(
            f"SELECT rowid, originator_id, topic, state FROM {table} "
            f"WHERE rowid > ? AND rowid <= ? AND topic IN ({marks.replace('%s', '?')}) "
            "ORDER BY rowid",
            (start, stop, *wanted),
        )
        while chunk := rows.fetchmany(STREAM_CHUNK):
            yield chunk
