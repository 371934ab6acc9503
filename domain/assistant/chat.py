"""The chat assistant's use cases: answer a message (the model with tools, or a
deterministic answer when it is unavailable), confirm a proposed trade, describe the
tenant's trading context, and run the emotional-trading guard.

Every port is injected. The model only ever sees one tenant's data: the prompt and each
tool call are built for the tenant whose chat it is, and no tool takes a tenant argument.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid4

from domain.assistant.context import (
    LIVE_STATUSES,
    ContextDocument,
    TradingContext,
    context_document,
    open_position,
    risk_metrics,
)
from domain.assistant.conversation import (
    HISTORY_TURNS,
    Conversation,
    ConversationNotFound,
    Role,
    Turn,
    checked_message,
)
from domain.assistant.guard import GuardReport, IntendedTrade, extract_parameters
from domain.assistant.keywords import (
    Intent,
    Topic,
    classify,
    parse_cancellation,
    parse_confirmation,
)
from domain.assistant.ports import ChatModel, ModelReply, ModelUnavailable
from domain.assistant.prompt import (
    ROUNDS_NOTE,
    cancellation_message,
    confirmation_message,
    fallback_answer,
    model_messages,
    proposal_summary,
    system_prompt,
)
from domain.assistant.proposals import AggregateStore, Confirmation, TradeProposals
from domain.assistant.toolbox import Toolbox, TurnState
from domain.assistant.tools import DEFAULT_SYMBOL, TOOLS, SizePosition
from domain.drawdown import month_of
from domain.errors import DomainError
from domain.formats import Document
from domain.ledger import Ledger
from domain.market import Side
from domain.ports import Balance
from domain.read_models import Period, ReadModels
from domain.store import retry_on_conflict

MAX_TOOL_ROUNDS = 4
MAX_CALLS_PER_ROUND = 8
RECENT_TRADES = 5


class StatusReportingModel(ChatModel, Protocol):
    """A chat model that can say what it is and whether its last call worked."""

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def configured(self) -> bool: ...

    @property
    def last_error(self) -> str | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ModelStatus:
    available: bool
    model: str
    provider: str
    configured: bool
    last_error: str | None


@dataclass(frozen=True)
class ChatReply:
    message: str
    conversation_id: UUID
    detected_intent: Intent
    requires_confirmation: bool
    intent_id: UUID | None
    proposal: Document | None  # what propose_trade planned and VALIDATE said
    execution: Document | None  # the position a confirmation executed
    model: str | None  # None: a deterministic answer, no model involved
    ai_available: bool


class _NoAnswer(Exception):
    """The model ran out of tool rounds (or answered nothing)."""

    def __init__(self, model: str | None) -> None:
        super().__init__("no answer")
        self.model = model


class Assistant:
    def __init__(
        self,
        ledger: Ledger,
        read_models: ReadModels,
        model: StatusReportingModel,
        store: AggregateStore,
        *,
        max_tool_rounds: int = MAX_TOOL_ROUNDS,
        daily_trade_limit: int = 50,
    ) -> None:
        self.ledger = ledger
        self.read_models = read_models
        self.model = model
        self.store = store
        self.max_tool_rounds = max_tool_rounds
        self.proposals = TradeProposals(ledger, read_models, store)
        self.tools = Toolbox(ledger, read_models, self.proposals, daily_trade_limit)

    # --- queries ---

    def status(self) -> ModelStatus:
        configured = self.model.configured
        error = self.model.last_error
        return ModelStatus(
            available=configured and error is None,
            model=self.model.model,
            provider=self.model.provider,
            configured=configured,
            last_error=error,
        )

    def context(self, client_id: UUID) -> TradingContext:
        """Balances, open positions at current prices, recent trades, P&L and risk."""
        now = self.ledger.clock.now()
        month = month_of(now)
        exchange = self.ledger.exchange
        unavailable: list[str] = []
        balances: tuple[Balance, ...] = ()
        try:
            found = exchange.balances(self.ledger.trading_account(client_id))
            balances = tuple(b for _, b in sorted(found.items()) if b.total != 0)
        except DomainError as exc:
            unavailable.append(f"balances: {exc.message}")
        rows = [
            r for r in self.read_models.positions(client_id, None, 500) if r.status in LIVE_STATUSES
        ]
        prices: dict[str, Decimal] = {}
        for symbol in sorted({r.symbol for r in rows} | {DEFAULT_SYMBOL}):
            try:
                prices[symbol] = exchange.price(symbol)
            except DomainError as exc:
                unavailable.append(f"{symbol} price: {exc.message}")
        positions = tuple(open_position(r, prices.get(r.symbol)) for r in rows)
        unrealised = sum((p.unrealised_pnl or Decimal(0) for p in positions), Decimal(0))
        periods, _ = self.read_models.pnl_by_period(client_id, Period.MONTHLY, 1)
        return TradingContext(
            as_of=now,
            balances=balances,
            positions=positions,
            recent_trades=tuple(self.read_models.trade_history(client_id, None, RECENT_TRADES)),
            prices=prices,
            monthly_pnl=next((p for p in periods if p.period == month), None),
            risk=risk_metrics(self.ledger.policy(client_id), month, unrealised),
            unavailable=tuple(unavailable),
        )

    def context_document(self, client_id: UUID) -> ContextDocument:
        return context_document(self.context(client_id))

    def analyze(self, client_id: UUID, message: str, trade: IntendedTrade | None) -> GuardReport:
        """The emotional-trading guard over this tenant's own recent trades."""
        return self.tools.guard(client_id, message, trade, self.ledger.clock.now())

    # --- trades proposed in chat ---

    def confirm(self, client_id: UUID, intent_id: UUID) -> Confirmation:
        """Execute a proposed trade on the user's explicit word: once, within 5 minutes."""
        return self.proposals.confirm(client_id, intent_id)

    def cancel(self, client_id: UUID, intent_id: UUID) -> Side:
        """Cancel a proposed trade on the user's word: it never executes; its risk is freed."""
        return self.proposals.cancel(client_id, intent_id)

    def expire_stale(self, client_id: UUID) -> list[UUID]:
        return self.proposals.expire_stale(client_id)

    # --- chat ---

    def chat(
        self, client_id: UUID, message: object, conversation_id: UUID | None = None
    ) -> ChatReply:
        text = checked_message(message)
        conversation = None
        if conversation_id is not None:
            conversation = self._conversation(client_id, conversation_id)
        chat_id = conversation.id if conversation is not None else uuid4()
        self.proposals.expire_stale(client_id)
        confirm_id = parse_confirmation(text)
        cancel_id = parse_cancellation(text)
        if confirm_id is not None:
            reply = self._confirm_in_chat(client_id, chat_id, confirm_id)
        elif cancel_id is not None:
            reply = self._cancel_in_chat(client_id, chat_id, cancel_id)
        else:
            earlier = conversation.history() if conversation is not None else []
            reply = self._answer(client_id, chat_id, text, earlier)
        self._record(client_id, chat_id, text, reply)
        return reply

    def _conversation(self, client_id: UUID, conversation_id: UUID) -> Conversation:
        found = self.store.load(conversation_id, Conversation)
        if found is None or found.client_id != client_id:
            raise ConversationNotFound(conversation_id)  # another tenant's looks like none
        return found

    def _confirm_in_chat(self, client_id: UUID, chat_id: UUID, intent_id: UUID) -> ChatReply:
        confirmation = self.proposals.confirm(client_id, intent_id)
        return ChatReply(
            message=confirmation_message(confirmation.position),
            conversation_id=chat_id,
            detected_intent=Intent.BUY if confirmation.side is Side.LONG else Intent.SELL,
            requires_confirmation=False,
            intent_id=intent_id,
            proposal=None,
            execution=confirmation.position,
            model=None,
            ai_available=self.status().available,
        )

    def _cancel_in_chat(self, client_id: UUID, chat_id: UUID, intent_id: UUID) -> ChatReply:
        side = self.proposals.cancel(client_id, intent_id)
        return ChatReply(
            message=cancellation_message(intent_id),
            conversation_id=chat_id,
            detected_intent=Intent.BUY if side is Side.LONG else Intent.SELL,
            requires_confirmation=False,
            intent_id=intent_id,
            proposal=None,
            execution=None,
            model=None,
            ai_available=self.status().available,
        )

    def _answer(self, client_id: UUID, chat_id: UUID, text: str, earlier: list[Turn]) -> ChatReply:
        now = self.ledger.clock.now()
        reading = classify(text)
        turn = TurnState(client_id, chat_id, text, now, self.context(client_id))
        history = [*earlier[-(HISTORY_TURNS - 1) :], Turn(Role.USER, text, None, None, now)]
        model: str | None = None
        try:
            content, model = self._converse(turn, history)
        except ModelUnavailable:
            content = fallback_answer(
                reading.topic, turn.context, self._sizing(turn, reading.topic)
            )
        except _NoAnswer as no_answer:
            model = no_answer.model
            sizing = self._sizing(turn, reading.topic)
            content = fallback_answer(reading.topic, turn.context, sizing, note=ROUNDS_NOTE)
        if turn.blocked is not None:
            content += (
                "\n\nThe emotional-trading guard blocked this trade: "
                + turn.blocked.response_message
            )
        proposal = turn.proposal
        if proposal is not None:
            content += "\n\n" + proposal_summary(proposal)
        return ChatReply(
            message=content,
            conversation_id=chat_id,
            detected_intent=reading.intent,
            requires_confirmation=proposal is not None
            and proposal["status"] == "awaiting_confirmation",
            intent_id=UUID(str(proposal["intent_id"])) if proposal is not None else None,
            proposal=proposal,
            execution=None,
            model=model,
            ai_available=model is not None,
        )

    def _converse(self, turn: TurnState, history: list[Turn]) -> tuple[str, str]:
        """Call the model, run the tools it asks for, repeat: at most `max_tool_rounds`."""
        messages = model_messages(system_prompt(turn.context), history)
        last_model: str | None = None
        for round_number in range(self.max_tool_rounds + 1):
            reply = self.model.complete(messages, TOOLS)
            last_model = reply.model
            if not reply.tool_calls:
                if reply.content and reply.content.strip():
                    return reply.content.strip(), reply.model
                break
            if round_number == self.max_tool_rounds:
                break
            messages.append(_assistant_message(reply))
            for index, call in enumerate(reply.tool_calls):
                result: Document = (
                    self.tools.run(turn, call)
                    if index < MAX_CALLS_PER_ROUND
                    else {"error": "too_many_tool_calls", "detail": "not run; call fewer"}
                )
                messages.append({"role": "tool", "tool_call_id": call.id, "content": _json(result)})
        raise _NoAnswer(last_model)

    def _sizing(self, turn: TurnState, topic: Topic) -> Document | str | None:
        """For a sizing question without the model: entry and stop read from the text."""
        if topic is not Topic.SIZING:
            return None
        found = extract_parameters(turn.message)
        if found.stop_price is None:
            return None
        symbol = found.symbol if found.symbol and len(found.symbol) > 4 else DEFAULT_SYMBOL
        try:
            return self.tools.size(
                turn.client_id, SizePosition(symbol, found.stop_price, found.entry_price)
            )
        except DomainError as exc:
            return f"I could not size that position: {exc.message}"

    def _record(self, client_id: UUID, chat_id: UUID, text: str, reply: ChatReply) -> None:
        def command() -> None:
            now = self.ledger.clock.now()
            conversation = self.store.load(chat_id, Conversation)
            if conversation is None:
                conversation = Conversation.start(chat_id, client_id, now)
            conversation.record(Role.USER, text, now, reply.detected_intent)
            conversation.record(
                Role.ASSISTANT, reply.message, now, reply.detected_intent, reply.intent_id
            )
            self.store.save(conversation)

        retry_on_conflict(command)


def _assistant_message(reply: ModelReply) -> dict[str, object]:
    """The model's own tool-calling turn, sent back before the tools' answers."""
    message: dict[str, object] = {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ],
    }
    if reply.content:
        message["content"] = reply.content
    return message


def _json(result: Document) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), default=str)
