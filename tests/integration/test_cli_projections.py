"""`robson projections status | rebuild [NAME ...] | run`, against a real database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bootstrap import Services
from projections.trade_history import TRADES
from tests.factories import open_long, register
from tests.integration.test_cli import run

REPO = Path(__file__).resolve().parents[2]


def test_status_shows_position_and_lag_then_rebuild_catches_up(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], services: Services
) -> None:
    client_id, _ = register(services.ledger)
    open_long(services.ledger, client_id)
    head = services.read_models.log_position()

    code, out, _ = run(capsys, env, "projections", "status")
    assert code == 0
    status = json.loads(out)
    assert status["log_position"] == head
    assert [p["name"] for p in status["projections"]] == ["positions", "trades", "pnl", "drawdown"]
    assert all(p["position"] == 0 and p["lag_events"] == head for p in status["projections"])

    code, out, err = run(capsys, env, "projections", "rebuild")
    assert code == 0
    assert out.startswith(f"rebuilt positions, trades, pnl, drawdown to event {head:,}: ")
    assert "events/s" in out
    assert err == ""  # the progress bar is drawn only on a terminal

    code, out, _ = run(capsys, env, "projections", "status")
    assert all(p["lag_events"] == 0 for p in json.loads(out)["projections"])
    assert services.read_models.positions(client_id)[0].status == "open"


def test_rebuild_takes_projection_names_and_refuses_unknown_ones(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    code, out, _ = run(capsys, env, "projections", "rebuild", "pnl", "trades")
    assert code == 0 and out.startswith("rebuilt trades, pnl to event")

    code, _, err = run(capsys, env, "projections", "rebuild", "positions", "nonsense")
    assert code == 2
    assert "unknown projection 'nonsense'" in err


def test_migrate_rebuilds_the_projections_whose_tables_a_release_reshaped(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], services: Services
) -> None:
    client_id, _ = register(services.ledger)
    position = open_long(services.ledger, client_id)
    services.projections.run_once()
    database = services.read_models.database
    with database.transaction() as tx:  # the trades table as a release without documents left it
        tx.execute(f'ALTER TABLE {database.qualified(TRADES.name)} DROP COLUMN "document"')

    code, out, _ = run(capsys, env, "migrate")
    assert code == 0
    head = services.read_models.log_position()
    assert out.startswith(
        f"rebuilt trades (their tables changed in this release) to event {head:,}"
    )
    [(trade, document)] = services.read_models.trade_page(client_id, None, 10)
    assert trade.position_id == position.id
    assert json.loads(document)["id"] == str(position.id)

    code, out, _ = run(capsys, env, "migrate")
    assert code == 0 and out.startswith("migrated: ")  # nothing left to rebuild


@pytest.mark.slow
def test_run_follows_the_log_until_sigterm(env: dict[str, str], services: Services) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "projections", "run"],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith("following the event log")
        client_id, _ = register(services.ledger)
        position = open_long(services.ledger, client_id)

        assert services.read_models.wait_for(services.read_models.log_position(), timeout=20)
        row = services.read_models.position(client_id, position.id)
        assert row is not None and row.status == "open"

        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0
    assert out.startswith("stopped at event")
