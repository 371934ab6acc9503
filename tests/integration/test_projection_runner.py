"""Running the projections: exactly once through crashes, rebuilds that swap atomically."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.read_models import Period
from infra.bootstrap import Services
from infra.clock import ManualClock
from projections.catalog import (
    PROJECTION_NAMES,
    all_projections,
    all_tables,
    select_projections,
)
from projections.database import ProjectionDatabase
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from tests.factories import long_plan, open_long, register

REPO = Path(__file__).resolve().parents[2]
Dump = dict[str, list[tuple[Any, ...]]]


class Boom(Exception):
    """Stands for a crash in the middle of a batch."""


def trading(services: Services, tenants: int = 3) -> list[UUID]:
    """A few tenants opening, partly closing and closing positions on the paper exchange."""
    assert services.paper is not None
    clients = []
    for n in range(tenants):
        client_id, _ = register(services.ledger, capital="1000")
        clients.append(client_id)
        services.paper.set_price("BTCUSDC", Decimal(100000 + n * 100))
        first = open_long(services.ledger, client_id)
        second = open_long(services.ledger, client_id)
        services.paper.set_price("BTCUSDC", Decimal(101000 + n * 100))
        services.ledger.close_position(client_id, first.id)
        services.ledger.close_position(client_id, second.id, quantity=second.open_quantity / 2)
    return clients


def dump(db: ProjectionDatabase) -> Dump:
    """Every projection table, and every projection's tracking position."""
    tables: Dump = {t.name: db.dump(t) for t in all_tables()}
    tables["tracking"] = sorted(db.positions(PROJECTION_NAMES).items())
    return tables


def reset(db: ProjectionDatabase) -> None:
    """Empty every projection, as if it had never run."""
    with db.transaction() as tx:
        for table in all_tables():
            tx.execute(f"DELETE FROM {db.qualified(table.name)}")
        for projection in all_projections():
            db.set_position(tx, projection.name, 0)


def runner(services: Services, **options: Any) -> ProjectionRunner:
    return ProjectionRunner(services.read_models.database, services.store, **options)


def test_a_crash_mid_batch_commits_nothing_and_a_restart_matches_an_uninterrupted_run(
    services: Services,
) -> None:
    trading(services)
    db = services.read_models.database
    runner(services, batch_size=10).run_once(max_batches=2)
    before = dump(db)

    seen: list[int] = []

    def crash_after_five_events(name: str, notification_id: int) -> None:
        seen.append(notification_id)
        if len(seen) == 5:
            raise Boom

    with pytest.raises(Boom):
        runner(services, batch_size=10, on_event=crash_after_five_events).run_once()
    assert dump(db) == before  # nothing of the failed batch, rows or tracking

    runner(services, batch_size=10).run_once()
    restarted = dump(db)
    reset(db)
    runner(services, batch_size=10).run_once()
    assert dump(db) == restarted
    rebuild(db, services.store, all_projections())
    assert dump(db) == restarted


KILLED_MID_BATCH = textwrap.dedent(
    """
    import os, threading
    from infra.bootstrap import build_services
    from infra.settings import Settings
    from projections.runner import ProjectionRunner

    services = build_services(Settings.from_env(os.environ))
    applied = []

    def hold_the_batch_open(name, notification_id):
        applied.append(notification_id)
        if len(applied) == 5:
            print("mid-batch", flush=True)
            threading.Event().wait()  # until SIGKILL

    db = services.read_models.database
    ProjectionRunner(db, services.store, batch_size=10, on_event=hold_the_batch_open).run_once()
    """
)


@pytest.mark.slow
def test_a_runner_process_killed_mid_batch_leaves_nothing_and_a_restart_completes(
    services: Services, env: dict[str, str]
) -> None:
    trading(services)
    db = services.read_models.database
    runner(services, batch_size=10).run_once(max_batches=1)
    before = dump(db)

    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_BATCH],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-batch"
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert dump(db) == before

    runner(services, batch_size=10).run_once()
    after_restart = dump(db)
    reset(db)
    runner(services).run_once()
    assert dump(db) == after_restart


def test_a_rebuild_yields_identical_tables(services: Services) -> None:
    trading(services)
    db = services.read_models.database
    services.projections.run_once()
    live = dump(db)

    report = rebuild(db, services.store, all_projections())

    assert dump(db) == live
    assert report.position == services.read_models.log_position()
    assert report.names == ("positions", "trades", "pnl", "drawdown")


def test_rebuilding_one_projection_leaves_the_others_alone(services: Services) -> None:
    trading(services)
    db = services.read_models.database
    services.projections.run_once()
    live = dump(db)
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal(90000))
    head = services.read_models.log_position()

    rebuild(db, services.store, select_projections(["drawdown"]))

    assert db.positions(["drawdown", "positions"]) == {"drawdown": head, "positions": head - 1}
    assert dump(db)["robson_positions"] == live["robson_positions"]
    assert services.projections.run_once() == 1  # the others catch up; drawdown is there


