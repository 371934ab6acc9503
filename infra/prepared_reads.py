"""Read-only prepared statements over a few PostgreSQL connections, awaited on the event loop
through libpq itself.

A request of the busiest reads is one statement and one reply. psycopg's asynchronous
connection spends several times the statement's own cost around it (a generator per step,
a reader added to and removed from the loop for every wait, a pool with timers on every
checkout). Here each connection ("lane") keeps one reader on the loop for its whole life,
its statements are prepared once when it connects, and a read is: send, wait for the
socket, take the result.

Under load, the reads waiting for a lane go to the next free one together, in libpq's
pipeline mode: one write sends them all with one sync point, the server runs them back to
back, and each caller is answered as its own result arrives. Waking a server process and
the event loop once for several reads, instead of once for each, is most of a read's cost
on a busy machine. A statement's error is its caller's alone: the statements after it in
the batch, which the server skips, are sent again.

Failures, so that a lane never hands a caller another caller's result:
- a statement's own error (bad input, a timeout) leaves the lane usable and is raised as
  psycopg's error for its SQLSTATE;
- a lost connection, found before or during a statement: the statements not yet answered
  are sent once more on a new connection (these reads are safe to repeat); when that fails
  too, `psycopg.OperationalError` is raised;
- a caller cancelled while its statement runs: the lane is closed, the next caller gets a
  new one, and the database abandons the statement when it finds the socket closed (the
  other statements sent with it are read again on a new connection).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from psycopg.pq.abc import PGresult
from psycopg.rows import TupleRow

from projections.database import PostgresKwargs

MAX_BATCH = 8  # reads sent together on one lane: a slow one delays the others in its batch


class NoLaneFree(psycopg.OperationalError):
    """Every connection stayed busy for the whole acquire timeout."""


@dataclass(eq=False)
class Read:
    """One caller's statement: waiting for a lane, then on one until answered."""

    name: bytes
    params: list[bytes | None]
    answer: asyncio.Future[bytes | None]
    deadline: float  # the loop's time when waiting for a lane ends in NoLaneFree
    lane: Lane | None = None  # while its statement is on a connection

    def fail(self, error: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


class Lane:
    """One connection with the statements prepared, in pipeline mode: one batch of reads in
    flight at a time."""

    def __init__(self, connection: psycopg.AsyncConnection[TupleRow]) -> None:
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
    async def connect(cls, kwargs: PostgresKwargs, statements: Mapping[str, str]) -> Lane:
        lane = cls(await psycopg.AsyncConnection.connect(**kwargs))
        try:
            for name, sql in statements.items():
                lane.in_flight = True
                lane.pgconn.send_prepare(name.encode(), sql.encode())
                _raise_for(await lane._results(), pq.ExecStatus.COMMAND_OK)
            lane.pgconn.enter_pipeline_mode()
        except BaseException:
            lane.close()
            raise
        return lane

    @property
    def ready(self) -> bool:
        """Connected, and nothing of an earlier batch is still to come."""
        connected = self.pgconn.status == pq.ConnStatus.OK
        return connected and self.failure is None and not self.in_flight

    async def run(self, reads: Sequence[Read]) -> list[Read]:
        """Send every read's statement and one sync point in one write; answer each read
        with its first value as its result arrives, or with its statement's error once the
        sync point shows the connection alive (a server shutting down sends an error before
        it closes). Returns the reads an earlier statement's error aborted, to be sent
        again."""
        self.in_flight = True
        for read in reads:
            read.lane = self
            self.pgconn.send_query_prepared(read.name, read.params)
        self.pgconn.pipeline_sync()  # flushes
        await self._flushed()
        aborted: list[Read] = []
        failed: list[tuple[Read, psycopg.Error]] = []
        for read in reads:
            results = await self._results()
            if read.answer.done():  # its caller was cancelled
                continue
            if results and results[0].status == pq.ExecStatus.PIPELINE_ABORTED:
                aborted.append(read)
                continue
            try:
                result = _raise_for(results, pq.ExecStatus.TUPLES_OK)
            except psycopg.Error as statement_error:
                failed.append((read, statement_error))
            else:
                read.answer.set_result(result.get_value(0, 0) if result.ntuples else None)
        synced = await self._next()
        if synced is None or synced.status != pq.ExecStatus.PIPELINE_SYNC:
            raise psycopg.InterfaceError("the pipeline's sync point did not come back")
        self.in_flight = False
        for read, error in failed:
            read.fail(error)
        for read in reads:
            read.lane = None
        return aborted

    async def _results(self) -> list[PGresult]:
        """Everything one command returned (the next in the pipeline, in pipeline mode)."""
        found = []
        while (result := await self._next()) is not None:
            found.append(result)
        if self.pgconn.pipeline_status == pq.PipelineStatus.OFF:
            self.in_flight = False
        return found

    async def _next(self) -> PGresult | None:
        await self._flushed()
        while self.pgconn.is_busy():
            await self._readable_again()
        return self.pgconn.get_result()

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
        kwargs: PostgresKwargs,
        statements: Mapping[str, str],
        *,
        size: int,
        acquire_timeout: float,
    ) -> None:
        self.kwargs = kwargs
        self.statements = statements
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.waiting: deque[Read] = deque()
        self.free: list[Lane | None] = []  # None: a lane to connect on first use
        self.lanes: set[Lane] = set()
        self.batches: set[asyncio.Task[None]] = set()
        self.sweep: asyncio.TimerHandle | None = None  # at the oldest waiting read's deadline

    async def open(self) -> None:
        """Make room for the lanes; each connects on first use, so the API starts while the
        database is away and answers 503 until it is back."""
        self.loop = asyncio.get_running_loop()
        self.free = [None] * self.size

    async def close(self) -> None:
        """Fail the reads still waiting or in flight, and close every lane."""
        if self.sweep is not None:
            self.sweep.cancel()
        while self.waiting:
            self.waiting.popleft().fail(psycopg.OperationalError("the reads were closed"))
        for batch in list(self.batches):
            batch.cancel()
        await asyncio.gather(*self.batches, return_exceptions=True)
        for lane in self.lanes:
            lane.close()
        self.lanes.clear()

    async def first_value(self, name: str, params: Sequence[str | None]) -> bytes | None:
        read = Read(
            name.encode(),
            [None if p is None else p.encode() for p in params],
            self.loop.create_future(),
            self.loop.time() + self.acquire_timeout,
        )
        self.waiting.append(read)
        if self.free:
            self._dispatch()
        elif self.sweep is None:
            self.sweep = self.loop.call_at(read.deadline, self._expire_overdue)
        try:
            return await read.answer
        except asyncio.CancelledError:
            if read.lane is not None:
                read.lane.close()  # its reply must reach no one; the server ends the statement
            raise

    def _expire_overdue(self) -> None:
        """Fail the reads that waited for a lane past their deadline (the oldest come first)."""
        self.sweep = None
        now = self.loop.time()
        while self.waiting and (self.waiting[0].answer.done() or self.waiting[0].deadline <= now):
            self.waiting.popleft().fail(
                NoLaneFree(f"no database connection free within {self.acquire_timeout:g} s")
            )
        if self.waiting:
            self.sweep = self.loop.call_at(self.waiting[0].deadline, self._expire_overdue)

    def _dispatch(self) -> None:
        """Hand the waiting reads, in order, to the free lanes."""
        while self.waiting and self.free:
            batch: list[Read] = []
            while self.waiting and len(batch) < MAX_BATCH:
                read = self.waiting.popleft()
                if not read.answer.done():  # expired or cancelled while waiting
                    batch.append(read)
            if batch:
                task = self.loop.create_task(self._serve(self.free.pop(), batch))
                self.batches.add(task)
                task.add_done_callback(self.batches.discard)

    async def _serve(self, lane: Lane | None, batch: list[Read]) -> None:
        try:
            lane = await self._ready(lane)
            try:
                aborted = await lane.run(batch)
            except psycopg.OperationalError:
                # The connection was lost, before or during the batch (statements' own errors
                # are their callers'): once more, on a new one.
                unanswered = [read for read in batch if not read.answer.done()]
                lane = await self._ready(lane)
                aborted = await lane.run(unanswered) if unanswered else []
            self.waiting.extendleft(reversed(aborted))  # first in line, in their order
        except Exception as error:
            for read in batch:
                read.fail(error)
        except BaseException:  # cancelled by `close`
            for read in batch:
                read.fail(psycopg.OperationalError("the reads were closed"))
            raise
        finally:
            if lane is not None and not lane.ready:
                self._discard(lane)
                lane = None
            self.free.append(lane)
            self._dispatch()

    async def _ready(self, lane: Lane | None) -> Lane:
        if lane is not None and lane.ready:
            return lane
        self._discard(lane)
        lane = await Lane.connect(self.kwargs, self.statements)
        self.lanes.add(lane)
        return lane

    def _discard(self, lane: Lane | None) -> None:
        if lane is not None:
            lane.close()
            self.lanes.discard(lane)
