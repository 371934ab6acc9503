"""The rate limiter admits only on slots taken in the database (SQLite and PostgreSQL):
blocks of them far from the limit, one a request in its last 10%, so replicas together
never admit more than the limit and admit all of it; unused slots are given back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from api.rate_limit import Claim, RateLimit, RateLimiter
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
    """The real counter, with the number of claims it made."""

    def __init__(self, counter: SqlCounter) -> None:
        self.counter = counter
        self.calls = 0

    def claim(self, claims: Sequence[Claim], limit: int, bulk: int) -> list[tuple[int, int]]:
        self.calls += 1
        return self.counter.claim(claims, limit, bulk)

    def give_back(self, unused: Sequence[Claim]) -> None:
        self.counter.give_back(unused)


@pytest.fixture
def counter(settings: Settings) -> Iterator[CountingCounter]:
    real = SqlCounter(projection_database(settings, durable=False))
    yield CountingCounter(real)
    real.close()


def limiter(counter: CountingCounter, clock: ManualClock, ticks: Ticks, count: int) -> RateLimiter:
    return RateLimiter(RateLimit(count, "hour"), counter, clock, interval=1.0, monotonic=ticks)


def window(clock: ManualClock) -> int:
    return int(clock.now().timestamp()) // 3600 * 3600


def test_far_from_the_limit_hits_are_admitted_from_blocks_of_slots_in_memory(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 1000)  # blocks of 50
    remaining = [replica.hit("alice").remaining for _ in range(100)]
    assert remaining == list(range(999, 899, -1))
    assert counter.calls == 2


def test_in_the_last_tenth_every_hit_takes_its_slot_in_the_database(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 40)  # blocks of 2; the last 4 one by one
    verdicts = [replica.hit("alice") for _ in range(42)]
    assert [v.exceeded for v in verdicts] == [False] * 40 + [True] * 2
    assert [v.remaining for v in verdicts[:40]] == list(range(39, -1, -1))
    assert counter.calls == 36 // 2 + 4 + 2


def test_two_replicas_alternating_admit_exactly_the_limit(
    counter: CountingCounter, clock: ManualClock
) -> None:
    """Neither sees the other's hits, yet together they admit 50 of 80: every admission
    is on a slot of the database's."""
    ticks = Ticks()
    a, b = limiter(counter, clock, ticks, 50), limiter(counter, clock, ticks, 50)
    admitted = [not (a if n % 2 else b).hit("alice").exceeded for n in range(80)]
    assert sum(admitted) == 50
    assert not any(admitted[60:])


def test_replicas_claiming_at_once_admit_exactly_the_limit(
    counter: CountingCounter, clock: ManualClock
) -> None:
    ticks = Ticks()
    replicas = [limiter(counter, clock, ticks, 100) for _ in range(2)]

    def requests(replica: RateLimiter) -> int:
        return sum(not replica.hit("alice").exceeded for _ in range(120))

    with ThreadPoolExecutor(4) as pool:
        admitted = sum(pool.map(requests, replicas * 2))
    assert admitted == 100


def test_slots_a_replica_leaves_unused_are_given_back_for_the_others(
    counter: CountingCounter, clock: ManualClock
) -> None:
    ticks = Ticks()
    a, b = limiter(counter, clock, ticks, 100), limiter(counter, clock, ticks, 100)
    a.hit("alice")  # takes a block of 5, uses one
    admitted_by_b = sum(not b.hit("alice").exceeded for _ in range(100))
    assert admitted_by_b == 95  # a's four unused slots are a's
    ticks.now += 1.0
    a.flush()  # idle for an interval: handed back
    assert sum(not b.hit("alice").exceeded for _ in range(10)) == 4


def test_slots_held_at_shutdown_are_given_back(
    counter: CountingCounter, clock: ManualClock
) -> None:
    first = limiter(counter, clock, Ticks(), 1000)
    for _ in range(7):
        first.hit("alice")
    first.close()
    restarted = limiter(counter, clock, Ticks(), 1000)
    assert restarted.hit("alice").remaining == 1000 - 8


def test_a_new_window_starts_afresh_and_old_windows_are_forgotten(
    counter: CountingCounter, clock: ManualClock
) -> None:
    replica = limiter(counter, clock, Ticks(), 3)
    assert [replica.hit("alice").exceeded for _ in range(4)] == [False] * 3 + [True]
    clock.advance(timedelta(hours=1))
    replica.flush()
    assert not replica._tallies  # the finished window is dropped
    assert replica.hit("alice").remaining == 2


def test_a_claim_for_a_past_window_gets_nothing_and_changes_nothing(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = window(clock)
    assert counter.claim([("alice", start + 3600, 5)], 100, 90) == [(5, 5)]
    assert counter.claim([("alice", start, 40)], 100, 90) == [(5, 0)]
    counter.give_back([("alice", start, 3)])
    assert counter.claim([("alice", start + 3600, 1)], 100, 90) == [(6, 1)]


def test_a_claim_takes_blocks_up_to_the_bulk_then_single_slots_up_to_the_limit(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = window(clock)
    grants = [counter.claim([("alice", start, 4)], 10, 9)[0] for _ in range(5)]
    assert grants == [(4, 4), (8, 4), (9, 1), (10, 1), (10, 0)]


def test_many_tokens_are_claimed_in_one_call_each_in_order(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = window(clock)
    buckets = [f"token-{n}" for n in range(SQLITE_ROWS_PER_STATEMENT + 50)]
    claims = [(b, start, n + 1) for n, b in enumerate(buckets)]
    assert counter.claim(claims, 10_000, 9_000) == [(n + 1, n + 1) for n in range(len(buckets))]
    again = counter.claim([(b, start, 1) for b in reversed(buckets)], 10_000, 9_000)
    assert again == [(n + 2, 1) for n in reversed(range(len(buckets)))]
    assert counter.claim([], 10, 9) == []


def test_replicas_claiming_the_same_tokens_at_once_never_share_a_slot(
    counter: CountingCounter, clock: ManualClock
) -> None:
    start = window(clock)
    buckets = [f"token-{n}" for n in range(200)]
    rounds = 30

    def replica(order: list[str]) -> int:
        return sum(g for _ in range(rounds) for _, g in counter.claim(
            [(b, start, 1) for b in order], 40, 36
        ))  # fmt: skip

    with ThreadPoolExecutor(2) as pool:  # one replica lists the tokens the other way round
        granted = sum(pool.map(replica, [buckets, buckets[::-1]]))
    assert granted == 40 * len(buckets)
    assert counter.claim([(b, start, 1) for b in buckets], 40, 36) == [(40, 0)] * len(buckets)


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
