"""`?as_of=` over a tenant with 10,000 events in PostgreSQL. Goal: p99 < 100 ms per request.

The events are recorded through the event store as the ledger records them (positions
planned, validated, entered and closed, the policy reserving and realising their risk),
beside another tenant's as many, then the projections are rebuilt and the tenant's events
are counted back from the log. The four reads are asked in turn through the real app in
this process, each at a random past instant, interleaved with the same reads without
`as_of` (the baseline, measured in the same run), while the caller keeps trading (a trade
every `WRITE_EVERY` requests, so reads catch up). The first read of a tenant reads and
decodes its whole log (later ones only what was recorded since): that cold read is
measured apart, after the kept events are dropped, `COLD` times."""

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
from domain.identity import policy_id_for
from domain.market import BTCUSDC, Side
from domain.position import ExitReason, Position
from infra.bootstrap import Services, build_services, migrate
from infra.clock import ManualClock
from infra.settings import Settings
from projections.catalog import all_projections
from projections.events import events_table
from projections.positions import POSITIONS
from projections.rebuild import rebuild
from tests.conftest import drop_schema, test_env
from tests.integration.test_api_support import running

EVENTS = int(os.environ.get("BENCH_AS_OF_EVENTS", "10000"))
REQUESTS = int(os.environ.get("BENCH_AS_OF_REQUESTS", "200"))
COLD = int(os.environ.get("BENCH_AS_OF_COLD", "8"))
WRITE_EVERY = 10  # requests between two trades of the caller's (10 events), read by the next
PATHS = ("/api/positions/", "/api/trade/history/", "/api/trade/pnl/", "/api/policy/")
P99_GOAL_MS = 100.0


def record_trades(
    services: Services, client_id: UUID, events: int, began: datetime
) -> tuple[int, datetime]:
    """Closed trades (8 position events and 2 policy events each, and the policy's month
    started in each month) until the tenant's saves hold at least `events` events."""
    store, policy = services.store, services.ledger.policy(client_id)
    rng = random.Random(client_id.int)
    saved, at, batch = 0, began, list[Position]()
    while saved + sum(len(a.pending_events) for a in (*batch, policy)) < events:
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
        if len(batch) == 100:
            saved += len(store.save(*batch, policy))
            batch = []
    saved += len(store.save(*batch, policy))
    return saved, at


def tenant_event_count(services: Services, client_id: UUID) -> int:
    """The tenant's events in the log (its policy's and its positions'), counted by SQL."""
    database = services.read_models.database
    events = database.qualified(events_table(services.store))
    positions = database.qualified(POSITIONS.name)
    with database.session() as session:
        found = session.execute(
            f"SELECT count(*) FROM {events} WHERE originator_id IN (SELECT position_id FROM "
            f"{positions} WHERE client_id = %s UNION ALL SELECT %s)",
            (client_id, policy_id_for(client_id)),
        )
    return int(found[0][0])


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
            report = rebuild(services.read_models.database, services.store, all_projections())
            counts = [tenant_event_count(services, t.client_id) for t in tenants]
            assert min(counts) >= EVENTS, counts
            print(
                f"{counts} events for 2 tenants (policy and positions, counted in the log), "
                f"projections rebuilt ({report.rows} rows), "
                f"in {time.perf_counter() - started:.1f} s"
            )
            caller = tenants[0]
            headers = {"Authorization": f"Bearer {caller.token}"}
            rng = random.Random(11)
            span = (recorded[0][1] - began).total_seconds()  # the caller's months with trades
            live: dict[str, list[float]] = {path: [] for path in PATHS}
            past: dict[str, list[float]] = {path: [] for path in PATHS}
            cold: list[float] = []
            print(f"load average before: {_load()}")
            with running(services) as api:

                def timed(path: str, instant: datetime | None) -> float:
                    params = {} if instant is None else {"as_of": instant.isoformat()}
                    sent = time.perf_counter()
                    reply = api.get(path, headers=headers, params=params)
                    elapsed = (time.perf_counter() - sent) * 1000
                    assert reply.status_code == 200, (path, instant, reply.text)
                    return elapsed

                for i in range(COLD):
                    services.read_models.forget_past()
                    instant = began + timedelta(seconds=rng.uniform(0, span))
                    cold.append(timed(PATHS[i % len(PATHS)], instant))
                for path in PATHS:  # warm-up
                    timed(path, None)
                    timed(path, recorded[0][1])
                written, last = 0, recorded[0][1]
                for i in range(REQUESTS):
                    if i % WRITE_EVERY == WRITE_EVERY - 1:  # the tenant keeps trading
                        count, last = record_trades(services, caller.client_id, 10, last)
                        written += count
                    path = PATHS[i % len(PATHS)]
                    live[path].append(timed(path, None))
                    past[path].append(timed(path, began + timedelta(seconds=rng.uniform(0, span))))
                latest = services.store.recorder.max_notification_id() or 0
                assert services.read_models.wait_for(latest, timeout=30)
                for path in PATHS:  # at the present instant, the live reads' very bytes
                    present = {"as_of": clock.now().isoformat()}
                    same = api.get(path, headers=headers, params=present).content
                    assert same == api.get(path, headers=headers).content, path
            print(f"load average after:  {_load()}; {written} events recorded meanwhile")
            print("as_of (a random instant)                          | without as_of (baseline)")
            every = [t for ts in past.values() for t in ts]
            every_live = [t for ts in live.values() for t in ts]
            for name, with_it, without in [
                *((path, past[path], live[path]) for path in PATHS),
                ("all", every, every_live),
            ]:
                print(
                    f"{name:20} {_summary(with_it)} | {_summary(without)}  "
                    f"{_ratios(with_it, without)}"
                )
            print(f"{'cold (first read)':20} {_summary(cold)}")
            p99 = _p99(every)
            verdict = "met" if p99 < P99_GOAL_MS else "NOT met"
            print(f"goal p99 < {P99_GOAL_MS:.0f} ms with as_of: {verdict} ({p99:.1f} ms)")
        finally:
            services.close()
            drop_schema(settings)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def _ratios(past: list[float], live: list[float]) -> str:
    return (
        f"as_of/baseline p50 x{statistics.median(past) / statistics.median(live):.1f} "
        f"p99 x{_p99(past) / _p99(live):.1f}"
    )


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _summary(values: list[float]) -> str:
    return f"n={len(values):3} p50={statistics.median(values):6.1f} p99={_p99(values):6.1f} ms"


if __name__ == "__main__":
    main()
