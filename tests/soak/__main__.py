"""`python -m tests.soak`: run the fault campaign and print one row per scenario.

SOAK_SCALE=0.2 runs a fifth of every load; SOAK_ONLY=1,4 runs only those scenarios.
Exits 1 when any scenario lost or duplicated an order, answered a 5xx, or found anything else.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable

from tests.soak.harness import Outcome, scale

Scenario = Callable[[], Outcome]


# Each scenario's module is imported only when it runs (SOAK_ONLY skips the others).
SCENARIOS = {
    "1": ("worker_kills", "worker_kills"),
    "2": ("worker_kills", "rival_workers"),
    "3": ("database_restarts", "database_restarts"),
    "4": ("binance_faults", "binance_matrix"),
    "5": ("bad_input", "bad_input"),
    "6": ("bad_input", "schemathesis_run"),
}


def scenario(key: str) -> Scenario:
    module, name = SCENARIOS[key]
    found: Scenario = getattr(importlib.import_module(f"tests.soak.{module}"), name)
    return found


HEADERS = ("scenario", "load held", "faults", "inputs", "lost", "dup", "5xx", "misreported", "secs")


def table(rows: list[Outcome]) -> str:
    cells = [
        (
            r.scenario,
            r.load,
            str(r.faults),
            str(r.inputs),
            str(r.lost),
            str(r.duplicated),
            str(r.server_errors),
            str(r.misreported),
            f"{r.seconds:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> int:
    chosen = [s.strip() for s in (os.environ.get("SOAK_ONLY") or "").split(",") if s.strip()]
    rows: list[Outcome] = []
    began = time.monotonic()
    print(f"soak campaign at scale {scale()}", flush=True)
    for key in SCENARIOS:
        if chosen and key not in chosen:
            continue
        run = scenario(key)
        print(f"scenario {key}: {run.__doc__.splitlines()[0] if run.__doc__ else ''}", flush=True)
        started = time.monotonic()
        try:
            outcome = run()
        except Exception:  # a scenario that could not run is a finding, not a crash
            outcome = Outcome(f"{key} {run.__name__}", load="did not finish")
            outcome.findings.append(traceback.format_exc())
            outcome.seconds = time.monotonic() - started
        rows.append(outcome)
        print(table([outcome]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"\ntotal {time.monotonic() - began:.0f}s at scale {scale()}")
    for row in rows:
        for finding in row.findings[:20]:
            print(f"\n[{row.scenario}] {finding}")
        if len(row.findings) > 20:
            print(f"\n[{row.scenario}] ... and {len(row.findings) - 20} more findings")
    return 0 if all(r.clean for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
