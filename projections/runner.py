"""The live projection runner: polls the log and applies new events in batches.

Each projection commits its rows and its tracking position in one transaction per batch,
after checking (under a lock) that its position is still the one the batch started from:
a crash mid-batch leaves nothing of that batch, and a second runner cannot apply it twice.
SQLite has no subscriptions, so the runner polls; on PostgreSQL it also LISTENs on the
events table's channel to wake up as soon as a writer commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from domain.store import EventStore
from projections.catalog import all_projections
from projections.database import ProjectionDatabase
from projections.projection import LiveRows, Projection
from projections.tables import Dialect, quote

if TYPE_CHECKING:  # psycopg is imported only where PostgreSQL is used
    import psycopg
    from psycopg.rows import TupleRow

    Listener = psycopg.Connection[TupleRow] | None

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 1.0  # between failed batches, e.g. while the database is away
EventHook = Callable[[str, int], None]  # (projection name, notification id), inside the tx
CommitListener = Callable[[Sequence[object]], None]  # a batch's domain events, once committed


class ProjectionRunner:
    def __init__(
        self,
        database: ProjectionDatabase,
        store: EventStore,
        projections: Sequence[Projection] | None = None,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.05,
        on_event: EventHook | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.projections = tuple(projections) if projections is not None else all_projections()
        self.names = tuple(p.name for p in self.projections)
        self.topics = tuple(sorted(set().union(*(p.topics for p in self.projections))))
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_event = on_event
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._listeners: list[CommitListener] = []

    # --- one pass ---

    def run_once(self, max_batches: int | None = None) -> int:
        """Apply every event available now (at most `max_batches` batches); returns events read."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            read, moved = self._step()
            total += read
            batches += 1
            if not moved:
                break
        return total

    def _step(self) -> tuple[int, bool]:
        positions = self.database.positions(self.names)
        head = self.store.recorder.max_notification_id() or 0
        low = min(positions.values(), default=head)
        if low >= head:
            return 0, False
        page = self.store.recorder.select_notifications(
            start=low,
            limit=self.batch_size,
            stop=head,
            topics=self.topics,
            inclusive_of_start=False,
        )
        # A short page means nothing else up to `head` concerns these projections.
        end = page[-1].id if len(page) >= self.batch_size else head
        events: list[tuple[int, str, object]] = [
            (n.id, n.topic, self.store.mapper.to_domain_event(n)) for n in page
        ]
        for projection in self.projections:
            start = positions[projection.name]
            if start < end:
                mine = [(i, e) for i, t, e in events if i > start and t in projection.topics]
                self._apply(projection, start, end, mine)
        for listener in self._listeners:
            listener([event for _, _, event in events])
        return len(page), True

    def _apply(
        self, projection: Projection, start: int, end: int, events: list[tuple[int, object]]
    ) -> None:
        with self.database.transaction() as tx:
            if self.database.lock_position(tx, projection.name) != start:
                return  # another runner (or a rebuild) moved it: re-read and try again
            rows = LiveRows(self.database, tx, projection.tables)
            for notification_id, event in events:
                projection.apply(event, notification_id, rows)
                if self.on_event is not None:
                    self.on_event(projection.name, notification_id)
            rows.flush()
            self.database.set_position(tx, projection.name, end)

    def subscribe(self, listener: CommitListener) -> None:
        """Call `listener` with each batch's events once the read models include them
        (live pages refresh then); it runs on the runner's thread, so it must not block."""
        self._listeners.append(listener)

    # --- following the log ---

    def start(self) -> None:
        """Follow the log in a background thread until `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self.follow, name="projections", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        """Look at the log now rather than at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self) -> None:
        """Apply events as they arrive until `stop()` (a failing batch is retried)."""
        listener = self._listener()
        backoff = self.poll_interval
        try:
            while not self._stopping.is_set():
                try:
                    applied = self.run_once()
                    self.error = None
                    backoff = self.poll_interval
                except Exception as error:  # the read side must outlive a database hiccup
                    self.error = error
                    log.exception("projection batch failed; retrying")
                    self._stopping.wait(backoff)
                    # Never long: the read models catch up within a second of its return.
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                if applied == 0:
                    listener = self._waited(listener)
        finally:
            if listener is not None:
                listener.close()

    def _listener(self) -> Listener:
        if self.database.dialect is not Dialect.POSTGRES:
            return None
        import psycopg

        try:
            conn = psycopg.connect(**self.database.postgres_kwargs())
            channel = getattr(self.store.recorder, "channel_name", "robson_events")
            conn.execute(f"LISTEN {quote(channel)}")
        except psycopg.Error:
            log.warning("LISTEN unavailable; polling only", exc_info=True)
            return None
        return conn

    def _waited(self, listener: Listener) -> Listener:
        """Wait for news; a listener the database dropped is replaced (none while it is
        away: polling covers the gap)."""
        if listener is None and self.database.dialect is Dialect.POSTGRES:
            listener = self._listener()
        try:
            self._wait(listener)
        except Exception:
            log.warning("LISTEN connection lost; listening again", exc_info=True)
            if listener is not None:
                listener.close()
            listener = None
            self._stopping.wait(self.poll_interval)
        return listener

    def _wait(self, listener: Listener) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        if listener is None:
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            return
        # NOTIFY wakes us at once; the timeout also covers a lost notification.
        for _ in listener.notifies(timeout=max(self.poll_interval, 0.2), stop_after=1):
            pass
