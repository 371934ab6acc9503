"""Prepared reads over libpq: answers reach their own caller, whatever fails in between."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import uuid4

import psycopg
import pytest
from anyio.from_thread import start_blocking_portal

from infra.bootstrap import Services
from infra.prepared_reads import NoLaneFree, PreparedReads

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)
T = TypeVar("T")
STATEMENTS = {
    "echo": "SELECT $1::text || '/' || coalesce($2::text, 'null')",
    "nothing": "SELECT 'never' WHERE false",
    "hundred_over": "SELECT (100 / $1::int)::text",
    "slow_echo": "SELECT $1::text FROM pg_sleep($2::float8)",
    "backend": "SELECT pg_backend_pid()::text",
    "transaction": "SELECT $1::text || '@' || transaction_timestamp()::text",
}


def run(main: Callable[[], Awaitable[T]]) -> T:
    """`main` in an event loop of its own thread (python-binance keeps one in this thread)."""
    with start_blocking_portal() as portal:
        return portal.call(main)


class Database:
    """The server as the tests see it: a name for the lanes' connections, and a connection of
    the test's own to watch and to end them."""

    def __init__(self, services: Services) -> None:
        self.database = services.read_models.database
        self.name = f"prepared-reads-{uuid4().hex[:8]}"

    @asynccontextmanager
    async def reads(
        self,
        size: int = 1,
        timeout: float = 10.0,
        options: str | None = None,
        port: int | None = None,
        connect_timeout: int | None = None,
    ) -> AsyncIterator[PreparedReads]:
        connect = self.database.postgres_kwargs()
        connect["application_name"] = self.name
        if options is not None:
            connect["options"] = options
        if port is not None:
            connect["port"] = str(port)
        if connect_timeout is not None:
            connect["connect_timeout"] = connect_timeout
        reads = PreparedReads(connect, STATEMENTS, size=size, acquire_timeout=timeout)
        await reads.open()
        try:
            yield reads
        finally:
            await reads.close()

    def backends(self, doing: str = "") -> list[int]:
        """The lanes' backends; with `doing`, only those running a statement that names it."""
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        params = [self.name]
        if doing:
            sql += " AND state = 'active' AND query LIKE %s"
            params.append(f"%{doing}%")
        with self.database.session() as s:
            rows = s.execute(sql, params)
        return [r[0] for r in rows]

    def end(self, pid: int) -> None:
        with self.database.session() as s:
            s.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])

    async def until(self, found: Callable[[list[int]], bool], doing: str = "") -> list[int]:
        """Polls the server (in a worker thread) until its lanes' backends satisfy `found`."""
        for _ in range(500):
            backends = await asyncio.to_thread(self.backends, doing)
            if found(backends):
                return backends
            await asyncio.sleep(0.01)
        raise AssertionError(f"the backends never got there: {backends}")


@pytest.fixture
def db(services: Services) -> Database:
    return Database(services)


async def backend_of(reads: PreparedReads) -> int:
    found = await reads.first_value("backend", [])
    assert found is not None
    return int(found)


def test_a_statement_answers_its_first_value_as_text(db: Database) -> None:
    async def main() -> list[bytes | None]:
        async with db.reads() as reads:
            return [
                await reads.first_value("echo", ["héllo", None]),
                await reads.first_value("echo", ["a", "b"]),
                await reads.first_value("nothing", []),
            ]

    assert run(main) == ["héllo/null".encode(), b"a/b", None]


def test_concurrent_reads_each_get_their_own_answer(db: Database) -> None:
    async def main() -> list[bytes | None]:
        async with db.reads(size=3) as reads:
            return await asyncio.gather(
                *(reads.first_value("echo", [str(n), "x"]) for n in range(60))
            )

    assert run(main) == [f"{n}/x".encode() for n in range(60)]


async def busy(reads: PreparedReads, db: Database, seconds: str = "0.2") -> asyncio.Task[Any]:
    """A slow read holding a lane; returns once the server runs it."""
    slow = asyncio.create_task(reads.first_value("slow_echo", ["busy", seconds]))
    await db.until(lambda found: len(found) == 1, doing="pg_sleep")
    return slow


def test_reads_waiting_for_a_lane_go_to_the_server_together(db: Database) -> None:
    async def main() -> list[bytes | None]:
        async with db.reads(size=1) as reads:
            slow = await busy(reads, db)
            answers = await asyncio.gather(
                *(reads.first_value("transaction", [str(n)]) for n in range(5))
            )
            await slow
            return answers

    answers = run(main)
    assert [a.split(b"@")[0] for a in answers if a] == [b"0", b"1", b"2", b"3", b"4"]
    assert len({a.split(b"@")[1] for a in answers if a}) == 1  # one round trip, one sync


def test_an_error_in_a_batch_is_its_own_statements_alone(db: Database) -> None:
    async def main() -> tuple[list[Any], int, int]:
        async with db.reads(size=1) as reads:
            before = await backend_of(reads)
            slow = await busy(reads, db)
            answers = await asyncio.gather(
                reads.first_value("echo", ["a", None]),
                reads.first_value("hundred_over", ["0"]),
                reads.first_value("echo", ["b", None]),
                reads.first_value("hundred_over", ["5"]),
                return_exceptions=True,
            )
            await slow
            return list(answers), before, await backend_of(reads)

    answers, before, after = run(main)
    assert answers[0] == b"a/null"
    assert isinstance(answers[1], psycopg.errors.DivisionByZero)
    assert answers[2:] == [b"b/null", b"20"]  # skipped by the server after the error: sent again
    assert after == before


