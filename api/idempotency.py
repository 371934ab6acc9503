"""The `Idempotency-Key` request header of the order-placing POSTs: a client that retries
with the same key gets the first request's reply instead of a second order.

Semantics follow the IETF draft "The Idempotency-Key HTTP Header Field" (a key reused with
another payload is a 422, a retry while the first is outstanding a 409) and Stripe's
practice (a reply is kept once the request began processing, 4xx included; a request that
never began, or may be retried safely, keeps nothing). Keys are per tenant and live in the
database (`KeyStore`, implemented by infra) for at least `TTL`, so replicas share them.

A request that ends without a known outcome (a 5xx, the exchange's 429, a lost race) after
it named a position may have placed an order: its key is spent, marked `UNKNOWN`, and a
retry is told so (409, with the position) rather than given a reply that could be false or
a second order. One that ended before naming any position placed nothing: its key is freed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from api.errors import POSITION_KEY, status_of
from domain.errors import AlreadyExists, ConcurrencyConflict, InvalidInput
from domain.ports import Clock

log = logging.getLogger("robson.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"  # on a stored reply sent again (Stripe's name)
TTL = timedelta(hours=24)
PURGE_EVERY = timedelta(minutes=10)
STALE = timedelta(minutes=5)  # longer than any request runs: its process may have died
MAX_LENGTH = 255
# Printable ASCII; no space at either end (HTTP strips it from a field value anyway).
KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
_NOT_STORED = ("content-length",)  # recomputed for the replayed body


class State(Enum):
    PENDING = "pending"  # claimed, the request still running (or its process died)
    DONE = "done"  # the reply is stored
    UNKNOWN = "unknown"  # ended without a known outcome after naming a position


@dataclass(frozen=True)
class StoredReply:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class KeyRecord:
    fingerprint: str
    state: State
    reply: StoredReply | None = None
    position_id: str | None = None
    claimed_at: datetime | None = None


class KeyStore(Protocol):
    """The shared table of keys. `claim` is the one atomic decision: of any number of
    concurrent claims of one (tenant, key), exactly one wins."""

    def claim(
        self, tenant: str, key: str, fingerprint: str, now: datetime, expired: datetime
    ) -> bool:
        """Record (tenant, key) as PENDING unless a record made at or after `expired`
        holds it (an older one is taken over); True: this call won."""
        ...

    def find(self, tenant: str, key: str, expired: datetime) -> KeyRecord | None:
        """The live record of (tenant, key) (made at or after `expired`), if any."""
        ...

    def finish(self, tenant: str, key: str, reply: StoredReply) -> None: ...

    def interrupt(self, tenant: str, key: str, position_id: str) -> None:
        """Mark the pending record UNKNOWN: its outcome may include an order."""
        ...

    def release(self, tenant: str, key: str) -> None:
        """Forget the pending record: its request placed nothing."""
        ...

    def purge(self, expired: datetime) -> int:
        """Delete every record made before `expired`; returns how many."""
        ...


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            HEADER, "was already used for a request with another body or path; use a new key"
        )


class KeyInProgress(AlreadyExists):
    code = "idempotency_key_in_progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still in progress; retry once it ends"
        )


class KeyOutcomeUnknown(AlreadyExists):
    code = "idempotency_key_outcome_unknown"

    def __init__(self) -> None:
        super().__init__(
            "The request first sent with this Idempotency-Key ended before its outcome was "
            "known and may have placed an order: see the position; use a new key to try again"
        )


def idempotency_key(request: Request) -> str | None:
    """The request's key (None: it sent none), or a 422 naming the header."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(HEADER, "must be sent at most once")
    if not _KEY.match(values[0]):
        raise InvalidInput(HEADER, f"must be 1 to {MAX_LENGTH} printable ASCII characters")
    return values[0]


