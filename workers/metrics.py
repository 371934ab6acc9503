"""What a worker has done since it started: counters for logs, tests and /metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

Counter = Literal[
    "ticks",
    "prices_fetched",
    "stops_adjusted",
    "stop_losses",
    "take_profits",
    "exits_pending",
    "reconciled",
    "proposals_expired",
    "drawdown_alerts",
    "drawdown_pauses",
    "lost_races",
    "errors",
]


@dataclass
class WorkerMetrics:
    """Counters only ever grow; `positions_watched` and `last_tick_ms` are gauges."""

    ticks: int = 0
    prices_fetched: int = 0
    stops_adjusted: int = 0
    stop_losses: int = 0
    take_profits: int = 0
    exits_pending: int = 0  # sent, outcome not yet known: reconciliation settles them
    reconciled: int = 0
    proposals_expired: int = 0  # chat proposals left unconfirmed, their risk released
    drawdown_alerts: int = 0  # 2% and 3% alerts recorded from the month's loss, open included
    drawdown_pauses: int = 0
    lost_races: int = 0  # another worker (or a trader) acted on the position first
    errors: int = 0
    positions_watched: int = 0
    last_tick_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: Counter, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)
