"""The tenant's trading context as the assistant sees it, and its JSON documents.

Pure: balances, position rows, prices and the policy come in; values and JSON-ready
documents (money as 8-decimal strings) come out. The same documents answer the model's tool
calls, `GET /api/chat/context/` and the guard endpoint, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict
from uuid import UUID

from domain.assistant.guard import GuardReport, TradeRecord
from domain.drawdown import alert_level, loss_percent
from domain.formats import Document, iso, maybe_money, money
from domain.policy import Policy
from domain.ports import Balance
from domain.read_models import PeriodPnl, PnlOverall, PositionRow, TradeRow
from domain.sizing import Sizing

CENT = Decimal("0.01")
NO_POSITION = UUID(int=0)
LIVE_STATUSES = ("open", "closing")


def percent(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):f}"


@dataclass(frozen=True)
class OpenPosition:
    """An open position valued at the current price (P&L before exit fees)."""

    position_id: UUID
    symbol: str
    side: str
    status: str
    quantity: Decimal  # still open
    entry_price: Decimal
    stop_price: Decimal | None
    target_price: Decimal | None
    current_price: Decimal | None
    unrealised_pnl: Decimal | None
    distance_to_stop: Decimal | None  # price units the market can still move before the stop
    distance_to_stop_percent: Decimal | None
    loss_at_stop: Decimal | None  # versus entry; negative once the stop locks in a profit
    planned_at: datetime


def open_position(row: PositionRow, price: Decimal | None) -> OpenPosition:
    sign = 1 if row.side == "LONG" else -1
    stop = row.current_stop
    unrealised = distance = distance_pct = None
    if price is not None:
        unrealised = (price - row.entry_price) * row.open_quantity * sign
        if stop is not None:
            distance = (price - stop) * sign
            distance_pct = distance / price * 100
    loss_at_stop = None if stop is None else (row.entry_price - stop) * row.open_quantity * sign
    return OpenPosition(
        position_id=row.position_id,
        symbol=row.symbol,
        side=row.side,
        status=row.status,
        quantity=row.open_quantity,
        entry_price=row.entry_price,
        stop_price=stop,
        target_price=row.target_price,
        current_price=price,
        unrealised_pnl=unrealised,
        distance_to_stop=distance,
        distance_to_stop_percent=distance_pct,
        loss_at_stop=loss_at_stop,
        planned_at=row.planned_at,
    )


@dataclass(frozen=True)
class RiskMetrics:
    month: str
    capital_base: Decimal
    risk_percent: Decimal
    risk_per_trade: Decimal
    drawdown_limit_percent: Decimal
    monthly_loss_limit: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    loss_percent: Decimal  # of the capital base, realised plus unrealised
    open_risk: Decimal  # reserved by validated and open positions
    remaining_budget: Decimal  # what may still be lost this month, never below 0
    alert_level: Decimal | None
    paused: bool
    pause_reason: str | None
    refusal: str | None = None  # why VALIDATE would refuse a new entry now
    refused_until: str | None = None  # when that lifts


def risk_metrics(policy: Policy, month: str, unrealised: Decimal) -> RiskMetrics:
    """The month's risk as VALIDATE will see it (the policy is the rules' own record)."""
    capital = policy.capital_base(month)
    realised = policy.realised_pnl(month)
    loss = loss_percent(capital, realised, unrealised)
    gate = policy.entry_gate(month)
    return RiskMetrics(
        month=month,
        capital_base=capital,
        risk_percent=policy.risk_percent,
        risk_per_trade=capital * policy.risk_percent / 100,
        drawdown_limit_percent=policy.drawdown_limit_percent,
        monthly_loss_limit=capital * policy.drawdown_limit_percent / 100,
        realised_pnl=realised,
        unrealised_pnl=unrealised,
        loss_percent=loss,
        open_risk=policy.open_risk_excluding(NO_POSITION),
        remaining_budget=gate.remaining_budget,
        alert_level=alert_level(loss),
        paused=policy.paused,
        pause_reason=policy.pause_reason,
        refusal=gate.reason,
        refused_until=gate.until,
    )


@dataclass(frozen=True)
class TradingContext:
    as_of: datetime
    balances: tuple[Balance, ...]
    positions: tuple[OpenPosition, ...]
    recent_trades: tuple[TradeRow, ...]
    prices: Mapping[str, Decimal]
    monthly_pnl: PeriodPnl | None
    risk: RiskMetrics
    unavailable: tuple[str, ...] = ()  # what could not be read, and why


def trade_records(rows: Iterable[TradeRow]) -> list[TradeRecord]:
    """Trade history rows as the emotional-trading guard reads them."""
    return [
        TradeRecord(
            symbol=row.symbol,
            side=row.side,
            quantity=row.quantity,
            pnl=row.pnl if row.is_closed else None,
            entry_time=row.entry_time,
            exit_time=row.exit_time if row.is_closed else None,
            fees=row.fees,
        )
        for row in rows
    ]


# --- JSON documents ---


def balance_document(balance: Balance) -> Document:
    return {
        "asset": balance.asset,
        "free": money(balance.free),
        "locked": money(balance.locked),
        "total": money(balance.total),
    }


def position_document(position: OpenPosition) -> Document:
    pct = position.distance_to_stop_percent
    return {
        "id": str(position.position_id),
        "symbol": position.symbol,
        "side": position.side,
        "status": position.status,
        "quantity": money(position.quantity),
        "entry_price": money(position.entry_price),
        "stop_price": maybe_money(position.stop_price),
        "target_price": maybe_money(position.target_price),
        "current_price": maybe_money(position.current_price),
        "unrealised_pnl": maybe_money(position.unrealised_pnl),
        "distance_to_stop": maybe_money(position.distance_to_stop),
        "distance_to_stop_percent": None if pct is None else percent(pct),
        "loss_at_stop": maybe_money(position.loss_at_stop),
    }


def trade_document(row: TradeRow) -> Document:
    return {
        "position_id": str(row.position_id),
        "symbol": row.symbol,
        "side": row.side,
        "quantity": money(row.quantity),
        "entry_price": money(row.entry_price),
        "exit_price": maybe_money(row.exit_price),
        "pnl": maybe_money(row.pnl),
        "pnl_percentage": None if row.pnl_percentage is None else percent(row.pnl_percentage),
        "is_closed": row.is_closed,
        "entry_time": iso(row.entry_time),
        "exit_time": iso(row.exit_time),
    }


def period_document(row: PeriodPnl) -> Document:
    return {
        "period": row.period,
        "pnl": money(row.pnl),
        "cumulative_pnl": money(row.cumulative_pnl),
        "trades": row.trades,
        "winners": row.winners,
        "losers": row.losers,
        "win_rate": row.win_rate,
    }


class PnlDocument(TypedDict):
    periods: list[Document]
    overall: Document


def pnl_document(rows: Sequence[PeriodPnl], overall: PnlOverall) -> PnlDocument:
    return {
        "periods": [period_document(r) for r in rows],
        "overall": {
            "total_pnl": money(overall.total_pnl),
            "total_trades": overall.total_trades,
            "winners": overall.winners,
            "losers": overall.losers,
            "win_rate": overall.win_rate,
        },
    }


def risk_document(risk: RiskMetrics) -> Document:
    return {
        "month": risk.month,
        "capital_base": money(risk.capital_base),
        "risk_percent": percent(risk.risk_percent),
        "risk_per_trade": money(risk.risk_per_trade),
        "drawdown_limit_percent": percent(risk.drawdown_limit_percent),
        "monthly_loss_limit": money(risk.monthly_loss_limit),
        "realised_pnl": money(risk.realised_pnl),
        "unrealised_pnl": money(risk.unrealised_pnl),
        "loss_percent": percent(risk.loss_percent),
        "open_risk": money(risk.open_risk),
        "remaining_budget": money(risk.remaining_budget),
        "alert_level": None if risk.alert_level is None else percent(risk.alert_level),
        "trading_paused": risk.paused,
        "pause_reason": risk.pause_reason,
        "can_trade": risk.refusal is None,
        "refusal": risk.refusal,
        "refused_until": risk.refused_until,
    }


class ContextDocument(TypedDict):
    as_of: str | None
    balances: list[Document]
    positions: list[Document]
    recent_trades: list[Document]
    prices: dict[str, str]
    monthly_pnl: Document | None
    risk: Document
    unavailable: list[str]


def context_document(context: TradingContext) -> ContextDocument:
    monthly = context.monthly_pnl
    return {
        "as_of": iso(context.as_of),
        "balances": [balance_document(b) for b in context.balances],
        "positions": [position_document(p) for p in context.positions],
        "recent_trades": [trade_document(t) for t in context.recent_trades],
        "prices": {symbol: money(price) for symbol, price in sorted(context.prices.items())},
        "monthly_pnl": None if monthly is None else period_document(monthly),
        "risk": risk_document(context.risk),
        "unavailable": list(context.unavailable),
    }


def sizing_document(
    symbol: str, entry: Decimal, stop: Decimal, sizing: Sizing, risk_percent: Decimal
) -> Document:
    return {
        "symbol": symbol,
        "entry_price": money(entry),
        "stop_price": money(stop),
        "stop_distance": money(sizing.stop_distance),
        "risk_percent": percent(risk_percent),
        "risk_budget": money(sizing.risk_budget),
        "quantity": money(sizing.quantity),
        "risk_amount": money(sizing.risk_amount),
        "notional": money(sizing.quantity * entry),
    }


def guard_document(report: GuardReport) -> Document:
    parameters = report.parameters
    return {
        "risk_level": report.risk_level.value,
        "risk_score": report.risk_score,
        "proceed_allowed": report.proceed_allowed,
        "requires_confirmation": report.requires_confirmation,
        "signals": [
            {
                "type": str(s.type),
                "weight": s.weight,
                "evidence": s.evidence,
                "explanation": s.explanation,
            }
            for s in report.signals
        ],
        "response_message": report.response_message,
        "parameters": {
            "symbol": parameters.symbol,
            "side": parameters.side,
            "entry_price": maybe_money(parameters.entry_price),
            "stop_price": maybe_money(parameters.stop_price),
            "target_price": maybe_money(parameters.target_price),
            "leverage": None if parameters.leverage is None else f"{parameters.leverage:f}",
        },
        "analyzed_at": iso(report.analyzed_at),
    }
