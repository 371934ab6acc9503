"""Live streams: when the projection runner commits a tenant's events, that tenant's open
streams are woken, and nobody else's (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from api.stream import TenantStreams
from infra.bootstrap import Services
from tests.factories import long_plan, open_long, register
from tests.integration.test_api_support import running


def woken(queue: asyncio.Queue[int]) -> bool:
    """Whether a 'changed' is waiting (taken, so the next check starts clean)."""
    if queue.empty():
        return False
    queue.get_nowait()
    return True


def scenario(
    test: Callable[[TenantStreams], Coroutine[Any, Any, None]], services: Services
) -> None:
    streams = TenantStreams(services.read_models)
    services.projections.subscribe(streams.publish)
    # A loop of its own, never installed as the thread's current one: asyncio.run() would
    # replace (and drop, unclosed) a loop another library left current in this thread.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(test(streams))
    finally:
        loop.close()


async def committed(services: Services) -> None:
    """The runner applies what is in the log now; its wake-ups then run on this loop."""
    services.projections.run_once()
    await asyncio.sleep(0)


def test_a_tenants_stream_wakes_on_its_own_events_only(services: Services) -> None:
    alice, _ = register(services.ledger)
    bob, _ = register(services.ledger)

    async def test(streams: TenantStreams) -> None:
        loop = asyncio.get_running_loop()
        await committed(services)
        mine, theirs = streams.open(alice, loop), streams.open(bob, loop)

        open_long(services.ledger, alice)
        await committed(services)
        assert woken(mine.queue)
        assert not woken(theirs.queue)

        services.ledger.plan_position(bob, long_plan())
        await committed(services)
        assert woken(theirs.queue)
        assert not woken(mine.queue)

    scenario(test, services)


def test_a_position_planned_before_the_stream_opened_still_wakes_it(
    services: Services,
) -> None:
    alice, _ = register(services.ledger)
    planned = services.ledger.plan_position(alice, long_plan())
    services.projections.run_once()

    async def test(streams: TenantStreams) -> None:
        subscriber = streams.open(alice, asyncio.get_running_loop())
        services.ledger.validate_position(alice, planned.id)  # no client id on this event
        await committed(services)
        assert woken(subscriber.queue)

    scenario(test, services)


def test_many_batches_before_the_page_reads_make_one_wake_up(services: Services) -> None:
    alice, _ = register(services.ledger)

    async def test(streams: TenantStreams) -> None:
        subscriber = streams.open(alice, asyncio.get_running_loop())
        for _ in range(3):
            services.ledger.plan_position(alice, long_plan())
            await committed(services)
        assert subscriber.queue.qsize() == 1

    scenario(test, services)


def test_a_closed_stream_is_forgotten(services: Services) -> None:
    alice, _ = register(services.ledger)

    async def test(streams: TenantStreams) -> None:
        subscriber = streams.open(alice, asyncio.get_running_loop())
        assert streams.watching(alice) == 1
        streams.close(subscriber)
        assert streams.watching(alice) == 0
        open_long(services.ledger, alice)
        await committed(services)
        assert not woken(subscriber.queue)

    scenario(test, services)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer rbs_not-a-token"}])
def test_the_stream_needs_a_valid_token(services: Services, headers: dict[str, str]) -> None:
    with running(services) as api:
        reply = api.get("/api/stream/", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["code"] == "unauthorized"


def test_the_stream_is_not_in_the_openapi_document(services: Services) -> None:
    with running(services) as api:
        document = api.get("/openapi.json").json()
    assert "/api/stream/" not in document["paths"]


def test_draining_ends_every_stream_and_any_opened_after(services: Services) -> None:
    alice, _ = register(services.ledger)

    async def test(streams: TenantStreams) -> None:
        loop = asyncio.get_running_loop()
        open_stream = streams.open(alice, loop)
        streams.end()
        await asyncio.sleep(0)
        assert open_stream.ended and woken(open_stream.queue)
        assert streams.open(alice, loop).ended

    scenario(test, services)
