"""A paper market's last price for a symbol, as events: the paper exchange fills at it and
the drawdown projection values open positions with it.

The topics keep the names these events were first stored under, so logs written before the
class lived here still resolve and still match the projections' topic filters.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate

STORED_AS = "infra.paper_accounts:PaperMarket"


class PaperMarket(LedgerAggregate):
    """The last price set for a symbol (CLI, API or a demo price source)."""

    TOPIC = STORED_AS

    class Created(Aggregate.Created):  # never stored (`Opened` creates it); named all the same
        TOPIC = f"{STORED_AS}.Created"

    class Opened(Aggregate.Created):
        TOPIC = f"{STORED_AS}.Opened"
        symbol: str
        price: Decimal

    @event(Opened)
    def __init__(self, symbol: str, price: Decimal) -> None:
        self.symbol = symbol
        self.price = price

    class PriceSet(Aggregate.Event):
        TOPIC = f"{STORED_AS}.PriceSet"
        price: Decimal

        def apply(self, aggregate: PaperMarket) -> None:
            aggregate.price = self.price

    def set_price(self, price: Decimal, now: datetime) -> None:
        self.trigger_event(self.PriceSet, timestamp=now, price=price)
