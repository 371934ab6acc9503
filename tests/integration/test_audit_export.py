"""Audit export: the log in notification order, windowed by id or time, tenant-scoped, redacted."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.policy import Policy
from infra.bootstrap import Services
from infra.cli import main
from infra.clock import ManualClock
from projections.audit import REDACTED, AuditRecord, ExportFilter, export_events
from tests.factories import open_long, register


def exported(services: Services, **selection: Any) -> list[AuditRecord]:
    return list(export_events(services.store, ExportFilter(**selection)))


def every_id(services: Services) -> list[int]:
    stored = services.store.recorder.select_notifications(start=1, limit=1_000_000)
    return [n.id for n in stored]


def test_everything_in_notification_order_with_secrets_redacted(services: Services) -> None:
    client_id, _ = register(services.ledger)
    open_long(services.ledger, client_id)

    records = exported(services)

    assert [r["notification_id"] for r in records] == every_id(services)
    issued = [r for r in records if r["topic"].endswith("Client.TokenIssued")]
    assert issued and all(r["payload"]["token_hash"] == REDACTED for r in issued)


def test_since_a_notification_id_is_exclusive(services: Services) -> None:
    register(services.ledger)
    ids = every_id(services)

    records = exported(services, since_id=ids[2])

    assert [r["notification_id"] for r in records] == ids[3:]


def test_a_time_window_keeps_only_events_recorded_inside_it(
    services: Services, clock: ManualClock
) -> None:
    first, _ = register(services.ledger)  # at the clock's start, 2 Nov 2026 09:00
    clock.advance(timedelta(days=1))
    middle = clock.now()
    second, _ = register(services.ledger)
    clock.advance(timedelta(days=1))
    register(services.ledger)

    records = exported(services, since_time=middle, until_time=middle + timedelta(hours=1))

    assert records and {r["timestamp"] for r in records} == {middle.isoformat()}
    assert {r["stream_id"] for r in records} == {str(second), str(Policy.create_id(second))}
    assert str(first) not in {r["stream_id"] for r in records}


def test_a_tenants_export_holds_its_own_streams_and_nobody_elses(services: Services) -> None:
    alice, _ = register(services.ledger)
    bob, _ = register(services.ledger)
    alices = open_long(services.ledger, alice)
    bobs = open_long(services.ledger, bob)

    streams = {UUID(r["stream_id"]) for r in exported(services, client_id=alice)}

    assert {alice, Policy.create_id(alice), alices.id} <= streams
    assert not {bob, Policy.create_id(bob), bobs.id} & streams


def test_the_cli_writes_a_tenants_window_to_a_file(
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    services: Services,
    tmp_path: object,
) -> None:
    client_id, _ = register(services.ledger)
    email = services.ledger.client(client_id).email
    register(services.ledger)
    target = f"{tmp_path}/audit.ndjson"

    code = main(
        [
            "events",
            "export",
            "--client",
            email,
            "--since",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-03T00:00:00Z",
            "--output",
            target,
        ],
        env,
    )

    assert code == 0 and capsys.readouterr().out == ""
    with open(target, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert records
    assert {r["stream_id"] for r in records} <= {str(client_id), str(Policy.create_id(client_id))}
