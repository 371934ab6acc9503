"""The Starlette application as data: operations -> routes, a middleware list, one exception
table, and a lifespan that starts and stops every background service it is given."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from api import (
    admin,
    audit,
    chat,
    dashboard,
    guard,
    health,
    intents,
    margin,
    openapi,
    policy,
    positions,
    preview,
    trade,
)
from api.auth import DEFAULT_TTL_SECONDS, Authenticate, TokenCache
from api.body_limit import BodyLimit
from api.documents import documents_for
from api.errors import EXCEPTION_HANDLERS
from api.metrics import Metrics, RequestMetrics
from api.openapi import openapi_document
from api.operations import Access, Operation, Runtime, routes
from api.rate_limit import RateLimit, RateLimiter, RateLimitHeaders
from api.routing import IndexedRouter
from api.stream import TenantStreams, stream_routes
from infra.bootstrap import Services, projection_database
from infra.rate_counts import SqlCounter

log = logging.getLogger("robson.api")

MAX_BODY_BYTES = 64 * 1024
OPERATIONS: Sequence[Operation] = (
    *trade.OPERATIONS,
    *margin.OPERATIONS,
    *positions.OPERATIONS,
    *intents.OPERATIONS,
    *policy.OPERATIONS,
    *guard.OPERATIONS,
    *chat.OPERATIONS,
    *audit.OPERATIONS,
    *admin.OPERATIONS,
    *health.OPERATIONS,
    *openapi.OPERATIONS,
    *preview.OPERATIONS,
)


class Background(Protocol):
    """A service that runs beside the API (projection runner, workers): started in the
    lifespan, stopped when it ends, in reverse order."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def read_own_writes(services: Services) -> None:
    """After a command: wait until the read models include everything logged so far."""
    last = services.store.recorder.max_notification_id() or 0
    if last and not services.read_models.wait_for(last):
        log.warning("read models did not reach notification %s in time", last)


def create_app(
    services: Services,
    *,
    background: Sequence[Background] = (),
    owns_services: bool = False,
    token_ttl: float = DEFAULT_TTL_SECONDS,
    rate_limit: RateLimit | None = None,
) -> Starlette:
    """The API over `services`. `owns_services`: close them when the app shuts down."""
    metrics = Metrics()
    tokens = TokenCache(services.ledger, token_ttl)
    counter = SqlCounter(projection_database(services.settings, durable=False))
    limiter = RateLimiter(
        rate_limit or RateLimit.parse(services.settings.rate_limit), counter, services.clock
    )
    guarded = [Middleware(Authenticate, tokens=tokens)]  # the limiter: just before the handler
    documents = documents_for(services.read_models)
    runtime = Runtime(
        services, metrics, limiter, documents, settle=lambda: read_own_writes(services)
    )
    built, templates = routes(
        OPERATIONS, runtime, {Access.CLIENT: guarded, Access.OPERATOR: guarded}
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Background] = []
        limiter.start()
        await documents.open()
        try:
            for service in background:
                await run_in_threadpool(service.start)
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                await run_in_threadpool(service.stop)
            await run_in_threadpool(limiter.close)
            await documents.close()
            counter.close()
            if owns_services:
                services.close()

    app = Starlette(
        middleware=[
            Middleware(RequestMetrics, metrics=metrics, routes=templates),
            Middleware(RateLimitHeaders),
            Middleware(BodyLimit, max_bytes=MAX_BODY_BYTES),
        ],
        exception_handlers={**EXCEPTION_HANDLERS, **chat.EXCEPTION_HANDLERS},
    )
    streams = TenantStreams(services.read_models)
    services.projections.subscribe(streams.publish)
    live = stream_routes(streams, guarded, limiter)
    templates.update({route.endpoint: "/api/stream/" for route in live})
    app.router = IndexedRouter([*built, *live, *dashboard.routes()], lifespan=lifespan)
    app.state.openapi = openapi_document(OPERATIONS)
    app.state.streams = streams  # `robson serve` ends them when it drains
    return app
