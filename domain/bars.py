"""Historical bars (klines) as a replay reads them, and their times: milliseconds since the
epoch, turned into UTC instants exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal


@dataclass(slots=True)
class Bar:
    """One kline: its open time (milliseconds since the epoch, UTC) and its prices.

    Not frozen: a frozen dataclass is built four times slower, and a year of one-minute
    bars is half a million of them. Nothing keeps or changes a bar once it is stepped."""

    opened_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def moment(ms: int) -> datetime:
    """Milliseconds since the epoch as a UTC time, exactly (no float on the way)."""
    return EPOCH + timedelta(milliseconds=ms)
