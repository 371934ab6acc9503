"""`?as_of=` over a tenant with 10,000 events in PostgreSQL: each read folds the tenant's
events up to the instant into a temporary read model. Goal: p99 < 100 ms per request.

The events are recorded through the event store as the ledger records them (positions
planned, validated, entered and closed, the policy reserving and realising their risk),
beside another tenant's as many, then the projections are rebuilt; the four reads are asked
in turn through the real app in this process, each at a random past instant."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

from domain.drawdown import month_of
from domain.market import BTCUSDC, Side
from domain.position import ExitReason, Position
from infra.bootstrap import Services, build_services, migrate
from infra.clock import ManualClock
from infra.settings import Settings
from projections.catalog import all_projections
from projections.rebuild import rebuild
from tests.conftest import drop_schema, test_env
from tests.integration.test_api_support import running

EVENTS = int(os.environ.get("BENCH_AS_OF_EVENTS", "10000"))
REQUESTS = int(os.environ.get("BENCH_AS_OF_REQUESTS", "200"))
PATHS = ("/api/positions/", "/api/trade/history/", "/api/trade/pnl/", "/api/policy/")
P99_GOAL_MS = 100.0


def record_trades(
    services: Services, client_id: UUID, events: int, began: datetime
) -> tuple[int, datetime]:
    """Closed trades (7 position events and 2 policy events each, and the policy's month
    started in each month) up to `events` events."""
    store, policy = services.store, services.ledger.policy(client_id)
    rng = random.Random(client_id.int)
    recorded, at, batch, months = 0, began, [], 0
    while recorded + 10 <= events:
        at += timedelta(minutes=rng.randrange(20, 90))
        tick = timedelta(seconds=1)
        entry = Decimal(rng.randrange(60_000, 110_000))
        position = Position.plan(
            position_id=uuid4(),
            client_id=client_id,
            rules=BTCUSDC,
            side=Side.LONG,
            entry_price=entry,
            stop_price=entry - 1000,
            target_price=None,
            quantity=Decimal("0.001"),
            capital_base=Decimal(100000),
            now=at,
            margin=False,
            leverage=Decimal(1),
        )
        policy.start_month(month_of(at), at + tick)  # as VALIDATE does
        position.validate([], at + tick)
        policy.reserve_risk(position.id, position.risk_amount, at + tick)
        order_id = position.submit_entry(at + 2 * tick)
        position.record_entry_fill(order_id, "e", entry, Decimal("0.001"), {}, at + 3 * tick)
        exit_price = entry + Decimal(rng.randrange(-1000, 1500))
        position.trigger_exit(ExitReason.MANUAL, exit_price, at + 4 * tick, None)
        exit_id = position.submit_exit(at + 5 * tick)
        qty = position.exit_order_quantity
        position.record_exit_fill(exit_id, "x", exit_price, qty, {}, at + 6 * tick)
        pnl = position.exits[-1]["pnl"]
        policy.realise(
            position.id, month_of(at), pnl, Decimal(0), at + 6 * tick, exit_reason="MANUAL"
        )
        batch.append(position)
        recorded += 9 + (len(policy.month_capital) > months)
        months = len(policy.month_capital)
        if len(batch) == 100:
            store.save(*batch, policy)
            batch = []
    store.save(*batch, policy)
    return recorded, at


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = test_env(Path(home), "postgres")
        settings = Settings.from_env(env)
        migrate(settings)
        now = datetime.fromisoformat("2026-11-02T09:00:00+00:00")
        clock = ManualClock(now - timedelta(days=301))  # the tenants register first
        services = build_services(settings, clock=clock)
        try:
            began = now - timedelta(days=300)
            tenants = []
            for _ in range(2):
                email = f"bench-{uuid4().hex[:8]}@example.com"
                reg = services.ledger.register_client("Bench", email, Decimal(100000), False)
                tenants.append(reg)
            clock.advance(now - clock.now())
            started = time.perf_counter()
            recorded = [record_trades(services, t.client_id, EVENTS, began) for t in tenants]
            counts = [count for count, _ in recorded]
            report = rebuild(services.read_models.database, services.store, all_projections())
            print(
                f"recorded {counts} events for 2 tenants and rebuilt the projections "
                f"({report.rows} rows) in {time.perf_counter() - started:.1f} s"
            )
            caller = tenants[0]
            headers = {"Authorization": f"Bearer {caller.token}"}
            rng = random.Random(11)
            span = (recorded[0][1] - began).total_seconds()  # the caller's months with trades
            timings: dict[str, list[float]] = {path: [] for path in PATHS}
            with running(services) as api:
                for path in PATHS:  # warm-up
                    api.get(path, headers=headers, params={"as_of": recorded[0][1].isoformat()})
                for i in range(REQUESTS):
                    path = PATHS[i % len(PATHS)]
                    instant = began + timedelta(seconds=rng.uniform(0, span))
                    sent = time.perf_counter()
                    reply = api.get(path, headers=headers, params={"as_of": instant.isoformat()})
                    timings[path].append((time.perf_counter() - sent) * 1000)
                    assert reply.status_code == 200, (path, instant, reply.text)
            every = sorted(t for ts in timings.values() for t in ts)
            for path, ts in timings.items():
                print(f"{path:24} {_summary(ts)}")
            p99 = _p99(every)
            verdict = "met" if p99 < P99_GOAL_MS else "NOT met"
            print(f"{'all':24} {_summary(every)}  goal p99 < {P99_GOAL_MS:.0f} ms: {verdict}")
        finally:
            services.close()
            drop_schema(settings)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _summary(values: list[float]) -> str:
    return (
        f"n={len(values)} p50={statistics.median(values):.1f} ms "
        f"p99={_p99(values):.1f} ms max={max(values):.1f} ms"
    )


if __name__ == "__main__":
    main()
