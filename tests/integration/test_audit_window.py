"""A tenant's export over a window still includes streams that began before the window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from infra.bootstrap import Services
from infra.clock import ManualClock
from projections.audit import ExportFilter, export_events
from tests.factories import open_long, register


def test_since_a_notification_id_keeps_a_position_planned_before_it(
    services: Services, clock: ManualClock
) -> None:
    alice, _ = register(services.ledger)
    bob, _ = register(services.ledger)
    position = open_long(services.ledger, alice)
    open_long(services.ledger, bob)
    cut = services.store.recorder.max_notification_id() or 0
    clock.advance(timedelta(hours=1))
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal(101000))
    services.ledger.close_position(alice, position.id)

    records = list(export_events(services.store, ExportFilter(client_id=alice, since_id=cut)))

    topics = [r["topic"].rsplit(".", 1)[-1] for r in records if r["stream_id"] == str(position.id)]
    assert topics == [
        "ExchangeStopCancelled",  # the insurance stop goes first
        "ExitTriggered",
        "ExitSubmitted",
        "ExitFilled",
        "Closed",
    ]
    assert all(r["notification_id"] > cut for r in records)
    assert all(str(bob) not in str(r) for r in records)


def test_since_a_time_keeps_a_position_planned_before_it(
    services: Services, clock: ManualClock
) -> None:
    alice, _ = register(services.ledger)
    position = open_long(services.ledger, alice)
    clock.advance(timedelta(days=2))
    window_start = clock.now()
    assert services.paper is not None
    services.ledger.close_position(alice, position.id)

    records = list(
        export_events(services.store, ExportFilter(client_id=alice, since_time=window_start))
    )

    ours = [r for r in records if r["stream_id"] == str(position.id)]
    assert [r["topic"].rsplit(".", 1)[-1] for r in ours][-1] == "Closed"
    assert all(r["timestamp"] >= window_start.isoformat() for r in records)


def test_a_tenants_export_includes_its_paper_orders_and_no_one_elses(services: Services) -> None:
    alice, _ = register(services.ledger)
    bob, _ = register(services.ledger)
    mine = open_long(services.ledger, alice)
    theirs = open_long(services.ledger, bob)

    exported = [
        r
        for r in export_events(services.store, ExportFilter(client_id=alice))
        if r["topic"].endswith("PaperOrder.Filled")
    ]

    assert [r["payload"]["client_order_id"] for r in exported] == [mine.entry_order_id]
    assert theirs.entry_order_id is not None
    assert theirs.entry_order_id not in str(exported)
