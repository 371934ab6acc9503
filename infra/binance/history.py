"""An account's orders and trades on a symbol since a moment (GET /api/v3/allOrders and
myTrades, or /sapi/v1/margin/allOrders and myTrades with isIsolated): the evidence that an
order whose look-up finds nothing really never executed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import ExchangeUnavailable
from domain.market import OrderSide
from domain.ports import OrderRecord, Trade, TradingAccount
from infra.binance.client import BinanceClient, Call, method
from infra.binance.margin import refuse_on_testnet
from infra.binance.orders import status_of

# rest-api.md "All orders" and "Account trade list": limit "Default 500; max 1000"; the
# margin lists allow 500 at most. A full page may hide more: the list is then not proof.
PAGE = 500


def orders_since(
    client: BinanceClient, account: TradingAccount, symbol: str, since: datetime, *, margin: bool
) -> list[OrderRecord]:
    rows = _rows(client, account, symbol, since, margin, "orders")
    try:
        return [
            OrderRecord(
                client_order_id=str(row["clientOrderId"]),
                exchange_order_id=str(row["orderId"]),
                side=OrderSide(str(row["side"])),
                status=status_of(str(row["status"]), Decimal(str(row["executedQty"]))),
                executed_quantity=Decimal(str(row["executedQty"])),
            )
            for row in rows
        ]
    except (KeyError, InvalidOperation, TypeError, ValueError) as exc:
        raise ExchangeUnavailable(f"Binance sent an unreadable {symbol} order list") from exc


def trades_since(
    client: BinanceClient, account: TradingAccount, symbol: str, since: datetime, *, margin: bool
) -> list[Trade]:
    rows = _rows(client, account, symbol, since, margin, "trades")
    try:
        return [
            Trade(
                exchange_order_id=str(row["orderId"]),
                side=OrderSide.BUY if row["isBuyer"] else OrderSide.SELL,
                quantity=Decimal(str(row["qty"])),
                executed_at=datetime.fromtimestamp(int(row["time"]) / 1000, tz=UTC),
            )
            for row in rows
        ]
    except (KeyError, InvalidOperation, TypeError, ValueError) as exc:
        raise ExchangeUnavailable(f"Binance sent an unreadable {symbol} trade list") from exc


def _rows(
    client: BinanceClient,
    account: TradingAccount,
    symbol: str,
    since: datetime,
    margin: bool,
    kind: str,
) -> list[Any]:
    """One page from `since` on (oldest first); a full page is not the whole list."""
    if margin:
        refuse_on_testnet(client, f"list isolated margin {kind}")
    credentials = client.credentials(account)
    names = {
        ("orders", False): "get_all_orders",
        ("orders", True): "get_all_margin_orders",
        ("trades", False): "get_my_trades",
        ("trades", True): "get_margin_trades",
    }
    params = {
        "symbol": symbol,
        "startTime": str(int(since.timestamp() * 1000)),
        "limit": str(PAGE),
        **({"isIsolated": "TRUE"} if margin else {}),
    }
    where = "isolated margin" if margin else "spot"
    call = Call(f"list the {where} {symbol} {kind}", writes=False, api_key=credentials.api_key)
    rows = client.send(client.slot(credentials), method(names[(kind, margin)], **params), call)
    if not isinstance(rows, list):
        raise ExchangeUnavailable(f"Binance sent an unreadable answer to: {call.what}")
    if len(rows) >= PAGE:
        raise ExchangeUnavailable(f"Binance listed a full page of {symbol} {kind}; not all seen")
    return rows
