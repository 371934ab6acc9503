"""Conversation: one tenant's chat with the assistant, every turn an event.

Only what was said is recorded (the user's words, the assistant's answer, the detected
intent and the trade proposal a turn made); tool calls and prompts are rebuilt per turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.assistant.keywords import Intent
from domain.errors import InvalidInput, NotFound

MAX_MESSAGE_CHARS = 4000
HISTORY_TURNS = 20  # what the model sees of a conversation


class Role(Enum):
    USER = "user"
    ASSISTANT = "assistant"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"

    def __init__(self, conversation_id: UUID) -> None:
        super().__init__(f"Conversation {conversation_id} not found")


class MessageInvalid(InvalidInput):
    """A chat or guard message that is empty or too long; the reply names only the reason."""

    code = "invalid_message"

    def __init__(self, reason: str) -> None:
        super().__init__("message", reason)
        self.message = reason


def checked_message(message: object) -> str:
    """The message to act on: a non-blank string of at most 4,000 characters."""
    if not isinstance(message, str) or not message.strip():
        raise MessageInvalid("message is required")
    if len(message) > MAX_MESSAGE_CHARS:  # as sent, as the API's document counts it
        raise MessageInvalid(f"message must be at most {MAX_MESSAGE_CHARS:,} characters")
    return message.strip()


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str
    intent: Intent | None
    intent_id: UUID | None  # the trade proposal this turn made or confirmed
    at: datetime


class Conversation(LedgerAggregate):
    class Started(Aggregate.Created):
        client_id: UUID

    @event(Started)
    def __init__(self, client_id: UUID) -> None:
        self.client_id = client_id
        self.turns: list[Turn] = []

    @classmethod
    def start(cls, conversation_id: UUID, client_id: UUID, now: datetime) -> Conversation:
        return cls._create(cls.Started, id=conversation_id, timestamp=now, client_id=client_id)

    class TurnRecorded(Aggregate.Event):
        role: Role
        content: str
        intent: Intent | None
        intent_id: UUID | None

        def apply(self, aggregate: Conversation) -> None:
            aggregate.turns.append(
                Turn(self.role, self.content, self.intent, self.intent_id, self.timestamp)
            )

    def record(
        self,
        role: Role,
        content: str,
        now: datetime,
        intent: Intent | None = None,
        intent_id: UUID | None = None,
    ) -> None:
        self.trigger_event(
            self.TurnRecorded,
            timestamp=now,
            role=role,
            content=content,
            intent=intent,
            intent_id=intent_id,
        )

    def history(self, limit: int = HISTORY_TURNS) -> list[Turn]:
        return self.turns[-limit:] if limit > 0 else []
