"""What the model is told (rules and this tenant's live context), and what Robson says
without a model: deterministic answers to the factual questions and proposal summaries.

Pure: everything comes from a `TradingContext` built for one tenant, so no other tenant's
data can reach a prompt through here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from domain.assistant.context import (
    OpenPosition,
    RiskMetrics,
    TradingContext,
    percent,
)
from domain.assistant.conversation import Role, Turn
from domain.assistant.keywords import Topic
from domain.assistant.proposal import PROPOSAL_TTL
from domain.formats import JSON, iso, maybe_money, money

TTL_MINUTES = int(PROPOSAL_TTL.total_seconds() // 60)

UNAVAILABLE_NOTE = (
    "The AI model is unavailable right now, so this is a direct answer from your ledger."
)
ROUNDS_NOTE = "Sorry, I could not complete that request with the AI model."


def system_prompt(context: TradingContext) -> str:
    risk = context.risk
    rules = f"""You are Robson, the risk-first trading assistant of the Robson ledger.
Reply in the user's language (English or Portuguese), briefly and precisely.

Risk rules (the ledger enforces them; never suggest a way around them):
1. Risk at most {percent(risk.risk_percent)}% of the month's capital base per trade: \
quantity = capital x risk% / |entry - stop|, rounded down to the lot step.
2. Every trade has a stop-loss. No stop, no trade.
3. When the month's loss reaches {percent(risk.drawdown_limit_percent)}% of the capital \
base, trading pauses until a recorded review (alerts at 2% and 3%); a new month does not \
lift a pause.
4. Every trade goes PLAN -> VALIDATE -> EXECUTE. You can never execute a trade. \
propose_trade plans and validates one; then the user must confirm it explicitly by \
replying "confirm <intent id>" within {TTL_MINUTES} minutes.
5. Use the tools for balances, positions, P&L, prices, sizing and risk; never invent \
numbers. You only ever see this account's data.
6. This is not financial advice. When a request shows urgency, revenge or \
overconfidence, call analyze_trade_risk and tell the user what it found."""
    return f"{rules}\n\nLive context for this account ({iso(context.as_of)}):\n" + "\n".join(
        f"- {line}" for line in context_lines(context)
    )


def context_lines(context: TradingContext) -> list[str]:
    lines = [_risk_line(context.risk)]
    balances = [
        f"{b.asset} {money(b.free)} free, {money(b.locked)} locked" for b in context.balances
    ]
    lines.append("Balances: " + ("; ".join(balances) if balances else "none"))
    if context.positions:
        lines.append("Open positions:")
        lines.extend(f"  {_position_line(p)}" for p in context.positions)
    else:
        lines.append("Open positions: none")
    if context.prices:
        prices = ", ".join(f"{s} {money(p)}" for s, p in sorted(context.prices.items()))
        lines.append(f"Prices: {prices}")
    lines.extend(f"Unavailable: {item}" for item in context.unavailable)
    return lines


def _risk_line(risk: RiskMetrics) -> str:
    state = f"PAUSED ({risk.pause_reason})" if risk.paused else "ACTIVE"
    if not risk.paused and risk.refusal is not None:
        state = f"NEW ENTRIES REFUSED ({risk.refusal})"
    return (
        f"Month {risk.month}: capital base {money(risk.capital_base)}, risk per trade "
        f"{money(risk.risk_per_trade)} ({percent(risk.risk_percent)}%), realised P&L "
        f"{money(risk.realised_pnl)}, unrealised P&L {money(risk.unrealised_pnl)}, loss "
        f"{percent(risk.loss_percent)}% of the {percent(risk.drawdown_limit_percent)}% limit, "
        f"open risk {money(risk.open_risk)}, remaining loss budget "
        f"{money(risk.remaining_budget)}. Trading: {state}."
    )


def _position_line(p: OpenPosition) -> str:
    parts = [
        f"{p.position_id} {p.side} {money(p.quantity)} {p.symbol}",
        f"entry {money(p.entry_price)}",
        f"stop {maybe_money(p.stop_price) or 'none'}",
    ]
    if p.target_price is not None:
        parts.append(f"target {money(p.target_price)}")
    if p.current_price is not None and p.unrealised_pnl is not None:
        parts.append(f"price {money(p.current_price)}")
        parts.append(f"unrealised P&L {money(p.unrealised_pnl)}")
    if p.distance_to_stop is not None and p.distance_to_stop_percent is not None:
        parts.append(
            f"{money(p.distance_to_stop)} ({percent(p.distance_to_stop_percent)}%) to the stop"
        )
    return ", ".join(parts)


def model_messages(prompt: str, turns: Sequence[Turn]) -> list[dict[str, object]]:
    """The system prompt, then the conversation's recent turns, oldest first."""
    messages: list[dict[str, object]] = [{"role": "system", "content": prompt}]
    for turn in turns:
        role = "user" if turn.role is Role.USER else "assistant"
        messages.append({"role": role, "content": turn.content})
    return messages


