"""Prometheus metrics in the text exposition format: requests by route and status, latency
histograms, orders sent, and (filled in at scrape time) projection lag."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
UNMATCHED = "unmatched"
HISTOGRAM = "robson_http_request_duration_seconds"


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.observations += 1


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")

    return ",".join(f'{name}="{escape(value)}"' for name, value in labels.items())


@runtime_checkable
class MetricsSource(Protocol):
    """A background service with series of its own (the worker's exits), read at scrape time."""

    def prometheus(self) -> str: ...


class Metrics:
    """In-process counters; one instance per app (no globals), safe across threads."""

    def __init__(self, sources: Iterable[MetricsSource] = ()) -> None:
        self._sources = tuple(sources)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self._orders: dict[str, int] = defaultdict(int)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            self._latency[(method, route)].observe(seconds)

    def count_orders(self, kind: str, orders: int = 1) -> None:
        with self._lock:
            self._orders[kind] += orders

    def render(self, gauges: Iterable[tuple[str, str, Mapping[str, str], float]] = ()) -> str:
        """The exposition text; `gauges` are (name, help, labels, value) read at scrape time."""
        lines: list[str] = []
        with self._lock:
            lines += [
                "# HELP robson_http_requests_total HTTP requests by route template and status.",
                "# TYPE robson_http_requests_total counter",
            ]
            for (method, route, status), count in sorted(self._requests.items()):
                labels = _labels(method=method, route=route, status=status)
                lines.append(f"robson_http_requests_total{{{labels}}} {count}")
            lines += [
                "# HELP robson_http_request_duration_seconds Time to answer, by route template.",
                "# TYPE robson_http_request_duration_seconds histogram",
            ]
            for (method, route), hist in sorted(self._latency.items()):
                cumulative = 0
                for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    labels = _labels(method=method, route=route, le=le)
                    lines.append(
                        f"robson_http_request_duration_seconds_bucket{{{labels}}} {cumulative}"
                    )
                labels = _labels(method=method, route=route)
                lines.append(f"{HISTOGRAM}_sum{{{labels}}} {hist.total}")
                lines.append(f"{HISTOGRAM}_count{{{labels}}} {hist.observations}")
            lines += [
                "# HELP robson_orders_sent_total Orders sent to the exchange by this process.",
                "# TYPE robson_orders_sent_total counter",
            ]
            for kind, count in sorted(self._orders.items()):
                lines.append(f"robson_orders_sent_total{{{_labels(kind=kind)}}} {count}")
        seen: set[str] = set()
        for name, help_text, gauge_labels, value in gauges:
            if name not in seen:
                seen.add(name)
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines.append(f"{name}{{{_labels(**gauge_labels)}}} {value}")
        return "\n".join(lines) + "\n" + "".join(source.prometheus() for source in self._sources)


CLIENT_CLOSED = 499  # nginx's code for a request its client abandoned; nothing is sent


class RequestMetrics:
    """App middleware (outermost but one): times every request, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Mapping[object, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # endpoint -> template, so /positions/<id>/ is one series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        except ClientDisconnect:
            status = CLIENT_CLOSED
            raise
        finally:
            route = self.routes.get(scope.get("endpoint"), UNMATCHED)
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )
