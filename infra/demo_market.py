"""`robson demo` on a paper market other tenants share.

The demo moves the price to show a winning trade, and a paper price fires every tenant's
stops on that symbol. So it runs only where that cannot happen: on Binance's real prices it
moves nothing, and on hand-set prices it refuses while anyone else has a position live on
the symbol, then puts back the price it found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from domain.errors import DomainError, ExchangeUnavailable
from domain.ports import Exchange
from domain.read_models import ReadModels
from infra.paper_exchange import PaperExchange


class SharedMarketInUse(DomainError):
    code = "shared_market_in_use"


@contextmanager
def demo_prices(
    paper: PaperExchange,
    read_models: ReadModels,
    catch_up: Callable[[], object],
    symbol: str,
    entry: Decimal,
) -> Iterator[Callable[[Decimal], Decimal]]:
    """Yields `move(offset)`: the demo's price steps from `entry`, or the real price unchanged."""
    if paper.prices_are_live:
        yield lambda _offset: paper.price(symbol)
        return
    catch_up()  # the projections may lag when no server runs
    live = read_models.open_positions(symbol=symbol)
    if live:
        tenants = len({p.client_id for p in live})
        raise SharedMarketInUse(
            f"robson demo moves the shared {symbol} paper price, which would fire the stops of "
            f"{len(live)} live position(s) of {tenants} tenant(s); run it on a database of its "
            f"own (ROBSON_HOME=$(mktemp -d) robson demo) or with ROBSON_PAPER_PRICES=binance"
        )
    previous = _current(paper, symbol)
    try:
        yield lambda offset: paper.set_price(symbol, entry + offset)
    finally:
        if previous is not None:
            paper.set_price(symbol, previous)


def _current(exchange: Exchange, symbol: str) -> Decimal | None:
    try:
        return exchange.price(symbol)
    except ExchangeUnavailable:
        return None
