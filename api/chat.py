"""Robson AI: chat with tool calls, the model's status, the tenant's trading context, the
explicit confirmation that alone executes a trade the assistant proposed, and its cancellation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from uuid import UUID

from pydantic import ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import ErrorHandler, error_body
from api.operations import Call, Operation, Reply
from api.schemas import Empty, Input, Message, NoQuery, Output
from domain.assistant.chat import ChatReply
from domain.assistant.conversation import MAX_MESSAGE_CHARS, MessageInvalid
from domain.assistant.keywords import parse_confirmation
from domain.assistant.prompt import cancellation_message
from domain.formats import Document

IntentName = Literal["buy", "sell", "analyze", "balance", "positions", "risk", "general"]


class ChatRequest(Input):
    model_config = ConfigDict(json_schema_extra={"required": ["message"]})

    message: Message = Field(
        None,
        description=f"1 to {MAX_MESSAGE_CHARS:,} characters; "
        '"confirm <intent_id>" executes a proposed trade, "cancel <intent_id>" drops it',
    )
    conversation_id: UUID | None = Field(None, description="continue this conversation")


class ConfirmRequest(Input):
    intent_id: UUID = Field(description="the intent id a chat reply proposed (the position id)")


class CancelRequest(Input):
    intent_id: UUID = Field(description="the intent id a chat reply proposed (the position id)")


class ChatReplyView(Output):
    success: bool
    message: str
    conversation_id: str
    detected_intent: IntentName
    requires_confirmation: bool
    intent_id: str | None
    proposal: dict[str, object] | None
    execution: dict[str, object] | None
    model: str | None
    ai_available: bool


class ChatStatusView(Output):
    available: bool
    model: str
    provider: str
    configured: bool
    last_error: str | None


class ConfirmReplyView(Output):
    success: bool
    message: str
    intent_id: str
    position: dict[str, object]


class CancelReplyView(Output):
    success: bool
    message: str
    intent_id: str
    status: Literal["cancelled"]


class ChatContextView(Output):
    success: bool
    as_of: str
    balances: list[dict[str, object]]
    positions: list[dict[str, object]]
    recent_trades: list[dict[str, object]]
    prices: dict[str, str]
    monthly_pnl: dict[str, object] | None
    risk: dict[str, object]
    unavailable: list[str]


def reply_payload(reply: ChatReply) -> Document:
    return {
        "success": True,
        "message": reply.message,
        "conversation_id": str(reply.conversation_id),
        "detected_intent": reply.detected_intent.value,
        "requires_confirmation": reply.requires_confirmation,
        "intent_id": None if reply.intent_id is None else str(reply.intent_id),
        "proposal": reply.proposal,
        "execution": reply.execution,
        "model": reply.model,
        "ai_available": reply.ai_available,
    }


def chat(call: Call[ChatRequest, NoQuery]) -> Reply:
    message = call.body.message
    confirming = parse_confirmation(message) if isinstance(message, str) else None
    if confirming is not None:  # it may send an order: an unknown outcome spends the key
        call.working_on(confirming)
    reply = call.services.assistant.chat(
        call.principal.client_id, call.body.message, call.body.conversation_id
    )
    if reply.execution is not None:
        call.metrics.count_orders("entry")
    return Reply(reply_payload(reply))


def chat_status(call: Call[Empty, NoQuery]) -> Reply:
    status = call.services.assistant.status()
    return Reply(
        {
            "available": status.available,
            "model": status.model,
            "provider": status.provider,
            "configured": status.configured,
            "last_error": status.last_error,
        }
    )


def chat_context(call: Call[Empty, NoQuery]) -> Reply:
    document = call.services.assistant.context_document(call.principal.client_id)
    return Reply({"success": True, **document})


def chat_confirm(call: Call[ConfirmRequest, NoQuery]) -> Reply:
    call.working_on(call.body.intent_id)
    confirmation = call.services.assistant.confirm(call.principal.client_id, call.body.intent_id)
    call.metrics.count_orders("entry")
    position = confirmation.position
    return Reply(
        {
            "success": True,
            "message": f"Trade executed: position {position['id']} is {position['status']}",
            "intent_id": str(confirmation.intent_id),
            "position": position,
        }
    )


def chat_cancel(call: Call[CancelRequest, NoQuery]) -> Reply:
    intent_id = call.body.intent_id
    call.working_on(intent_id)
    call.services.assistant.cancel(call.principal.client_id, intent_id)
    return Reply(
        {
            "success": True,
            "message": cancellation_message(intent_id),
            "intent_id": str(intent_id),
            "status": "cancelled",
        }
    )


def invalid_message(request: Request, exc: Exception) -> Response:
    """An empty or overlong message is a bad request (400), as the spec answers it."""
    assert isinstance(exc, MessageInvalid)
    return JSONResponse(error_body(exc.message, exc.code, field=exc.field), 400)


EXCEPTION_HANDLERS: Mapping[type[Exception], ErrorHandler] = {MessageInvalid: invalid_message}

OPERATIONS = [
    Operation(
        "POST",
        "/api/chat/",
        chat,
        "Chat with Robson AI; trades it proposes wait for an explicit confirmation",
        tag="chat",
        body=ChatRequest,
        response=ChatReplyView,
        errors=(400, 403, 404, 409, 422, 503),
        command=True,
        idempotent=True,  # "confirm <id>" executes a trade
    ),
    Operation(
        "GET",
        "/api/chat/status/",
        chat_status,
        "Whether the AI model answers, which model and provider, and its last error",
        tag="chat",
        response=ChatStatusView,
    ),
    Operation(
        "GET",
        "/api/chat/context/",
        chat_context,
        "Balances, open positions at current prices, recent trades, monthly P&L and risk",
        tag="chat",
        response=ChatContextView,
    ),
    Operation(
        "POST",
        "/api/chat/confirm/",
        chat_confirm,
        "Execute a trade the assistant proposed (once, within 5 minutes of the proposal)",
        tag="chat",
        body=ConfirmRequest,
        response=ConfirmReplyView,
        errors=(400, 403, 404, 409, 422, 503),
        command=True,
        idempotent=True,
    ),
    Operation(
        "POST",
        "/api/chat/cancel/",
        chat_cancel,
        "Cancel a trade the assistant proposed: it never executes, and its reserved risk "
        "is released",
        tag="chat",
        body=CancelRequest,
        response=CancelReplyView,
        errors=(400, 403, 404, 409, 422),
        command=True,
    ),
]