def fingerprint(request: Request, body: BaseModel) -> str:
    """What a retry must repeat: the method, the path (trailing slash aside) and the parsed
    body (so key order, spacing and defaults spelled out do not matter)."""
    payload = {
        "method": request.method,
        "path": request.url.path.rstrip("/"),
        "body": body.model_dump(mode="json"),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _transient(error: Exception) -> bool:
    """An end without a final answer: the outcome is unknown or a retry may succeed."""
    status = status_of(error)
    return status >= 500 or status == 429 or isinstance(error, ConcurrencyConflict)


def _render(request: Request, error: Exception) -> Response | None:
    """The reply the app's own exception table gives `error` (None: it has no sync one)."""
    handlers: Mapping[object, Callable[[Request, Exception], object]]
    handlers = request.app.exception_handlers  # Starlette's app is untyped on a request
    for cls in type(error).__mro__:
        if cls in handlers:
            response = handlers[cls](request, error)
            return response if isinstance(response, Response) else None
    return None


def replay(reply: StoredReply) -> Response:
    response = Response(reply.body, reply.status)
    response.raw_headers = [
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers),
        (b"content-length", str(len(reply.body)).encode()),
        (REPLAYED.lower().encode(), b"true"),
    ]
    return response


def stored(response: Response) -> StoredReply | None:
    if not isinstance(response.body, bytes):  # a streamed reply: nothing to keep
        return None
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in response.raw_headers
        if name.decode("latin-1").lower() not in _NOT_STORED
    ]
    return StoredReply(response.status_code, headers, bytes(response.body))


class Idempotency:
    """Runs one order-placing request under its key (if it sent one), in the worker thread."""

    def __init__(self, keys: KeyStore, clock: Clock, ttl: timedelta = TTL) -> None:
        self.keys = keys
        self.clock = clock
        self.ttl = ttl
        self._purged_at: datetime | None = None
        self._lock = threading.Lock()

    def run(
        self, request: Request, tenant: UUID, body: BaseModel, handle: Callable[[], Response]
    ) -> Response:
        key = idempotency_key(request)
        if key is None:
            return handle()
        digest = fingerprint(request, body)
        now = self.clock.now()
        self._purge(now)
        found = self._claim(str(tenant), key, digest, now)
        if found is not None:
            return self._answer(request, found, digest, now)
        return self._execute(request, str(tenant), key, handle)

    def _claim(self, tenant: str, key: str, digest: str, now: datetime) -> KeyRecord | None:
        """None: this request won the key. Else the record that holds it (a record freed
        between the two statements is claimed again)."""
        expired = now - self.ttl
        for _ in range(3):
            if self.keys.claim(tenant, key, digest, now, expired):
                return None
            found = self.keys.find(tenant, key, expired)
            if found is not None:
                return found
        raise KeyInProgress()  # freed and taken again each time: another request holds it

    def _answer(self, request: Request, found: KeyRecord, digest: str, now: datetime) -> Response:
        if found.fingerprint != digest:
            raise KeyReused()
        stale = found.claimed_at is not None and now - found.claimed_at > STALE
        if found.state is State.PENDING and not stale:
            raise KeyInProgress()
        if found.state is State.UNKNOWN or found.reply is None:
            if found.position_id is not None:
                request.scope[POSITION_KEY] = UUID(found.position_id)
            raise KeyOutcomeUnknown()
        return replay(found.reply)

    def _execute(
        self, request: Request, tenant: str, key: str, handle: Callable[[], Response]
    ) -> Response:
        try:
            response = handle()
        except Exception as error:
            rendered = None if _transient(error) else _render(request, error)
            if rendered is None:
                self._abandon(request, tenant, key)
                raise
            response = rendered
        reply = stored(response)
        try:
            if reply is None:
                self._abandon(request, tenant, key)
            else:
                self.keys.finish(tenant, key, reply)
        except Exception:  # the reply is true: send it; the key stays pending (never reused)
            log.warning("could not store the reply for an idempotency key", exc_info=True)
        return response

    def _abandon(self, request: Request, tenant: str, key: str) -> None:
        position = request.scope.get(POSITION_KEY)
        try:
            if position is None:  # no position named: no order could have been sent
                self.keys.release(tenant, key)
            else:
                self.keys.interrupt(tenant, key, str(position))
        except Exception:  # the key stays pending, which never allows a second order
            log.warning("could not settle an idempotency key", exc_info=True)

    def _purge(self, now: datetime) -> None:
        with self._lock:
            due = self._purged_at is None or now - self._purged_at >= PURGE_EVERY
            if due:
                self._purged_at = now
        if due:
            self.keys.purge(now - self.ttl)
