"""Database failures answer 503 in the error shape, whichever connection they came from."""

from __future__ import annotations

import json

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from psycopg_pool import PoolTimeout
from starlette.requests import Request

from api.errors import POSITION_KEY, domain_error, status_of
from domain.errors import OrderOutcomeUnknown
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


def test_a_database_failure_during_a_command_on_a_position_says_its_outcome_is_unknown() -> None:
    """The order may have gone out before the database failed: never reported as failed."""
    position_id = "9d9b63b3-bd60-4fda-a6a6-efc8e4ace27f"
    scope = {**SCOPE, "method": "POST", "path": "/api/trade/buy-btc/", POSITION_KEY: position_id}
    reply = domain_error(Request(scope), OperationalError("server closed the connection"))
    body = json.loads(bytes(reply.body))
    assert reply.status_code == 503
    assert body["code"] == "database_unavailable"
    assert body["outcome"] == "unknown"
    assert body["position_id"] == position_id
    assert position_id in body["error"]
    assert "server closed" not in body["error"]


def test_an_unconfirmed_order_says_its_outcome_is_unknown() -> None:
    position_id = "9d9b63b3-bd60-4fda-a6a6-efc8e4ace27f"
    scope = {**SCOPE, "method": "POST", POSITION_KEY: position_id}
    reply = domain_error(Request(scope), OrderOutcomeUnknown("timed out"))
    body = json.loads(bytes(reply.body))
    assert reply.status_code == 202
    assert (body["outcome"], body["position_id"]) == ("unknown", position_id)
