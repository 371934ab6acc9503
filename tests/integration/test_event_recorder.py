"""The PostgreSQL event recorder keeps the library's guarantees with one batch a command."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import DataError, IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.store import EventStore
from infra.bootstrap import postgres_target, store_env
from infra.event_recorder import PREPARED_SIZES, UNNAMED, LeanPostgresRecorder
from infra.settings import Settings
from tests.conftest import connect

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    """The service's store with one pooled connection, so a test knows which one it uses."""
    env = store_env(settings, create_tables=False)
    store = EventStore(env={**env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"})
    yield store
    store.close()


@pytest.fixture
def recorder(store: EventStore) -> LeanPostgresRecorder:
    assert isinstance(store.recorder, LeanPostgresRecorder)
    return store.recorder


@pytest.fixture
def watcher(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the test's own, outside the store's pool."""
    with connect(settings) as conn:
        yield conn


def stock(recorder: LeanPostgresRecorder) -> PostgresApplicationRecorder:
    """The library's own recorder over the same tables."""
    return PostgresApplicationRecorder(
        recorder.datastore, events_table_name=recorder.events_table_name
    )


def event(originator: UUID, version: int) -> StoredEvent:
    # States are binary: zero bytes and bytes that are not UTF-8 must come back unchanged.
    state = b"\x00\xff" + f'{{"v": {version}, "id": "{originator}"}}'.encode() + b"\x80"
    return StoredEvent(originator, version, "domain.position:Position.Planned", state)


def backend_pid(recorder: LeanPostgresRecorder) -> int:
    with recorder.datastore.get_connection() as conn:
        return conn.pgconn.backend_pid


def test_a_write_returns_its_notification_ids_in_order_and_reads_back_byte_for_byte(
    recorder: LeanPostgresRecorder,
) -> None:
    a, b = uuid4(), uuid4()
    first = recorder.insert_events([event(a, 1), event(a, 2), event(b, 1)])
    second = recorder.insert_events([event(b, 2)])
    assert first is not None and second is not None
    assert len(first) == 3 and first == sorted(first) and second[0] > first[-1]

    notifications = stock(recorder).select_notifications(start=first[0], limit=10)
    assert [(n.id, n.originator_id, n.originator_version, n.state) for n in notifications] == [
        (first[0], a, 1, event(a, 1).state),
        (first[1], a, 2, event(a, 2).state),
        (first[2], b, 1, event(b, 1).state),
        (second[0], b, 2, event(b, 2).state),
    ]
    assert recorder.select_events(a) == [event(a, 1), event(a, 2)]
    assert recorder.select_events(b, gt=1) == [event(b, 2)]
    assert recorder.select_events(str(b)) == [event(b, 1), event(b, 2)]
    assert recorder.select_events(uuid4()) == []


def test_it_reads_what_the_library_writes_and_the_library_reads_what_it_writes(
    recorder: LeanPostgresRecorder,
) -> None:
    theirs, ours = uuid4(), uuid4()
    stock(recorder).insert_events([event(theirs, v) for v in (1, 2, 3)])
    recorder.insert_events([event(ours, v) for v in (1, 2, 3)])

    assert recorder.select_events(theirs) == stock(recorder).select_events(theirs)
    assert stock(recorder).select_events(ours) == [event(ours, v) for v in (1, 2, 3)]
    # Ranged and reversed reads (the library's path) agree with the stock recorder.
    for ranged in ({"lte": 2}, {"desc": True}, {"desc": True, "limit": 1}, {"gt": 1, "lte": 2}):
        assert recorder.select_events(ours, **ranged) == stock(recorder).select_events(
            ours, **ranged
        )


def test_writes_larger_than_the_prepared_sizes_are_parsed_each_time(
    recorder: LeanPostgresRecorder,
) -> None:
    big, bigger, small = uuid4(), uuid4(), uuid4()
    many = [event(big, v) for v in range(1, PREPARED_SIZES + 2)]
    more = [event(bigger, v) for v in range(1, PREPARED_SIZES + 5)]
    assert len(recorder.insert_events(many) or []) == len(many)
    assert len(recorder.insert_events(more) or []) == len(more)
    assert len(recorder.insert_events([event(small, 1), event(small, 2)]) or []) == 2

    assert recorder.select_events(big) == many
    assert recorder.select_events(bigger) == more
    assert recorder.select_events(small) == [event(small, 1), event(small, 2)]


def test_a_taken_version_writes_nothing_of_its_batch_and_the_connection_stays_in_service(
    recorder: LeanPostgresRecorder,
) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    connection = backend_pid(recorder)

    with pytest.raises(IntegrityError):
        recorder.insert_events([event(b, 1), event(a, 1)])

    assert recorder.select_events(b) == []  # the whole batch was rolled back
    assert recorder.insert_events([event(b, 1)])
    assert recorder.select_events(b) == [event(b, 1)]
    assert backend_pid(recorder) == connection


def test_a_bad_read_raises_the_databases_error_and_keeps_the_connection(
    recorder: LeanPostgresRecorder,
) -> None:
    a = uuid4()
    recorder.insert_events([event(a, 1)])
    connection = backend_pid(recorder)

    with pytest.raises(DataError, match="uuid"):
        recorder.select_events("not-a-uuid")

    assert recorder.select_events(a) == [event(a, 1)]
    assert backend_pid(recorder) == connection


def test_a_lost_connection_is_replaced_and_the_command_repeated_once_stored(
    recorder: LeanPostgresRecorder, watcher: psycopg.Connection[Any]
) -> None:
    a = uuid4()
    recorder.insert_events([event(a, 1)])  # statements prepared on the first connection
    lost = backend_pid(recorder)
    watcher.execute("SELECT pg_terminate_backend(%s, 10000)", [lost])

    assert recorder.insert_events([event(a, 2)])

    replacement = backend_pid(recorder)
    assert replacement != lost
    watcher.execute("SELECT pg_terminate_backend(%s, 10000)", [replacement])
    assert recorder.select_events(a) == [event(a, 1), event(a, 2)]


def test_a_write_waits_for_writers_in_flight_so_ids_commit_in_the_order_issued(
    recorder: LeanPostgresRecorder,
    settings: Settings,
    watcher: psycopg.Connection[Any],
) -> None:
    assert settings.database_url is not None
    table = f'"{postgres_target(settings.database_url).schema}"."{recorder.events_table_name}"'
    recorder.insert_events([event(uuid4(), 1)])  # connected and prepared
    writer = backend_pid(recorder)
    theirs, ours = uuid4(), uuid4()
    written: list[int] = []

    def write() -> None:
        written.extend(recorder.insert_events([event(ours, 1)]) or [])

    with watcher.transaction():
        # Another writer holds a notification id it has not committed yet.
        row = watcher.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, 't', '') RETURNING notification_id",
            [theirs],
        ).fetchone()
        thread = threading.Thread(target=write)
        thread.start()
        assert wait_event(watcher, writer) == "Lock"
        assert not written
    thread.join(10)

    assert row is not None and written and written[0] > int(str(row[0]))
    assert [e.originator_version for e in recorder.select_events(ours)] == [1]


def wait_event(watcher: psycopg.Connection[Any], pid: int) -> object:
    """What the backend waits for, once it waits for a lock (or after five seconds)."""
    waiting: object = None
    for _ in range(500):
        row = watcher.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
        waiting = row[0] if row else None
        if waiting == "Lock":
            break
        threading.Event().wait(0.01)
    return waiting


@pytest.mark.parametrize("sent", [True, False], ids=["sent", "queued"])
def test_a_batch_abandoned_before_its_answer_closes_its_connection(
    recorder: LeanPostgresRecorder, sent: bool
) -> None:
    connection = backend_pid(recorder)

    with pytest.raises(KeyboardInterrupt), recorder._batch() as batch:
        batch.run(UNNAMED, b"SELECT pg_sleep(0.2)")
        if sent:
            batch.pgconn.pipeline_sync()
        raise KeyboardInterrupt  # nobody is left to read the answer

    assert backend_pid(recorder) != connection
    assert recorder.select_events(uuid4()) == []


def test_every_write_notifies_the_librarys_channel(
    recorder: LeanPostgresRecorder, watcher: psycopg.Connection[Any]
) -> None:
    watcher.execute(f'LISTEN "{recorder.channel_name}"')

    recorder.insert_events([event(uuid4(), 1)])

    heard = list(watcher.notifies(timeout=10, stop_after=1))
    assert [n.channel for n in heard] == [recorder.channel_name]