# --- answers without a model ---


def fallback_answer(
    topic: Topic,
    context: TradingContext,
    sizing: Mapping[str, JSON] | str | None = None,
    *,
    note: str = UNAVAILABLE_NOTE,
) -> str:
    """A deterministic answer to the factual questions (balance, positions, P&L, risk,
    sizing, prices); anything else gets a summary and what can be asked."""
    body = _ANSWERS.get(topic, _general)(context, sizing)
    return f"{note}\n\n{body}"


def _balances(context: TradingContext, _: object) -> str:
    if not context.balances:
        return "Your account shows no balances." + _unavailable(context)
    lines = [
        f"- {b.asset}: {money(b.total)} ({money(b.free)} free, {money(b.locked)} locked)"
        for b in context.balances
    ]
    return "Your balances:\n" + "\n".join(lines) + _unavailable(context)


def _positions(context: TradingContext, _: object) -> str:
    if not context.positions:
        return "You have no open positions."
    lines = [f"- {_position_line(p)}" for p in context.positions]
    return f"You have {len(lines)} open position(s):\n" + "\n".join(lines)


def _pnl(context: TradingContext, _: object) -> str:
    risk = context.risk
    monthly = context.monthly_pnl
    if monthly is None:
        trades = "No trades were closed this month."
    else:
        trades = (
            f"{monthly.trades} closed trade(s), {monthly.winners} winner(s) and "
            f"{monthly.losers} loser(s), win rate {monthly.win_rate}."
        )
    return (
        f"This month ({risk.month}): realised P&L {money(risk.realised_pnl)}, unrealised "
        f"P&L {money(risk.unrealised_pnl)} on open positions. {trades}"
    )


def _risk(context: TradingContext, _: object) -> str:
    risk = context.risk
    state = (
        f"Trading is PAUSED: {risk.pause_reason}. Only a recorded review resumes it."
        if risk.paused
        else f"New entries are refused: {risk.refusal}."
        if risk.refusal is not None
        else "Trading is active."
    )
    alert = (
        f" The {percent(risk.alert_level)}% drawdown alert has been reached."
        if risk.alert_level is not None
        else ""
    )
    return (
        f"Risk for {risk.month}: capital base {money(risk.capital_base)}; each trade may "
        f"risk {percent(risk.risk_percent)}% = {money(risk.risk_per_trade)}. This month's "
        f"loss is {percent(risk.loss_percent)}% of the capital base (limit "
        f"{percent(risk.drawdown_limit_percent)}% = {money(risk.monthly_loss_limit)}); "
        f"open risk {money(risk.open_risk)}, remaining loss budget "
        f"{money(risk.remaining_budget)}. {state}{alert}"
    )


