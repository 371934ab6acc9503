"""The `robson` command line, run in-process against a real database."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import Status
from infra.bootstrap import build_services
from infra.cli import main
from infra.settings import Settings
from tests.conftest import drop_schema
from tests.conftest import test_env as env_for
from tests.factories import register
from tests.fakes.binance import FakeBinance


def run(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], *argv: str
) -> tuple[int, str, str]:
    """`robson *argv` in this process: its exit code, output and errors."""
    code = main(list(argv), env)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_migrate_is_idempotent(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    assert run(capsys, env, "migrate")[0] == 0
    assert run(capsys, env, "migrate")[0] == 0


def test_client_create_prints_the_token_once_and_token_issues_another(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    code, out, _ = run(
        capsys,
        env,
        "client",
        "create",
        "--name",
        "Ana",
        "--email",
        "ana@example.com",
        "--capital",
        "2500",
    )
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"client_id", "token"}

    code, out, _ = run(capsys, env, "client", "token", "--email", "ana@example.com")
    assert code == 0
    second = json.loads(out)["token"]
    assert second != created["token"]

    services = build_services(Settings.from_env(env))
    try:
        assert services.ledger.authenticate(second).email == "ana@example.com"
        assert services.ledger.policy(services.ledger.authenticate(second).id).capital == 2500
    finally:
        services.close()

    code, _, err = run(
        capsys, env, "client", "create", "--name", "Ana", "--email", "ana@example.com"
    )
    assert code == 2 and "already exists" in err


def test_credentials_come_from_stdin_and_only_the_mask_is_printed(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, env, "client", "create", "--name", "Bo", "--email", "bo@example.com")
    monkeypatch.setattr("sys.stdin", io.StringIO("TOPSECRETVALUE123\n"))
    code, out, err = run(
        capsys,
        env,
        "client",
        "credentials",
        "--email",
        "bo@example.com",
        "--api-key",
        "KEYAxxxxxxxxxxxxZZ12",
        "--secret-key-stdin",
    )
    assert code == 0
    assert json.loads(out)["masked_api_key"] == "KEYA************ZZ12"
    assert "TOPSECRETVALUE123" not in out + err
    assert "KEYAxxxxxxxxxxxxZZ12" not in out + err


def test_paper_price_validates_its_input(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    code, out, _ = run(capsys, env, "paper", "price", "btcusdc", "98500.123")
    assert code == 0 and json.loads(out)["price"] == "98500.12000000"
    assert run(capsys, env, "paper", "price", "BTCUSDC", "-5")[0] == 2
    assert run(capsys, env, "paper", "price", "DOGEUSDC", "1")[0] == 2


def test_policy_resume_needs_a_pause_and_records_the_review(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    run(capsys, env, "client", "create", "--name", "Cy", "--email", "cy@example.com")
    code, _, err = run(capsys, env, "policy", "resume", "--email", "cy@example.com", "--note", "ok")
    assert code == 2 and "not paused" in err

    services = build_services(Settings.from_env(env))
    try:
        client = services.ledger.client_by_email("cy@example.com")
        services.ledger.observe_drawdown(client.id, "2026-11", Decimal(4))
    finally:
        services.close()
    code, out, _ = run(
        capsys,
        env,
        "policy",
        "resume",
        "--email",
        "cy@example.com",
        "--note",
        "Reviewed",
        "--by",
        "ops",
    )
    assert code == 0 and json.loads(out)["paused"] is False


def test_demo_then_export_contains_every_stored_event(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    code, out, _ = run(capsys, env, "demo")
    assert code == 0
    assert "closed, realised P&L" in out

    code, out, _ = run(capsys, env, "events", "export")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    services = build_services(Settings.from_env(env))
    try:
        stored = services.store.recorder.select_notifications(start=1, limit=100_000)
    finally:
        services.close()
    assert [r["notification_id"] for r in records] == [n.id for n in stored]
    assert {"notification_id", "stream_id", "version", "topic", "timestamp", "payload"} == set(
        records[0]
    )
    topics = {r["topic"].rsplit(".", 1)[-1] for r in records}
    assert {"Planned", "Validated", "EntrySubmitted", "EntryFilled", "Closed"} <= topics


def test_demo_refuses_to_move_a_paper_market_where_others_have_stops(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    services = build_services(Settings.from_env(env))
    try:
        assert services.paper is not None
        services.paper.set_price("BTCUSDC", Decimal(100000))
        client_id, _ = register(services.ledger, capital="1000")
        plan = PlanRequest(symbol="BTCUSDC", side=Side.LONG, stop_price=Decimal(99000))
        other = services.ledger.plan_validate_execute(client_id, plan)
    finally:
        services.close()

    code, out, err = run(capsys, env, "demo")

    assert code != 0 and out == ""
    assert "would fire the stops of 1 live position(s) of 1 tenant(s)" in err
    services = build_services(Settings.from_env(env))
    try:
        assert services.paper is not None
        assert services.paper.price("BTCUSDC") == Decimal(100000)  # never moved
        assert services.ledger.position(client_id, other.id).status is Status.OPEN
    finally:
        services.close()


def test_demo_puts_back_the_paper_price_it_found(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    assert run(capsys, env, "paper", "price", "BTCUSDC", "91234.5")[0] == 0

    code, out, _ = run(capsys, env, "demo")

    assert code == 0 and "closed, realised P&L" in out
    services = build_services(Settings.from_env(env))
    try:
        assert services.paper is not None
        assert services.paper.price("BTCUSDC") == Decimal("91234.5")
    finally:
        services.close()


def test_demo_on_binances_prices_moves_no_price(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    with FakeBinance() as fake:
        fake.set_price("BTCUSDC", Decimal("87654.32"))
        real = {**env, "ROBSON_PAPER_PRICES": "binance", "ROBSON_BINANCE_BASE_URL": fake.url}

        code, out, _ = run(capsys, real, "demo")
        refused, _, err = run(capsys, real, "paper", "price", "BTCUSDC", "1000")

    assert code == 0
    assert '"price":"87654.32000000"' in out  # the entry filled at Binance's price
    assert refused != 0 and "Paper prices come from Binance" in err


def test_export_by_client_and_time_to_a_file(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: object
) -> None:
    run(capsys, env, "client", "create", "--name", "A", "--email", "a@example.com")
    run(capsys, env, "client", "create", "--name", "B", "--email", "b@example.com")
    target = f"{tmp_path}/a.ndjson"
    code, _, _ = run(
        capsys, env, "events", "export", "--client", "a@example.com", "--output", target
    )
    assert code == 0
    with open(target, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert records and all("b@example.com" not in json.dumps(r) for r in records)
    assert any(r["payload"].get("email") == "a@example.com" for r in records)

    code, out, _ = run(capsys, env, "events", "export", "--since", "2100-01-01T00:00:00Z")
    assert code == 0 and out == ""
    assert run(capsys, env, "events", "export", "--client", "nobody@example.com")[0] == 2


def test_paper_feed_replays_a_csv_and_a_seeded_walk(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: object
) -> None:
    prices = f"{tmp_path}/prices.csv"
    with open(prices, "w", encoding="utf-8") as handle:
        handle.write("price\n97000\n97250.5\n")
    code, out, _ = run(capsys, env, "paper", "feed", "BTCUSDC", "--csv", prices, "--interval", "0")
    assert code == 0
    assert json.loads(out) == {"symbol": "BTCUSDC", "prices_set": 2, "last": "97250.50000000"}

    code, out, _ = run(
        capsys, env, "paper", "feed", "BTCUSDC", "--seed", "3", "--count", "4", "--interval", "0"
    )
    assert code == 0 and json.loads(out)["prices_set"] == 4


def test_paper_balances_survive_a_restart(env: dict[str, str]) -> None:
    from tests.factories import open_long, register

    first = build_services(Settings.from_env(env))
    try:
        assert first.paper is not None
        first.paper.set_price("BTCUSDC", Decimal(100000))
        client_id, _ = register(first.ledger)
        open_long(first.ledger, client_id)
        before = first.exchange.balances(first.ledger.trading_account(client_id))
    finally:
        first.close()
    restarted = build_services(Settings.from_env(env))
    try:
        after = restarted.exchange.balances(restarted.ledger.trading_account(client_id))
    finally:
        restarted.close()
    assert after == before
    assert after["BTC"].free == Decimal("0.004995")


@pytest.mark.parametrize(
    "argv",
    [
        ("client", "token", "--email", "ana@example.com"),
        ("client", "create", "--name", "Ana", "--email", "ana@example.com"),
        ("projections", "status"),
        ("events", "export"),
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_a_command_before_migrate_says_to_run_migrate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: str, argv: tuple[str, ...]
) -> None:
    environment = env_for(tmp_path / "home", backend)
    try:
        code, out, err = run(capsys, environment, *argv)
    finally:
        drop_schema(Settings.from_env(environment))
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.endswith(
        "has no Robson tables yet: run `robson migrate` first\n"
    )
    assert not (tmp_path / "home" / "robson.sqlite3").exists()  # nor an empty file made
