"""The Starlette application as data: operations -> routes, a middleware list, one exception
table, and a lifespan that starts and stops every background service it is given."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
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
    trade_history,
)
from api.auth import DEFAULT_TTL_SECONDS, Authenticate, TokenCache
from api.body_limit import BodyLimit
from api.errors import EXCEPTION_HANDLERS, ClientGone
from api.idempotency import Idempotency
from api.metrics import Metrics, MetricsSource, RequestMetrics
from api.openapi import openapi_document
from api.operations import Access, Operation, Runtime, routes
from api.rate_limit import RateLimit, RateLimiter, RateLimitHeaders
from api.routing import IndexedRouter
from api.services import Services
from api.stream import TenantStreams, stream_routes

log = logging.getLogger("robson.api")

MAX_BODY_BYTES = 64 * 1024
OPERATIONS: Sequence[Operation] = (
    *trade.OPERATIONS,
    *trade_history.OPERATIONS,
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
    """After a command: wait until the read models include everything logged so far.
    The command's reply is decided: a database gone meanwhile only skips the wait."""
    try:
        last = services.read_models.log_position()
        if last and not services.read_models.wait_for(last):
            log.warning("read models did not reach notification %s in time", last)
    except (OperationalError, InterfaceError, psycopg.OperationalError):
        log.warning("read models not awaited: the database is unavailable")


def create_app(
    services: Services,
    *,
    background: Sequence[Background] = (),
    owns_services: bool = False,
    token_ttl: float = DEFAULT_TTL_SECONDS,
    rate_limit: RateLimit | None = None,
) -> Starlette:
    """The API over `services`, opening no connection of its own (its lifespan opens and
    closes the document readers it is given). `owns_services`: close them when it ends."""
    metrics = Metrics(service for service in background if isinstance(service, MetricsSource))
    tokens = TokenCache(services.ledger, token_ttl)
    limiter = RateLimiter(
        rate_limit or RateLimit.parse(services.settings.rate_limit),
        services.rate_counts,
        services.clock,
    )
    guarded = [Middleware(Authenticate, tokens=tokens)]  # the limiter: just before the handler
    documents = services.documents
    runtime = Runtime(
        services,
        metrics,
        limiter,
        documents,
        settle=lambda: read_own_writes(services),
        idempotency=Idempotency(services.idempotency_keys, services.clock),
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
            if owns_services:
                services.close()

    app = Starlette(
        middleware=[
            Middleware(ClientGone),
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
