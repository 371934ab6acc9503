"""Binance's order answers (a FULL order reply, or an order query with its trades) read as
the port's `OrderResult`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.market import ASSET_PRECISION
from domain.ports import OrderResult, OrderStatus

_STATUSES = {
    "FILLED": OrderStatus.FILLED,
    "NEW": OrderStatus.PENDING,
    "PENDING_NEW": OrderStatus.PENDING,
    "PARTIALLY_FILLED": OrderStatus.PENDING,  # still working on the book
    "PENDING_CANCEL": OrderStatus.PENDING,
}


def order_result(
    order: Mapping[str, Any], *, fees: dict[str, Decimal] | None, trades: Any = ()
) -> OrderResult:
    """From a FULL order answer (fees from its fills) or a query answer (fees and trades given).

    A query answer's cummulativeQuoteQty is < 0 when Binance lacks it (rest-api.md "Query
    order"): the average then comes from the order's trades, and without them it is unreadable.
    """
    executed = Decimal(str(order["executedQty"]))
    quote = Decimal(str(order["cummulativeQuoteQty"]))
    fills = order.get("fills") or (trades if quote < 0 else [])
    if fills:
        fill_qty = sum((Decimal(str(f["qty"])) for f in fills), Decimal(0))
        fill_quote = sum(
            (Decimal(str(f["price"])) * Decimal(str(f["qty"])) for f in fills), Decimal(0)
        )
        average = fill_quote / fill_qty
        quote = fill_quote if quote < 0 else quote
    elif executed > 0:
        if quote < 0:
            raise ValueError("cummulativeQuoteQty is not available and no trades were given")
        average = quote / executed
    else:
        average, quote = Decimal(0), max(quote, Decimal(0))
    if fees is None:
        fees = sum_fees(fills)
    status = status_of(str(order["status"]), executed)
    millis = order.get("transactTime") or order.get("updateTime") or order["time"]
    return OrderResult(
        client_order_id=str(order["clientOrderId"]),
        exchange_order_id=str(order["orderId"]),
        status=status,
        executed_quantity=executed,
        average_price=average.quantize(ASSET_PRECISION, rounding=ROUND_HALF_EVEN),
        quote_quantity=quote,
        fees=fees,
        executed_at=datetime.fromtimestamp(int(millis) / 1000, tz=UTC),
    )


def status_of(raw_status: str, executed: Decimal) -> OrderStatus:
    status = _STATUSES.get(raw_status)
    if status is None:  # EXPIRED, CANCELED, REJECTED, EXPIRED_IN_MATCH: no longer working
        status = OrderStatus.PARTIALLY_FILLED if executed > 0 else OrderStatus.REJECTED
    return status


def sum_fees(rows: Any) -> dict[str, Decimal]:
    """Commission per commissionAsset (fills of an order answer, or myTrades rows)."""
    fees: dict[str, Decimal] = {}
    for row in rows:
        asset = str(row["commissionAsset"])
        fees[asset] = fees.get(asset, Decimal(0)) + Decimal(str(row["commission"]))
    return fees
