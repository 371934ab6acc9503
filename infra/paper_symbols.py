"""The symbols the paper exchange trades, with Binance spot's published filters for each.

Filter values as Binance's GET /api/v3/exchangeInfo publishes them for the symbol
(PRICE_FILTER tickSize, LOT_SIZE stepSize/minQty/maxQty, NOTIONAL minNotional); see
https://developers.binance.com/docs/binance-spot-api-docs/filters. `ROBSON_PAPER_SYMBOLS`
chooses which of them paper trades.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from domain.market import BTCUSDC, SymbolRules

ETHUSDC = SymbolRules(
    symbol="ETHUSDC",
    base_asset="ETH",
    quote_asset="USDC",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.0001"),
    min_qty=Decimal("0.0001"),
    max_qty=Decimal("9000"),
    min_notional=Decimal("5"),
)

SOLUSDC = SymbolRules(
    symbol="SOLUSDC",
    base_asset="SOL",
    quote_asset="USDC",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    max_qty=Decimal("9000000"),
    min_notional=Decimal("5"),
)

CATALOGUE: dict[str, SymbolRules] = {r.symbol: r for r in (BTCUSDC, ETHUSDC, SOLUSDC)}
DEFAULT_SYMBOLS = tuple(CATALOGUE)


class UnknownPaperSymbol(ValueError):
    """A configured symbol whose filters paper does not know."""


def paper_symbols(names: Iterable[str]) -> dict[str, SymbolRules]:
    """The rules of each named symbol, in order; an unknown name is refused, never guessed."""
    chosen: dict[str, SymbolRules] = {}
    for name in names:
        rules = CATALOGUE.get(name.strip().upper())
        if rules is None:
            raise UnknownPaperSymbol(
                f"paper does not know the filters of {name.strip()!r}; "
                f"known: {', '.join(CATALOGUE)}"
            )
        chosen[rules.symbol] = rules
    if not chosen:
        raise UnknownPaperSymbol("name at least one symbol")
    return chosen
