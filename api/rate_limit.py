"""Per-token request limits in fixed windows, counted in memory and shared through the
database (a `Counter`; the composition root gives the SQL one).

Each replica counts hits in memory. A background flush adds every token's new hits to the
shared counts in one statement, twice every `interval` seconds, and takes each token's
total back, so a busy token's requests are counted in memory alone and replicas see each
other's hits within `interval`. A token's first request in a window, its first after being
idle for `interval`, and every request once it nears its limit, go to the database at once,
so the limit holds exactly where it matters. Counters survive restarts (the lifespan
flushes on shutdown); a crash forgets at most `interval` of hits.
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
Hits = tuple[str, int, int]  # bucket, window start (epoch seconds), hits to add
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


class Counter(Protocol):
    def add(self, hits: Sequence[Hits]) -> list[int]:
        """Add each (bucket, window start, hits) to the shared counts in one exchange;
        returns each bucket's count (of the newer window, when the stored one is newer:
        late hits of a past window are dropped)."""
        ...


@dataclass
class _Tally:
    """One token's current window, as this replica knows it."""

    window: int
    shared: int = 0  # the database's count at the last exchange
    pending: int = 0  # counted here since, not yet added to the database
    sending: int = 0  # on their way to the database
    synced: float | None = None  # monotonic time of the last exchange


@dataclass(frozen=True)
class _Count:
    """One hit as counted in memory; `delta`: hits to add to the database now, if any."""

    now: float
    tally: _Tally
    hits: int
    delta: int | None


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
        # Within this many hits of the limit, every hit is counted in the database.
        self.margin = max(1, limit.count // 10)
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def hit(self, bucket: str) -> Verdict:
        """Count one hit (blocking when it goes to the database)."""
        count = self._count(bucket)
        if count.delta is None:
            return self._verdict(count, count.hits)
        (hits,) = self._exchange([(bucket, count.tally, count.delta)])
        return self._verdict(count, hits)

    async def hit_on_loop(self, bucket: str) -> Verdict:
        """Count one hit from the event loop: in memory, or in a worker thread when it goes
        to the database."""
        count = self._count(bucket)
        if count.delta is None:
            return self._verdict(count, count.hits)
        (hits,) = await run_in_threadpool(self._exchange, [(bucket, count.tally, count.delta)])
        return self._verdict(count, hits)

    def _verdict(self, count: _Count, hits: int) -> Verdict:
        reset = count.tally.window + self.limit.seconds
        return Verdict(
            limit=self.limit.count,
            remaining=self.limit.count - hits,
            reset=reset,
            retry_after=max(1, reset - int(count.now)),
        )

    def _count(self, bucket: str) -> _Count:
        now = self.clock.now().timestamp()
        start = int(now) // self.limit.seconds * self.limit.seconds
        with self._lock:
            tally = self._tallies.get(bucket)
            if tally is None or tally.window != start:
                tally = self._tallies[bucket] = _Tally(start)
            tally.pending += 1
            hits = tally.shared + tally.sending + tally.pending
            if not (
                tally.synced is None
                or hits > self.limit.count - self.margin
                or self.monotonic() - tally.synced >= self.interval
            ):
                return _Count(now, tally, hits, None)
            delta, tally.pending = tally.pending, 0
            tally.sending += delta
            return _Count(now, tally, hits, delta)

    def _exchange(self, batch: Sequence[tuple[str, _Tally, int]]) -> list[int]:
        """Add each tally's `delta` hits to the database in one exchange; returns each one's
        count: the database's answer (a concurrent exchange's larger answer counts hits
        after this one, and hits still on their way were counted after it) plus what is
        pending here."""
        try:
            totals = self.counter.add([(bucket, t.window, delta) for bucket, t, delta in batch])
        except BaseException:
            with self._lock:
                for _, tally, delta in batch:
                    tally.sending -= delta
                    tally.pending += delta  # counted next time
            raise
        with self._lock:
            synced = self.monotonic()
            counts = []
            for (_, tally, delta), total in zip(batch, totals, strict=True):
                tally.sending -= delta
                tally.shared = max(tally.shared, total)  # concurrent exchanges may return late
                tally.synced = synced
                counts.append(total + tally.pending)
            return counts

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

    def flush(self) -> None:
        """Add every pending hit to the database; forget windows that are over."""
        now = self.clock.now().timestamp()
        with self._lock:
            for bucket, tally in list(self._tallies.items()):
                if tally.pending == 0 and tally.window + self.limit.seconds <= now:
                    del self._tallies[bucket]
            batch = [(b, t, t.pending) for b, t in self._tallies.items() if t.pending]
            for _, tally, delta in batch:
                tally.pending = 0
                tally.sending += delta
        if batch:
            self._exchange(batch)

    def start(self) -> None:
        """Flush twice every `interval` in a background thread until `close`: a busy
        token's count is never an interval old, so its hits stay in memory."""
        self._flusher = threading.Thread(target=self._flush_until_stopped, daemon=True)
        self._flusher.start()

    def _flush_until_stopped(self) -> None:
        while not self._stopping.wait(self.interval / 2):
            try:
                self.flush()
            except Exception:  # the next flush or hit adds them; the service keeps serving
                log.warning("could not flush rate-limit counts", exc_info=True)

    def close(self) -> None:
        """Stop the flusher and hand the last hits to the database."""
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.warning("rate-limit counts not flushed at shutdown", exc_info=True)


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
