"""The chat assistant: conversations, the emotional-trading guard and trade proposals.

It sits on top of the trading core and the core never imports it. Its aggregates were first
stored under `domain.conversation` and `domain.proposal`; those topics still resolve here.
"""

from __future__ import annotations

from enum import Enum

from eventsourcing.utils import register_topic

from domain.assistant import conversation, proposal
from domain.assistant.conversation import Role
from domain.assistant.keywords import Intent

CHAT_ENUMS: tuple[type[Enum], ...] = (Role, Intent)
"""The enums the chat's events record, for the event store to store by value."""

register_topic("domain.conversation", conversation)
register_topic("domain.proposal", proposal)
