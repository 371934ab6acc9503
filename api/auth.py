"""Bearer tokens: who is calling, remembered for a few seconds so a request rarely replays
the Client aggregate. A revoked token or a deactivated client is refused within `ttl`."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import Unauthorized
from domain.ledger import Ledger

DEFAULT_TTL_SECONDS = 5.0
PRINCIPAL_KEY = "robson.principal"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Principal:
    """The authenticated tenant, as much of it as a request needs."""

    client_id: UUID
    email: str
    name: str
    is_operator: bool
    has_credentials: bool
    token_key: str  # SHA-256 of the token: names it in rate limits, never reveals it


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenCache:
    """Token hash -> Principal for `ttl` seconds (monotonic), bounded in size.

    Only successes are cached, so a new token works at once; a revoke or deactivation
    takes effect when the entry expires.
    """

    def __init__(
        self,
        ledger: Ledger,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self.max_entries = max_entries
        self.monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, principal = entry
            if expires <= self.monotonic():
                del self._entries[key]
                return None
            return principal

    def resolve(self, token: str) -> Principal:
        """Authenticate against the store (blocking) and remember the answer."""
        key = token_key(token)
        client = self.ledger.authenticate(token)
        has_credentials = client.has_credentials or (
            client.is_operator and self.ledger.config.operator_credentials is not None
        )
        principal = Principal(
            client.id, client.email, client.name, client.is_operator, has_credentials, key
        )
        if self.ttl > 0:
            with self._lock:
                self._entries[key] = (self.monotonic() + self.ttl, principal)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


def bearer_token(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = bytes(value).decode("latin-1")
            scheme, _, token = header.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token and len(token) <= MAX_TOKEN_LENGTH:
                return token
            break
    raise Unauthorized("Invalid or missing token")


class Authenticate:
    """Route middleware: refuses the request (401) unless a valid bearer token comes with it."""

    def __init__(self, app: ASGIApp, tokens: TokenCache) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(scope)
        principal = self.tokens.cached(token_key(token))
        if principal is None:
            principal = await run_in_threadpool(self.tokens.resolve, token)
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    """Who the authentication middleware found for this request (streams read it)."""
    principal = scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise Unauthorized("Invalid or missing token")
    return principal
