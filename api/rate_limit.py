"""Per-token request limits in fixed windows, counted in memory and shared through the
database.

Each replica counts hits in memory and adds them to a row per token with one atomic
UPSERT ... RETURNING (the same table and statement shape on SQLite and PostgreSQL), at
least every `interval` seconds. A token's first request in a window, and every request
once it nears its limit, goes to the database at once, so the limit holds exactly where it
matters; far from it, replicas see each other's hits within `interval`. Counters survive
restarts (the lifespan flushes on shutdown); a crash forgets at most `interval` of hits.
"""

from __future__ import annotations

import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore, PostgresRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteRecorder
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import TooManyRequests
from domain.ports import Clock
from domain.store import EventStore
from infra.settings import ConfigurationError, Settings

log = logging.getLogger("robson.rate_limit")

RATE_KEY = "robson.rate_limit"
TABLE = "api_rate_limits"
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    count: int
    window: str  # second, minute, hour or day

    @property
    def seconds(self) -> int:
        return WINDOWS[self.window]

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`1000/hour`, `5/minute`, ... (ROBSON_RATE_LIMIT)."""
        match = _LIMIT.match(text)
        if match is None or int(match.group(1)) < 1:
            raise ConfigurationError(
                f"ROBSON_RATE_LIMIT must look like 1000/hour (per second|minute|hour|day), "
                f"not {text!r}"
            )
        return cls(int(match.group(1)), match.group(2).lower())


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    retry_after: int  # seconds until then

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class Counter(Protocol):
    def add(self, bucket: str, window_start: int, hits: int) -> int:
        """Add `hits` to `bucket`'s window starting at `window_start`; returns its count (of
        the newer window, when the stored one is newer: late hits of a past window are
        dropped)."""
        ...


_SQLITE_UPSERT = f"""
INSERT INTO {TABLE} (bucket, window_start, hits) VALUES (?, ?, ?)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN {TABLE}.window_start = excluded.window_start
                THEN {TABLE}.hits + excluded.hits
                WHEN {TABLE}.window_start > excluded.window_start
                THEN {TABLE}.hits ELSE excluded.hits END,
    window_start = MAX({TABLE}.window_start, excluded.window_start)
RETURNING hits
"""

_POSTGRES_UPSERT = """
INSERT INTO {table} AS t (bucket, window_start, hits) VALUES (%s, %s, %s)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN t.window_start = excluded.window_start THEN t.hits + excluded.hits
                WHEN t.window_start > excluded.window_start THEN t.hits
                ELSE excluded.hits END,
    window_start = GREATEST(t.window_start, excluded.window_start)
RETURNING hits
"""

_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
)
"""


def _datastore(store: EventStore) -> SQLiteDatastore | PostgresDatastore:
    recorder: Any = store.recorder
    if isinstance(recorder, SQLiteRecorder | PostgresRecorder):
        return recorder.datastore
    raise ConfigurationError(f"rate limits need SQLite or PostgreSQL, not {type(recorder)}")


def _postgres_table(datastore: PostgresDatastore) -> str:
    schema = datastore.schema.replace('"', '""')
    return f'"{schema}".{TABLE}'


def create_rate_limit_table(store: EventStore) -> None:
    """Part of `robson migrate`; idempotent."""
    datastore = _datastore(store)
    if isinstance(datastore, PostgresDatastore):
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(_CREATE.format(table=_postgres_table(datastore)).encode())
    else:
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(_CREATE.format(table=TABLE))


