"""A use case's decision runs through a unit of work: it loads through it, saves through it,
and is run again on fresh states when another writer saved first."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import ConcurrencyConflict, InvalidInput
from domain.ledger.unit_of_work import UnitOfWork, Work
from domain.policy import Policy
from domain.store import CONFLICT_ATTEMPTS
from infra.bootstrap import Services, build_services
from infra.clock import ManualClock
from infra.settings import Settings
from tests.factories import UNIT_NOW, register


@pytest.fixture
def other(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    """A second process: its own store and cache on the same database."""
    built = build_services(settings, clock=clock)
    yield built
    built.close()


class RaiseCapital:
    """Adds one to the policy's capital, noting what each attempt saw; the other process
    moves the policy on under the first `interfere` attempts, between load and save."""

    def __init__(self, other: Services, interfere: int = 0) -> None:
        self.other = other
        self.interfere = interfere
        self.seen: list[tuple[bool, Decimal]] = []

    def __call__(self, work: Work, client_id: UUID) -> Policy:
        policy = work.policy(client_id)
        self.seen.append((work.cached, policy.capital))
        if len(self.seen) <= self.interfere:
            self.other.ledger.configure_policy(client_id, policy.capital + 100)
        policy.reconfigure(
            policy.capital + 1, policy.risk_percent, policy.drawdown_limit_percent, UNIT_NOW
        )
        work.save(policy)
        return policy


def test_a_cached_first_run_starts_from_what_this_process_saw_then_retries_fresh(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)  # this process saw capital 1000
    other.ledger.configure_policy(client_id, Decimal("2000"))
    decide = RaiseCapital(other)

    saved = UnitOfWork(services.store).cached_first().run(decide, client_id)

    assert decide.seen == [(True, Decimal("1000")), (False, Decimal("2000"))]
    assert saved.capital == Decimal("2001")
    assert services.ledger.policy(client_id).capital == Decimal("2001")


def test_a_conflict_runs_the_whole_decision_again_on_the_newest_state(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)
    decide = RaiseCapital(other, interfere=2)

    saved = UnitOfWork(services.store).run(decide, client_id)

    assert decide.seen == [
        (False, Decimal("1000")),
        (False, Decimal("1100")),
        (False, Decimal("1200")),
    ]
    assert saved.capital == Decimal("1201")


def test_a_writer_that_always_wins_ends_in_a_conflict_error_with_nothing_saved(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)
    decide = RaiseCapital(other, interfere=CONFLICT_ATTEMPTS)

    with pytest.raises(ConcurrencyConflict):
        UnitOfWork(services.store).run(decide, client_id)

    assert len(decide.seen) == CONFLICT_ATTEMPTS
    final = services.ledger.policy(client_id).capital
    assert final == Decimal(1000 + 100 * CONFLICT_ATTEMPTS)  # only the other writer's


def test_an_aggregate_already_held_serves_only_the_first_attempt(
    services: Services, other: Services
) -> None:
    client_id, _ = register(services.ledger)
    held = services.ledger.policy(client_id)
    held.reconfigure(Decimal("5000"), held.risk_percent, held.drawdown_limit_percent, UNIT_NOW)
    decide = RaiseCapital(other, interfere=1)

    UnitOfWork(services.store).holding(held).run(decide, client_id)

    # The retry reads what the other writer saved, not the held copy.
    assert decide.seen == [(False, Decimal("5000")), (False, Decimal("5100"))]


def test_a_domain_error_on_fresh_state_is_the_answer_not_a_retry(services: Services) -> None:
    client_id, _ = register(services.ledger)
    attempts: list[bool] = []

    def refuse(work: Work, client_id: UUID) -> None:
        work.policy(client_id)
        attempts.append(work.cached)
        raise InvalidInput("capital", "refused")

    with pytest.raises(InvalidInput):
        UnitOfWork(services.store).cached_first().run(refuse, client_id)

    assert attempts == [True, False]  # a stale cached state may fail a check: once afresh
