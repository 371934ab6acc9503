"""What a client sees when PostgreSQL stops under a real `robson serve`, and when it returns.

1. Time to a 503: every endpoint asked at once just after an immediate shutdown (the pools
   still hold the dropped connections), then again once the outage is known, with a token
   the service has not cached. Goal: every reply within 2 s, /healthz 200 throughout.
2. Recovery: from `pg_ctl start` returning to each endpoint's first normal answer, every
   endpoint asked in a loop. Goal: within 2 s.
BENCH_OUTAGE_ROUNDS (default 3) repeats both.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.outage import ENDPOINTS, call, cluster, environment, serve, tenant
from tests.e2e.serving import robson

ROUNDS = int(os.environ.get("BENCH_OUTAGE_ROUNDS", "3"))
PROBES = (("GET", "/healthz"), *ENDPOINTS)
GOAL_SECONDS = 2.0


def _timed(http: httpx.Client, method: str, path: str, auth: dict[str, str]) -> tuple[int, float]:
    start = time.monotonic()
    try:
        status = call(http, method, path, auth).status_code
    except httpx.TimeoutException:
        status = 0
    return status, time.monotonic() - start


def _all_at_once(http: httpx.Client, auth: dict[str, str]) -> dict[str, tuple[int, float]]:
    def timed(probe: tuple[str, str]) -> tuple[int, float]:
        return _timed(http, probe[0], probe[1], auth)

    with ThreadPoolExecutor(len(PROBES)) as pool:
        found = pool.map(timed, PROBES)
        return {path: answer for (_, path), answer in zip(PROBES, found, strict=True)}


def _recovery(http: httpx.Client, auth: dict[str, str], since: float) -> dict[str, float]:
    """Seconds from `since` to each endpoint's first normal answer, asked in parallel loops."""

    def first_ok(probe: tuple[str, str]) -> float:
        while time.monotonic() - since < 60:
            status, _ = _timed(http, probe[0], probe[1], auth)
            if status == 200:
                return time.monotonic() - since
        return float("inf")

    with ThreadPoolExecutor(len(PROBES)) as pool:
        found = pool.map(first_ok, PROBES)
        return {path: seconds for (_, path), seconds in zip(PROBES, found, strict=True)}


def _report(title: str, rounds: list[dict[str, tuple[int, float]]]) -> float:
    print(f"  {title}")
    worst = 0.0
    for _, path in PROBES:
        statuses = sorted({r[path][0] for r in rounds})
        seconds = [r[path][1] for r in rounds]
        worst = max(worst, *seconds)
        print(
            f"    {path:24} status {statuses}  median {statistics.median(seconds):6.2f} s"
            f"  max {max(seconds):6.2f} s"
        )
    return worst


def main() -> None:
    sudden: list[dict[str, tuple[int, float]]] = []
    known: list[dict[str, tuple[int, float]]] = []
    back: list[dict[str, float]] = []
    with cluster() as postgres, tempfile.TemporaryDirectory() as home:
        env = environment(home, f"{postgres.url}?schema=robson", ROBSON_RATE_LIMIT="100000/hour")
        robson(env, "migrate")
        cached = tenant(env, "bench@example.com")
        with serve(env) as served, httpx.Client(base_url=served.url, timeout=90) as http:
            price = {"symbol": "BTCUSDC", "price": "100000"}
            http.post("/api/paper/price/", headers=cached, json=price).raise_for_status()
            for _ in range(ROUNDS):
                fresh = tenant(env, f"bench-{len(back)}@example.com")
                _all_at_once(http, cached)  # warm: every pool holds connections
                postgres.stop()
                sudden.append(_all_at_once(http, cached))
                known.append(_all_at_once(http, fresh))
                postgres.start()
                back.append(_recovery(http, fresh, time.monotonic()))
    print(f"{ROUNDS} outages; goal: every answer within {GOAL_SECONDS:g} s")
    worst = _report("just after the shutdown (cached token):", sudden)
    worst = max(worst, _report("outage known (uncached token):", known))
    print("  recovery: from `pg_ctl start` returning to the first normal answer")
    slowest = 0.0
    for _, path in PROBES:
        seconds = [r[path] for r in back]
        slowest = max(slowest, *seconds)
        print(
            f"    {path:24} median {statistics.median(seconds):6.2f} s  max {max(seconds):6.2f} s"
        )
    print(
        f"  slowest 503: {worst:.2f} s; slowest recovery: {slowest:.2f} s"
        f" -> {'met' if max(worst, slowest) <= GOAL_SECONDS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