def test_a_read_cancelled_in_a_batch_leaves_the_others_answered(db: Database) -> None:
    async def main() -> tuple[int, bytes | None, int]:
        async with db.reads(size=1) as reads:
            slow = await busy(reads, db, "0.1")
            stale = asyncio.create_task(reads.first_value("slow_echo", ["stale", "0.5"]))
            other = asyncio.create_task(reads.first_value("echo", ["other", None]))
            await slow
            [before] = await db.until(lambda found: len(found) == 1, doing="pg_sleep")
            stale.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stale
            return before, await other, await backend_of(reads)

    before, answer, after = run(main)
    assert answer == b"other/null"  # read again on a new connection
    assert after != before


def test_a_statement_error_is_raised_and_the_connection_kept(db: Database) -> None:
    async def main() -> tuple[int, int, bytes | None]:
        async with db.reads() as reads:
            before = await backend_of(reads)
            with pytest.raises(psycopg.errors.DivisionByZero):
                await reads.first_value("hundred_over", ["0"])
            return before, await backend_of(reads), await reads.first_value("hundred_over", ["4"])

    before, after, answer = run(main)
    assert after == before
    assert answer == b"25"


def test_a_statement_timeout_is_raised_once_and_the_connection_kept(db: Database) -> None:
    async def main() -> tuple[int, int]:
        async with db.reads(options="-c statement_timeout=50") as reads:
            before = await backend_of(reads)
            with pytest.raises(psycopg.errors.QueryCanceled):
                await reads.first_value("slow_echo", ["late", "5"])
            return before, await backend_of(reads)

    before, after = run(main)
    assert after == before  # not read again on a new connection: it would time out again


def test_a_connection_that_died_while_idle_is_replaced_unseen(db: Database) -> None:
    async def main() -> tuple[int, int]:
        async with db.reads() as reads:
            before = await backend_of(reads)
            await asyncio.to_thread(db.end, before)  # waits until the backend is gone
            return before, await backend_of(reads)

    before, after = run(main)
    assert after != before


def test_a_connection_lost_mid_statement_is_read_again_on_a_new_one(db: Database) -> None:
    async def main() -> tuple[bytes | None, int, int]:
        async with db.reads() as reads:
            slow = asyncio.create_task(reads.first_value("slow_echo", ["mine", "0.5"]))
            [first] = await db.until(lambda found: len(found) == 1, doing="pg_sleep")
            await asyncio.to_thread(db.end, first)
            answer = await slow
            return answer, first, await backend_of(reads)

    answer, first, now = run(main)
    assert answer == b"mine"
    assert now != first


def test_a_cancelled_read_hands_its_connection_to_no_one(db: Database) -> None:
    async def main() -> tuple[int, int, bytes | None]:
        async with db.reads() as reads:
            stale = asyncio.create_task(reads.first_value("slow_echo", ["stale", "0.3"]))
            [before] = await db.until(lambda found: len(found) == 1, doing="pg_sleep")
            stale.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stale
            # Its connection is closed at once: the server ends the statement and the backend.
            await db.until(lambda found: before not in found)
            return before, await backend_of(reads), await reads.first_value("echo", ["new", None])

    before, after, answer = run(main)
    assert after != before
    assert answer == b"new/null"


def test_no_free_connection_within_the_timeout_is_an_operational_error(db: Database) -> None:
    async def main() -> bytes | None:
        async with db.reads(size=1, timeout=0.05) as reads:
            slow = asyncio.create_task(reads.first_value("slow_echo", ["slow", "0.5"]))
            await db.until(lambda found: len(found) == 1, doing="pg_sleep")
            with pytest.raises(NoLaneFree, match="no database connection free"):
                await reads.first_value("echo", ["waiting", None])
            return await slow

    assert issubclass(NoLaneFree, psycopg.OperationalError)  # answered 503 by the API
    assert run(main) == b"slow"


def test_a_database_out_of_reach_fails_every_read_and_holds_no_slot(db: Database) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    async def main() -> list[str]:
        failures = []
        async with db.reads(size=1, timeout=1.0, port=port, connect_timeout=2) as reads:
            for _ in range(3):
                with pytest.raises(psycopg.OperationalError) as raised:
                    await reads.first_value("echo", ["a", None])
                failures.append(type(raised.value).__name__)
        return failures

    assert run(main) == ["OperationalError"] * 3  # never NoLaneFree: the slot came back


def test_the_lanes_connect_on_first_use_and_close_with_the_reads(db: Database) -> None:
    async def main() -> tuple[list[int], list[int], list[int]]:
        async with db.reads(size=2) as reads:
            opened = await asyncio.to_thread(db.backends)
            await asyncio.gather(
                reads.first_value("slow_echo", ["a", "0.1"]),
                reads.first_value("slow_echo", ["b", "0.1"]),
            )
            both = await asyncio.to_thread(db.backends)
        return opened, both, await db.until(lambda found: not found)

    opened, both, closed = run(main)
    assert opened == []
    assert len(both) == 2
    assert closed == []


def test_closing_fails_the_reads_in_flight_and_waiting(db: Database) -> None:
    async def main() -> tuple[list[Any], list[int]]:
        async with db.reads(size=1) as reads:
            slow = await busy(reads, db, "1")
            waiting = asyncio.create_task(reads.first_value("echo", ["waiting", None]))
            await asyncio.sleep(0)  # queued behind the slow one
            await reads.close()
            answers = await asyncio.gather(slow, waiting, return_exceptions=True)
        return list(answers), await db.until(lambda found: not found)

    answers, backends = run(main)
    assert [str(a) for a in answers] == ["the reads were closed"] * 2
    assert all(isinstance(a, psycopg.OperationalError) for a in answers)
    assert backends == []
