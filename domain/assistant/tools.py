"""The tools the model may call: their JSON schemas, and strict parsing of its arguments.

The model's arguments are untrusted text. Parsing never raises: a malformed call becomes
`InvalidArguments`, whose result tells the model what was wrong so it can try again.
No tool takes a tenant: every call acts for the tenant whose chat it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from domain.assistant.guard import IntendedTrade
from domain.formats import Document
from domain.market import Side
from domain.read_models import Period

DEFAULT_SYMBOL = "BTCUSDC"
MAX_ARGUMENT_CHARS = 4000
_NUMBER: dict[str, object] = {
    "anyOf": [{"type": "number"}, {"type": "string"}],
    "description": 'a positive decimal number, e.g. 98000 or "98000.50"',
}
_SYMBOL: dict[str, object] = {
    "type": "string",
    "description": "trading pair, e.g. BTCUSDC",
}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    properties: Mapping[str, object]
    required: tuple[str, ...] = ()

    def schema(self) -> dict[str, object]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": dict(self.properties),
                    "required": list(self.required),
                },
            },
        }


TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("get_balances", "The account's balances per asset (free and locked).", {}),
    ToolSpec(
        "get_positions",
        "Open positions with entry, stop, current price, unrealised P&L and distance to stop.",
        {},
    ),
    ToolSpec(
        "get_trade_history",
        "The most recent trades (closed exits and still-open parts), newest first.",
        {"limit": {"type": "integer", "minimum": 1, "maximum": 20}},
    ),
    ToolSpec(
        "get_pnl",
        "Realised P&L per period with win rate, and the overall total.",
        {
            "period": {"type": "string", "enum": [p.value for p in Period]},
            "limit": {"type": "integer", "minimum": 1, "maximum": 24},
        },
    ),
    ToolSpec(
        "get_risk_state",
        "The risk policy and this month's drawdown: capital base, 1% risk per trade, "
        "realised and unrealised P&L, open risk, remaining loss budget, alerts, pause.",
        {},
    ),
    ToolSpec(
        "calculate_position_size",
        "Size a position by the 1% rule: quantity = capital x risk% / |entry - stop|, "
        "rounded down to the lot step. Entry defaults to the current price.",
        {"symbol": _SYMBOL, "stop_price": _NUMBER, "entry_price": _NUMBER},
        ("stop_price",),
    ),
    ToolSpec("get_price", "The current price of a symbol.", {"symbol": _SYMBOL}, ("symbol",)),
    ToolSpec(
        "analyze_trade_risk",
        "The emotional-trading guard: scores the user's request for FOMO, revenge trading, "
        "overconfidence and the account's recent behaviour (loss streaks, overtrading).",
        {
            "message": {"type": "string", "description": "default: the user's last message"},
            "symbol": _SYMBOL,
            "side": {"type": "string", "enum": ["LONG", "SHORT"]},
            "entry_price": _NUMBER,
            "stop_price": _NUMBER,
            "target_price": _NUMBER,
            "leverage": _NUMBER,
            "quantity": _NUMBER,
        },
    ),
    ToolSpec(
        "propose_trade",
        "PLAN and VALIDATE a trade against the risk rules. It never executes: the user must "
        "confirm it explicitly within 5 minutes. A stop price is mandatory; without a "
        "quantity the position is sized by the 1% rule.",
        {
            "symbol": _SYMBOL,
            "side": {"type": "string", "enum": ["LONG", "SHORT"]},
            "stop_price": _NUMBER,
            "entry_price": _NUMBER,
            "target_price": _NUMBER,
            "quantity": _NUMBER,
        },
        ("symbol", "side", "stop_price"),
    ),
)

TOOLS: list[dict[str, object]] = [spec.schema() for spec in TOOL_SPECS]
TOOL_NAMES = tuple(spec.name for spec in TOOL_SPECS)


# --- parsed requests ---


@dataclass(frozen=True)
class GetBalances:
    pass


@dataclass(frozen=True)
class GetPositions:
    pass


@dataclass(frozen=True)
class GetTradeHistory:
    limit: int = 5


@dataclass(frozen=True)
class GetPnl:
    period: Period = Period.MONTHLY
    limit: int = 6


@dataclass(frozen=True)
class GetRiskState:
    pass


@dataclass(frozen=True)
class SizePosition:
    symbol: str
    stop_price: Decimal
    entry_price: Decimal | None


@dataclass(frozen=True)
class GetPrice:
    symbol: str


@dataclass(frozen=True)
class AnalyzeTrade:
    message: str | None
    trade: IntendedTrade


@dataclass(frozen=True)
class ProposeTrade:
    symbol: str
    side: Side
    stop_price: Decimal
    entry_price: Decimal | None
    target_price: Decimal | None
    quantity: Decimal | None


ToolRequest = (
    GetBalances
    | GetPositions
    | GetTradeHistory
    | GetPnl
    | GetRiskState
    | SizePosition
    | GetPrice
    | AnalyzeTrade
    | ProposeTrade
)


@dataclass(frozen=True)
class InvalidArguments:
    tool: str
    reason: str

    def result(self) -> Document:
        """What the model is told: the problem, and that it may call again correctly."""
        return {
            "error": "invalid_arguments",
            "tool": self.tool,
            "detail": self.reason,
            "hint": "Nothing was done. Call the tool again with valid JSON arguments "
            "matching its schema, or answer the user without it.",
        }


class _Bad(Exception):
    """A problem with one argument; becomes InvalidArguments."""


def parse_tool_call(name: str, arguments: str) -> ToolRequest | InvalidArguments:
    """Validate one tool call; never raises, whatever the model sent."""
    if name not in TOOL_NAMES:
        return InvalidArguments(name[:64], f"unknown tool; available: {', '.join(TOOL_NAMES)}")
    if len(arguments) > MAX_ARGUMENT_CHARS:
        return InvalidArguments(name, "arguments are too long")
    try:
        args = _object(arguments)
        return _PARSERS[name](_Args(args))
    except _Bad as bad:
        return InvalidArguments(name, str(bad))


def _object(arguments: str) -> dict[str, object]:
    if not arguments.strip():
        return {}
    try:
        parsed: object = json.loads(arguments, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise _Bad("arguments are not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _Bad("arguments must be a JSON object")
    return parsed


def _no_constant(name: str) -> NoReturn:
    raise ValueError(name)


class _Args:
    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def decimal(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.values.get(key)
        if value is None:
            if required:
                raise _Bad(f"{key} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
            raise _Bad(f"{key} must be a number")
        text = str(value).strip()
        if "," in text:  # 98,000 or 98000,5? Guessing could misprice a stop: ask instead.
            raise _Bad(f"{key} must use a dot for decimals and no thousands separators")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _Bad(f"{key} must be a number, not {text[:40]!r}") from None
        if not number.is_finite() or number <= 0 or number >= Decimal(10) ** 12:
            raise _Bad(f"{key} must be a positive number")
        return number

    def text(self, key: str, *, required: bool = False, limit: int = 2000) -> str | None:
        value = self.values.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise _Bad(f"{key} is required")
            return None
        if not isinstance(value, str):
            raise _Bad(f"{key} must be a string")
        if len(value) > limit:
            raise _Bad(f"{key} is too long")
        return value.strip()

    def symbol(self, *, required: bool = False) -> str:
        raw = self.text("symbol", required=required, limit=20)
        if raw is None:
            return DEFAULT_SYMBOL
        symbol = raw.replace("/", "").replace("-", "").upper()
        if not symbol.isalnum():
            raise _Bad("symbol must be letters and digits, e.g. BTCUSDC")
        return symbol

    def side(self, *, required: bool = False) -> Side | None:
        raw = self.text("side", required=required, limit=10)
        if raw is None:
            return None
        side = _SIDES.get(raw.upper())
        if side is None:
            raise _Bad("side must be LONG or SHORT")
        return side

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            raise _Bad(f"{key} must be a whole number")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise _Bad(f"{key} must be a whole number") from None
        if number != number.to_integral_value() or not low <= number <= high:
            raise _Bad(f"{key} must be a whole number from {low} to {high}")
        return int(number)

    def only(self, *allowed: str) -> None:
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            raise _Bad(
                f"unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
            )


_SIDES = {"LONG": Side.LONG, "BUY": Side.LONG, "SHORT": Side.SHORT, "SELL": Side.SHORT}


def _period(args: _Args) -> Period:
    raw = args.text("period", limit=10)
    if raw is None:
        return Period.MONTHLY
    for period in Period:
        if period.value == raw.lower():
            return period
    raise _Bad(f"period must be one of {', '.join(p.value for p in Period)}")


def _size(args: _Args) -> SizePosition:
    stop = args.decimal("stop_price", required=True)
    assert stop is not None
    return SizePosition(args.symbol(), stop, args.decimal("entry_price"))


def _analyze(args: _Args) -> AnalyzeTrade:
    side = args.side()
    symbol = args.text("symbol", limit=20)
    trade = IntendedTrade(
        symbol=symbol.upper() if symbol else None,
        side=side.value if side else None,
        entry_price=args.decimal("entry_price"),
        stop_price=args.decimal("stop_price"),
        target_price=args.decimal("target_price"),
        leverage=args.decimal("leverage"),
        quantity=args.decimal("quantity"),
    )
    return AnalyzeTrade(args.text("message"), trade)


def _propose(args: _Args) -> ProposeTrade:
    args.only("symbol", "side", "stop_price", "entry_price", "target_price", "quantity")
    side = args.side(required=True)
    stop = args.decimal("stop_price", required=True)
    assert side is not None and stop is not None
    return ProposeTrade(
        symbol=args.symbol(required=True),
        side=side,
        stop_price=stop,
        entry_price=args.decimal("entry_price"),
        target_price=args.decimal("target_price"),
        quantity=args.decimal("quantity"),
    )


_PARSERS: dict[str, Callable[[_Args], ToolRequest]] = {
    "get_balances": lambda _: GetBalances(),
    "get_positions": lambda _: GetPositions(),
    "get_trade_history": lambda a: GetTradeHistory(a.integer("limit", 5, 1, 20)),
    "get_pnl": lambda a: GetPnl(_period(a), a.integer("limit", 6, 1, 24)),
    "get_risk_state": lambda _: GetRiskState(),
    "calculate_position_size": _size,
    "get_price": lambda a: GetPrice(a.symbol(required=True)),
    "analyze_trade_risk": _analyze,
    "propose_trade": _propose,
}
