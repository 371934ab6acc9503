"""Each process keeps the newest state it has seen of each aggregate and starts commands from
it; another process moving an aggregate on must never let a stale copy decide.

`other` is a second process: its own services and store (and cache) on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.errors import RiskRuleViolated
from domain.identity import policy_id_for
from domain.ledger import Ledger
from domain.market import BTCUSDC, Side
from domain.policy import Policy
from domain.position import Position, Status
from domain.store import EventStore
from infra.bootstrap import Services, build_services
from infra.clock import ManualClock
from infra.settings import Settings
from tests.factories import UNIT_NOW, long_plan, open_long, register


@pytest.fixture
def other(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    yield built
    built.close()


def planned(client_id: UUID) -> Position:
    return Position.plan(
        position_id=uuid4(),
        client_id=client_id,
        rules=BTCUSDC,
        side=Side.LONG,
        entry_price=Decimal("100000"),
        stop_price=Decimal("98000"),
        target_price=None,
        quantity=Decimal("0.001"),
        capital_base=Decimal("1000"),
        now=UNIT_NOW,
    )


def validated(ledger: Ledger) -> tuple[UUID, Position]:
    """A new client's position, VALIDATED: this process has seen it and the policy."""
    client_id, _ = register(ledger)
    position = ledger.plan_position(client_id, long_plan())
    assert ledger.validate_position(client_id, position.id).status is Status.VALIDATED
    return client_id, position


def test_a_cached_load_is_what_this_process_saw_and_a_plain_load_catches_up(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)
    policy_id = policy_id_for(client_id)
    seen = services.store.load(policy_id, Policy)
    assert seen is not None

    other.ledger.configure_policy(client_id, Decimal("2000"))

    cached = services.store.load(policy_id, Policy, cached=True)
    assert cached is not None and cached.capital == Decimal("1000")  # not read again
    fresh = services.store.load(policy_id, Policy)
    assert fresh is not None and fresh.capital == Decimal("2000")
    assert fresh.version == seen.version + 1
    # A plain load also refreshes what later cached loads start from.
    again = services.store.load(policy_id, Policy, cached=True)
    assert again is not None and again.version == fresh.version


def test_a_copy_handed_out_never_changes_the_cached_state(services: Services) -> None:
    client_id, _ = register(services.ledger)
    policy_id = policy_id_for(client_id)
    copy = services.store.load(policy_id, Policy, cached=True)
    assert copy is not None
    copy.reserve_risk(uuid4(), Decimal(5), services.clock.now())  # changed, never saved

    cached = services.store.load(policy_id, Policy, cached=True)
    assert cached is not None and cached.open_risk == {} and cached.version == copy.version - 1


def test_a_save_fails_when_an_aggregate_it_read_has_moved_on(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)
    read = services.store.load(policy_id_for(client_id), Policy)
    assert read is not None
    kept = planned(client_id)
    services.store.save(kept, unchanged=[read])  # unchanged: saved
    assert services.store.load(kept.id, Position) is not None

    other.ledger.configure_policy(client_id, Decimal("2000"))
    refused = planned(client_id)
    with pytest.raises(IntegrityError):
        services.store.save(refused, unchanged=[read])

    assert other.store.load(refused.id, Position) is None  # nothing half-written
    assert services.store.load(refused.id, Position) is None


def test_a_store_that_cannot_check_reads_refuses_to_save_without_the_check() -> None:
    store = EventStore(env={})  # the library's in-memory recorder knows no such check
    policy = Policy.configure(uuid4(), Decimal("1000"), UNIT_NOW)
    store.save(policy)
    position = planned(policy.client_id)

    with pytest.raises(TypeError, match="cannot check"):
        store.save(position, unchanged=[policy])
    assert store.load(position.id, Position) is None


def test_planning_sizes_on_the_capital_another_process_configured(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger, capital="1000")
    services.ledger.policy(client_id)  # this process has seen capital 1000
    other.ledger.configure_policy(client_id, Decimal("2000"))

    position = services.ledger.plan_position(client_id, long_plan())

    # 1% of 2000 over a 2000 stop distance, not 1% of the 1000 this process last saw.
    assert position.quantity == Decimal("0.01")


def test_a_pause_recorded_by_another_process_stops_the_entry(
    services: Services, other: Services
) -> None:
    ledger = services.ledger
    client_id, position = validated(ledger)

    other.ledger.observe_drawdown(client_id, "2026-11", Decimal(4))  # e.g. a stop's loss

    with pytest.raises(RiskRuleViolated, match="paused"):
        ledger.execute_position(client_id, position.id)
    assert ledger.position(client_id, position.id).status is Status.VALIDATED
    assert services.paper is not None and services.paper.orders_filled(client_id) == 0


def test_a_stale_copy_never_answers_with_a_false_refusal(
    services: Services, other: Services
) -> None:
    ledger = services.ledger
    client_id, position = validated(ledger)

    other.ledger.execute_position(client_id, position.id)  # now OPEN
    closed = ledger.close_position(client_id, position.id)  # VALIDATED could not be closed

    assert closed.status is Status.CLOSED
    assert services.paper is not None and services.paper.orders_filled(client_id) == 2


def test_a_stale_copy_loses_to_the_other_process_and_nothing_is_lost(
    services: Services, other: Services
) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id, stop="98000")
    assert other.ledger.adjust_stop(client_id, position.id, Decimal("99000"), span=1)

    closed = ledger.close_position(client_id, position.id)

    assert closed.status is Status.CLOSED
    assert closed.stop_price == Decimal("99000")  # the other process's event is kept
    versions = [event.originator_version for event in services.store.events.get(position.id)]
    assert versions == list(range(1, closed.version + 1))


def test_the_check_covers_every_aggregate_read_and_every_event_written(
    services: Services,
) -> None:
    recorder = services.store.recorder
    first, second, written = uuid4(), uuid4(), uuid4()
    recorder.insert_events([StoredEvent(first, 1, "t", b"{}"), StoredEvent(second, 1, "t", b"{}")])
    recorder.insert_events([StoredEvent(second, 2, "t", b"{}")])  # moved on past version 1
    two = [StoredEvent(written, 1, "t", b"{}"), StoredEvent(written, 2, "t", b"{}")]

    with pytest.raises(IntegrityError):
        recorder.insert_events(two, unchanged={first: 1, second: 1})
    assert recorder.select_events(written) == []

    recorder.insert_events(two, unchanged={first: 1, second: 2})
    assert [e.originator_version for e in recorder.select_events(written)] == [1, 2]
