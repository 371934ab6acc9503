"""Ports for the AI assistant: the chat model it talks to, and how that model can fail."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, get_args

from domain.errors import DomainError

UnavailableKind = Literal[
    "no_api_key",
    "auth",
    "rate_limited",
    "timeout",
    "server_error",
    "decommissioned",
    "connection",
    "bad_request",
]

UNAVAILABLE_KINDS: tuple[UnavailableKind, ...] = get_args(UnavailableKind)


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asked for; `arguments` is the raw JSON text, unvalidated on purpose."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelReply:
    """One assistant turn: text, tool calls, or both, plus the model that actually answered."""

    content: str | None
    tool_calls: tuple[ToolCall, ...]
    model: str


class ModelUnavailable(DomainError):
    """The model gave no usable answer; `kind` tells the caller whether retrying can help."""

    code = "model_unavailable"

    def __init__(
        self,
        reason: str,
        kind: UnavailableKind,
        *,
        retry_after_seconds: Decimal | None = None,
    ) -> None:
        if kind not in UNAVAILABLE_KINDS:
            raise ValueError(f"unknown ModelUnavailable kind: {kind!r}")
        super().__init__(reason)
        self.reason = reason
        self.kind: UnavailableKind = kind
        self.retry_after_seconds = retry_after_seconds


class ChatModel(Protocol):
    """An OpenAI-style chat completion endpoint with tool calling."""

    def complete(
        self, messages: list[dict[str, object]], tools: list[dict[str, object]]
    ) -> ModelReply:
        """Return the next assistant turn, or raise ModelUnavailable."""
        ...
