"""Reading a trade out of free text (English and Portuguese): symbol, side, prices, leverage."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class ExtractedParameters:
    symbol: str | None = None
    side: str | None = None
    entry_price: Decimal | None = None
    stop_price: Decimal | None = None
    target_price: Decimal | None = None
    leverage: Decimal | None = None


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'"})


def normalize(text: str) -> str:
    """Lower-case and strip accents char by char, so match offsets still index the original."""
    out: list[str] = []
    for ch in text.translate(_APOSTROPHES):
        decomposed = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        lowered = (base if len(base) == 1 else ch).lower()
        out.append(lowered if len(lowered) == 1 else ch)
    return "".join(out)


_NUMBER = r"\d(?:[\d.,]*\d)?"
_LEVERAGE = re.compile(
    rf"(?<![\w.,])(?P<a>{_NUMBER})\s?x(?!\w)"
    rf"|(?<!\w)x\s?(?P<b>{_NUMBER})(?![\w.,])"
    rf"|(?<!\w)(?:leverage|alavancagem)(?:\s+(?:de|of|at|em))?\s*[:=]?\s*(?P<c>{_NUMBER})"
)
_PRICE_KEYWORDS = (
    r"stop[\s\-]*loss|stoploss|stop|sl|take[\s\-]*profit|target|tp|alvo|objetivo"
    r"|entry|entrada|price|preco|at|em"
)
_PRICE = re.compile(
    rf"(?:(?<!\w)(?P<kw>{_PRICE_KEYWORDS})(?!\w)|(?P<at>@))"
    r"(?:\s*(?:[:=@]|(?:at|em|de|of|price|preco|in|no|na)(?!\w)))?"
    rf"\s*\$?\s*(?P<num>{_NUMBER})(?P<k>k)?(?![\w%])"
)
_BASES = (
    "btc|eth|sol|bnb|xrp|ada|doge|dot|avax|link|ltc|trx|"
    "ton|sui|pepe|shib|near|atom|uni|arb|op|apt|pol|matic"
)
_QUOTES = "fdusd|usdc|usdt|busd|usd|eur|brl"
_KNOWN_PAIR = re.compile(rf"(?<!\w)(?P<base>{_BASES})[/\-]?(?P<quote>{_QUOTES})(?!\w)")
_STABLE_PAIR = re.compile(r"(?<!\w)(?P<base>[a-z]{2,10}?)(?P<quote>fdusd|usdc|usdt)(?!\w)")
_BARE_BASE = re.compile(rf"(?<!\w)(?P<base>{_BASES})(?!\w)")
_ALIASES = {"bitcoin": "BTC", "ethereum": "ETH", "ether": "ETH", "solana": "SOL"}
_ALIAS = re.compile(rf"(?<!\w)(?:{'|'.join(_ALIASES)})(?!\w)")
_SIDE = re.compile(
    r"(?<!\w)(?:(?P<long>buy|buying|long|going long|comprar|compra|compre|comprando|comprado)"
    r"|(?P<short>sell|selling|short|shorting|vender|venda|vende|vendendo|vendido|shortar))(?!\w)"
)


def extract_parameters(message: str) -> ExtractedParameters:
    """Read symbol, side, prices and leverage out of free text ("long btc entrada 95000 ...")."""
    text = normalize(message)
    prices: dict[str, Decimal] = {}
    for m in _PRICE.finditer(text):
        value = _parse_number(m["num"])
        if value is None:
            continue
        if m["k"]:
            value *= 1000
        prices.setdefault(_price_role(m["kw"] or "@"), value)
    leverage_match = _LEVERAGE.search(text)
    leverage = (
        _parse_number(leverage_match["a"] or leverage_match["b"] or leverage_match["c"])
        if leverage_match
        else None
    )
    side_match = _SIDE.search(text)
    side = None if side_match is None else ("LONG" if side_match["long"] else "SHORT")
    return ExtractedParameters(
        symbol=_symbol(text),
        side=side,
        entry_price=prices.get("entry"),
        stop_price=prices.get("stop"),
        target_price=prices.get("target"),
        leverage=leverage,
    )


def _price_role(keyword: str) -> str:
    if keyword.startswith("stop") or keyword == "sl":
        return "stop"
    if keyword.startswith("take") or keyword in ("target", "tp", "alvo", "objetivo"):
        return "target"
    return "entry"


def _symbol(text: str) -> str | None:
    for pattern in (_KNOWN_PAIR, _STABLE_PAIR):
        m = pattern.search(text)
        if m:
            return (m["base"] + m["quote"]).upper()
    bare = _BARE_BASE.search(text)
    alias = _ALIAS.search(text)
    candidates = [(m.start(), m["base"].upper()) for m in (bare,) if m]
    candidates += [(m.start(), _ALIASES[m.group()]) for m in (alias,) if m]
    return min(candidates)[1] if candidates else None


def _parse_number(raw: str) -> Decimal | None:
    """Accept 95000, 95,000, 95.000,50 and 0,5: a lone separator before 3 digits groups."""
    text = raw
    if "." in text and "," in text:
        decimal_sep = "." if text.rfind(".") > text.rfind(",") else ","
        group_sep = "," if decimal_sep == "." else "."
        text = text.replace(group_sep, "").replace(decimal_sep, ".")
    elif "." in text or "," in text:
        parts = text.replace(",", ".").split(".")
        grouped = len(parts) > 2 or (len(parts[1]) == 3 and parts[0] != "0")
        if grouped and not all(len(p) == 3 for p in parts[1:]):
            return None
        text = "".join(parts) if grouped else f"{parts[0]}.{parts[1]}"
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
