"""PostgreSQL connection pools that fail fast while the database is away and recover at
once when it is back (the event store's and the read models' alike).

psycopg_pool, left to itself, keeps a caller waiting its whole `timeout` while the server
refuses connections, retries a failed connection with a backoff that grows to minutes (so a
returned server goes unused for as long), and hands out pooled connections the server
closed while it was away. Here:
- a caller waits for a connection at most `ACQUIRE_SECONDS`; once a connection attempt has
  failed and none has succeeded since for `UNREACHABLE_SECONDS`, a caller gives a new
  attempt one short slice, then gives up;
- a failed connection attempt is given up after `RECONNECT_SECONDS`, so the next caller
  starts a new one rather than waiting out the backoff;
- a pooled connection the server has closed is found without a round trip (its socket is
  readable while idle) and, with every idle connection pooled as long, replaced;
- a connection attempt waits at most `CONNECT_TIMEOUT_SECONDS` (libpq's minimum).
"""

from __future__ import annotations

import select
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.abc import CT

CONNECT_TIMEOUT_SECONDS = 2
ACQUIRE_SECONDS = 10.0  # the database answers, every connection is busy
UNREACHABLE_SECONDS = 0.75  # the database does not answer: a 503 well within 2 s
RECONNECT_SECONDS = 0.25
_SLICE_SECONDS = 0.1


def with_connect_timeout(kwargs: Mapping[str, object]) -> dict[str, object]:
    """Connection arguments whose connection attempt ends within a bounded time."""
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **kwargs}


def closed_by_server(conn: psycopg.Connection[object]) -> bool:
    """An idle pooled connection with something to read: the server closed it, or sent the
    error that comes before (such a connection LISTENs to nothing, so a rare notice from a
    live server only costs a new connection)."""
    if conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, psycopg.Error):
        return True
    return bool(readable)


class FailFastPool(ConnectionPool[CT]):
    """A `ConnectionPool` with the behaviour above; `timeout` is ignored for the bounds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["kwargs"] = with_connect_timeout(dict(kwargs.get("kwargs") or {}))
        kwargs.setdefault("timeout", ACQUIRE_SECONDS)
        kwargs["reconnect_timeout"] = RECONNECT_SECONDS
        self.failing_since: float | None = None  # the first failed attempt since a success
        super().__init__(*args, **kwargs)

    def _connect(self, timeout: float | None = None) -> CT:
        try:
            conn = super()._connect(timeout)
        except BaseException:
            if self.failing_since is None:
                self.failing_since = time.monotonic()
            raise
        self.failing_since = None
        return conn

    def unreachable(self) -> bool:
        return self.failing_since is not None

    def _given_up(self, start: float, now: float, deadline: float) -> bool:
        """Past the deadline, or the database has not answered for `UNREACHABLE_SECONDS`
        and this caller has given a new attempt one slice."""
        failing_since = self.failing_since
        if failing_since is None:
            return now >= deadline
        return now - failing_since >= UNREACHABLE_SECONDS and now - start >= _SLICE_SECONDS

    def getconn(self, timeout: float | None = None) -> CT:
        start = time.monotonic()
        deadline = start + (self.timeout if timeout is None else timeout)
        stale = 0
        while True:
            try:
                conn = super().getconn(_SLICE_SECONDS)
            except PoolTimeout:
                if self._given_up(start, time.monotonic(), deadline):
                    raise PoolTimeout(
                        "no database connection: "
                        + ("the database does not answer" if self.unreachable() else "all busy")
                    ) from None
                continue
            if not closed_by_server(conn):
                return conn
            # The server went away and came back (or is away): every connection pooled
            # before now is as stale as this one.
            conn.close()
            self.putconn(conn)
            stale += 1
            if stale == 1:
                self.drain()