def test_queries_keep_answering_during_a_rebuild(services: Services) -> None:
    clients = trading(services)
    services.projections.run_once()
    read_models = services.read_models

    def counts() -> list[tuple[int, int]]:
        return [(len(read_models.positions(c)), len(read_models.trade_history(c))) for c in clients]

    expected = counts()
    assert all(positions > 0 and trades > 0 for positions, trades in expected)
    answers: list[list[tuple[int, int]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    answered = threading.Semaphore(0)

    def read_in_a_loop() -> None:
        while not stop.is_set():
            try:
                answers.append(counts())
            except BaseException as error:  # any failure is what this test looks for
                errors.append(error)
            answered.release()

    def while_folding(position: int, target: int, read: int) -> None:
        answered.acquire(timeout=10)  # queries are answered while the fresh tables fill
        answered.acquire(timeout=10)

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        for _ in range(5):
            rebuild(read_models.database, services.store, all_projections(), progress=while_folding)
    finally:
        stop.set()
        reader.join(30)
    assert errors == []
    assert len(answers) >= 10
    assert all(answer == expected for answer in answers)


def test_two_runners_at_once_apply_every_event_exactly_once(services: Services) -> None:
    trading(services, tenants=4)
    db = services.read_models.database
    failures: list[BaseException] = []

    def run() -> None:
        try:
            runner(services, batch_size=7).run_once()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    concurrent = dump(db)
    reset(db)
    runner(services).run_once()
    assert dump(db) == concurrent


def test_wait_for_returns_once_the_background_runner_applied_the_event(
    services: Services,
) -> None:
    services.projections.start()
    try:
        client_id, _ = register(services.ledger)
        position = open_long(services.ledger, client_id)
        head = services.read_models.log_position()
        assert services.read_models.wait_for(head, timeout=10)
        row = services.read_models.position(client_id, position.id)
        assert row is not None and row.status == "open"
        assert not services.read_models.wait_for(head + 1000, timeout=0.05)
    finally:
        services.projections.stop()
    assert not services.projections.running


def test_status_shows_each_projections_position_and_lag(services: Services) -> None:
    trading(services, tenants=1)
    head = services.read_models.log_position()
    behind = services.read_models.status()
    assert [s.name for s in behind] == ["positions", "trades", "pnl", "drawdown"]
    assert all(s.position == 0 and s.lag_events == head for s in behind)

    services.projections.run_once()

    assert all(
        (s.position, s.lag_events, s.lag_seconds) == (head, 0, Decimal(0))
        for s in services.read_models.status()
    )


def test_a_tenant_never_sees_another_tenants_rows(services: Services) -> None:
    alice, bob = trading(services, tenants=2)
    services.projections.run_once()
    read_models = services.read_models

    for me, other in ((alice, bob), (bob, alice)):
        mine = read_models.positions(me)
        assert mine and {p.client_id for p in mine} == {me}
        assert {t.client_id for t in read_models.trade_history(me)} == {me}
        assert all(read_models.position(other, p.position_id) is None for p in mine)
        row = read_models.drawdown(me, "2026-11")
        assert row is not None and row.client_id == me
        _, overall = read_models.pnl_by_period(me, Period.YEARLY, 5)
        assert overall.total_trades == 2  # its own two exits, never the other's


def test_workers_shard_open_positions_by_tenant(services: Services) -> None:
    trading(services, tenants=4)
    services.projections.run_once()
    read_models = services.read_models
    everyone = read_models.open_positions("BTCUSDC")
    assert everyone and all(p.status in ("open", "closing") for p in everyone)

    shards = [read_models.open_positions("BTCUSDC", shard=(i, 3)) for i in range(3)]

    assert sorted(p.position_id for s in shards for p in s) == sorted(
        p.position_id for p in everyone
    )
    for index, shard in enumerate(shards):
        assert all(p.client_id.int % 3 == index for p in shard)
    assert read_models.open_positions("ETHUSDC") == []


def test_positions_left_validated_are_found_across_tenants_oldest_first(
    services: Services, clock: ManualClock
) -> None:
    ledger, read_models = services.ledger, services.read_models
    tenants = [register(ledger)[0] for _ in range(3)]
    validated = []
    for client_id in tenants:
        planned = ledger.plan_position(client_id, long_plan())
        validated.append(ledger.validate_position(client_id, planned.id))
        clock.advance(timedelta(minutes=1))
    open_long(ledger, tenants[0])  # executed: no longer waiting
    ledger.plan_position(tenants[1], long_plan())  # planned only: nothing reserved
    services.projections.run_once()

    before_third = validated[2].modified_on
    found = read_models.validated_before(before_third)

    assert [p.position_id for p in found] == [p.id for p in validated[:2]]
    assert read_models.validated_before(before_third, shard=(tenants[0].int % 2, 2)) == [
        p for p in found if p.client_id.int % 2 == tenants[0].int % 2
    ]
