"""Real prices for paper trading: Binance's public last price per symbol, briefly cached.

Like Freqtrade's dry run, paper then fills at the market's real price (GET /api/v3/ticker/price,
no API key). The cache keeps a worker tick to one request per symbol however many positions
it checks; hand-set prices are refused in this mode (see `PaperExchange.set_price`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from domain.errors import IllegalTransition
from domain.ports import Clock
from domain.store import EventStore
from infra.paper_symbols import paper_symbols
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.paper_exchange import PaperExchange

DEFAULT_TTL_SECONDS = 2.0


class PricesFromBinance(IllegalTransition):
    """A hand-set price while paper follows Binance's real prices: refused (409)."""

    code = "paper_prices_from_binance"

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"Paper prices come from Binance (ROBSON_PAPER_PRICES=binance): the {symbol} "
            "price cannot be set by hand; unset ROBSON_PAPER_PRICES to set prices yourself"
        )


class MarketPrices(Protocol):
    def price(self, symbol: str) -> Decimal: ...


class CachedPrices:
    """Each symbol's price is asked for at most once every `ttl_seconds`."""

    def __init__(
        self,
        source: MarketPrices,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, Decimal]] = {}

    def price(self, symbol: str) -> Decimal:
        with self._lock:  # one request per symbol even when many threads ask at once
            now = self._monotonic()
            known = self._known.get(symbol)
            if known is not None and now - known[0] < self._ttl:
                return known[1]
            price = self._source.price(symbol)
            self._known[symbol] = (now, price)
            return price


def binance_prices(base_url: str | None, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> CachedPrices:
    """Binance production's public market data through the keyless python-binance client
    of the Binance adapter (its weight tracking and error mapping included)."""
    from infra.binance.exchange import BinanceExchange

    return CachedPrices(BinanceExchange(testnet=False, base_url=base_url), ttl_seconds)


def paper_exchange(settings: Settings, store: EventStore, clock: Clock) -> PaperExchange:
    """The paper exchange the settings describe: its symbols and where its prices come from."""
    from infra.paper_exchange import PaperExchange

    market = None
    if settings.paper_prices == "binance":
        market = binance_prices(settings.binance_base_url)
    symbols = paper_symbols(settings.paper_symbols)
    return PaperExchange(store, clock, settings.paper_balance, symbols, market)
