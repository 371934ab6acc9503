"""Per-token request limits in fixed windows, shared exactly by every replica through the
database (a `Counter`; the composition root gives the SQL one).

A request is admitted only on a slot of its token's window taken in the database, so
replicas together never admit more than the limit. Far from the limit a replica takes
slots a block at a time and admits from them in memory (one round trip per block); in the
last 10% of the limit the database hands out one slot a request, so there the verdict is
the database's, exact across replicas. Slots a replica took and left unused for
`interval` are given back by a background thread (and at shutdown); a crash forfeits them
until the window ends, which can only refuse early, never admit too much.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import TooManyRequests
from domain.errors import ConfigurationError
from domain.ports import Clock

log = logging.getLogger("robson.rate_limit")

RATE_KEY = "robson.rate_limit"
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    count: int
    window: str  # second, minute, hour or day

    @property
    def seconds(self) -> int:
        return WINDOWS[self.window]

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`1000/hour`, `5/minute`, ... (ROBSON_RATE_LIMIT)."""
        match = _LIMIT.match(text)
        if match is None or int(match.group(1)) < 1:
            raise ConfigurationError(
                f"ROBSON_RATE_LIMIT must look like 1000/hour (per second|minute|hour|day), "
                f"not {text!r}"
            )
        return cls(int(match.group(1)), match.group(2).lower())


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    retry_after: int  # seconds until then

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


Claim = tuple[str, int, int]  # bucket, window start, slots wanted (or given back)


class Counter(Protocol):
    def claim(self, claims: Sequence[Claim], limit: int, bulk: int) -> list[tuple[int, int]]:
        """Take up to `wanted` slots of each bucket's window in one atomic exchange (each
        bucket at most once): while fewer than `bulk` are taken a claim gets what it wants
        up to `bulk`, then one slot at a time up to `limit`. Returns each bucket's slots
        taken in all and granted to this claim (none for a window older than the stored
        one)."""
        ...

    def give_back(self, unused: Sequence[Claim]) -> None:
        """Return slots taken and not used, to the window they were taken in."""
        ...


@dataclass
class _Tally:
    """One token's current window, as this replica knows it."""

    window: int
    taken: int = 0  # slots taken in the database, every replica's, at the last claim
    held: int = 0  # slots this replica took and has not used yet
    last_hit: float = 0.0  # monotonic time


class RateLimiter:
    def __init__(
        self,
        limit: RateLimit,
        counter: Counter,
        clock: Clock,
        interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.counter = counter
        self.clock = clock
        self.interval = interval
        self.monotonic = monotonic
        # The last 10% of the limit is handed out one slot a request; before it, blocks.
        self.bulk = limit.count - max(1, limit.count // 10)
        self.block = max(1, limit.count // 20)
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def hit(self, bucket: str) -> Verdict:
        """Count one hit (blocking when it claims slots in the database)."""
        now, tally, verdict = self._from_held(bucket)
        if verdict is not None:
            return verdict
        return self._claimed(now, bucket, tally)

    async def hit_on_loop(self, bucket: str) -> Verdict:
        """Count one hit from the event loop: in memory, or in a worker thread when it
        claims slots in the database."""
        now, tally, verdict = self._from_held(bucket)
        if verdict is not None:
            return verdict
        return await run_in_threadpool(self._claimed, now, bucket, tally)

    def _from_held(self, bucket: str) -> tuple[float, _Tally, Verdict | None]:
        """Admit on a slot this replica holds, if it holds one."""
        now = self.clock.now().timestamp()
        start = int(now) // self.limit.seconds * self.limit.seconds
        with self._lock:
            tally = self._tallies.get(bucket)
            if tally is None or tally.window != start:
                tally = self._tallies[bucket] = _Tally(start)
            tally.last_hit = self.monotonic()
            if tally.held == 0:
                return now, tally, None
            tally.held -= 1
            return now, tally, self._verdict(now, tally, admitted=True)

    def _claimed(self, now: float, bucket: str, tally: _Tally) -> Verdict:
        """Claim a block (one slot near the limit) for this hit and the next ones."""
        ((taken, granted),) = self.counter.claim(
            [(bucket, tally.window, self.block)], self.limit.count, self.bulk
        )
        with self._lock:
            tally.taken = max(tally.taken, taken)  # concurrent claims may answer late
            tally.held += max(granted - 1, 0)
            return self._verdict(now, tally, admitted=granted > 0)

    def _verdict(self, now: float, tally: _Tally, *, admitted: bool) -> Verdict:
        reset = tally.window + self.limit.seconds
        # Slots nobody has taken yet, plus this replica's own unused ones.
        remaining = max(self.limit.count - tally.taken, 0) + tally.held if admitted else -1
        return Verdict(
            limit=self.limit.count,
            remaining=remaining,
            reset=reset,
            retry_after=max(1, reset - int(now)),
        )

    def admit(self, scope: Scope, bucket: str) -> None:
        """Count the request against its token (blocking); refuse it over the limit.

        Runs in the request's worker thread, just before its handler. The verdict goes into
        the scope for `RateLimitHeaders`.
        """
        self._decide(scope, self.hit(bucket))

    async def admit_on_loop(self, scope: Scope, bucket: str) -> None:
        """`admit` for a handler that runs on the event loop."""
        self._decide(scope, await self.hit_on_loop(bucket))

    def _decide(self, scope: Scope, verdict: Verdict) -> None:
        scope[RATE_KEY] = verdict
        if verdict.exceeded:
            raise TooManyRequests(verdict.limit, self.limit.window, verdict.retry_after)

    def flush(self, *, everything: bool = False) -> None:
        """Give back the slots of tokens idle for `interval` (`everything`: all held);
        forget windows that are over (their slots lapse with them)."""
        now = self.clock.now().timestamp()
        idle_since = self.monotonic() - self.interval
        unused: list[Claim] = []
        with self._lock:
            for bucket, tally in list(self._tallies.items()):
                if tally.window + self.limit.seconds <= now:
                    del self._tallies[bucket]
                elif tally.held and (everything or tally.last_hit <= idle_since):
                    unused.append((bucket, tally.window, tally.held))
                    tally.held = 0
        if unused:
            self.counter.give_back(unused)

    def start(self) -> None:
        """Give back idle slots twice every `interval` in a background thread until
        `close`."""
        self._flusher = threading.Thread(target=self._flush_until_stopped, daemon=True)
        self._flusher.start()

    def _flush_until_stopped(self) -> None:
        while not self._stopping.wait(self.interval / 2):
            try:
                self.flush()
            except Exception:  # they lapse with the window; the service keeps serving
                log.warning("could not give back unused rate-limit slots", exc_info=True)

    def close(self) -> None:
        """Stop the flusher and give back every slot still held."""
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        try:
            self.flush(everything=True)
        except Exception:
            log.warning("unused rate-limit slots not given back at shutdown", exc_info=True)


class RateLimitHeaders:
    """App middleware: every response to a counted request carries X-RateLimit-* headers,
    error replies included (they are rendered outside the route)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict = scope.get(RATE_KEY)
                if isinstance(verdict, Verdict):
                    message["headers"] = [*message.get("headers", []), *verdict.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