class SqlCounter:
    """Counters in the events' database, over connections of its own that commit without
    waiting for the disk (`synchronous_commit=off`, SQLite `synchronous=NORMAL`): a crash
    may forget the last few hits, never corrupt a count, and no request waits for an fsync.
    """

    def __init__(self, settings: Settings, pool_size: int = 4) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._pg: Any = None
        self._lite: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._closed = False
        if settings.is_postgres:
            from infra.bootstrap import postgres_target

            assert settings.database_url is not None
            target = postgres_target(settings.database_url)
            schema = target.schema.replace('"', '""')
            self.statement = _POSTGRES_UPSERT.format(table=f'"{schema}".{TABLE}')
            self._pg_kwargs = {
                "dbname": target.dbname,
                "host": target.host,
                "port": target.port,
                "user": target.user,
                "password": target.password,
                "autocommit": True,
                "options": "-c synchronous_commit=off",
            }
        else:
            self.statement = _SQLITE_UPSERT

    def add(self, bucket: str, window_start: int, hits: int) -> int:
        """One statement in autocommit mode: a single round trip, atomic on its own."""
        params = (bucket, window_start, hits)
        if self.settings.is_postgres:
            with self._postgres().connection() as pg:
                row = pg.execute(self.statement.encode(), params).fetchone()
            return int(row[0])
        connection = self._sqlite()
        try:
            # fetchall: SQLite commits an UPSERT ... RETURNING only once it is fully stepped
            rows = connection.execute(self.statement, params).fetchall()
        finally:
            self._lite.put(connection)
        return int(rows[0][0])

    def _postgres(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("the rate-limit counter is closed")
            if self._pg is None:
                from psycopg_pool import ConnectionPool

                self._pg = ConnectionPool(
                    kwargs=self._pg_kwargs, min_size=1, max_size=self.pool_size, open=False
                )
                self._pg.open(wait=True, timeout=30.0)
            return self._pg

    def _sqlite(self) -> sqlite3.Connection:
        try:
            return self._lite.get_nowait()
        except queue.Empty:
            connection = sqlite3.connect(
                self.settings.sqlite_path,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pg = self._pg, None
        if pool is not None:
            pool.close()
        while True:
            try:
                self._lite.get_nowait().close()
            except queue.Empty:
                break


@dataclass
class _Tally:
    """One token's current window, as this replica knows it."""

    window: int
    shared: int = 0  # the database's count at the last exchange
    pending: int = 0  # counted here since, not yet added to the database
    sending: int = 0  # on their way to the database
    synced: float | None = None  # monotonic time of the last exchange


@dataclass(frozen=True)
class _Count:
    """One hit as counted in memory; `delta`: hits to add to the database now, if any."""

    now: float
    tally: _Tally
    hits: int
    delta: int | None


class RateLimiter:
    def __init__(
        self,
        limit: RateLimit,
        counter: Counter,
        clock: Clock,
        interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.counter = counter
        self.clock = clock
        self.interval = interval
        self.monotonic = monotonic
        # Within this many hits of the limit, every hit is counted in the database.
        self.margin = max(1, limit.count // 10)
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def hit(self, bucket: str) -> Verdict:
        """Count one hit (blocking when it goes to the database)."""
        count = self._count(bucket)
        if count.delta is None:
            return self._verdict(count, count.hits)
        return self._verdict(count, self._exchange(bucket, count.tally, count.delta))

    async def hit_on_loop(self, bucket: str) -> Verdict:
        """Count one hit from the event loop: in memory, or in a worker thread when it goes
        to the database."""
        count = self._count(bucket)
        if count.delta is None:
            return self._verdict(count, count.hits)
        hits = await run_in_threadpool(self._exchange, bucket, count.tally, count.delta)
        return self._verdict(count, hits)

    def _verdict(self, count: _Count, hits: int) -> Verdict:
        reset = count.tally.window + self.limit.seconds
        return Verdict(
            limit=self.limit.count,
            remaining=self.limit.count - hits,
            reset=reset,
            retry_after=max(1, reset - int(count.now)),
        )

    def _count(self, bucket: str) -> _Count:
        now = self.clock.now().timestamp()
        start = int(now) // self.limit.seconds * self.limit.seconds
        with self._lock:
            tally = self._tallies.get(bucket)
            if tally is None or tally.window != start:
                tally = self._tallies[bucket] = _Tally(start)
            tally.pending += 1
            hits = tally.shared + tally.sending + tally.pending
            if not (
                tally.synced is None
                or hits > self.limit.count - self.margin
                or self.monotonic() - tally.synced >= self.interval
            ):
                return _Count(now, tally, hits, None)
            delta, tally.pending = tally.pending, 0
            tally.sending += delta
            return _Count(now, tally, hits, delta)

    def _exchange(self, bucket: str, tally: _Tally, delta: int) -> int:
        """Add `delta` hits to the database; returns this hit's count: the database's answer
        (a concurrent exchange's larger answer counts hits after this one, and hits still on
        their way were counted after it) plus what is pending here."""
        try:
            total = self.counter.add(bucket, tally.window, delta)
        except BaseException:
            with self._lock:
                tally.sending -= delta
                tally.pending += delta  # counted next time
            raise
        with self._lock:
            tally.sending -= delta
            tally.shared = max(tally.shared, total)  # concurrent exchanges may return late
            tally.synced = self.monotonic()
            return total + tally.pending

    def admit(self, scope: Scope, bucket: str) -> None:
        """Count the request against its token (blocking); refuse it over the limit.

        Runs in the request's worker thread, just before its handler. The verdict goes into
        the scope for `RateLimitHeaders`.
        """
        self._decide(scope, self.hit(bucket))

    async def admit_on_loop(self, scope: Scope, bucket: str) -> None:
        """`admit` for a handler that runs on the event loop."""
        self._decide(scope, await self.hit_on_loop(bucket))

    def _decide(self, scope: Scope, verdict: Verdict) -> None:
        scope[RATE_KEY] = verdict
        if verdict.exceeded:
            raise TooManyRequests(verdict.limit, self.limit.window, verdict.retry_after)

    def flush(self) -> None:
        """Add every pending hit to the database; forget windows that are over."""
        now = self.clock.now().timestamp()
        with self._lock:
            for bucket, tally in list(self._tallies.items()):
                if tally.pending == 0 and tally.window + self.limit.seconds <= now:
                    del self._tallies[bucket]
            batch = [(b, t, t.pending) for b, t in self._tallies.items() if t.pending]
            for _, tally, delta in batch:
                tally.pending = 0
                tally.sending += delta
        for bucket, tally, delta in batch:
            self._exchange(bucket, tally, delta)

    def start(self) -> None:
        """Flush every `interval` in a background thread until `close`."""
        self._flusher = threading.Thread(target=self._flush_until_stopped, daemon=True)
        self._flusher.start()

    def _flush_until_stopped(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the next flush or hit adds them; the service keeps serving
                log.warning("could not flush rate-limit counts", exc_info=True)

    def close(self) -> None:
        """Stop the flusher and hand the last hits to the database."""
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.warning("rate-limit counts not flushed at shutdown", exc_info=True)


class RateLimitHeaders:
    """App middleware: every response to a counted request carries X-RateLimit-* headers,
    error replies included (they are rendered outside the route)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict = scope.get(RATE_KEY)
                if isinstance(verdict, Verdict):
                    message["headers"] = [*message.get("headers", []), *verdict.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
