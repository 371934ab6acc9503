"""The fail-fast pool over the real PostgreSQL server: connections the server closed are
replaced before anyone uses them, and a database that does not answer is a quick error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from projections.connection_pool import FailFastPool
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres
NAME = "robson-pool-test"


@pytest.fixture
def pool() -> Iterator[FailFastPool]:
    opened = FailFastPool(
        POSTGRES_URL,
        kwargs={"autocommit": True, "application_name": NAME},
        min_size=3,
        max_size=3,
        open=False,
    )
    opened.open(wait=True)
    yield opened
    opened.close()


def _terminate_every_connection_of(pool: FailFastPool) -> int:
    """Like a server restart: each connection is sent its error and closed (waited for)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (NAME,),
        ).fetchall()
    return len(rows)


def _pid(conn: Any) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_connections_the_server_closed_are_replaced_not_handed_out(pool: FailFastPool) -> None:
    with pool.connection() as conn:
        before = _pid(conn)
    assert _terminate_every_connection_of(pool) == 3
    for _ in range(3):  # every pooled connection was dropped: none of them fails a caller
        with pool.connection() as conn:
            assert _pid(conn) != before


def test_a_database_that_does_not_answer_is_told_apart_from_a_busy_pool() -> None:
    """Refused connections end the wait early, rather than at the busy pool's bound."""
    unreachable = FailFastPool("postgresql://postgres@127.0.0.1:9/test", min_size=1, open=False)
    unreachable.open()
    try:
        for _ in range(2):
            with pytest.raises(PoolTimeout, match="does not answer"), unreachable.connection():
                pass
    finally:
        unreachable.close()
