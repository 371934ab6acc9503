"""The warning signs the emotional-trading guard looks for, each with its weight.

Pure: the message, the extracted parameters, the intended trade and the trade history come
in; signals come out. The guard (`domain.assistant.guard`) sums their weights into a level.
Phrases match case- and accent-insensitively on word boundaries, in English and Portuguese.

Weight table (one signal per type; score = sum of weights, floored at 0):

    type               weight  fires when
    urgency              +15   "now", "last chance", "to the moon", "agora", "vai explodir"...
    overconfidence       +20   "guaranteed", "can't lose", "insider", "garantido"...
    risk_blindness       +25   "no stop", "all in", "yolo", "sem stop", "tudo"...
    high_leverage        +20   leverage >= 10x, from the text or the intended trade
    revenge_language     +20   "recover", "make it back", "double down", "recuperar"...
    revenge_trading      +30   a trade opened <= 30 min after a losing exit, larger than it
    overtrading          +20   more trades entered today (UTC) than the daily limit
    loss_streak          +20   the 3+ most recent closed trades (by exit time) all lost

A trade "lost" only when its net result is below minus the fees it paid: a result within
the fees is the cost of trading, not a loss that could drive revenge.
    stop_defined         -10   a stop price is given (text or trade)
    target_defined        -5   a target price is given (text or trade)
    small_risk            -5   the trade risks at most 1% of capital
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.assistant.trade_text import ExtractedParameters, normalize

REVENGE_WINDOW = timedelta(minutes=30)
LOSS_STREAK_LENGTH = 3
HIGH_LEVERAGE = Decimal(10)
SMALL_RISK_PERCENT = Decimal(1)


class SignalType(StrEnum):
    URGENCY = "urgency"
    OVERCONFIDENCE = "overconfidence"
    RISK_BLINDNESS = "risk_blindness"
    HIGH_LEVERAGE = "high_leverage"
    REVENGE_LANGUAGE = "revenge_language"
    REVENGE_TRADING = "revenge_trading"
    OVERTRADING = "overtrading"
    LOSS_STREAK = "loss_streak"
    STOP_DEFINED = "stop_defined"
    TARGET_DEFINED = "target_defined"
    SMALL_RISK = "small_risk"


WEIGHTS: dict[SignalType, int] = {
    SignalType.URGENCY: 15,
    SignalType.OVERCONFIDENCE: 20,
    SignalType.RISK_BLINDNESS: 25,
    SignalType.HIGH_LEVERAGE: 20,
    SignalType.REVENGE_LANGUAGE: 20,
    SignalType.REVENGE_TRADING: 30,
    SignalType.OVERTRADING: 20,
    SignalType.LOSS_STREAK: 20,
    SignalType.STOP_DEFINED: -10,
    SignalType.TARGET_DEFINED: -5,
    SignalType.SMALL_RISK: -5,
}


@dataclass(frozen=True)
class IntendedTrade:
    symbol: str | None = None
    side: str | None = None  # "LONG" / "SHORT"
    entry_price: Decimal | None = None
    stop_price: Decimal | None = None
    target_price: Decimal | None = None
    leverage: Decimal | None = None
    quantity: Decimal | None = None
    risk_percent: Decimal | None = None


@dataclass(frozen=True)
class TradeRecord:
    symbol: str
    side: str
    quantity: Decimal
    pnl: Decimal | None  # None while the trade is still open
    entry_time: datetime
    exit_time: datetime | None
    fees: Decimal = Decimal(0)  # paid on the trade, in the quote asset; the pnl is net of them

    @property
    def is_loss(self) -> bool:
        """Lost more than the fees paid: the price moved against the trade."""
        return self.pnl is not None and self.pnl < -abs(self.fees)


@dataclass(frozen=True)
class Signal:
    type: str
    weight: int
    evidence: str
    explanation: str


# --- text normalisation and phrase matching ---


def _phrases(alternatives: str) -> re.Pattern[str]:
    """'|'-separated normalised phrases; a space also matches hyphens and runs of blanks."""
    phrases = sorted(alternatives.split("|"), key=len, reverse=True)
    body = "|".join(p.replace(" ", r"[\s\-]+") for p in phrases)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


@dataclass(frozen=True)
class _PhraseRule:
    type: SignalType
    pattern: re.Pattern[str]
    explanation: str


_PHRASE_RULES = (
    _PhraseRule(
        SignalType.URGENCY,
        _phrases(
            "now|right now|asap|hurry|immediately|last chance|to the moon|"
            "before it'?s too late|before it pumps|don'?t want to miss|can'?t miss|"
            "fomo|once in a lifetime|agora|agora mesmo|imediatamente|rapido|depressa|"
            "ultima chance|ultima oportunidade|vai explodir|vai bombar|"
            "antes que seja tarde|antes que suba|nao quero ficar de fora"
        ),
        "Urgency and fear of missing out push you to act before the plan is checked.",
    ),
    _PhraseRule(
        SignalType.OVERCONFIDENCE,
        _phrases(
            "guaranteed|guarantee|can'?t lose|cannot lose|can not lose|sure thing|"
            "insider|no brainer|easy money|free money|risk free|100% sure|"
            "100% certain|garantido|garantia|nao tem como perder|"
            "nao tem como dar errado|certeza absoluta|dinheiro facil|sem risco|"
            "informacao privilegiada|100% certo"
        ),
        "No trade is certain; overconfidence is how position sizes and stops get ignored.",
    ),
    _PhraseRule(
        SignalType.RISK_BLINDNESS,
        _phrases(
            "no stop|no stop loss|no stoploss|without stop|without a stop|"
            "without stop loss|without a stop loss|don'?t need a stop|skip the stop|"
            "all in|yolo|max leverage|maximum leverage|all my money|my whole account|"
            r"entire account|sem stop|sem stop loss|tudo(?![\s\-]+bem)|todo o dinheiro|"
            "conta inteira|alavancagem maxima"
        ),
        "Trading without a stop or with everything at once ignores the 1% risk rule.",
    ),
    _PhraseRule(
        SignalType.REVENGE_LANGUAGE,
        _phrases(
            "recover|recovering|recoup|revenge|make it back|make back|win it back|"
            "get it back|get even|martingale|double down|doubling down|recuperar|"
            "recuperando|recupero|vinganca|me vingar|dobrar a aposta|dobrar a posicao"
        ),
        "Trying to win back a loss is revenge trading: the market owes you nothing.",
    ),
)


def phrase_signals(message: str) -> Iterable[Signal]:
    text = normalize(message)
    for rule in _PHRASE_RULES:
        found = _distinct(message[m.start() : m.end()] for m in rule.pattern.finditer(text))
        if found:
            evidence = ", ".join(f'"{phrase}"' for phrase in found)
            yield Signal(rule.type, WEIGHTS[rule.type], evidence, rule.explanation)


def _distinct(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return list(seen.values())


# --- numeric and behavioural signals ---


def leverage_signals(
    parameters: ExtractedParameters, trade: IntendedTrade | None
) -> Iterable[Signal]:
    from_trade = trade.leverage if trade is not None else None
    levels = [lev for lev in (parameters.leverage, from_trade) if lev is not None]
    if levels and max(levels) >= HIGH_LEVERAGE:
        yield Signal(
            SignalType.HIGH_LEVERAGE,
            WEIGHTS[SignalType.HIGH_LEVERAGE],
            f"{_plain(max(levels))}x leverage",
            "At 10x or more a 10% move against you wipes out the whole margin.",
        )


def behaviour_signals(
    trade: IntendedTrade | None,
    history: Sequence[TradeRecord],
    now: datetime,
    daily_trade_limit: int,
) -> Iterable[Signal]:
    revenge = _revenge_evidence(trade, history, now)
    if revenge:
        yield Signal(
            SignalType.REVENGE_TRADING,
            WEIGHTS[SignalType.REVENGE_TRADING],
            revenge,
            "A bigger position right after a loss is the classic revenge-trading pattern.",
        )
    today = sum(1 for t in history if utc(t.entry_time).date() == now.date())
    if today > daily_trade_limit:
        yield Signal(
            SignalType.OVERTRADING,
            WEIGHTS[SignalType.OVERTRADING],
            f"{today} trades today (limit {daily_trade_limit})",
            "Trading this often usually means chasing the market rather than a plan.",
        )
    streak = _loss_streak(history, now)
    if streak >= LOSS_STREAK_LENGTH:
        yield Signal(
            SignalType.LOSS_STREAK,
            WEIGHTS[SignalType.LOSS_STREAK],
            f"{streak} losing trades in a row",
            "After several losses in a row judgement suffers; a pause beats a comeback.",
        )


def _revenge_evidence(
    trade: IntendedTrade | None, history: Sequence[TradeRecord], now: datetime
) -> str | None:
    """Evidence for the latest entry (now or today) larger than a loss closed <=30 min before."""
    entries: list[tuple[datetime, Decimal, str]] = []
    if trade is not None and trade.quantity is not None:
        entries.append((now, trade.quantity, "this trade"))
    for t in history:
        entry = utc(t.entry_time)
        if entry.date() == now.date() and entry <= now:
            entries.append((entry, t.quantity, f"the {t.symbol} trade opened {entry:%H:%M} UTC"))
    losses = [
        (utc(t.exit_time), -t.pnl, t)
        for t in history
        if t.pnl is not None and t.is_loss and t.exit_time is not None
    ]
    for entry, quantity, label in sorted(entries, key=lambda e: e[0], reverse=True):
        for exit_time, lost, loss in losses:
            gap = entry - exit_time
            if timedelta(0) <= gap <= REVENGE_WINDOW and quantity > loss.quantity:
                return (
                    f"{label}: size {_plain(quantity)} > {_plain(loss.quantity)}, "
                    f"{int(gap.total_seconds() // 60)} min after a {_plain(lost)} loss "
                    f"on {loss.symbol}"
                )
    return None


def _loss_streak(history: Sequence[TradeRecord], now: datetime) -> int:
    closed = sorted(
        (
            (utc(t.exit_time), t.is_loss)
            for t in history
            if t.pnl is not None and t.exit_time is not None and utc(t.exit_time) <= now
        ),
        key=lambda c: c[0],
        reverse=True,
    )
    streak = 0
    for _, lost in closed:
        if not lost:
            break
        streak += 1
    return streak


def positive_signals(
    parameters: ExtractedParameters, trade: IntendedTrade | None
) -> Iterable[Signal]:
    stop = parameters.stop_price
    if stop is None and trade is not None:
        stop = trade.stop_price
    if stop is not None:
        yield Signal(
            SignalType.STOP_DEFINED,
            WEIGHTS[SignalType.STOP_DEFINED],
            f"stop at {_plain(stop)}",
            "A stop is defined, so the worst case is known before entering.",
        )
    target = parameters.target_price
    if target is None and trade is not None:
        target = trade.target_price
    if target is not None:
        yield Signal(
            SignalType.TARGET_DEFINED,
            WEIGHTS[SignalType.TARGET_DEFINED],
            f"target at {_plain(target)}",
            "A target is defined, so the exit is planned rather than improvised.",
        )
    risk = trade.risk_percent if trade is not None else None
    if risk is not None and 0 < risk <= SMALL_RISK_PERCENT:
        yield Signal(
            SignalType.SMALL_RISK,
            WEIGHTS[SignalType.SMALL_RISK],
            f"risk {_plain(risk)}% of capital",
            "Risking at most 1% of capital keeps any single loss survivable.",
        )


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def utc(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC already; aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
