"""A symbol's filters as Binance states them (exchangeInfo), and an order's amount rounded
to them: what Binance would refuse with -1013 is refused here, before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from domain.errors import FilterFailure, OrderRejected
from domain.market import SymbolRules
from domain.ports import OrderRequest


@dataclass(frozen=True)
class SymbolInfo:
    """SymbolRules plus what only an order needs (quote orders, quote precision)."""

    rules: SymbolRules
    quote_orders_allowed: bool
    quote_precision: int


def parse_symbol(row: Mapping[str, Any]) -> SymbolInfo:
    """LOT_SIZE and MARKET_LOT_SIZE combine (the stricter wins); NOTIONAL or MIN_NOTIONAL."""
    filters = {str(f["filterType"]): f for f in row["filters"]}
    price_filter = filters["PRICE_FILTER"]
    lot = filters["LOT_SIZE"]
    step = Decimal(str(lot["stepSize"]))
    min_qty = Decimal(str(lot["minQty"]))
    max_qty = Decimal(str(lot["maxQty"]))
    market_lot = filters.get("MARKET_LOT_SIZE")
    if market_lot is not None:
        min_qty = max(min_qty, Decimal(str(market_lot["minQty"])))
        market_max = Decimal(str(market_lot["maxQty"]))
        if market_max > 0:
            max_qty = min(max_qty, market_max)
        step = max(step, Decimal(str(market_lot["stepSize"])))
    min_notional = Decimal(0)
    if "NOTIONAL" in filters and filters["NOTIONAL"].get("applyMinToMarket", True):
        min_notional = Decimal(str(filters["NOTIONAL"]["minNotional"]))
    elif "MIN_NOTIONAL" in filters and filters["MIN_NOTIONAL"].get("applyToMarket", True):
        min_notional = Decimal(str(filters["MIN_NOTIONAL"]["minNotional"]))
    rules = SymbolRules(
        symbol=str(row["symbol"]),
        base_asset=str(row["baseAsset"]),
        quote_asset=str(row["quoteAsset"]),
        tick_size=tidy(Decimal(str(price_filter["tickSize"]))),
        step_size=tidy(step),
        min_qty=tidy(min_qty),
        max_qty=tidy(max_qty),
        min_notional=tidy(min_notional),
        margin_allowed=bool(row.get("isMarginTradingAllowed", False)),
        # filters.md "MAX_NUM_ALGO_ORDERS": open STOP_LOSS(_LIMIT)/TAKE_PROFIT(_LIMIT) orders
        max_algo_orders=int(filters.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders", 5)),
    )
    return SymbolInfo(
        rules=rules,
        quote_orders_allowed=bool(row.get("quoteOrderQtyMarketAllowed", False)),
        quote_precision=int(row.get("quoteAssetPrecision", row.get("quotePrecision", 8))),
    )


def amount_params(order: OrderRequest, info: SymbolInfo, price: Decimal) -> dict[str, str]:
    """Round to the filters and refuse here what Binance would refuse (-1013)."""
    rules = info.rules
    if order.quantity is not None:
        quantity = rules.round_quantity(order.quantity)
        problems = rules.order_problems(quantity, price)
        if problems:
            raise FilterFailure(problems[0].split(":", 1)[0], "; ".join(problems))
        return {"quantity": plain(quantity)}
    assert order.quote_amount is not None
    if not info.quote_orders_allowed:
        raise OrderRejected(
            f"Binance does not accept orders by quote amount on {rules.symbol}; "
            "give a quantity instead"
        )
    places = Decimal(1).scaleb(-info.quote_precision)
    quote = order.quote_amount.quantize(places, rounding=ROUND_DOWN)
    if quote < rules.min_notional:
        raise FilterFailure(
            "NOTIONAL",
            f"NOTIONAL: order value {plain(quote)} {rules.quote_asset} is below the minimum "
            f"{rules.min_notional} {rules.quote_asset}",
        )
    quantity = rules.round_quantity(quote / price)
    if quantity < rules.min_qty or quantity > rules.max_qty:
        raise FilterFailure(
            "LOT_SIZE",
            f"LOT_SIZE: {plain(quote)} {rules.quote_asset} buys about {plain(quantity)} "
            f"{rules.base_asset}, outside {rules.min_qty} to {rules.max_qty}",
        )
    return {"quoteOrderQty": plain(quote)}


def plain(value: Decimal) -> str:
    """Binance takes plain decimals only: never '1e-05'."""
    return format(tidy(value), "f")


def tidy(value: Decimal) -> Decimal:
    """Without trailing zeros and without an exponent: '0.01000000' -> 0.01, '9000.0' -> 9000."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