def _sizing(context: TradingContext, sizing: Mapping[str, JSON] | str | None) -> str:
    if isinstance(sizing, str):
        return sizing
    if sizing is None:
        return (
            "To size a position I need the stop price (and optionally the entry), e.g. "
            '"position size BTCUSDC entry 100000 stop 98000". ' + _risk(context, None)
        )
    return (
        f"By the {sizing['risk_percent']}% rule: risk {sizing['risk_budget']} over a stop "
        f"distance of {sizing['stop_distance']} ({sizing['symbol']} entry "
        f"{sizing['entry_price']}, stop {sizing['stop_price']}) gives {sizing['quantity']}, "
        f"risking {sizing['risk_amount']} (notional {sizing['notional']})."
    )


def _prices(context: TradingContext, _: object) -> str:
    if not context.prices:
        return "No current prices are available." + _unavailable(context)
    lines = [f"- {s}: {money(p)}" for s, p in sorted(context.prices.items())]
    return (
        "Current prices:\n" + "\n".join(lines) + "\nI can't give an analysis without the AI model."
    )


def _trade(context: TradingContext, _: object) -> str:
    return (
        "I can't plan a trade without the AI model. Try again shortly, or plan it yourself "
        "(PLAN -> VALIDATE -> EXECUTE, with a stop). " + _risk(context, None)
    )


def _general(context: TradingContext, _: object) -> str:
    return (
        "I can still tell you your balances, open positions, P&L, risk state and position "
        f"sizes. {_risk(context, None)} Open positions: {len(context.positions)}."
    )


def _unavailable(context: TradingContext) -> str:
    return "".join(f"\n(Unavailable: {item})" for item in context.unavailable)


_ANSWERS = {
    Topic.BALANCE: _balances,
    Topic.POSITIONS: _positions,
    Topic.PNL: _pnl,
    Topic.RISK: _risk,
    Topic.SIZING: _sizing,
    Topic.PRICE: _prices,
    Topic.BUY: _trade,
    Topic.SELL: _trade,
    Topic.GENERAL: _general,
}


# --- proposals ---


def proposal_summary(proposal: Mapping[str, JSON]) -> str:
    """The deterministic lines every proposal reply ends with, whatever the model said."""
    if proposal.get("status") == "rejected":
        reasons = "; ".join(_reasons(proposal.get("violations", [])))
        return f"The trade was planned but VALIDATE rejected it: {reasons}"
    target = proposal.get("target_price")
    return (
        f"Proposed trade {proposal['intent_id']}: {proposal['side']} {proposal['quantity']} "
        f"{proposal['symbol']} at about {proposal['entry_price']}, stop "
        f"{proposal['stop_price']}" + (f", target {target}" if target else "") + ", risking "
        f"{proposal['risk_amount']}. It passed VALIDATE and is NOT executed. To execute it, "
        f'reply "confirm {proposal["intent_id"]}" within {TTL_MINUTES} minutes '
        f"(until {proposal['expires_at']}); to drop it, "
        f'"cancel {proposal["intent_id"]}".'
    )


def _reasons(violations: JSON) -> Iterator[str]:
    """The reasons a proposal document's `violations` give (each a rule and its reason)."""
    if isinstance(violations, Sequence) and not isinstance(violations, str):
        for violation in violations:
            if isinstance(violation, Mapping):
                yield str(violation["reason"])


def confirmation_message(position: Mapping[str, JSON]) -> str:
    status = position["status"]
    if status == "open":
        return (
            f"Confirmed and executed: {position['side']} {position['quantity']} "
            f"{position['symbol']} filled at {position['entry_price']}, stop "
            f"{position['stop_price']}. Position {position['id']} is open."
        )
    return f"Confirmed. Position {position['id']} is {status}" + (
        f": {position['note']}" if position.get("note") else "."
    )


def cancellation_message(intent_id: object) -> str:
    return (
        f"Cancelled trade proposal {intent_id}: it will never execute, and the risk it "
        "reserved is released."
    )
