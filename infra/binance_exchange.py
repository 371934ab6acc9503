"""The `Exchange` port on Binance, through python-binance's sync `Client`.

python-binance does no filter checks, never retries, never syncs the clock and sends margin
calls to production even with testnet=True; this adapter covers all four, and turns every
answer into a domain result or a domain error (an unclear answer is never called a failure).
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from urllib3.exceptions import HTTPError as Urllib3Error

from domain.errors import (
    CredentialsMissing,
    CredentialsRejected,
    DomainError,
    ExchangeError,
    ExchangeUnavailable,
    FilterFailure,
    InsufficientBalance,
    InvalidInput,
    MarginUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)
from domain.market import ASSET_PRECISION, OrderSide, SymbolRules
from domain.ports import (
    ApiCredentials,
    Balance,
    Clock,
    MarginHolding,
    OrderRequest,
    OrderResult,
    OrderStatus,
    TradingAccount,
)
from infra.clock import SystemClock

log = logging.getLogger(__name__)

DEFAULT_WEIGHT_LIMIT = 1200  # Binance's REQUEST_WEIGHT per minute for /api
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# Binance signs raw values but requests percent-encodes the body: keep ids to safe characters.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._-]{1,36}$")
# Codes whose own text says the execution status is unknown (errors.md).
UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1006, -1007})
INSUFFICIENT_BALANCE_CODES = frozenset({-3041})


@dataclass(frozen=True)
class _SymbolInfo:
    """SymbolRules plus what only an order needs (quote orders, quote precision)."""

    rules: SymbolRules
    quote_orders_allowed: bool
    quote_precision: int


@dataclass(frozen=True)
class _Call:
    """What a request does, for messages and for deciding what an unclear answer means."""

    what: str
    writes: bool  # True: without a definite answer the outcome is unknown, never "failed"
    api_key: str | None = None
    spent_asset: str | None = None  # the asset an order or repayment spends


@dataclass
class _Slot:
    """One python-binance Client (a requests Session) and the lock that serialises it."""

    client: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


class _NoSuchOrder(Exception):
    """-2013 on a lookup: a definite 'this order does not exist'."""


class BinanceExchange:
    """Spot and isolated-margin MARKET orders on Binance (or its spot testnet)."""

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

        Before a request, once the used weight reached `throttle_fraction` of `weight_limit`,
        the adapter sleeps (with `sleep`) until the next minute's fresh weight window.
        """
        self._testnet = testnet
        self._base_url = base_url.rstrip("/") if base_url else None
        self._timeout = timeout_seconds
        self._recv_window_ms = recv_window_ms
        self._throttle_at = max(1, int(weight_limit * throttle_fraction))
        self._sleep = sleep
        self._clock: Clock = clock or SystemClock()
        self._client_class = self._make_client_class(self._base_url)
        self._state = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._timestamp_offset_ms = 0
        self._public = _Slot(self._new_client(None))
        self._symbols: dict[str, _SymbolInfo] = {}
        self._used_weight: int | None = None
        self._banned_until: datetime | None = None
        self._banned_at: datetime | None = None

    def __repr__(self) -> str:
        return f"BinanceExchange(testnet={self._testnet}, base_url={self._base_url!r})"

    # ---- observable state

    @property
    def used_weight(self) -> int | None:
        """The last X-MBX-USED-WEIGHT-1M Binance reported (None before any /api answer)."""
        with self._state:
            return self._used_weight

    @property
    def banned_until(self) -> datetime | None:
        """Until when a 429/418 Retry-After forbids sending anything (UTC)."""
        with self._state:
            return self._banned_until

    @property
    def banned_at(self) -> datetime | None:
        """When the last 429/418 arrived."""
        with self._state:
            return self._banned_at

    def close(self) -> None:
        """Close every HTTP session (sockets) the cached clients hold."""
        with self._state:
            slots = [self._public, *self._slots.values()]
            self._slots.clear()
        for slot in slots:
            slot.client.session.close()

    # ---- the Exchange port

    def symbol_rules(self, symbol: str) -> SymbolRules:
        return self._symbol_info(symbol).rules

    def price(self, symbol: str) -> Decimal:
        data = self._send(
            self._public,
            _method("get_symbol_ticker", symbol=symbol),
            _Call(f"read the {symbol} price", writes=False),
        )
        try:
            return Decimal(str(_mapping(data)["price"]))
        except (KeyError, InvalidOperation, TypeError) as exc:
            raise ExchangeUnavailable(f"Binance sent an unreadable {symbol} price") from exc

    def balances(self, account: TradingAccount) -> dict[str, Balance]:
        credentials = self._credentials(account)
        data = self._send(
            self._slot(credentials),
            _method("get_account", omitZeroBalances="true"),
            _Call("read the spot balances", writes=False, api_key=credentials.api_key),
        )
        try:
            balances = {}
            for row in _mapping(data)["balances"]:
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
            self._refuse_margin_on_testnet("place an isolated margin order")
        credentials = self._credentials(account)
        if not CLIENT_ORDER_ID.match(order.client_order_id):
            raise InvalidInput(
                "client_order_id",
                "must be 1 to 36 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
            )
        info = self._symbol_info(order.symbol)
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
        params.update(self._amount_params(order, info, self.price(order.symbol)))
        spent = rules.quote_asset if order.side is OrderSide.BUY else rules.base_asset
        amount = params.get("quantity", params.get("quoteOrderQty"))
        unit = rules.base_asset if "quantity" in params else rules.quote_asset
        call = _Call(
            f"{order.side.value} {amount} {unit} of {order.symbol} "
            f"(client order id {order.client_order_id})",
            writes=True,
            api_key=credentials.api_key,
            spent_asset=spent,
        )
        if order.margin is not None:
            params.update(isIsolated="TRUE", sideEffectType=order.margin.value)
            send = _method("create_margin_order", **params)
        else:
            send = _method("create_order", **params)
        try:
            data = self._send(self._slot(credentials), send, call)
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
            result = _order_result(_mapping(data), fees=None)
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
        credentials = self._credentials(account)
        slot = self._slot(credentials)
        if margin is not True:
            found = self._lookup(slot, credentials, symbol, client_order_id, margin=False)
            if found is not None:
                return found
        if margin is False or self._testnet:
            return None
        return self._lookup(slot, credentials, symbol, client_order_id, margin=True)

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        self._borrow_repay(account, symbol, asset, amount, "BORROW")

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        self._borrow_repay(account, symbol, asset, amount, "REPAY")

    def isolated_margin(self, account: TradingAccount, symbol: str) -> dict[str, MarginHolding]:
        self._refuse_margin_on_testnet("read an isolated margin account")
        rules = self._symbol_info(symbol).rules
        credentials = self._credentials(account)
        data = self._send(
            self._slot(credentials),
            _method("get_isolated_margin_account", symbols=symbol),
            _Call(
                f"read the {symbol} isolated margin account",
                writes=False,
                api_key=credentials.api_key,
            ),
        )
        # No isolated account for the symbol yet: nothing free, nothing owed.
        holdings = {a: MarginHolding(a) for a in (rules.base_asset, rules.quote_asset)}
        try:
            for pair in _mapping(data)["assets"]:
                if pair["symbol"] != symbol:
                    continue
                for side in (pair["baseAsset"], pair["quoteAsset"]):
                    asset = str(side["asset"])
                    holdings[asset] = MarginHolding(
                        asset,
                        borrowed=Decimal(str(side["borrowed"])),
                        interest=Decimal(str(side["interest"])),
                        free=Decimal(str(side["free"])),
                    )
        except (KeyError, InvalidOperation, TypeError) as exc:
            raise ExchangeUnavailable(
                f"Binance sent an unreadable {symbol} isolated margin account"
            ) from exc
        return holdings

    # ---- orders: amounts, lookups, margin loans

    def _amount_params(
        self, order: OrderRequest, info: _SymbolInfo, price: Decimal
    ) -> dict[str, str]:
        """Round to the filters and refuse here what Binance would refuse (-1013)."""
        rules = info.rules
        if order.quantity is not None:
            quantity = rules.round_quantity(order.quantity)
            problems = rules.order_problems(quantity, price)
            if problems:
                raise FilterFailure(problems[0].split(":", 1)[0], "; ".join(problems))
            return {"quantity": _plain(quantity)}
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
                f"NOTIONAL: order value {_plain(quote)} {rules.quote_asset} is below the minimum "
                f"{rules.min_notional} {rules.quote_asset}",
            )
        quantity = rules.round_quantity(quote / price)
        if quantity < rules.min_qty or quantity > rules.max_qty:
            raise FilterFailure(
                "LOT_SIZE",
                f"LOT_SIZE: {_plain(quote)} {rules.quote_asset} buys about {_plain(quantity)} "
                f"{rules.base_asset}, outside {rules.min_qty} to {rules.max_qty}",
            )
        return {"quoteOrderQty": _plain(quote)}

    def _lookup(
        self,
        slot: _Slot,
        credentials: ApiCredentials,
        symbol: str,
        client_order_id: str,
        *,
        margin: bool,
    ) -> OrderResult | None:
        kind = "isolated margin" if margin else "spot"
        call = _Call(
            f"look up {kind} order {client_order_id} on {symbol}",
            writes=False,
            api_key=credentials.api_key,
        )
        where = {"symbol": symbol, **({"isIsolated": "TRUE"} if margin else {})}
        get = _method(
            "get_margin_order" if margin else "get_order",
            origClientOrderId=client_order_id,
            **where,
        )
        try:
            order = _mapping(self._send(slot, get, call))
        except _NoSuchOrder:
            return None
        try:
            executed = Decimal(str(order["executedQty"]))
            fees: dict[str, Decimal] = {}
            trades: Any = []
            if executed > 0:
                trades = self._send(
                    slot,
                    _method(
                        "get_margin_trades" if margin else "get_my_trades",
                        orderId=str(order["orderId"]),
                        **where,
                    ),
                    _Call(
                        f"read the trades of {kind} order {client_order_id}",
                        writes=False,
                        api_key=credentials.api_key,
                    ),
                )
                fees = _sum_fees(trades)
            return _order_result(order, fees=fees, trades=trades)
        except (KeyError, InvalidOperation, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ExchangeUnavailable(f"Binance sent an unreadable answer to: {call.what}") from exc

    def _borrow_repay(
        self, account: TradingAccount, symbol: str, asset: str, amount: Decimal, kind: str
    ) -> None:
        verb = "borrow" if kind == "BORROW" else "repay"
        self._refuse_margin_on_testnet(f"{verb} on isolated margin")
        credentials = self._credentials(account)
        if amount <= 0 or _places(amount) > 8:
            raise InvalidInput("amount", "must be positive with at most 8 decimal places")
        call = _Call(
            f"{verb} {_plain(amount)} {asset} on the {symbol} isolated margin account",
            writes=True,
            api_key=credentials.api_key,
            spent_asset=asset if kind == "REPAY" else None,
        )
        self._send(
            self._slot(credentials),
            _method(
                "margin_borrow_repay",
                asset=asset,
                amount=_plain(amount),
                isIsolated="TRUE",
                symbol=symbol,
                type=kind,
            ),
            call,
        )

    def _refuse_margin_on_testnet(self, action: str) -> None:
        if self._testnet:
            raise MarginUnavailable(
                f"Binance testnet has no margin API; cannot {action}. python-binance would "
                "send this call to production (api.binance.com/sapi) with testnet keys. "
                "Use spot orders on testnet, or BINANCE_USE_TESTNET=False for margin."
            )

    # ---- symbols

    def _symbol_info(self, symbol: str) -> _SymbolInfo:
        """Filters change rarely: load exchangeInfo once, again only for an unknown symbol."""
        with self._state:
            info = self._symbols.get(symbol)
        if info is not None:
            return info
        data = self._send(
            self._public,
            _method("get_exchange_info"),
            _Call("read the exchange's symbol rules", writes=False),
        )
        try:
            parsed = {str(row["symbol"]): _parse_symbol(row) for row in _mapping(data)["symbols"]}
        except (KeyError, InvalidOperation, TypeError, ValueError) as exc:
            raise ExchangeUnavailable("Binance sent unreadable symbol rules") from exc
        with self._state:
            self._symbols.update(parsed)
            info = self._symbols.get(symbol)
        if info is None:
            raise InvalidInput("symbol", f"{symbol} is not traded on Binance")
        return info

    # ---- clients

    @staticmethod
    def _make_client_class(base_url: str | None) -> Any:
        """A Client subclass whose spot, testnet and margin hosts all point at `base_url`."""
        if base_url is None:
            return Client
        return type(
            "LocalBinanceClient",
            (Client,),
            {
                "API_URL": f"{base_url}/api",
                "API_TESTNET_URL": f"{base_url}/api",
                "MARGIN_API_URL": f"{base_url}/sapi",
            },
        )

    def _new_client(self, credentials: ApiCredentials | None) -> Any:
        client = self._client_class(
            credentials.api_key if credentials else None,
            credentials.secret_key if credentials else None,
            requests_params={"timeout": self._timeout},
            testnet=self._testnet,
            ping=False,
        )
        # python-binance overwrites any per-call recvWindow with this (default 10000).
        client.REQUEST_RECVWINDOW = self._recv_window_ms
        client.timestamp_offset = self._timestamp_offset_ms
        return client

    def _credentials(self, account: TradingAccount) -> ApiCredentials:
        if account.credentials is None:
            mode = "testnet" if self._testnet else "production"
            raise CredentialsMissing(f"Binance API credentials not configured for {mode} mode")
        return account.credentials

    def _slot(self, credentials: ApiCredentials) -> _Slot:
        """One cached client per API key; a rotated secret gets a fresh client."""
        with self._state:
            slot = self._slots.get(credentials.api_key)
            if slot is not None and _same_secret(slot.client.API_SECRET, credentials.secret_key):
                return slot
            stale = slot
            slot = _Slot(self._new_client(credentials))
            self._slots[credentials.api_key] = slot
        if stale is not None:
            stale.client.session.close()
        return slot

    # ---- sending: rate limits, clock, error mapping

    def _send(self, slot: _Slot, request: Callable[[Any], Any], call: _Call) -> Any:
        """Send once (twice after a -1021, which Binance rejected unexecuted)."""
        with slot.lock:
            for attempt in (1, 2):
                self._wait_for_rate_limits()
                try:
                    result = request(slot.client)
                except BinanceAPIException as exc:
                    self._observe(exc.response)
                    if exc.code == -1021 and attempt == 1:
                        log.warning("Binance -1021 (clock skew); resyncing the timestamp offset")
                        self._resync_clock(slot)
                        continue
                    raise self._translate(exc, call) from exc
                except BinanceRequestException as exc:
                    self._observe(slot.client.response)
                    raise self._unclear(call, "an answer that is not JSON") from exc
                except (OSError, Urllib3Error) as exc:  # requests' errors are OSErrors
                    raise self._unclear(call, f"no answer ({type(exc).__name__})") from exc
                self._observe(slot.client.response)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_for_rate_limits(self) -> None:
        """Refuse while banned (no request at all); slow down near the weight limit."""
        now = self._clock.now()
        with self._state:
            banned_until = self._banned_until
            used = self._used_weight
        if banned_until is not None and now < banned_until:
            left = Decimal(math.ceil((banned_until - now).total_seconds()))
            raise RateLimited(
                f"Binance rate limit: no requests until {banned_until:%Y-%m-%d %H:%M:%S} UTC "
                f"(Retry-After, {left}s left)",
                left,
            )
        if used is not None and used >= self._throttle_at:
            # Weight windows restart on the minute; the extra second absorbs clock skew.
            pause = 61 - now.second - now.microsecond / 1_000_000
            log.warning(
                "Binance used weight %s reached the throttle point %s; waiting %.1fs",
                used,
                self._throttle_at,
                pause,
            )
            self._sleep(pause)
            with self._state:
                self._used_weight = None

    def _observe(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if headers is None:
            return
        value = headers.get(WEIGHT_HEADER)
        if value is None:
            return
        try:
            used = int(value)
        except ValueError:
            return
        with self._state:
            self._used_weight = used

    def _resync_clock(self, slot: _Slot) -> None:
        self._wait_for_rate_limits()
        try:
            server_ms = int(_mapping(slot.client.get_server_time())["serverTime"])
        except BinanceAPIException as exc:
            self._observe(exc.response)
            raise self._translate(exc, _Call("read the server time", writes=False)) from exc
        except (OSError, Urllib3Error, BinanceRequestException, KeyError, ValueError) as exc:
            raise ExchangeUnavailable("Binance server time unavailable for a clock resync") from exc
        self._observe(slot.client.response)
        offset = server_ms - int(time.time() * 1000)
        with self._state:
            self._timestamp_offset_ms = offset
            slots = [self._public, *self._slots.values()]
        for each in slots:
            each.client.timestamp_offset = offset

    def _ban(self, exc: BinanceAPIException) -> RateLimited:
        default = 120 if exc.status_code == 418 else 60
        headers = getattr(exc.response, "headers", None) or {}
        try:
            retry_after = Decimal(str(headers.get("Retry-After", default)))
        except InvalidOperation:
            retry_after = Decimal(default)
        now = self._clock.now()
        until = now + timedelta(seconds=float(retry_after))
        with self._state:
            self._banned_at = now
            if self._banned_until is None or until > self._banned_until:
                self._banned_until = until
        kind = "banned this IP (418)" if exc.status_code == 418 else "rate limited us (429)"
        log.warning("Binance %s; no requests for %ss", kind, retry_after)
        return RateLimited(
            f"Binance {kind}: retry after {retry_after}s; nothing is sent until then",
            retry_after,
        )

    def _translate(self, exc: BinanceAPIException, call: _Call) -> DomainError:
        """A Binance error answer as a domain error (`exc.message` never holds a secret)."""
        code = exc.code
        status = int(exc.status_code)
        message = str(exc.message)
        if status in (418, 429):
            return self._ban(exc)
        if code == -2013 and not call.writes:
            raise _NoSuchOrder()
        if code in (-2014, -2015):
            return CredentialsRejected(
                f"Binance rejected API key {_mask(call.api_key)} for: {call.what} ({code} "
                f"{message}). Check that the key is right and active, that it has the "
                "permission this needs (Enable Spot & Margin Trading; Enable Margin Loan, "
                "Repay & Transfer for margin), and that this server's IP address is on "
                "the key's IP whitelist (access restrictions)."
            )
        if code == -1022:
            return CredentialsRejected(
                f"Binance rejected the signature of API key {_mask(call.api_key)}: the "
                "secret key does not belong to this API key"
            )
        if status >= 500 or not code or code in UNKNOWN_OUTCOME_CODES:
            return self._unclear(call, f"HTTP {status}: {message[:200]}")
        if code == -1021:
            detail = f"the clock is still off after a resync ({message})"
            if call.writes:
                return OrderRejected(f"Binance refused {call.what}: {detail}")
            return ExchangeUnavailable(f"Binance refused to {call.what}: {detail}")
        if code == -1121:
            return InvalidInput("symbol", f"Binance does not know this symbol ({message})")
        if call.spent_asset and (
            code in INSUFFICIENT_BALANCE_CODES
            or (code == -2010 and "insufficient balance" in message.lower())
        ):
            return InsufficientBalance(call.spent_asset)
        if code == -1013:
            match = re.search(r"Filter failure: ([A-Z_]+)", message)
            filter_name = match.group(1) if match else "UNKNOWN"
            return FilterFailure(filter_name, f"Binance refused {call.what}: {message}")
        if call.writes:
            return OrderRejected(f"Binance refused {call.what}: {message} ({code})")
        return ExchangeError(f"Binance refused to {call.what}: {message} ({code})")

    @staticmethod
    def _unclear(call: _Call, why: str) -> ExchangeError:
        if call.writes:
            return OrderOutcomeUnknown(
                f"Binance gave {why} to: {call.what}. It may or may not have executed; "
                "look it up (find_order / the margin account) before sending anything again"
            )
        return ExchangeUnavailable(f"Binance gave {why} when asked to {call.what}")


# ---- parsing


def _method(name: str, **params: str) -> Callable[[Any], Any]:
    """A python-binance Client method call, to run under the adapter's guards."""
    return lambda client: getattr(client, name)(**params)


def _mapping(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _parse_symbol(row: Mapping[str, Any]) -> _SymbolInfo:
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
        tick_size=_tidy(Decimal(str(price_filter["tickSize"]))),
        step_size=_tidy(step),
        min_qty=_tidy(min_qty),
        max_qty=_tidy(max_qty),
        min_notional=_tidy(min_notional),
        margin_allowed=bool(row.get("isMarginTradingAllowed", False)),
    )
    return _SymbolInfo(
        rules=rules,
        quote_orders_allowed=bool(row.get("quoteOrderQtyMarketAllowed", False)),
        quote_precision=int(row.get("quoteAssetPrecision", row.get("quotePrecision", 8))),
    )


_STATUSES = {
    "FILLED": OrderStatus.FILLED,
    "NEW": OrderStatus.PENDING,
    "PENDING_NEW": OrderStatus.PENDING,
    "PARTIALLY_FILLED": OrderStatus.PENDING,  # still working on the book
    "PENDING_CANCEL": OrderStatus.PENDING,
}


def _order_result(
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
        fees = _sum_fees(fills)
    raw_status = str(order["status"])
    status = _STATUSES.get(raw_status)
    if status is None:  # EXPIRED, CANCELED, REJECTED, EXPIRED_IN_MATCH: no longer working
        status = OrderStatus.PARTIALLY_FILLED if executed > 0 else OrderStatus.REJECTED
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


def _sum_fees(rows: Any) -> dict[str, Decimal]:
    """Commission per commissionAsset (fills of an order answer, or myTrades rows)."""
    fees: dict[str, Decimal] = {}
    for row in rows:
        asset = str(row["commissionAsset"])
        fees[asset] = fees.get(asset, Decimal(0)) + Decimal(str(row["commission"]))
    return fees


def _plain(value: Decimal) -> str:
    """Binance takes plain decimals only: never '1e-05'."""
    return format(_tidy(value), "f")


def _tidy(value: Decimal) -> Decimal:
    """Without trailing zeros and without an exponent: '0.01000000' -> 0.01, '9000.0' -> 9000."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _same_secret(held: Any, given: str) -> bool:
    return isinstance(held, str) and hmac.compare_digest(held.encode(), given.encode())


def _mask(api_key: str | None) -> str:
    if not api_key:
        return "(none)"
    if len(api_key) <= 12:
        return api_key[:2] + "..."
    return f"{api_key[:4]}...{api_key[-4:]}"
