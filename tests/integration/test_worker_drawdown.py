"""The worker's drawdown job: the month's realised loss plus the open loss of open positions,
valued at the last price, records the 2% and 3% alerts once each and the pause at 4%.

Identical on SQLite and PostgreSQL; ticks are driven by hand and the clock is a ManualClock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.drawdown import month_of
from domain.policy import Policy
from infra.bootstrap import Services
from infra.cli import main
from infra.clock import ManualClock
from tests.factories import register
from tests.trade_builders import filled, realise, save
from workers.jobs import ALL_JOBS, Action, Job, Outcome, parse_jobs
from workers.worker import Worker

D = Decimal
BTC = "BTCUSDC"
NOVEMBER = "2026-11"  # the clock fixture starts on 2 November 2026
FEW_SECONDS = timedelta(seconds=5)


def holding_with_a_realised_loss(
    services: Services, lost: str = "20", month: str = NOVEMBER
) -> UUID:
    """Capital 1000: 0.01 BTC held from 100000 (stop 90000, no fees) and `lost` realised."""
    client_id, _ = register(services.ledger, capital="1000")
    save(services.store, filled(client_id, services.clock.now(), entry="100000", quantity="0.01"))
    policy = services.ledger.policy(client_id)
    realise(services.store, policy, month, f"-{lost}", services.clock.now())
    return client_id


def policy_events(services: Services, client_id: UUID) -> list[str]:
    return [type(e).__name__ for e in services.store.events.get(Policy.create_id(client_id))]


def drawdown_actions(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.job is Job.DRAWDOWN]


def price(services: Services, value: str) -> None:
    assert services.paper is not None
    services.paper.set_price(BTC, D(value))


def test_drawdown_is_a_default_job_and_can_be_asked_for_by_name() -> None:
    assert Job.DRAWDOWN in ALL_JOBS
    assert parse_jobs("drawdown") == {Job.DRAWDOWN}


def test_an_open_loss_on_top_of_a_realised_one_alerts_then_pauses_once(
    services: Services, clock: ManualClock
) -> None:
    client_id = holding_with_a_realised_loss(services)
    worker = Worker.from_services(services)

    price(services, "98001")  # −19.99 open + 20 realised: 3.999%
    (alerted,) = drawdown_actions(worker.tick())
    assert (alerted.outcome, alerted.client_id) == (Outcome.DONE, client_id)
    assert alerted.as_json()["detail"] == "monthly loss 3.9990%: alerts at 2%, 3%"
    assert not services.ledger.policy(client_id).paused

    clock.advance(FEW_SECONDS)
    price(services, "98000")  # −20 open: 4%
    (paused,) = drawdown_actions(worker.tick())
    assert paused.as_json()["detail"] == "monthly loss 4.0000%: trading paused"
    assert services.ledger.policy(client_id).paused

    clock.advance(FEW_SECONDS)
    price(services, "97000")  # more lost: nothing new to record
    assert drawdown_actions(worker.tick()) == []
    events = policy_events(services, client_id)
    assert (events.count("DrawdownAlerted"), events.count("TradingPaused")) == (2, 1)


def test_the_loss_is_looked_at_every_few_seconds_not_every_tick(
    services: Services, clock: ManualClock
) -> None:
    client_id = holding_with_a_realised_loss(services, lost="0")
    worker = Worker.from_services(services)
    assert drawdown_actions(worker.tick()) == []  # looked: nothing lost yet

    price(services, "97500")  # −25 open: 2.5%
    clock.advance(timedelta(seconds=1))
    assert drawdown_actions(worker.tick()) == []  # too soon to look again
    assert "DrawdownAlerted" not in policy_events(services, client_id)

    clock.advance(FEW_SECONDS)
    (alerted,) = drawdown_actions(worker.tick())
    assert alerted.detail == "monthly loss 2.5000%: alert at 2%"


def test_a_dry_run_reports_the_pause_and_records_nothing(services: Services) -> None:
    client_id = holding_with_a_realised_loss(services, lost="30")
    price(services, "98000")  # 3% realised + 2% open
    before = policy_events(services, client_id)

    actions = Worker.from_services(services, jobs={Job.DRAWDOWN}, dry_run=True).tick()

    assert [(a.job, a.outcome, a.client_id) for a in actions] == [
        (Job.DRAWDOWN, Outcome.DRY_RUN, client_id)
    ]
    assert actions[0].detail == "monthly loss 5.0000%: alerts at 2%, 3%; trading paused"
    assert policy_events(services, client_id) == before


def test_without_the_job_an_open_loss_records_nothing(services: Services) -> None:
    client_id = holding_with_a_realised_loss(services, lost="30")
    price(services, "98000")
    jobs = {Job.STOPS, Job.TRAILING, Job.RECONCILE}
    assert Worker.from_services(services, jobs=jobs).tick() == []
    assert "DrawdownAlerted" not in policy_events(services, client_id)


def test_a_shard_watches_only_its_own_tenants(services: Services) -> None:
    client_id = holding_with_a_realised_loss(services, lost="30")
    price(services, "98000")
    theirs = ((client_id.int + 1) % 2, 2)
    assert drawdown_actions(Worker.from_services(services, shard=theirs).tick()) == []
    assert "TradingPaused" not in policy_events(services, client_id)

    ours = (client_id.int % 2, 2)
    (paused,) = drawdown_actions(Worker.from_services(services, shard=ours).tick())
    assert paused.client_id == client_id and services.ledger.policy(client_id).paused


def run(argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> list[Any]:
    assert main(argv, env=env) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_robson_worker_runs_the_drawdown_job_with_its_dry_run(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    this_month = month_of(datetime.now(UTC))  # the command runs on the system clock
    client_id = holding_with_a_realised_loss(services, lost="15", month=this_month)
    price(services, "99000")  # 1.5% realised + 1% open

    dry = run(["worker", "--once", "--jobs", "drawdown", "--dry-run"], env, capsys)
    assert dry == [
        {
            "job": "drawdown",
            "outcome": "dry_run",
            "client_id": str(client_id),
            "detail": "monthly loss 2.5000%: alert at 2%",
        }
    ]
    assert "DrawdownAlerted" not in policy_events(services, client_id)

    (done,) = run(["worker", "--once", "--jobs", "drawdown"], env, capsys)
    assert done["outcome"] == "done"
    assert policy_events(services, client_id).count("DrawdownAlerted") == 1
