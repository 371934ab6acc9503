"""Database failures answer 503 in the error shape, whichever connection they came from."""

from __future__ import annotations

import json

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from psycopg_pool import PoolTimeout
from starlette.requests import Request

from api.errors import domain_error, status_of
from infra.prepared_reads import NoLaneFree

SCOPE = {"type": "http", "method": "GET", "path": "/api/trade/history/", "headers": []}


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("the event store's connection dropped"),
        psycopg.OperationalError("connection to server at 10.1.2.3 failed: password=hunter2"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
        NoLaneFree("no database connection free within 10 s"),
    ],
)
def test_a_database_failure_is_a_503_that_hides_its_details(failure: Exception) -> None:
    assert status_of(failure) == 503
    reply = domain_error(Request(SCOPE), failure)
    assert reply.status_code == 503
    assert json.loads(bytes(reply.body)) == {
        "success": False,
        "error": "The database is unavailable; try again shortly",
        "code": "database_unavailable",
    }
