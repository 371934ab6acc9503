"""What a worker has done since it started: counters for logs, tests and /metrics."""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Literal

Counter = Literal[
    "ticks",
    "prices_fetched",
    "stops_adjusted",
    "stop_losses",
    "take_profits",
    "exits_sent",
    "exits_pending",
    "reconciled",
    "proposals_expired",
    "drawdown_alerts",
    "drawdown_pauses",
    "lost_races",
    "errors",
]

# Seconds from the tick that saw a stop crossed to the exchange's answer to its exit.
EXIT_LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class WorkerMetrics:
    """Counters only ever grow; `positions_watched`, `last_tick_ms` and `exits_waiting` are
    gauges; the exit latency is a histogram."""

    ticks: int = 0
    prices_fetched: int = 0
    stops_adjusted: int = 0
    stop_losses: int = 0
    take_profits: int = 0
    exits_sent: int = 0  # exits the exchange answered (or left unclear), protective ones
    exits_pending: int = 0  # sent, outcome not yet known: reconciliation settles them
    reconciled: int = 0
    proposals_expired: int = 0  # chat proposals left unconfirmed, their risk released
    drawdown_alerts: int = 0  # 2% and 3% alerts recorded from the month's loss, open included
    drawdown_pauses: int = 0
    lost_races: int = 0  # another worker (or a trader) acted on the position first
    errors: int = 0
    positions_watched: int = 0
    last_tick_ms: float = 0.0
    exits_waiting: int = 0  # exits due and submitted, their answer not yet in
    exit_latency_counts: list[int] = field(
        default_factory=lambda: [0] * (len(EXIT_LATENCY_BUCKETS) + 1)
    )
    exit_latency_sum: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: Counter, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def waiting(self, change: int) -> None:
        with self._lock:
            self.exits_waiting += change

    def exit_answered(self, seconds: float) -> None:
        """One exit's answer came `seconds` after the tick that saw its trigger."""
        with self._lock:
            self.exit_latency_counts[bisect_left(EXIT_LATENCY_BUCKETS, seconds)] += 1
            self.exit_latency_sum += seconds

    def prometheus(self) -> str:
        """The worker's series in the Prometheus text exposition format."""
        with self._lock:
            counts = list(self.exit_latency_counts)
            lines = [
                "# HELP robson_worker_exits_sent_total Protective exits sent by the worker.",
                "# TYPE robson_worker_exits_sent_total counter",
                f"robson_worker_exits_sent_total {self.exits_sent}",
                "# HELP robson_worker_exits_waiting Exits due whose exchange answer is not in.",
                "# TYPE robson_worker_exits_waiting gauge",
                f"robson_worker_exits_waiting {self.exits_waiting}",
                "# HELP robson_worker_exit_latency_seconds From the tick that saw a stop or "
                "target crossed to the exchange's answer to its exit.",
                "# TYPE robson_worker_exit_latency_seconds histogram",
            ]
            total = self.exit_latency_sum
        cumulative = 0
        for bound, count in zip((*EXIT_LATENCY_BUCKETS, float("inf")), counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'robson_worker_exit_latency_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"robson_worker_exit_latency_seconds_sum {total}")
        lines.append(f"robson_worker_exit_latency_seconds_count {cumulative}")
        return "\n".join(lines) + "\n"
