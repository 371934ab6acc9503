"""Running the model's tool calls for one tenant's chat turn.

Reads come from the turn's own context and the read models, always for the turn's tenant;
`propose_trade` runs the emotional-trading guard, then PLAN and VALIDATE, never EXECUTE.
A call that cannot be run (bad arguments, a refused command) answers the model with the
reason instead of failing the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from domain.assistant.context import (
    TradingContext,
    balance_document,
    guard_document,
    pnl_document,
    position_document,
    risk_document,
    sizing_document,
    trade_document,
    trade_records,
)
from domain.assistant.guard import GuardReport, IntendedTrade, TradeRecord, analyze
from domain.assistant.ports import ToolCall
from domain.assistant.proposals import TradeProposals, proposal_document
from domain.assistant.tools import (
    AnalyzeTrade,
    GetBalances,
    GetPnl,
    GetPositions,
    GetPrice,
    GetRiskState,
    GetTradeHistory,
    InvalidArguments,
    ProposeTrade,
    SizePosition,
    ToolRequest,
    parse_tool_call,
)
from domain.drawdown import month_of
from domain.errors import DomainError
from domain.formats import Document, money
from domain.ledger import Ledger, PlanRequest
from domain.read_models import ReadModels
from domain.sizing import position_size

GUARD_LOOKBACK = timedelta(days=30)


@dataclass
class TurnState:
    """What one chat turn's tool calls share: at most one proposal per message."""

    client_id: UUID
    conversation_id: UUID
    message: str
    now: datetime
    context: TradingContext
    proposal: Document | None = None
    blocked: GuardReport | None = None
    invalid_calls: list[str] = field(default_factory=list)


class Toolbox:
    def __init__(
        self,
        ledger: Ledger,
        read_models: ReadModels,
        proposals: TradeProposals,
        daily_trade_limit: int = 50,
    ) -> None:
        self.ledger = ledger
        self.read_models = read_models
        self.proposals = proposals
        self.daily_trade_limit = daily_trade_limit

    def run(self, turn: TurnState, call: ToolCall) -> Document:
        parsed = parse_tool_call(call.name, call.arguments)
        if isinstance(parsed, InvalidArguments):
            turn.invalid_calls.append(parsed.reason)
            return parsed.result()
        try:
            return self._dispatch(turn, parsed)
        except DomainError as exc:  # a refusal the model should explain, not a crash
            return {"error": exc.code, "detail": exc.message}

    def _dispatch(self, turn: TurnState, request: ToolRequest) -> Document:
        context = turn.context
        client_id = turn.client_id
        if isinstance(request, GetBalances):
            return {
                "balances": [balance_document(b) for b in context.balances],
                "unavailable": list(context.unavailable),
            }
        if isinstance(request, GetPositions):
            return {"positions": [position_document(p) for p in context.positions]}
        if isinstance(request, GetTradeHistory):
            trades = self.read_models.trade_history(client_id, None, request.limit)
            return {"trades": [trade_document(t) for t in trades]}
        if isinstance(request, GetPnl):
            found = self.read_models.pnl_by_period(client_id, request.period, request.limit)
            pnl = pnl_document(*found)
            return {
                "period": request.period.value,
                "periods": pnl["periods"],
                "overall": pnl["overall"],
            }
        if isinstance(request, GetRiskState):
            return risk_document(context.risk)
        if isinstance(request, SizePosition):
            return self.size(client_id, request)
        if isinstance(request, GetPrice):
            price = self.ledger.exchange.price(request.symbol)
            return {"symbol": request.symbol, "price": money(price)}
        if isinstance(request, AnalyzeTrade):
            report = self.guard(client_id, request.message or turn.message, request.trade, turn.now)
            return guard_document(report)
        return self._propose(turn, request)

    def guard(
        self, client_id: UUID, message: str, trade: IntendedTrade | None, now: datetime
    ) -> GuardReport:
        """The emotional-trading guard over this tenant's own recent trades."""
        return analyze(message, trade, self.history(client_id, now), now, self.daily_trade_limit)

    def history(self, client_id: UUID, now: datetime) -> list[TradeRecord]:
        return trade_records(self.read_models.trade_history(client_id, now - GUARD_LOOKBACK, 500))

    def size(self, client_id: UUID, request: SizePosition) -> Document:
        """The 1% rule on this tenant's capital base for the month."""
        exchange = self.ledger.exchange
        rules = exchange.symbol_rules(request.symbol)
        entry = request.entry_price or exchange.price(rules.symbol)
        policy = self.ledger.policy(client_id)
        capital = policy.capital_base(month_of(self.ledger.clock.now()))
        sizing = position_size(
            capital, entry, request.stop_price, rules.step_size, policy.risk_percent
        )
        return sizing_document(rules.symbol, entry, request.stop_price, sizing, policy.risk_percent)

    def _propose(self, turn: TurnState, request: ProposeTrade) -> Document:
        """Guard, PLAN and VALIDATE; the result waits for the user's explicit confirmation."""
        if turn.proposal is not None or turn.blocked is not None:
            return {
                "error": "one_proposal_per_message",
                "detail": "Only one trade can be proposed per message.",
            }
        policy = self.ledger.policy(turn.client_id)
        intended = IntendedTrade(
            symbol=request.symbol,
            side=request.side.value,
            entry_price=request.entry_price,
            stop_price=request.stop_price,
            target_price=request.target_price,
            quantity=request.quantity,
            risk_percent=policy.risk_percent if request.quantity is None else None,
        )
        report = self.guard(turn.client_id, turn.message, intended, turn.now)
        if not report.proceed_allowed and not report.requires_confirmation:
            # CRITICAL: blocked. HIGH asks for an explicit confirmation, which every
            # proposal needs anyway, so it is proposed with the guard's warning attached.
            turn.blocked = report
            return {"status": "blocked", "guard": guard_document(report)}
        proposed = self.proposals.propose(
            turn.client_id,
            turn.conversation_id,
            PlanRequest(
                symbol=request.symbol,
                side=request.side,
                stop_price=request.stop_price,
                entry_price=request.entry_price,
                target_price=request.target_price,
                quantity=request.quantity,
            ),
        )
        turn.proposal = {**proposal_document(proposed), "guard": _guard_summary(report)}
        instructions = (
            "NOT executed. Tell the user the trade and that they must reply "
            f'"confirm {proposed.position.id}" to execute it.'
            if proposed.awaiting_confirmation
            else "VALIDATE rejected the trade; explain the violations to the user."
        )
        return {**turn.proposal, "instructions": instructions}


def _guard_summary(report: GuardReport) -> Document:
    return {
        "risk_level": report.risk_level.value,
        "risk_score": report.risk_score,
        "requires_confirmation": report.requires_confirmation,
        "response_message": report.response_message,
    }
