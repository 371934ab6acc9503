"""The Conversation and TradeProposal aggregates, and what makes a message acceptable."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.assistant.conversation import (
    HISTORY_TURNS,
    MAX_MESSAGE_CHARS,
    Conversation,
    MessageInvalid,
    Role,
    checked_message,
)
from domain.assistant.keywords import Intent
from domain.assistant.proposal import (
    PROPOSAL_TTL,
    ProposalAlreadyConfirmed,
    ProposalCancelled,
    ProposalExpired,
    ProposalStatus,
    TradeProposal,
    proposal_id_for,
)
from domain.errors import IllegalTransition
from tests.factories import UNIT_CLIENT_ID, UNIT_NOW, event_names, later, trade_proposal


@pytest.mark.parametrize("message", ["", "   ", "\n\t", None, 42])
def test_an_empty_message_is_refused(message: object) -> None:
    with pytest.raises(MessageInvalid) as refused:
        checked_message(message)
    assert refused.value.message == "message is required"
    assert refused.value.field == "message"


def test_a_message_over_4000_characters_is_refused_and_4000_is_fine() -> None:
    assert checked_message("x" * MAX_MESSAGE_CHARS) == "x" * MAX_MESSAGE_CHARS
    assert checked_message("  hi  ") == "hi"
    with pytest.raises(MessageInvalid, match="at most 4,000 characters"):
        checked_message("x" * (MAX_MESSAGE_CHARS + 1))


def test_a_conversation_records_each_turn_with_role_and_intent() -> None:
    conversation = Conversation.start(uuid4(), UNIT_CLIENT_ID, UNIT_NOW)
    intent_id = uuid4()
    conversation.record(Role.USER, "buy btc", later(1), Intent.BUY)
    conversation.record(Role.ASSISTANT, "proposed", later(1), Intent.BUY, intent_id)

    assert event_names(conversation.collect_events()) == [
        "Started",
        "TurnRecorded",
        "TurnRecorded",
    ]
    assert [(t.role, t.content, t.intent) for t in conversation.turns] == [
        (Role.USER, "buy btc", Intent.BUY),
        (Role.ASSISTANT, "proposed", Intent.BUY),
    ]
    assert conversation.turns[1].intent_id == intent_id


def test_the_model_sees_only_the_last_20_turns() -> None:
    conversation = Conversation.start(uuid4(), UNIT_CLIENT_ID, UNIT_NOW)
    for i in range(25):
        conversation.record(Role.USER, f"message {i}", later(i))
    history = conversation.history()
    assert len(history) == HISTORY_TURNS == 20
    assert history[0].content == "message 5"
    assert history[-1].content == "message 24"


def status(proposal: TradeProposal) -> ProposalStatus:
    """Read afresh (a bare attribute would stay narrowed to its first checked value)."""
    return proposal.status


def test_a_proposal_is_found_from_its_positions_id_and_expires_in_five_minutes() -> None:
    made = trade_proposal()
    assert made.id == proposal_id_for(made.position_id)
    assert made.expires_at == UNIT_NOW + PROPOSAL_TTL == UNIT_NOW + timedelta(minutes=5)
    assert status(made) is ProposalStatus.PENDING


def test_a_proposal_is_confirmed_once() -> None:
    made = trade_proposal()
    made.confirm(later(4))
    assert status(made) is ProposalStatus.CONFIRMED
    with pytest.raises(ProposalAlreadyConfirmed):
        made.confirm(later(4))
    made.record_outcome("open", later(4))
    assert status(made) is ProposalStatus.EXECUTED
    with pytest.raises(ProposalAlreadyConfirmed):
        made.confirm(later(4))


def test_an_expired_proposal_cannot_be_confirmed() -> None:
    made = trade_proposal()
    with pytest.raises(ProposalExpired):
        made.confirm(UNIT_NOW + PROPOSAL_TTL)
    made.expire(UNIT_NOW + PROPOSAL_TTL)
    assert status(made) is ProposalStatus.EXPIRED
    with pytest.raises(ProposalExpired):
        made.confirm(later(1))


def test_only_a_pending_proposal_past_its_time_expires() -> None:
    made = trade_proposal()
    with pytest.raises(IllegalTransition, match="not expired yet"):
        made.expire(later(4))
    made.confirm(later(4))
    with pytest.raises(IllegalTransition, match="confirmed"):
        made.expire(later(10))


def test_a_failed_execution_is_recorded_on_a_confirmed_proposal_only() -> None:
    made = trade_proposal()
    made.record_failure("Trading is disabled", later(1))
    assert status(made) is ProposalStatus.PENDING  # nothing to fail yet
    made.confirm(later(1))
    made.record_failure("Trading is disabled", later(1))
    assert status(made) is ProposalStatus.FAILED
    assert made.outcome == "Trading is disabled"


def test_a_cancelled_proposal_is_never_confirmed_and_a_confirmed_one_never_cancelled() -> None:
    cancelled = trade_proposal()
    cancelled.cancel(later(1))
    assert status(cancelled) is ProposalStatus.CANCELLED
    for act in (cancelled.confirm, cancelled.cancel, cancelled.expire):
        with pytest.raises(IllegalTransition):
            act(later(2))
    with pytest.raises(ProposalCancelled):
        cancelled.confirm(later(2))
    assert event_names(cancelled.collect_events()) == ["Proposed", "Cancelled"]

    executed = trade_proposal()
    executed.confirm(later(1))
    executed.record_outcome("open", later(1))
    with pytest.raises(ProposalAlreadyConfirmed, match=r"already confirmed and executed: .* open"):
        executed.cancel(later(2))
    with pytest.raises(ProposalExpired):
        trade_proposal().cancel(UNIT_NOW + PROPOSAL_TTL)
