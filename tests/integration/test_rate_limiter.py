"""The rate limiter counts in memory and shares through the database (SQLite and
PostgreSQL): exact near the limit, shared between replicas within one flush interval, and
every token's hits handed over in one round trip."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from api.rate_limit import Hits, RateLimit, RateLimiter
from infra.bootstrap import projection_database
from infra.clock import ManualClock
from infra.rate_counts import SQLITE_ROWS_PER_STATEMENT, SqlCounter
from infra.settings import Settings
from projections.database import ProjectionDatabase
from projections.tables import Dialect


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingCounter:
    """The real counter, with the number of database round trips it made."""

    def __init__(self, counter: SqlCounter) -> None:
        self.counter = counter
        self.calls = 0

    def add(self, hits: Sequence[Hits]) -> list[int]:
        self.calls += 1
        return self.counter.add(hits)


@pytest.fixture
def counter(settings: Settings) -> Iterator[CountingCounter]:
    real = SqlCounter(projection_database(settings, durable=False))
    yield CountingCounter(real)
    real.close()


def limiter(counter: CountingCounter, clock: ManualClock, ticks: Ticks, count: int) -> RateLimiter:
    return RateLimiter(RateLimit(count, "hour"), counter, clock, interval=1.0, monotonic=ticks)


def test_far_from_the_limit_hits_are_counted_in_memory(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 1000)
    remaining = [replica.hit("alice").remaining for _ in range(100)]
    assert remaining == list(range(999, 899, -1))
    assert counter.calls == 1  # the window's first hit asks the database


def test_near_the_limit_every_hit_is_counted_in_the_database(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 20)  # the last 2 of 20 are exact
    verdicts = [replica.hit("alice") for _ in range(21)]
    assert [v.exceeded for v in verdicts] == [False] * 20 + [True]
    assert counter.calls == 1 + 3  # the first hit, then the 19th, 20th and 21st


def test_a_flush_hands_pending_hits_to_the_database(
    counter: CountingCounter, clock: ManualClock
) -> None:
    first = limiter(counter, clock, Ticks(), 1000)
    for _ in range(7):
        first.hit("alice")
    first.flush()
    restarted = limiter(counter, clock, Ticks(), 1000)
    assert restarted.hit("alice").remaining == 1000 - 8


def test_a_flush_hands_every_tokens_hits_over_in_one_round_trip(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 1000)
    tokens = [f"token-{n}" for n in range(25)]
    for n, token in enumerate(tokens):
        for _ in range(n + 1):
            replica.hit(token)
    calls = counter.calls
    replica.flush()
    assert counter.calls == calls + 1
    restarted = limiter(counter, clock, Ticks(), 1000)
    for n, token in enumerate(tokens):
        assert restarted.hit(token).remaining == 1000 - (n + 1) - 1


def test_a_busy_tokens_hits_stay_in_memory_between_flushes(
    counter: CountingCounter, clock: ManualClock
) -> None:
    ticks = Ticks()
    replica = limiter(counter, clock, ticks, 1000)
    replica.hit("alice")  # the window's first hit asks the database
    calls = counter.calls
    for _ in range(6):  # three intervals, flushed twice in each, as the flusher does
        for _ in range(10):
            replica.hit("alice")
        ticks.now += 0.5
        replica.flush()
    assert counter.calls == calls + 6  # the flushes alone
    assert replica.hit("alice").remaining == 1000 - 62


def test_replicas_see_each_others_hits_after_an_interval(
    counter: CountingCounter, clock: ManualClock
) -> None:
    ticks = Ticks()
    a, b = limiter(counter, clock, ticks, 100), limiter(counter, clock, ticks, 100)
    for _ in range(30):
        a.hit("alice")
    for _ in range(30):
        b.hit("alice")
    a.flush()
    ticks.now += 1.0  # b's count is a flush interval old: its next hit asks the database
    assert b.hit("alice").remaining == 100 - 61
    b.flush()
    ticks.now += 1.0
    assert a.hit("alice").remaining == 100 - 62


def test_two_replicas_together_stop_at_the_limit_once_near_it(
    counter: CountingCounter, clock: ManualClock
) -> None:
    ticks = Ticks()
    a, b = limiter(counter, clock, ticks, 50), limiter(counter, clock, ticks, 50)
    admitted = 0
    for n in range(80):
        replica = a if n % 2 else b
        admitted += not replica.hit("alice").exceeded
        if n % 10 == 9:  # the background flush, every interval
            a.flush()
            b.flush()
            ticks.now += 1.0
    assert admitted == 50


def test_a_new_window_starts_afresh_and_old_windows_are_forgotten(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 3)
    assert [replica.hit("alice").exceeded for _ in range(4)] == [False] * 3 + [True]
    clock.advance(timedelta(hours=1))
    replica.flush()
    assert not replica._tallies  # the finished window is dropped
    assert replica.hit("alice").remaining == 2


def test_late_hits_of_a_past_window_do_not_count_in_the_next(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = int(clock.now().timestamp()) // 3600 * 3600
    assert counter.add([("alice", start + 3600, 5)]) == [5]
    assert counter.add([("alice", start, 40)]) == [5]


def test_many_tokens_are_counted_in_one_call_each_in_order(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = int(clock.now().timestamp()) // 3600 * 3600
    buckets = [f"token-{n}" for n in range(SQLITE_ROWS_PER_STATEMENT + 50)]
    assert counter.add([(b, start, n) for n, b in enumerate(buckets)]) == list(range(len(buckets)))
    again = counter.add([(b, start, 1) for b in reversed(buckets)])
    assert again == [n + 1 for n in reversed(range(len(buckets)))]
    assert counter.add([]) == []


def test_replicas_flushing_the_same_tokens_at_once_count_every_hit(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = int(clock.now().timestamp()) // 3600 * 3600
    buckets = [f"token-{n}" for n in range(200)]
    rounds = 30

    def replica(order: list[str]) -> None:
        for _ in range(rounds):
            counter.add([(b, start, 1) for b in order])

    with ThreadPoolExecutor(2) as pool:  # one replica lists the tokens the other way round
        for done in [pool.submit(replica, buckets), pool.submit(replica, buckets[::-1])]:
            done.result()
    assert counter.add([(b, start, 0) for b in buckets]) == [2 * rounds] * len(buckets)


def test_counts_commit_without_waiting_for_the_disk_and_read_models_do(
    counter: CountingCounter, settings: Settings
) -> None:
    def commit_mode(database: ProjectionDatabase) -> str:
        with database.session() as session:
            if database.dialect is Dialect.POSTGRES:
                return str(session.execute("SHOW synchronous_commit")[0][0])
            return {1: "normal", 2: "full"}[session.execute("PRAGMA synchronous")[0][0]]

    durable = projection_database(settings)
    try:
        assert commit_mode(counter.counter.database) in ("off", "normal")
        assert commit_mode(durable) in ("on", "full")
    finally:
        durable.close()
