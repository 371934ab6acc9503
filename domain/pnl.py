"""Realised P&L net of fees: fees in the base asset are valued at the fill price."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from domain.market import Side


def fees_in_quote(
    fees: Mapping[str, Decimal],
    base_asset: str,
    quote_asset: str,
    price: Decimal,
    other_prices: Mapping[str, Decimal] | None = None,
) -> Decimal:
    """Value every fee in the quote asset; a fee in another asset (e.g. BNB) needs its price.

    An asset with no known price is valued at 0 here; the raw fees stay in the event, so
    such a fee can still be valued later.
    """
    total = Decimal(0)
    for asset, amount in fees.items():
        if asset == quote_asset:
            total += amount
        elif asset == base_asset:
            total += amount * price
        elif other_prices and asset in other_prices:
            total += amount * other_prices[asset]
    return total


def realised_pnl(
    side: Side,
    entry_price: Decimal,
    exit_price: Decimal,
    quantity: Decimal,
    entry_fees_quote: Decimal,
    exit_fees_quote: Decimal,
) -> Decimal:
    """Gross move times quantity, minus the entry and exit fees attributed to `quantity`."""
    return (exit_price - entry_price) * quantity * side.sign - entry_fees_quote - exit_fees_quote
