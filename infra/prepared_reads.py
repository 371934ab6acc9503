"""Read-only prepared statements over a few PostgreSQL connections, awaited on the event loop
through libpq itself.

A request of the busiest reads is one statement and one reply. psycopg's asynchronous
connection spends several times the statement's own cost around it (a generator per step,
a reader added to and removed from the loop for every wait, a pool with timers on every
checkout). Here each connection ("lane") keeps one reader on the loop for its whole life,
its statements are prepared once when it connects, and a read is: send, wait for the
socket, take the result.

Failures, so that a lane never hands a caller another caller's result:
- a statement's own error (bad input, a timeout) leaves the lane usable and is raised as
  psycopg's error for its SQLSTATE;
- a lost connection, found before or during a statement: the statement is sent once more on
  a new connection (these reads are safe to repeat); when that fails too,
  `psycopg.OperationalError` is raised;
- a caller cancelled while its statement runs: the lane is closed, the next caller gets a
  new one, and the database abandons the statement when it finds the socket closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from psycopg.pq.abc import PGresult


class NoLaneFree(psycopg.OperationalError):
    """Every connection stayed busy for the whole acquire timeout."""


class Lane:
    """One connection with the statements prepared: one statement in flight at a time."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection  # held: psycopg warns when an open one is dropped
        self.pgconn = connection.pgconn
        self.pgconn.nonblocking = 1
        self.fd = self.pgconn.socket
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] | None = None
        self.failure: psycopg.OperationalError | None = None
        self.in_flight = False  # sent, and not every result taken yet
        self.loop.add_reader(self.fd, self._readable)

    @classmethod
    async def connect(cls, kwargs: Mapping[str, Any], statements: Mapping[str, str]) -> Lane:
        lane = cls(await psycopg.AsyncConnection.connect(**kwargs))
        try:
            for name, sql in statements.items():
                lane.in_flight = True
                lane.pgconn.send_prepare(name.encode(), sql.encode())
                _raise_for(await lane.results(), pq.ExecStatus.COMMAND_OK)
        except BaseException:
            lane.close()
            raise
        return lane

    @property
    def ready(self) -> bool:
        """Connected, and nothing of an earlier statement is still to come."""
        connected = self.pgconn.status == pq.ConnStatus.OK
        return connected and self.failure is None and not self.in_flight

    async def run(self, name: str, params: Sequence[str | None]) -> PGresult:
        """The statement's one result (its error raised as psycopg's error)."""
        self.in_flight = True
        self.pgconn.send_query_prepared(
            name.encode(), [None if p is None else p.encode() for p in params]
        )
        return _raise_for(await self.results(), pq.ExecStatus.TUPLES_OK)

    async def results(self) -> list[PGresult]:
        """Everything the command sent last returned, once the server is ready for the next."""
        await self._flushed()
        found: list[PGresult] = []
        while True:
            if self.pgconn.is_busy():
                await self._readable_again()
                continue
            result = self.pgconn.get_result()
            if result is None:
                self.in_flight = False
                return found
            found.append(result)

    async def _flushed(self) -> None:
        while self.pgconn.flush():  # the socket's buffer is full: wait until it drains
            drained = self.loop.create_future()
            self.loop.add_writer(self.fd, _settle, drained)
            try:
                await drained
            finally:
                self.loop.remove_writer(self.fd)

    async def _readable_again(self) -> None:
        if self.failure is not None:
            raise self.failure
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _readable(self) -> None:
        """The loop's reader, for the lane's whole life: takes in whatever arrived."""
        try:
            self.pgconn.consume_input()
        except psycopg.OperationalError as error:
            self._fail(error)
            return
        if self.waiter is not None and not self.pgconn.is_busy():
            _settle(self.waiter)

    def _fail(self, error: psycopg.OperationalError) -> None:
        if self.failure is not None:
            return
        self.failure = error
        self.loop.remove_reader(self.fd)  # a closed socket would stay readable forever
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def close(self) -> None:
        self._fail(psycopg.OperationalError("the connection was closed"))
        self.pgconn.finish()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _raise_for(results: list[PGresult], expected: pq.ExecStatus) -> PGresult:
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise error_from_result(result)
    if len(results) != 1 or results[0].status != expected:
        statuses = [pq.ExecStatus(r.status).name for r in results]
        raise psycopg.InterfaceError(f"expected one {expected.name} result, got {statuses}")
    return results[0]


class PreparedReads:
    """`size` lanes, each connected on first use and reconnected after a failure.

    `statements` maps a name to SQL with `$1`-style parameters; parameters are passed as
    text (None = NULL) and each statement's first column of its first row comes back as
    the server's text. Open and use it on one event loop.
    """

    def __init__(
        self,
        kwargs: Mapping[str, Any],
        statements: Mapping[str, str],
        *,
        size: int,
        acquire_timeout: float,
    ) -> None:
        self.kwargs = kwargs
        self.statements = statements
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.free: asyncio.Queue[Lane | None] = asyncio.Queue()
        self.lanes: set[Lane] = set()

    async def open(self) -> None:
        """Make room for the lanes; each connects on first use, so the API starts while the
        database is away and answers 503 until it is back."""
        for _ in range(self.size):
            self.free.put_nowait(None)

    async def close(self) -> None:
        for lane in self.lanes:
            lane.close()
        self.lanes.clear()

    async def first_value(self, name: str, params: Sequence[str | None]) -> bytes | None:
        lane = await self._acquire()
        try:
            lane = await self._ready(lane)
            try:
                return await self._first_value(lane, name, params)
            except psycopg.OperationalError:
                if lane.ready:
                    raise  # the statement's own failure (its timeout, say)
            # The connection was lost, before or during the statement: once more, on a new one.
            lane = await self._ready(lane)
            return await self._first_value(lane, name, params)
        finally:
            if lane is not None and not lane.ready:
                self._discard(lane)  # e.g. cancelled mid-statement: its reply must reach no one
                lane = None
            self.free.put_nowait(lane)

    async def _ready(self, lane: Lane | None) -> Lane:
        if lane is not None and lane.ready:
            return lane
        self._discard(lane)
        lane = await Lane.connect(self.kwargs, self.statements)
        self.lanes.add(lane)
        return lane

    @staticmethod
    async def _first_value(lane: Lane, name: str, params: Sequence[str | None]) -> bytes | None:
        result = await lane.run(name, params)
        return result.get_value(0, 0) if result.ntuples else None

    async def _acquire(self) -> Lane | None:
        try:
            return self.free.get_nowait()
        except asyncio.QueueEmpty:
            pass
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await self.free.get()
        except TimeoutError:
            raise NoLaneFree(
                f"no database connection free within {self.acquire_timeout:g} s"
            ) from None

    def _discard(self, lane: Lane | None) -> None:
        if lane is not None:
            lane.close()
            self.lanes.discard(lane)
