"""Live updates for the dashboard: Server-Sent Events pushed when the projection runner
commits a tenant's events, so a page refreshes on change instead of polling.

The runner reports each committed batch from its own thread; `TenantStreams` works out whose
events they are and wakes only that tenant's open streams. Only creation events name their
tenant, so each tenant's aggregate ids (its policy, its positions) are remembered while it
has a stream open; an event of an id no open stream owns reaches nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from api.auth import principal_of
from api.rate_limit import RateLimiter
from domain.formats import Document
from domain.identity import policy_id_for
from domain.read_models import ReadModels

log = logging.getLogger("robson.stream")

TICK_SECONDS = 15.0  # an idle stream says `tick`: prices move without events; proxies stay open
MAX_STREAM_SECONDS = 600.0  # then the page reconnects, its token checked again
WATCH_LIMIT = 500


@dataclass
class _Subscriber:
    client_id: UUID
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[int]
    ended: bool = False  # the server is shutting down: the stream says goodbye


@dataclass
class _Tenant:
    owned: set[UUID] = field(default_factory=set)
    subscribers: list[_Subscriber] = field(default_factory=list)


class TenantStreams:
    """Which open streams belong to which tenant, and which aggregates belong to it."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models
        self._lock = threading.Lock()
        self._tenants: dict[UUID, _Tenant] = {}
        self._owner: dict[UUID, UUID] = {}  # aggregate id -> tenant, for tenants being watched
        self._ending = False

    def open(self, client_id: UUID, loop: asyncio.AbstractEventLoop) -> _Subscriber:
        """A stream for `client_id`, woken on `loop` (blocking: reads the tenant's positions).
        Watching starts before the read, so a position planned meanwhile is not missed."""
        subscriber = _Subscriber(client_id, loop, asyncio.Queue(maxsize=1), self._ending)
        with self._lock:
            self._tenants.setdefault(client_id, _Tenant()).subscribers.append(subscriber)
        known = {policy_id_for(client_id), client_id}
        try:
            for status in ("open", None):  # every open position, and the newest others
                rows = self.read_models.positions(client_id, status, WATCH_LIMIT)
                known |= {row.position_id for row in rows}
        except BaseException:
            self.close(subscriber)
            raise
        with self._lock:
            tenant = self._tenants.get(client_id)
            if tenant is not None:
                tenant.owned |= known
                for aggregate_id in known:
                    self._owner[aggregate_id] = client_id
        return subscriber

    def close(self, subscriber: _Subscriber) -> None:
        with self._lock:
            tenant = self._tenants.get(subscriber.client_id)
            if tenant is None:
                return
            tenant.subscribers = [s for s in tenant.subscribers if s is not subscriber]
            if not tenant.subscribers:
                del self._tenants[subscriber.client_id]
                for aggregate_id in tenant.owned:
                    self._owner.pop(aggregate_id, None)

    def publish(self, events: Sequence[object]) -> None:
        """The runner's listener: wake each watched tenant whose events were committed."""
        try:
            woken = self._tenants_of(events)
            with self._lock:
                subscribers = [s for c in woken for s in self._tenants[c].subscribers]
            for subscriber in subscribers:
                subscriber.loop.call_soon_threadsafe(_nudge, subscriber.queue)
        except Exception:  # a page missing one push must never stall the read models
            log.exception("could not notify live streams")

    def _tenants_of(self, events: Iterable[object]) -> set[UUID]:
        woken: set[UUID] = set()
        with self._lock:
            for event in events:
                aggregate_id = getattr(event, "originator_id", None)
                owner = self._owner.get(aggregate_id) if isinstance(aggregate_id, UUID) else None
                named = getattr(event, "client_id", None)
                if owner is None and isinstance(named, UUID) and named in self._tenants:
                    owner = named  # a new aggregate of a watched tenant: remember it
                    self._tenants[named].owned.add(aggregate_id)  # type: ignore[arg-type]
                    self._owner[aggregate_id] = named  # type: ignore[index]
                if owner is not None:
                    woken.add(owner)
        return woken

    def end(self) -> None:
        """End every stream now (the server is draining: a stream would hold it open)."""
        with self._lock:
            self._ending = True
            subscribers = [s for tenant in self._tenants.values() for s in tenant.subscribers]
        for subscriber in subscribers:
            subscriber.ended = True
            subscriber.loop.call_soon_threadsafe(_nudge, subscriber.queue)

    def watching(self, client_id: UUID) -> int:
        with self._lock:
            tenant = self._tenants.get(client_id)
            return 0 if tenant is None else len(tenant.subscribers)


def _nudge(queue: asyncio.Queue[int]) -> None:
    """Coalesce: one pending 'changed' is enough, however many batches arrived."""
    if queue.empty():
        queue.put_nowait(1)


def _event(name: str, data: Document) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _events(
    streams: TenantStreams, subscriber: _Subscriber, request: Request
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_SECONDS
    try:
        yield b"retry: 2000\n\n" + _event("ready", {})
        while loop.time() < ends and not subscriber.ended:
            try:
                await asyncio.wait_for(subscriber.queue.get(), TICK_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield _event("tick", {})
                continue
            if not subscriber.ended:
                yield _event("changed", {})
    finally:
        streams.close(subscriber)


def stream_routes(
    streams: TenantStreams, guard: Sequence[Middleware], limiter: RateLimiter
) -> list[Route]:
    """`GET /api/stream/` (and without the slash): token-authenticated and rate limited like
    the API, but left out of the OpenAPI document, whose generated clients expect an end."""

    async def stream(request: Request) -> Response:
        principal = principal_of(request.scope)
        await limiter.admit_on_loop(request.scope, principal.token_key)
        subscriber = await run_in_threadpool(
            streams.open, principal.client_id, asyncio.get_running_loop()
        )
        return StreamingResponse(
            _events(streams, subscriber, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return [
        Route(path, stream, methods=["GET"], include_in_schema=False, middleware=list(guard))
        for path in ("/api/stream/", "/api/stream")
    ]
