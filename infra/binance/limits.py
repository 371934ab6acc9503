"""The adapter's own throttle, against the limits exchangeInfo publishes: the REQUEST_WEIGHT
per minute (X-MBX-USED-WEIGHT-1M, per IP) and the ORDERS counts (X-MBX-ORDER-COUNT-*, per
account). Entries and reads yield near a limit; an exit never waits here, so the headroom
they leave is the exits'. Only Binance's own 429/418 Retry-After stops an exit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.errors import RateLimited
from domain.ports import Clock

log = logging.getLogger(__name__)

# enums.md "Rate limiters (rateLimitType)": REQUEST_WEIGHT 6000 per MINUTE since 2023-08-25
# (CHANGELOG.md); used until exchangeInfo has been read.
DEFAULT_WEIGHT_LIMIT = 6000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# enums.md "Rate limit intervals" and rest-api.md "Order Rate Limits": the count header is
# X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter).
_INTERVALS = {"SECOND": ("S", 1), "MINUTE": ("M", 60), "HOUR": ("H", 3600), "DAY": ("D", 86400)}
# An order-count window longer than this is not waited out on a caller's thread.
LONGEST_WAIT_SECONDS = 60


@dataclass(frozen=True)
class OrderLimit:
    """One ORDERS rate limit: at most `limit` new orders per `seconds`, counted in `header`."""

    header: str
    seconds: int
    limit: int


def parse_limits(rows: Iterable[Mapping[str, Any]]) -> tuple[int | None, list[OrderLimit]]:
    """exchangeInfo's `rateLimits`: the REQUEST_WEIGHT per minute, and the ORDERS limits."""
    weight: int | None = None
    orders: list[OrderLimit] = []
    for row in rows:
        kind, interval = str(row["rateLimitType"]), str(row["interval"])
        number, limit = int(row["intervalNum"]), int(row["limit"])
        if kind == "REQUEST_WEIGHT" and (interval, number) == ("MINUTE", 1):
            weight = limit
        elif kind == "ORDERS" and interval in _INTERVALS:
            letter, seconds = _INTERVALS[interval]
            orders.append(
                OrderLimit(f"X-MBX-ORDER-COUNT-{number}{letter}", number * seconds, limit)
            )
    return weight, orders


class Throttle:
    """Used weight and order counts as Binance last reported them, and the limits to keep."""

    def __init__(
        self,
        weight_limit: int,
        fraction: float,
        sleep: Callable[[float], None],
        clock: Clock,
    ) -> None:
        self._fraction = fraction
        self._sleep = sleep
        self._clock = clock
        self._state = threading.Lock()
        self._weight_limit = weight_limit
        self._used_weight: int | None = None
        self._order_limits: list[OrderLimit] = []
        self._order_counts: dict[tuple[str | None, str], int] = {}  # (api key, header)

    @property
    def used_weight(self) -> int | None:
        with self._state:
            return self._used_weight

    @property
    def weight_limit(self) -> int:
        with self._state:
            return self._weight_limit

    def adopt(self, weight_limit: int | None, order_limits: list[OrderLimit]) -> None:
        """The limits exchangeInfo publishes replace the defaults."""
        with self._state:
            if weight_limit is not None:
                self._weight_limit = weight_limit
            self._order_limits = order_limits

    def observe(self, headers: Mapping[str, str], api_key: str | None) -> None:
        """Record the counts an answer reports."""
        with self._state:
            used = _int(headers.get(WEIGHT_HEADER))
            if used is not None:
                self._used_weight = used
            for each in self._order_limits:
                count = _int(headers.get(each.header))
                if count is not None:
                    self._order_counts[(api_key, each.header)] = count

    def yield_near_limits(self, *, api_key: str | None, places_order: bool) -> None:
        """For anything but an exit: wait out the window of a limit it is near (or refuse when
        that window is too long to wait on the caller's thread)."""
        now = self._clock.now()
        with self._state:
            used, throttle_at = self._used_weight, self._at(self._weight_limit)
            near = [
                each
                for each in self._order_limits
                if places_order
                and self._order_counts.get((api_key, each.header), 0) >= self._at(each.limit)
            ]
        if used is not None and used >= throttle_at:
            # Weight windows restart on the minute; the extra second absorbs clock skew.
            self._wait(61 - now.second - now.microsecond / 1_000_000, f"used weight {used}")
            with self._state:
                self._used_weight = None
        for each in near:
            if each.seconds > LONGEST_WAIT_SECONDS:
                raise RateLimited(
                    f"Binance order rate limit: {each.limit} orders per {each.seconds}s is "
                    "nearly used up; new entries wait until it resets (exits still go out)",
                    Decimal(each.seconds),
                )
            self._wait(each.seconds, f"order count {each.header}")
            with self._state:
                self._order_counts.pop((api_key, each.header), None)

    def _at(self, limit: int) -> int:
        return max(1, int(limit * self._fraction))

    def _wait(self, seconds: float, what: str) -> None:
        log.warning("Binance %s near its limit; entries and reads wait %.1fs", what, seconds)
        self._sleep(seconds)


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
