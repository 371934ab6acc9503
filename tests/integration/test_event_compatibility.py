"""Events recorded before a field was added, or under the module their aggregate first lived
in, still decode and replay to the same state."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from domain.assistant.conversation import Conversation, Role
from domain.assistant.keywords import Intent
from domain.assistant.proposal import ProposalStatus, TradeProposal
from domain.market import Side
from domain.policy import Policy
from domain.position import Position, Status
from domain.protections import ProtectionSettings
from domain.store import EventStore
from infra.bootstrap import Services
from tests.factories import (
    UNIT_CLIENT_ID,
    UNIT_NOW,
    configured_policy,
    exit_fully_or_partly,
    later,
    opened_position,
    trade_proposal,
)


def test_exit_events_without_the_buy_back_fields_replay_as_plain_exits(
    services: Services,
) -> None:
    position = opened_position(quantity="0.1", fees={"USDC": Decimal(5)})
    exit_fully_or_partly(position, "55000", {"USDC": Decimal("5.5")})
    mapper = services.store.mapper
    older = []
    for event in position.collect_events():
        stored = mapper.to_stored_event(event)
        state = json.loads(stored.state)
        for added in ("order_quantity", "interest", "interest_quote"):
            state.pop(added, None)
        older.append(replace(stored, state=json.dumps(state).encode()))

    decoded: list[Any] = [mapper.to_domain_event(stored) for stored in older]
    replayed = None
    for event in decoded:
        replayed = event.mutate(replayed)

    submitted = next(e for e in decoded if isinstance(e, Position.ExitSubmitted))
    filled = next(e for e in decoded if isinstance(e, Position.ExitFilled))
    assert (submitted.order_quantity, submitted.interest) == (None, Decimal(0))
    assert filled.interest_quote == Decimal(0)
    assert isinstance(replayed, Position)
    assert replayed.status is Status.CLOSED
    assert replayed.exit_order_quantity == Decimal("0.1")
    assert replayed.realised_pnl == position.realised_pnl == Decimal("489.5")


FIRST_MODULES = {
    "domain.assistant.conversation": "domain.conversation",
    "domain.assistant.proposal": "domain.proposal",
}


def stored_as_first_written(store: EventStore, events: list[Any]) -> list[StoredEvent]:
    """The events as a release that kept the chat's modules directly in `domain` stored them."""
    stored = [store.mapper.to_stored_event(event) for event in events]
    for new, old in FIRST_MODULES.items():
        stored = [
            replace(
                s,
                topic=s.topic.replace(f"{new}:", f"{old}:"),
                state=s.state.replace(f"{new}:".encode(), f"{old}:".encode()),
            )
            for s in stored
        ]
    return stored


def replayed(store: EventStore, stored: list[StoredEvent]) -> Any:
    aggregate: Any = None
    for record in stored:
        event: Any = store.mapper.to_domain_event(record)
        aggregate = event.mutate(aggregate)
    return aggregate


def test_a_conversation_stored_under_its_first_topics_replays_with_its_turns(
    services: Services,
) -> None:
    store = services.store
    conversation = Conversation.start(uuid4(), UNIT_CLIENT_ID, UNIT_NOW)
    conversation.record(Role.USER, "buy BTC", later(1), intent=Intent.BUY)
    stored = stored_as_first_written(store, list(conversation.collect_events()))
    assert [s.topic for s in stored] == [
        "domain.conversation:Conversation.Started",
        "domain.conversation:Conversation.TurnRecorded",
    ]

    restored = replayed(store, stored)

    assert isinstance(restored, Conversation)
    [turn] = restored.history()
    assert (turn.role, turn.content, turn.intent) == (Role.USER, "buy BTC", Intent.BUY)


def test_a_proposal_stored_under_its_first_topics_replays_with_its_status(
    services: Services,
) -> None:
    store = services.store
    proposal = trade_proposal()
    stored = stored_as_first_written(store, list(proposal.collect_events()))
    assert stored[0].topic == "domain.proposal:TradeProposal.Proposed"

    restored = replayed(store, stored)

    assert isinstance(restored, TradeProposal)
    assert (restored.status, restored.side) == (ProposalStatus.PENDING, Side.LONG)


def test_policy_events_without_the_protections_fields_replay_with_the_defaults(
    services: Services,
) -> None:
    policy = configured_policy("1000", now=UNIT_NOW)
    position_id = uuid4()
    policy.reconfigure(Decimal(2000), Decimal(1), Decimal(4), later(1))
    policy.reserve_risk(position_id, Decimal(10), later(2))
    policy.realise(position_id, "2026-03", Decimal(-30), Decimal(0), later(3))
    mapper = services.store.mapper
    older = []
    for event in policy.collect_events():
        stored = mapper.to_stored_event(event)
        state = json.loads(stored.state)
        for added in (
            "stop_out_limit",
            "stop_out_window_hours",
            "cooldown_hours",
            "daily_loss_limit_percent",
            "max_open_positions",
            "filled_at",
            "exit_reason",
            "closed",
        ):
            state.pop(added, None)
        older.append(replace(stored, state=json.dumps(state).encode()))

    restored: Any = None
    for stored in older:
        decoded: Any = mapper.to_domain_event(stored)
        restored = decoded.mutate(restored)

    assert isinstance(restored, Policy)
    assert restored.capital == Decimal(2000)
    assert restored.protection == ProtectionSettings()
    assert restored.held == set()  # no risk left open: the position closed
    assert restored.stop_outs == []  # no exit reason: neither a stop-out nor a reset
    assert restored.daily_realised == {"2026-03-10": Decimal(-30)}  # the event's own day
