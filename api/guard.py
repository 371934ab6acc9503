"""The emotional-trading guard: a trade request scored for FOMO, revenge trading and
overconfidence, against the tenant's own recent trades."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from api.operations import Call, Operation, Reply
from api.schemas import ExactDecimal, Input, Message, NoQuery, Output, Price, Quantity, Symbol
from domain.assistant.context import guard_document
from domain.assistant.conversation import MAX_MESSAGE_CHARS, checked_message
from domain.assistant.guard import IntendedTrade

Leverage = Annotated[
    Decimal, ExactDecimal(125, 2, "leverage, above 0 up to 125, at most 2 decimals", inclusive=True)
]
RiskPercent = Annotated[
    Decimal, ExactDecimal(100, 4, "percent, above 0 up to 100, at most 4 decimals", inclusive=True)
]
_SIDES = {"LONG": "LONG", "BUY": "LONG", "SHORT": "SHORT", "SELL": "SHORT"}


class TradeInput(Input):
    symbol: Symbol | None = None
    side: Literal["LONG", "SHORT", "BUY", "SELL"] | None = None
    entry_price: Price | None = None
    stop_price: Price | None = None
    target_price: Price | None = None
    leverage: Leverage | None = None
    quantity: Quantity | None = None
    risk_percent: RiskPercent | None = None

    def intended(self) -> IntendedTrade:
        return IntendedTrade(
            symbol=self.symbol.upper() if self.symbol else None,
            side=_SIDES[self.side] if self.side else None,
            entry_price=self.entry_price,
            stop_price=self.stop_price,
            target_price=self.target_price,
            leverage=self.leverage,
            quantity=self.quantity,
            risk_percent=self.risk_percent,
        )


class GuardRequest(Input):
    model_config = ConfigDict(json_schema_extra={"required": ["message"]})

    message: Message = Field(
        None, description=f"what the trader wants to do, 1 to {MAX_MESSAGE_CHARS:,} characters"
    )
    trade: TradeInput | None = None


class GuardSignal(Output):
    type: str
    weight: int
    evidence: str
    explanation: str


class GuardReplyView(Output):
    success: bool
    risk_level: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    risk_score: int
    proceed_allowed: bool
    requires_confirmation: bool
    signals: list[GuardSignal]
    response_message: str
    parameters: dict[str, object]
    analyzed_at: str


def analyze(call: Call[GuardRequest, NoQuery]) -> Reply:
    message = checked_message(call.body.message)  # 400 "message is required"
    trade = call.body.trade.intended() if call.body.trade is not None else None
    report = call.services.assistant.analyze(call.principal.client_id, message, trade)
    return Reply({"success": True, **guard_document(report)})


OPERATIONS = [
    Operation(
        "POST",
        "/api/guard/analyze/",
        analyze,
        "Score a trade request for emotional trading (FOMO, revenge, overconfidence)",
        tag="guard",
        body=GuardRequest,
        response=GuardReplyView,
        errors=(400, 422),
    ),
]
