"""`BinanceExchange`: the `Exchange` port on Binance (spot, and isolated margin off the
testnet), over the `BinanceClient`'s guarded sending."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import (
    ExchangeUnavailable,
    InvalidInput,
    MarginUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)
from domain.market import OrderSide, SymbolRules
from domain.ports import (
    ApiCredentials,
    Balance,
    Clock,
    MarginHolding,
    OrderRecord,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Trade,
    TradingAccount,
)
from infra.binance.client import (
    BinanceClient,
    Call,
    NoSuchOrder,
    Slot,
    mapping,
    method,
)
from infra.binance.filters import SymbolInfo, amount_params, parse_symbol
from infra.binance.history import orders_since, trades_since
from infra.binance.limits import DEFAULT_WEIGHT_LIMIT, parse_limits
from infra.binance.margin import borrow_repay, isolated_holdings, refuse_on_testnet
from infra.binance.orders import order_result, sum_fees
from infra.binance.stops import StopOrders

# Binance signs raw values but requests percent-encodes the body: keep ids to safe characters.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._-]{1,36}$")


class BinanceExchange(StopOrders):
    """Spot and isolated-margin MARKET orders on Binance (or its spot testnet), and the
    stop-limit orders that insure open positions (see `StopOrders`)."""

    name = "binance"
    is_live = True

    def __init__(
        self,
        *,
        testnet: bool,
        base_url: str | None = None,
        timeout_seconds: float = 10.0,
        recv_window_ms: int = 5000,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        throttle_fraction: float = 0.8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
    ) -> None:
        """`base_url` (e.g. a fake server's http://127.0.0.1:port) replaces every Binance host.

        `weight_limit` holds until exchangeInfo's `rateLimits` replace it (with its ORDERS
        limits). Once the used weight (or an order count) reaches `throttle_fraction` of its
        limit, entries and reads sleep (with `sleep`) until that window restarts; exits never
        do, so the rest of the window is theirs.
        """
        self._client = BinanceClient(
            testnet=testnet,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            recv_window_ms=recv_window_ms,
            weight_limit=weight_limit,
            throttle_fraction=throttle_fraction,
            sleep=sleep,
            clock=clock,
        )
        self._state = threading.Lock()
        self._symbols: dict[str, SymbolInfo] = {}

    def __repr__(self) -> str:
        client = self._client
        return f"BinanceExchange(testnet={client.testnet}, base_url={client.base_url!r})"

    # ---- observable state

    @property
    def used_weight(self) -> int | None:
        """The last X-MBX-USED-WEIGHT-1M Binance reported (None before any /api answer)."""
        return self._client.used_weight

    @property
    def banned_until(self) -> datetime | None:
        """Until when a 429/418 Retry-After forbids sending anything (UTC)."""
        return self._client.banned_until

    @property
    def banned_at(self) -> datetime | None:
        """When the last 429/418 arrived."""
        return self._client.banned_at

    def close(self) -> None:
        """Close every HTTP session (sockets) the cached clients hold."""
        self._client.close()

    # ---- the Exchange port

    def symbol_rules(self, symbol: str) -> SymbolRules:
        return self._symbol_info(symbol, urgent=False).rules

    def price(self, symbol: str) -> Decimal:
        return self._price(symbol, urgent=False)

    def _price(self, symbol: str, *, urgent: bool) -> Decimal:
        data = self._client.send(
            self._client.public,
            method("get_symbol_ticker", symbol=symbol),
            Call(f"read the {symbol} price", writes=False, urgent=urgent),
        )
        try:
            return Decimal(str(mapping(data)["price"]))
        except (KeyError, InvalidOperation, TypeError) as exc:
            raise ExchangeUnavailable(f"Binance sent an unreadable {symbol} price") from exc

    def balances(self, account: TradingAccount) -> dict[str, Balance]:
        credentials = self._client.credentials(account)
        data = self._client.send(
            self._client.slot(credentials),
            method("get_account", omitZeroBalances="true"),
            Call("read the spot balances", writes=False, api_key=credentials.api_key),
        )
        try:
            balances = {}
            for row in mapping(data)["balances"]:
                balance = Balance(
                    asset=str(row["asset"]),
                    free=Decimal(str(row["free"])),
                    locked=Decimal(str(row["locked"])),
                )
                if balance.total:
                    balances[balance.asset] = balance
            return balances
        except (KeyError, InvalidOperation, TypeError) as exc:
            raise ExchangeUnavailable("Binance sent an unreadable account answer") from exc

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        if order.margin is not None:
            refuse_on_testnet(self._client, "place an isolated margin order")
        credentials = self._client.credentials(account)
        if not CLIENT_ORDER_ID.match(order.client_order_id):
            raise InvalidInput(
                "client_order_id",
                "must be 1 to 36 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
            )
        urgent = order.is_exit  # an exit, and the reads it needs, go out ahead of the rest
        info = self._symbol_info(order.symbol, urgent=urgent)
        rules = info.rules
        if order.margin is not None and not rules.margin_allowed:
            raise MarginUnavailable(f"Binance does not offer margin trading on {order.symbol}")
        params: dict[str, str] = {
            "symbol": order.symbol,
            "side": order.side.value,
            "type": "MARKET",
            "newClientOrderId": order.client_order_id,
            "newOrderRespType": "FULL",
        }
        # Binance checks a MARKET order's NOTIONAL against the average price of the last
        # `avgPriceMins` minutes (filters.md "NOTIONAL"), so the price the sender has just
        # seen serves this check as well as a fresh read, without a round trip per order.
        price = order.reference_price or self._price(order.symbol, urgent=urgent)
        params.update(amount_params(order, info, price))
        spent = rules.quote_asset if order.side is OrderSide.BUY else rules.base_asset
        amount = params.get("quantity", params.get("quoteOrderQty"))
        unit = rules.base_asset if "quantity" in params else rules.quote_asset
        call = Call(
            f"{order.side.value} {amount} {unit} of {order.symbol} "
            f"(client order id {order.client_order_id})",
            writes=True,
            api_key=credentials.api_key,
            spent_asset=spent,
            urgent=urgent,
            places_order=True,
        )
        if order.margin is not None:
            params.update(isIsolated="TRUE", sideEffectType=order.margin.value)
            send = method("create_margin_order", **params)
        else:
            send = method("create_order", **params)
        try:
            data = self._client.send(self._client.slot(credentials), send, call)
        except OrderRejected as exc:
            if "duplicate order" not in exc.message.lower():
                raise
            # Idempotent by client order id: the first attempt is the answer.
            existing = self.find_order(
                account, order.symbol, order.client_order_id, margin=order.margin is not None
            )
            if existing is None:
                raise
            return existing
        try:
            result = order_result(mapping(data), fees=None)
        except (KeyError, InvalidOperation, TypeError, ValueError, ZeroDivisionError) as exc:
            raise OrderOutcomeUnknown(
                f"Binance accepted {call.what} but its answer was unreadable; "
                "look the order up before doing anything else"
            ) from exc
        if result.status is OrderStatus.REJECTED:
            raise OrderRejected(
                f"Binance expired {call.what} without filling any of it (no liquidity)"
            )
        return result

    def find_order(
        self,
        account: TradingAccount,
        symbol: str,
        client_order_id: str,
        *,
        margin: bool | None = None,
    ) -> OrderResult | None:
        """Spot first, then isolated margin (`margin` = True/False restricts it to one)."""
        credentials = self._client.credentials(account)
        slot = self._client.slot(credentials)
        if margin is not True:
            found = self._lookup(slot, credentials, symbol, client_order_id, margin=False)
            if found is not None:
                return found
        if margin is False or self._client.testnet:
            return None
        return self._lookup(slot, credentials, symbol, client_order_id, margin=True)

    def orders_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[OrderRecord]:
        return orders_since(self._client, account, symbol, since, margin=margin)

    def trades_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[Trade]:
        return trades_since(self._client, account, symbol, since, margin=margin)

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        borrow_repay(self._client, account, symbol, asset, amount, "BORROW")

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        borrow_repay(self._client, account, symbol, asset, amount, "REPAY")

    def isolated_margin(self, account: TradingAccount, symbol: str) -> dict[str, MarginHolding]:
        refuse_on_testnet(self._client, "read an isolated margin account")
        return isolated_holdings(
            self._client, account, self._symbol_info(symbol, urgent=False).rules
        )

    # ---- lookups and symbols

    def _lookup(
        self,
        slot: Slot,
        credentials: ApiCredentials,
        symbol: str,
        client_order_id: str,
        *,
        margin: bool,
    ) -> OrderResult | None:
        kind = "isolated margin" if margin else "spot"
        call = Call(
            f"look up {kind} order {client_order_id} on {symbol}",
            writes=False,
            api_key=credentials.api_key,
        )
        where = {"symbol": symbol, **({"isIsolated": "TRUE"} if margin else {})}
        get = method(
            "get_margin_order" if margin else "get_order",
            origClientOrderId=client_order_id,
            **where,
        )
        try:
            order = mapping(self._client.send(slot, get, call))
        except NoSuchOrder:
            return None
        try:
            executed = Decimal(str(order["executedQty"]))
            fees: dict[str, Decimal] = {}
            trades: Any = []
            if executed > 0:
                trades = self._client.send(
                    slot,
                    method(
                        "get_margin_trades" if margin else "get_my_trades",
                        orderId=str(order["orderId"]),
                        **where,
                    ),
                    Call(
                        f"read the trades of {kind} order {client_order_id}",
                        writes=False,
                        api_key=credentials.api_key,
                    ),
                )
                fees = sum_fees(trades)
            return order_result(order, fees=fees, trades=trades)
        except (KeyError, InvalidOperation, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ExchangeUnavailable(f"Binance sent an unreadable answer to: {call.what}") from exc

    def _symbol_info(self, symbol: str, *, urgent: bool) -> SymbolInfo:
        """Filters change rarely: load exchangeInfo once, again only for an unknown symbol;
        its `rateLimits` set the throttle's limits."""
        with self._state:
            info = self._symbols.get(symbol)
        if info is not None:
            return info
        data = self._client.send(
            self._client.public,
            method("get_exchange_info"),
            Call("read the exchange's symbol rules", writes=False, urgent=urgent),
        )
        try:
            parsed = {str(row["symbol"]): parse_symbol(row) for row in mapping(data)["symbols"]}
            limits = parse_limits(mapping(data).get("rateLimits") or [])
        except (KeyError, InvalidOperation, TypeError, ValueError) as exc:
            raise ExchangeUnavailable("Binance sent unreadable symbol rules") from exc
        self._client.adopt_limits(*limits)
        with self._state:
            self._symbols.update(parsed)
            info = self._symbols.get(symbol)
        if info is None:
            raise InvalidInput("symbol", f"{symbol} is not traded on Binance")
        return info
