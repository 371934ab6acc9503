"""The Binance adapter's throttle against the limits exchangeInfo publishes: entries wait out
an order-count window they are near; a window too long to wait on is refused instead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import RateLimited
from infra.binance.limits import OrderLimit, Throttle, parse_limits
from infra.clock import ManualClock

# The shape of exchangeInfo's rateLimits (enums.md "Rate limiters (rateLimitType)").
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def throttle(sleeps: list[float]) -> Throttle:
    limits = Throttle(1200, 0.8, sleeps.append, ManualClock(datetime(2026, 3, 2, tzinfo=UTC)))
    limits.adopt(*parse_limits(RATE_LIMITS))
    return limits


def test_exchange_info_gives_the_weight_per_minute_and_every_orders_limit() -> None:
    assert parse_limits(RATE_LIMITS) == (
        6000,
        [
            OrderLimit("X-MBX-ORDER-COUNT-10S", 10, 100),
            OrderLimit("X-MBX-ORDER-COUNT-1D", 86400, 200000),
        ],
    )


def test_an_order_near_the_ten_second_count_waits_for_that_window_only() -> None:
    sleeps: list[float] = []
    limits = throttle(sleeps)
    limits.observe({"X-MBX-ORDER-COUNT-10S": "80", "X-MBX-USED-WEIGHT-1M": "100"}, "alice")

    limits.yield_near_limits(api_key="alice", places_order=False)  # a read: not an order
    limits.yield_near_limits(api_key="bob", places_order=True)  # another account's count
    assert sleeps == []
    limits.yield_near_limits(api_key="alice", places_order=True)
    assert sleeps == [10]
    assert limits.weight_limit == 6000


def test_an_order_near_the_daily_count_is_refused_rather_than_waited_for() -> None:
    sleeps: list[float] = []
    limits = throttle(sleeps)
    limits.observe({"X-MBX-ORDER-COUNT-1D": "160000"}, "alice")

    with pytest.raises(RateLimited, match="exits still go out"):
        limits.yield_near_limits(api_key="alice", places_order=True)
    assert sleeps == []
