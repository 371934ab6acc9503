"""Emotional-trading guard: scores a trade request for FOMO, revenge and overconfidence.

Pure: the message, the intended trade and the trade history come in, a report comes out.
The signals and their weights are in `domain.assistant.signals`; the score is the sum of
the weights, floored at 0.

Levels: score < 15 LOW, < 35 MEDIUM, < 60 HIGH, else CRITICAL. Every single signal stays
at MEDIUM or below; two strong ones reach HIGH (confirmation needed); three block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.assistant.signals import (
    IntendedTrade,
    Signal,
    SignalType,
    TradeRecord,
    behaviour_signals,
    leverage_signals,
    phrase_signals,
    positive_signals,
    utc,
)
from domain.assistant.trade_text import ExtractedParameters, extract_parameters
from domain.errors import InvalidInput

__all__ = [
    "ExtractedParameters",
    "GuardReport",
    "IntendedTrade",
    "RiskLevel",
    "Signal",
    "SignalType",
    "TradeRecord",
    "analyze",
    "extract_parameters",
    "risk_level_for",
]


class RiskLevel(Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True)
class GuardReport:
    risk_level: RiskLevel
    risk_score: int
    proceed_allowed: bool
    requires_confirmation: bool
    signals: tuple[Signal, ...]
    response_message: str
    parameters: ExtractedParameters
    analyzed_at: datetime


def risk_level_for(score: int) -> RiskLevel:
    if score < 15:
        return RiskLevel.LOW
    if score < 35:
        return RiskLevel.MEDIUM
    if score < 60:
        return RiskLevel.HIGH
    return RiskLevel.CRITICAL


def analyze(
    message: str,
    trade: IntendedTrade | None,
    history: Sequence[TradeRecord],
    now: datetime,
    daily_trade_limit: int = 50,
) -> GuardReport:
    """Score one trade request; HIGH needs an explicit confirmation and CRITICAL is blocked."""
    if not message or not message.strip():
        raise InvalidInput("message", "message is required")
    if daily_trade_limit < 0:
        raise InvalidInput("daily_trade_limit", "must not be negative")
    now = utc(now)
    parameters = extract_parameters(message)
    signals = (
        *phrase_signals(message),
        *leverage_signals(parameters, trade),
        *behaviour_signals(trade, history, now, daily_trade_limit),
        *positive_signals(parameters, trade),
    )
    score = max(0, sum(s.weight for s in signals))
    level = risk_level_for(score)
    return GuardReport(
        risk_level=level,
        risk_score=score,
        proceed_allowed=level in (RiskLevel.LOW, RiskLevel.MEDIUM),
        requires_confirmation=level is RiskLevel.HIGH,
        signals=signals,
        response_message=_response_message(level, signals),
        parameters=parameters,
        analyzed_at=now,
    )


_HEADLINES = {
    RiskLevel.LOW: "Low risk of emotional trading. Stick to your plan and keep the stop.",
    RiskLevel.MEDIUM: "Some warning signs. You may proceed, but re-read your plan first.",
    RiskLevel.HIGH: "Strong signs of emotional trading. Confirm explicitly to proceed.",
    RiskLevel.CRITICAL: "Trade blocked: too many signs of emotional trading. Step away and "
    "review your plan before trading again.",
}


def _response_message(level: RiskLevel, signals: Sequence[Signal]) -> str:
    warnings = sorted((s for s in signals if s.weight > 0), key=lambda s: -s.weight)
    return " ".join([_HEADLINES[level], *(s.explanation for s in warnings)])
