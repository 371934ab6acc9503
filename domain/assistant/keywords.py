"""What a chat message is about, by keywords (English and Portuguese), without any model.

`detected_intent` on every chat reply comes from here, so it is deterministic and works when
the AI model is down; the finer `Topic` picks the fallback answer for the factual questions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from uuid import UUID


class Intent(Enum):
    BUY = "buy"
    SELL = "sell"
    ANALYZE = "analyze"
    BALANCE = "balance"
    POSITIONS = "positions"
    RISK = "risk"
    GENERAL = "general"


class Topic(Enum):
    """The fallback's finer reading; each maps to one `Intent` (sizing is risk, P&L balance)."""

    SIZING = "sizing"
    BUY = "buy"
    SELL = "sell"
    RISK = "risk"
    POSITIONS = "positions"
    PNL = "pnl"
    BALANCE = "balance"
    PRICE = "price"
    GENERAL = "general"


INTENT_OF: dict[Topic, Intent] = {
    Topic.SIZING: Intent.RISK,
    Topic.BUY: Intent.BUY,
    Topic.SELL: Intent.SELL,
    Topic.RISK: Intent.RISK,
    Topic.POSITIONS: Intent.POSITIONS,
    Topic.PNL: Intent.BALANCE,
    Topic.BALANCE: Intent.BALANCE,
    Topic.PRICE: Intent.ANALYZE,
    Topic.GENERAL: Intent.GENERAL,
}


def normalize(text: str) -> str:
    """Lower case without accents: "Posição" and "posicao" read the same."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.lower().replace("\u2019", "'")


def _words(alternatives: str) -> re.Pattern[str]:
    """'|'-separated phrases on word boundaries; a space matches any run of blanks."""
    body = "|".join(p.replace(" ", r"\s+") for p in alternatives.split("|"))
    return re.compile(rf"(?<![\w&])(?:{body})(?![\w&])")


# Checked in this order: the first topic whose words appear wins. Trade verbs come after
# sizing ("how much should I buy" is a sizing question) and before everything else.
_TOPIC_WORDS: tuple[tuple[Topic, re.Pattern[str]], ...] = (
    (
        Topic.SIZING,
        _words(
            r"position size|position sizing|sizing|size my|how much (?:should|can) i (?:buy|sell)"
            r"|how (?:big|large|many)|lot size|tamanho da posicao|tamanho de posicao"
            r"|dimensionar|dimensionamento|quanto (?:devo|posso) (?:comprar|vender)"
        ),
    ),
    (
        Topic.BUY,
        _words(
            r"buy|buying|purchase|go long|(?<!how\s)(?<!so\s)long|comprar|compra|compre"
            r"|comprando|comprado|entrar comprado|abrir long"
        ),
    ),
    (
        Topic.SELL,
        _words(
            r"sell|selling|short(?![\s\-]+term)|shorting|go short"
            r"|close (?:my|the|this) (?:position|trade)|vender|venda|vende|vendendo|vendido"
            r"|shortar|fechar (?:a|minha) posicao"
        ),
    ),
    (
        Topic.RISK,
        _words(
            r"risk|risks|risky|drawdown|stop loss|stop|stops|policy|paused|pause|limit|limits"
            r"|exposure|budget|risco|riscos|arriscar|limite|pausa|pausado|pausada|exposicao"
            r"|perda maxima|orcamento"
        ),
    ),
    (
        Topic.POSITIONS,
        _words(
            r"position|positions|open trades|holdings|holding|what do i hold|posicao|posicoes"
            r"|operacoes abertas|trades abertos|minhas operacoes"
        ),
    ),
    (
        Topic.PNL,
        _words(
            r"p&l|pnl|p/l|profit|profits|loss|losses|performance|how much did i (?:make|lose)"
            r"|earnings|win rate|returns|lucro|lucros|lucrei|prejuizo|resultado|resultados"
            r"|ganho|ganhos|ganhei|perdi|rendimento|desempenho"
        ),
    ),
    (
        Topic.BALANCE,
        _words(
            r"balance|balances|funds|equity|wallet|how much money|cash|usdc|saldo|saldos"
            r"|carteira|quanto tenho|dinheiro|patrimonio|fundos"
        ),
    ),
    (
        Topic.PRICE,
        _words(
            r"analy[sz]e|analysis|price|prices|trend|chart|market|technical|support"
            r"|resistance|outlook|quote|analise|analisar|preco|precos|tendencia|mercado"
            r"|cotacao|grafico|suporte|resistencia"
        ),
    ),
)


@dataclass(frozen=True)
class Classification:
    intent: Intent
    topic: Topic


def classify(message: str) -> Classification:
    text = normalize(message)
    for topic, pattern in _TOPIC_WORDS:
        if pattern.search(text):
            return Classification(INTENT_OF[topic], topic)
    return Classification(Intent.GENERAL, Topic.GENERAL)


def detect_intent(message: str) -> Intent:
    return classify(message).intent


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TARGET = (
    r"\s*[:\-]?\s+"
    r"(?:(?:the|a|o)\s+)?(?:(?:trade|intent|order|proposal|position|ordem|operacao|proposta)\s+)?"
    r"(?:id\s*)?[:#]?\s*"
    rf"(?P<id>{_UUID})"
    r"\s*[.!]*\s*$"
)
_CONFIRMATION = re.compile(
    r"^\s*(?:(?:yes|ok|sim)[\s,!.]+)?"
    r"(?:confirm|confirmed|i confirm|confirmar|confirmo|confirma|eu confirmo)" + _TARGET
)
_CANCELLATION = re.compile(
    r"^\s*(?:(?:no|nao)[\s,!.]+)?"
    r"(?:cancel|i cancel|reject|cancelar|cancelo|cancela|eu cancelo|rejeitar|rejeito)" + _TARGET
)


def parse_confirmation(message: str) -> UUID | None:
    """The intent id of an explicit "confirm <id>" message, else None.

    Only a message that is nothing but a confirmation counts: "don't confirm <id>" or a
    sentence that merely mentions an id never executes anything.
    """
    found = _CONFIRMATION.match(normalize(message))
    return UUID(found["id"]) if found else None


def parse_cancellation(message: str) -> UUID | None:
    """The intent id of an explicit "cancel <id>" message (nothing but that), else None."""
    found = _CANCELLATION.match(normalize(message))
    return UUID(found["id"]) if found else None
