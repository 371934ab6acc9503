"""`robson worker`, `monitor-stops` and `adjust-trailing-stops`, in-process through main()."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import Position, Status
from infra.bootstrap import Services
from infra.cli import main
from infra.paper_exchange import PaperExchange
from tests.factories import register

D = Decimal
BTC = "BTCUSDC"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """These specify Robson's own one-shot stop jobs, so no insurance stop rests at the paper
    exchange to fill first (tests/integration/test_insurance_*.py specify that one)."""
    return {**env, "ROBSON_EXCHANGE_STOPS": "False"}


def set_price(services: Services, price: str) -> PaperExchange:
    """Move the paper market; the paper exchange, for what it filled."""
    assert services.paper is not None
    services.paper.set_price(BTC, D(price))
    return services.paper


def open_long(services: Services, entry: str, stop: str) -> Position:
    set_price(services, entry)
    client_id, _ = register(services.ledger)
    return services.ledger.plan_validate_execute(
        client_id, PlanRequest(symbol=BTC, side=Side.LONG, stop_price=D(stop))
    )


def run(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    assert main(argv, env=env) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def head(services: Services) -> int:
    return services.store.recorder.max_notification_id() or 0


def test_monitor_stops_dry_run_prints_the_exit_and_changes_nothing(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    position = open_long(services, "90000", "88200")
    paper = set_price(services, "88000")
    before = head(services)

    lines = run(["monitor-stops", "--dry-run"], env, capsys)

    assert lines == [
        {
            "job": "stops",
            "outcome": "dry_run",
            "position_id": str(position.id),
            "client_id": str(position.client_id),
            "symbol": BTC,
            "price": "88000.00000000",
            "reason": "STOP_LOSS",
        }
    ]
    assert head(services) == before
    assert paper.orders_filled(position.client_id) == 1


def test_monitor_stops_closes_once_and_a_second_run_finds_nothing(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    position = open_long(services, "90000", "88200")
    paper = set_price(services, "88000")

    (line,) = run(["monitor-stops"], env, capsys)
    assert (line["outcome"], line["reason"], line["status"]) == ("done", "STOP_LOSS", "closed")
    assert run(["monitor-stops"], env, capsys) == []

    closed = services.ledger.position(position.client_id, position.id)
    assert closed.status is Status.CLOSED
    assert paper.orders_filled(position.client_id) == 2


def test_adjust_trailing_stops_moves_the_stop_only_without_dry_run(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    position = open_long(services, "50000", "49000")
    set_price(services, "52000")
    before = head(services)

    (line,) = run(["adjust-trailing-stops", "--dry-run"], env, capsys)
    assert (line["job"], line["outcome"]) == ("trailing", "dry_run")
    assert (line["from_stop"], line["to_stop"], line["span_step"]) == (
        "49000.00000000",
        "51000.00000000",
        2,
    )
    assert head(services) == before

    (line,) = run(["adjust-trailing-stops"], env, capsys)
    assert (line["outcome"], line["to_stop"]) == ("done", "51000.00000000")
    assert services.ledger.position(position.client_id, position.id).stop_price == D(51000)
    assert run(["adjust-trailing-stops"], env, capsys) == []


def test_worker_once_runs_only_the_jobs_asked_for(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    position = open_long(services, "50000", "49000")
    set_price(services, "48000")
    assert run(["worker", "--once", "--jobs", "trailing,reconcile"], env, capsys) == []
    (line,) = run(["worker", "--once", "--jobs", "stops"], env, capsys)
    assert line["reason"] == "STOP_LOSS"
    assert services.ledger.position(position.client_id, position.id).status is Status.CLOSED


def test_a_shard_that_is_not_ours_sees_nothing(
    services: Services, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    position = open_long(services, "90000", "88200")
    set_price(services, "88000")
    other = f"{(position.client_id.int + 1) % 3}/3"
    assert run(["monitor-stops", "--dry-run", "--shard", other], env, capsys) == []
    ours = f"{position.client_id.int % 3}/3"
    assert len(run(["monitor-stops", "--dry-run", "--shard", ours], env, capsys)) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--jobs", "stops,bogus"],
        ["worker", "--jobs", ""],
        ["worker", "--shard", "2/2"],
        ["worker", "--shard", "one/two"],
        ["monitor-stops", "--reconcile-grace", "-1"],
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv, env={})
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err
