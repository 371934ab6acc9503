"""Trades proposed in chat execute only on an explicit confirmation, exactly once, within
five minutes, and only for the tenant who was offered them (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from starlette.testclient import TestClient

from domain.assistant.proposal import (
    ProposalAlreadyConfirmed,
    ProposalCancelled,
    ProposalStatus,
    TradeProposal,
    proposal_id_for,
)
from domain.assistant.proposals import Confirmation, TradeProposals
from domain.errors import InsufficientBalance
from domain.position import Position, Status
from domain.store import EventStore
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.factories import long_plan
from tests.fakes import groq as fake
from tests.fakes.groq import FakeGroq
from tests.integration.test_api_support import Tenant, new_tenant
from tests.integration.test_chat_support import (
    _no_proxy,
    api,
    caught_up,
    chat,
    groq,
    tool_results,
)
from workers.jobs import Job, Outcome
from workers.proposal_sweep import SWEEP_EVERY
from workers.worker import Worker

A = TypeVar("A", bound=Aggregate)
LONG_98000 = {"symbol": "BTCUSDC", "side": "LONG", "stop_price": "98000"}

__all__ = ["_no_proxy", "api", "groq"]  # the fixtures, from test_chat_support


def propose(
    api: TestClient,
    groq: FakeGroq,
    tenant: Tenant,
    arguments: dict[str, Any] | None = None,
    message: str = "Buy BTC with a stop at 98000",
) -> dict[str, Any]:
    groq.enqueue(
        fake.tool_calls(fake.call("propose_trade", arguments or LONG_98000, id="propose")),
        fake.text("I planned and validated it; confirm to execute."),
    )
    return chat(api, tenant, message)


def orders(services: Services, tenant: Tenant) -> int:
    assert services.paper is not None
    return services.paper.orders_filled(tenant.client_id)


def position(services: Services, tenant: Tenant, intent_id: str) -> Position:
    return services.ledger.position(tenant.client_id, UUID(intent_id))


def confirm(api: TestClient, tenant: Tenant, intent_id: str) -> Any:
    return api.post("/api/chat/confirm/", headers=tenant.headers, json={"intent_id": intent_id})


def say(api: TestClient, tenant: Tenant, message: str) -> Any:
    """A chat request whatever its answer (`chat` insists on a 200)."""
    return api.post("/api/chat/", headers=tenant.headers, json={"message": message})


# --- propose, then confirm ---


def test_a_proposed_trade_waits_for_confirmation_then_executes_exactly_once(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    reply = propose(api, groq, alice)

    intent_id = reply["intent_id"]
    assert reply["requires_confirmation"] is True
    assert reply["detected_intent"] == "buy"
    proposal = reply["proposal"]
    assert proposal["intent_id"] == intent_id
    assert proposal["status"] == "awaiting_confirmation"
    assert proposal["valid"] is True and proposal["violations"] == []
    assert proposal["quantity"] == "0.00500000"  # 1% of 1000 over a 2000 stop distance
    assert proposal["risk_amount"] == "10.00000000"
    assert proposal["expires_at"] == "2026-11-02T09:05:00Z"
    assert f'reply "confirm {intent_id}" within 5 minutes' in reply["message"]
    told = tool_results(groq.last_body)["propose"]
    assert told["status"] == "awaiting_confirmation"
    assert told["instructions"].startswith("NOT executed")
    # Planned and validated, nothing sent to the exchange.
    assert position(services, alice, intent_id).status is Status.VALIDATED
    assert orders(services, alice) == 0

    confirmed = confirm(api, alice, intent_id)

    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["position"]["status"] == "open"
    assert confirmed.json()["position"]["quantity"] == "0.00500000"
    assert orders(services, alice) == 1
    again = confirm(api, alice, intent_id)
    assert again.status_code == 409
    assert again.json()["code"] == "already_confirmed"
    in_chat = api.post(
        "/api/chat/", headers=alice.headers, json={"message": f"confirm {intent_id}"}
    )
    assert in_chat.status_code == 409
    assert orders(services, alice) == 1


def test_when_groq_fails_after_proposing_the_proposal_still_needs_confirmation(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    groq.enqueue(
        fake.tool_calls(fake.call("propose_trade", LONG_98000)),
        fake.server_error(503),
    )

    reply = chat(api, alice, "Buy BTC with a stop at 98000")

    assert reply["message"].startswith("The AI model is unavailable right now")
    assert reply["requires_confirmation"] is True
    assert reply["proposal"]["status"] == "awaiting_confirmation"
    assert f"confirm {reply['intent_id']}" in reply["message"]
    assert orders(services, alice) == 0


def test_confirm_in_the_chat_executes_and_is_recorded_in_the_conversation(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    proposed = propose(api, groq, alice)
    requests_before = len(groq.chat_bodies)

    reply = chat(api, alice, f"Confirm {proposed['intent_id']}", proposed["conversation_id"])

    assert reply["execution"]["status"] == "open"
    assert reply["message"].startswith("Confirmed and executed: LONG 0.00500000 BTCUSDC")
    assert reply["detected_intent"] == "buy"
    assert reply["requires_confirmation"] is False
    assert len(groq.chat_bodies) == requests_before  # the model is not asked
    assert orders(services, alice) == 1
    caught_up(services)
    assert [r.status for r in services.read_models.positions(alice.client_id)] == ["open"]


def test_two_concurrent_confirmations_execute_once_and_the_other_is_refused(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = UUID(propose(api, groq, alice)["intent_id"])
    store = RacingStore(services.store, parties=2)
    desk = TradeProposals(services.ledger, services.read_models, store)
    outcomes: list[Confirmation | Exception] = []

    def confirm_once() -> None:
        try:
            outcomes.append(desk.confirm(alice.client_id, intent_id))
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=confirm_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    confirmations = [o for o in outcomes if isinstance(o, Confirmation)]
    refusals = [o for o in outcomes if isinstance(o, ProposalAlreadyConfirmed)]
    assert (len(confirmations), len(refusals)) == (1, 1), outcomes
    assert store.conflicts == 1  # both decided on the pending proposal; one save lost
    assert orders(services, alice) == 1
    assert services.ledger.position(alice.client_id, intent_id).status is Status.OPEN
    history = [type(e).__name__ for e in services.store.events.get(proposal_id_for(intent_id))]
    assert history == ["Proposed", "Confirmed", "Executed"]
    # Over HTTP the loser's answer is a 409.
    assert confirm(api, alice, str(intent_id)).status_code == 409


def test_two_concurrent_http_confirmations_answer_one_200_and_one_409(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        start.wait(timeout=10)
        statuses.append(confirm(api, alice, intent_id).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [200, 409]
    assert orders(services, alice) == 1


class RacingStore:
    """The event store, except that each thread's first read of a proposal waits until every
    racer has read it, so all of them decide on the same pending version."""

    def __init__(self, store: EventStore, parties: int) -> None:
        self.store = store
        self.barrier = threading.Barrier(parties)
        self.local = threading.local()
        self.conflicts = 0

    def load(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        found = self.store.load(aggregate_id, kind)
        if kind is TradeProposal and not getattr(self.local, "waited", False):
            self.local.waited = True
            self.barrier.wait(timeout=20)
        return found

    def save(self, *objs: Aggregate) -> object:
        try:
            return self.store.save(*objs)
        except IntegrityError:
            self.conflicts += 1
            raise


# --- what cannot be confirmed ---


def test_an_expired_proposal_cannot_be_confirmed_and_its_risk_is_released(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant, clock: ManualClock
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    assert services.ledger.policy(alice.client_id).open_risk_excluding(UUID(int=0)) == 10
    clock.advance(timedelta(minutes=5, seconds=1))

    refused = confirm(api, alice, intent_id)

    assert refused.status_code == 409
    assert refused.json()["code"] == "proposal_expired"
    assert "expired unconfirmed" in refused.json()["error"]
    assert position(services, alice, intent_id).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}
    assert orders(services, alice) == 0
    assert confirm(api, alice, intent_id).json()["code"] == "proposal_expired"


def test_a_stale_proposal_is_cancelled_when_its_tenant_next_chats(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant, clock: ManualClock
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    caught_up(services)
    clock.advance(timedelta(minutes=6))
    groq.enqueue(fake.text("hello again"))

    chat(api, alice, "hello")

    assert position(services, alice, intent_id).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}
    caught_up(services)
    context = api.get("/api/chat/context/", headers=alice.headers).json()
    assert context["risk"]["open_risk"] == "0.00000000"


def test_the_worker_expires_a_proposal_whose_tenant_never_comes_back(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant, clock: ManualClock
) -> None:
    intent_id = UUID(propose(api, groq, alice)["intent_id"])
    bob = new_tenant(services)  # validated through the API: no proposal, nothing expires
    validated = services.ledger.plan_position(bob.client_id, long_plan())
    services.ledger.validate_position(bob.client_id, validated.id)
    clock.advance(timedelta(minutes=4, seconds=59))
    caught_up(services)
    assert Worker.from_services(services, jobs=[Job.RECONCILE]).tick() == []

    clock.advance(timedelta(seconds=2))
    caught_up(services)
    [would] = Worker.from_services(services, jobs=[Job.RECONCILE], dry_run=True).tick()
    assert (would.outcome, would.position_id) == (Outcome.DRY_RUN, intent_id)
    assert position(services, alice, str(intent_id)).status is Status.VALIDATED

    worker = Worker.from_services(services, jobs=[Job.RECONCILE])
    [done] = worker.tick()

    assert (done.job, done.outcome, done.status) == (Job.RECONCILE, Outcome.DONE, "cancelled")
    assert (done.position_id, done.client_id) == (intent_id, alice.client_id)
    assert position(services, alice, str(intent_id)).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}
    assert worker.metrics.proposals_expired == 1
    assert confirm(api, alice, str(intent_id)).json()["code"] == "proposal_expired"
    assert services.ledger.position(bob.client_id, validated.id).status is Status.VALIDATED
    clock.advance(SWEEP_EVERY)
    caught_up(services)
    assert worker.tick() == []  # expired once


def _cancelled(proposal: TradeProposal, now: datetime) -> None:
    proposal.cancel(now)


def _failed(proposal: TradeProposal, now: datetime) -> None:
    proposal.confirm(now)
    proposal.record_failure("Insufficient balance", now)


def _expired(proposal: TradeProposal, now: datetime) -> None:
    proposal.expire(now + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("first_step", "note"),
    [
        (_cancelled, "Trade proposal cancelled by the trader"),
        (_failed, "Execution failed: Insufficient balance"),
        (_expired, "Trade proposal expired unconfirmed"),
    ],
    ids=["cancelled", "failed", "expired"],
)
def test_the_sweep_releases_the_risk_of_a_proposal_that_ended_unexecuted_before_its_release(
    api: TestClient,
    services: Services,
    groq: FakeGroq,
    alice: Tenant,
    clock: ManualClock,
    first_step: Callable[[TradeProposal, datetime], None],
    note: str,
) -> None:
    """The proposal's end is recorded, then the process stops before its position is
    cancelled: the reserved risk must not stay held for ever."""
    intent_id = UUID(propose(api, groq, alice)["intent_id"])
    proposals = TradeProposals(services.ledger, services.read_models, services.store)
    proposal = proposals.proposal(alice.client_id, intent_id)
    first_step(proposal, clock.now())
    services.store.save(proposal)  # ... and nothing more: the release never ran
    assert services.ledger.policy(alice.client_id).open_risk != {}

    clock.advance(timedelta(minutes=5, seconds=1))
    caught_up(services)
    worker = Worker.from_services(services, jobs=[Job.RECONCILE])
    [done] = worker.tick()

    assert (done.outcome, done.status, done.position_id) == (Outcome.DONE, "cancelled", intent_id)
    assert done.detail == f"{note}; its reserved risk is released"
    assert position(services, alice, str(intent_id)).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}
    clock.advance(SWEEP_EVERY)
    caught_up(services)
    assert worker.tick() == []  # released once


class CountingStore:
    """The event store, counting the reads of each aggregate."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.loads: Counter[UUID] = Counter()

    def load(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        self.loads[aggregate_id] += 1
        return self.store.load(aggregate_id, kind)

    def save(self, *objs: Aggregate) -> object:
        return self.store.save(*objs)


def test_the_sweep_reads_once_that_a_position_waits_on_no_proposal(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant, clock: ManualClock
) -> None:
    intent_id = UUID(propose(api, groq, alice)["intent_id"])
    bob = new_tenant(services)
    validated = services.ledger.plan_position(bob.client_id, long_plan())
    services.ledger.validate_position(bob.client_id, validated.id)
    clock.advance(timedelta(minutes=6))
    caught_up(services)
    store = CountingStore(services.store)
    proposals = TradeProposals(services.ledger, services.read_models, store)

    sweeps = [proposals.abandoned() for _ in range(3)]

    assert [[row.position_id for row in found] for found in sweeps] == [[intent_id]] * 3
    assert store.loads[proposal_id_for(validated.id)] == 1
    assert store.loads[proposal_id_for(intent_id)] == 3  # still pending: read each time


def test_another_tenants_intent_is_not_found(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    mallory = new_tenant(services)

    by_endpoint = confirm(api, mallory, intent_id)
    by_chat = api.post(
        "/api/chat/", headers=mallory.headers, json={"message": f"confirm {intent_id}"}
    )

    for refused in (by_endpoint, by_chat):
        assert refused.status_code == 404
        assert refused.json()["code"] == "intent_not_found"
    assert orders(services, mallory) == 0
    assert position(services, alice, intent_id).status is Status.VALIDATED
    assert confirm(api, alice, intent_id).status_code == 200  # still alice's to confirm


def test_an_unknown_intent_is_not_found(api: TestClient, alice: Tenant) -> None:
    refused = confirm(api, alice, "8a693456-4fa3-42d5-8696-2e39169bab55")
    assert refused.status_code == 404


def test_a_proposal_validate_rejects_needs_no_confirmation_and_cannot_be_confirmed(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    wrong_side = {"symbol": "BTCUSDC", "side": "LONG", "stop_price": "101000", "quantity": "0.001"}
    reply = propose(api, groq, alice, wrong_side, message="buy 0.001 btc, stop 101000")

    assert reply["requires_confirmation"] is False
    proposal = reply["proposal"]
    assert proposal["status"] == "rejected" and proposal["valid"] is False
    assert proposal["violations"]
    assert "VALIDATE rejected it" in reply["message"]
    assert tool_results(groq.last_body)["propose"]["status"] == "rejected"
    assert confirm(api, alice, reply["intent_id"]).status_code == 404
    assert orders(services, alice) == 0


def test_the_guard_blocks_a_trade_proposed_in_a_panic(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    reply = propose(
        api, groq, alice, message="YOLO all in NOW, it's guaranteed, I must recover my losses"
    )

    assert reply["requires_confirmation"] is False
    assert reply["proposal"] is None and reply["intent_id"] is None
    assert "The emotional-trading guard blocked this trade" in reply["message"]
    told = tool_results(groq.last_body)["propose"]
    assert told["status"] == "blocked"
    assert told["guard"]["risk_level"] == "CRITICAL"
    assert services.read_models.positions(alice.client_id) == []


def test_a_high_guard_score_still_proposes_with_the_warning_attached(
    api: TestClient, groq: FakeGroq, alice: Tenant
) -> None:
    reply = propose(api, groq, alice, message="Buy now, it's guaranteed, I need to recover")

    assert reply["requires_confirmation"] is True
    guard = reply["proposal"]["guard"]
    assert guard["risk_level"] == "HIGH"
    assert guard["requires_confirmation"] is True
    assert guard["response_message"].startswith("Strong signs of emotional trading")


def test_a_failed_execution_is_recorded_and_releases_the_reserved_risk(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("2500000"))  # 0.005 BTC now costs 12,500

    with pytest.raises(InsufficientBalance):
        services.assistant.confirm(alice.client_id, UUID(intent_id))

    proposal = services.assistant.proposals.proposal(alice.client_id, UUID(intent_id))
    assert proposal.status is ProposalStatus.FAILED
    assert position(services, alice, intent_id).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}


# --- confirming twice, and keys on the chat message ---


def test_a_second_confirm_in_the_chat_says_the_trade_already_executed_and_orders_nothing(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    first = say(api, alice, f"confirm {intent_id}")
    assert first.status_code == 200, first.text

    again = say(api, alice, f"confirm {intent_id}")

    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "already_confirmed"
    assert body["position_id"] == intent_id == first.json()["execution"]["id"]
    assert "already confirmed and executed" in body["error"]
    assert "open" in body["error"] and "fail" not in body["error"].lower()
    assert orders(services, alice) == 1


def test_a_second_confirm_after_a_failed_execution_says_it_failed_and_orders_nothing(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("2500000"))  # 0.005 BTC now costs 12,500
    assert confirm(api, alice, intent_id).status_code == 400  # insufficient balance

    again = confirm(api, alice, intent_id)

    assert again.status_code == 409
    assert again.json()["code"] == "already_confirmed"
    assert "execution failed" in again.json()["error"]
    assert orders(services, alice) == 0


# --- cancelling a proposal ---


def cancel(api: TestClient, tenant: Tenant, intent_id: str) -> Any:
    return api.post("/api/chat/cancel/", headers=tenant.headers, json={"intent_id": intent_id})


def test_a_cancelled_proposal_releases_its_risk_and_can_never_be_confirmed(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]

    cancelled = cancel(api, alice, intent_id)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["intent_id"] == intent_id
    assert cancelled.json()["status"] == "cancelled"
    history = [
        type(e).__name__ for e in services.store.events.get(proposal_id_for(UUID(intent_id)))
    ]
    assert history == ["Proposed", "Cancelled"]
    assert position(services, alice, intent_id).status is Status.CANCELLED
    assert services.ledger.policy(alice.client_id).open_risk == {}
    for refused in (confirm(api, alice, intent_id), say(api, alice, f"confirm {intent_id}")):
        assert refused.status_code == 409
        assert refused.json()["code"] == "proposal_cancelled"
        assert "cancelled" in refused.json()["error"]
    again = cancel(api, alice, intent_id)
    assert again.status_code == 409 and again.json()["code"] == "proposal_cancelled"
    assert orders(services, alice) == 0


def test_cancel_in_the_chat_cancels_the_proposal(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    proposed = propose(api, groq, alice)
    requests_before = len(groq.chat_bodies)

    reply = chat(api, alice, f"cancel {proposed['intent_id']}", proposed["conversation_id"])

    assert reply["message"].startswith("Cancelled")
    assert reply["requires_confirmation"] is False
    assert len(groq.chat_bodies) == requests_before  # the model is not asked
    assert position(services, alice, proposed["intent_id"]).status is Status.CANCELLED
    assert confirm(api, alice, proposed["intent_id"]).json()["code"] == "proposal_cancelled"


def test_an_executed_proposal_cannot_be_cancelled(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    assert confirm(api, alice, intent_id).status_code == 200

    refused = cancel(api, alice, intent_id)

    assert refused.status_code == 409
    assert refused.json()["code"] == "already_confirmed"
    assert position(services, alice, intent_id).status is Status.OPEN


def test_another_tenants_proposal_cannot_be_cancelled(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = propose(api, groq, alice)["intent_id"]
    mallory = new_tenant(services)

    for refused in (
        cancel(api, mallory, intent_id),
        say(api, mallory, f"cancel {intent_id}"),
        cancel(api, alice, "8a693456-4fa3-42d5-8696-2e39169bab55"),
    ):
        assert refused.status_code == 404
        assert refused.json()["code"] == "intent_not_found"
    assert position(services, alice, intent_id).status is Status.VALIDATED
    assert confirm(api, alice, intent_id).status_code == 200  # still alice's to confirm


def test_a_cancellation_racing_a_confirmation_lets_exactly_one_through(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    intent_id = UUID(propose(api, groq, alice)["intent_id"])
    store = RacingStore(services.store, parties=2)
    desk = TradeProposals(services.ledger, services.read_models, store)
    outcomes: dict[str, object] = {}

    def run(name: str, act: Any) -> None:
        try:
            outcomes[name] = act(alice.client_id, intent_id)
        except Exception as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=run, args=("confirm", desk.confirm)),
        threading.Thread(target=run, args=("cancel", desk.cancel)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert store.conflicts == 1  # both decided on the pending proposal; one save lost
    history = [type(e).__name__ for e in services.store.events.get(proposal_id_for(intent_id))]
    status = services.ledger.position(alice.client_id, intent_id).status
    if isinstance(outcomes["confirm"], Confirmation):
        assert isinstance(outcomes["cancel"], ProposalAlreadyConfirmed), outcomes
        assert history == ["Proposed", "Confirmed", "Executed"]
        assert (status, orders(services, alice)) == (Status.OPEN, 1)
    else:
        assert isinstance(outcomes["confirm"], ProposalCancelled), outcomes
        assert history == ["Proposed", "Cancelled"]
        assert (status, orders(services, alice)) == (Status.CANCELLED, 0)
