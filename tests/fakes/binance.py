"""A fake Binance REST server on 127.0.0.1 that python-binance's real `Client` talks to.

It checks API keys, HMAC signatures and timestamps like Binance, keeps per-key balances,
fills MARKET orders, enforces filters and the per-minute request weight, and injects the faults
an adapter must survive (429/418, 5xx or a dropped connection after execution, slow responses,
error codes, look-ups that lag behind an order the client never heard back about).
Each behaviour cites github.com/binance/binance-spot-api-docs (file, section) beside it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from binance.client import Client

from tests.fakes import binance_stops
from tests.fakes.loopback import LoopbackFake, LoopbackServer, TrackedHandler

EIGHT_PLACES = Decimal("0.00000001")
INFINITE = Decimal("Infinity")
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
_DECIMAL_PARAM = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_ORDER_PATHS = ("/api/v3/order", "/sapi/v1/margin/order")
# enums.md "Rate limiters (rateLimitType)": REQUEST_WEIGHT 6000 per MINUTE (CHANGELOG.md
# 2023-08-25: "adjusted to 6,000 every minute").
REQUEST_WEIGHT_PER_MINUTE = 6000
# rest-api.md "IP Limits": bans "scale in duration for repeat offenders, from 2 minutes to 3 days".
FIRST_BAN_SECONDS = 120
# rest-api.md "Account trade list (USER_DATA)": limit "Default: 500; Maximum: 1000".
TRADES_DEFAULT_LIMIT = 500
TRADES_MAX_LIMIT = 1000
# rest-api.md "New order (TRADE)": newClientOrderId is "A unique id among open orders".
_OPEN_STATUSES = frozenset({"NEW", "PENDING_NEW", "PARTIALLY_FILLED"})

JsonBody = dict[str, Any] | list[Any]


# --------------------------------------------------------------------------- symbols


@dataclass(frozen=True)
class FakeSymbol:
    """One symbol's filters as the fake publishes and enforces them."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")
    notional_filter: Literal["NOTIONAL", "MIN_NOTIONAL"] = "NOTIONAL"
    # MARKET_LOT_SIZE (min, max, step); None = the symbol does not publish one
    market_lot: tuple[Decimal, Decimal, Decimal] | None = None
    quote_order_qty_market_allowed: bool = True
    margin_allowed: bool = True
    max_algo_orders: int = 5  # filters.md "MAX_NUM_ALGO_ORDERS" ("maxNumAlgoOrders": 5)

    def exchange_info(self) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _fmt(self.min_price),
                "maxPrice": _fmt(self.max_price),
                "tickSize": _fmt(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _fmt(self.min_qty),
                "maxQty": _fmt(self.max_qty),
                "stepSize": _fmt(self.step_size),
            },
        ]
        if self.notional_filter == "NOTIONAL":
            filters.append(
                {
                    "filterType": "NOTIONAL",
                    "minNotional": _fmt(self.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                }
            )
        else:
            filters.append(
                {
                    "filterType": "MIN_NOTIONAL",
                    "minNotional": _fmt(self.min_notional),
                    "applyToMarket": True,
                    "avgPriceMins": 5,
                }
            )
        filters.append(
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_algo_orders}
        )
        if self.market_lot is not None:
            low, high, step = self.market_lot
            filters.append(
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _fmt(low),
                    "maxQty": _fmt(high),
                    "stepSize": _fmt(step),
                }
            )
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "quoteOrderQtyMarketAllowed": self.quote_order_qty_market_allowed,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": self.margin_allowed,
            "filters": filters,
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"] if self.margin_allowed else ["SPOT"]],
        }


BTCUSDC = FakeSymbol(symbol="BTCUSDC", base_asset="BTC", quote_asset="USDC")


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class RateLimit:
    """429 (too many requests) or 418 (IP banned) with Retry-After in seconds, code -1003."""

    retry_after: int
    status: Literal[429, 418] = 429


@dataclass(frozen=True)
class ApiError:
    """A Binance error answer sent INSTEAD of handling the request: nothing executes."""

    code: int
    msg: str
    status: int = 400

    @classmethod
    def invalid_api_key(cls) -> ApiError:
        return cls(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    @classmethod
    def insufficient_balance(cls) -> ApiError:
        return cls(-2010, "Account has insufficient balance for requested action.")

    @classmethod
    def order_rejected(cls, msg: str = "Market is closed.") -> ApiError:
        return cls(-2010, msg)

    @classmethod
    def filter_failure(cls, filter_name: str) -> ApiError:
        return cls(-1013, f"Filter failure: {filter_name}")


@dataclass(frozen=True)
class RawResponse:
    """Reply with this status and body (e.g. an HTML 502); by default AFTER executing."""

    status: int
    body: str
    execute: bool = True
    content_type: str = "text/html"


@dataclass(frozen=True)
class DropConnection:
    """Close the socket without any response; by default AFTER executing the request."""

    execute: bool = True


@dataclass(frozen=True)
class Delay:
    """Answer only after `seconds` (longer than the client's timeout); executes first."""

    seconds: float
    execute: bool = True


Fault = RateLimit | ApiError | RawResponse | DropConnection | Delay


@dataclass
class _ArmedFault:
    fault: Fault
    path: str
    method: str | None
    remaining: int


# --------------------------------------------------------------------------- state


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it (status is None when it never answered)."""

    method: str
    path: str
    params: dict[str, str]
    api_key: str | None
    status: int | None = None

    @property
    def client_order_id(self) -> str | None:
        return self.params.get("newClientOrderId")


@dataclass
class MarginAsset:
    """One side of an isolated margin pair: what is free, borrowed, and owed as interest."""

    free: Decimal = Decimal(0)
    borrowed: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)  # held by a resting (stop) order

    def repay(self, amount: Decimal) -> None:
        """Binance applies a repayment to the interest first, then to the principal."""
        to_interest = min(amount, self.interest)
        self.interest -= to_interest
        self.borrowed -= amount - to_interest
        self.free -= amount


@dataclass
class _Account:
    api_key: str
    secret: str
    uid: int
    can_trade: bool = True
    balances: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)  # held by resting (stop) orders
    isolated: dict[str, dict[str, MarginAsset]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    order_times: list[float] = field(default_factory=list)


class _Reject(Exception):
    """A Binance error answer produced while handling a request."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


@dataclass
class _MinuteWindow:
    """Weight used in one clock minute; rest-api.md "IP Limits" and enums.md "Rate limiters":
    REQUEST_WEIGHT has interval MINUTE, intervalNum 1, so the count restarts each minute."""

    minute: int = -1
    used: int = 0

    def current(self, now: float) -> int:
        if int(now // 60) != self.minute:
            self.minute, self.used = int(now // 60), 0
        return self.used

    def add(self, weight: int, now: float) -> int:
        self.used = self.current(now) + weight
        return self.used

    def set(self, used: int, now: float) -> None:
        self.current(now)
        self.used = used


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"


def _json_reply(status: int, body: JsonBody) -> _Reply:
    return _Reply(status, json.dumps(body).encode())


def _error_reply(code: int, msg: str, status: int = 400) -> _Reply:
    return _json_reply(status, {"code": code, "msg": msg})


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


# --------------------------------------------------------------------------- server


class FakeBinance(LoopbackFake):
    """Binance's spot and isolated-margin REST API, in memory, on 127.0.0.1:<free port>."""

    # The "Weight:" of each endpoint's section in rest-api.md (ping, time, exchangeInfo,
    # account, New order, Query order); ticker/price and myTrades depend on their parameters.
    _WEIGHTS: Mapping[tuple[str, str], int] = {
        ("GET", "/api/v3/ping"): 1,
        ("GET", "/api/v3/time"): 1,
        ("GET", "/api/v3/exchangeInfo"): 20,
        ("GET", "/api/v3/account"): 20,
        ("POST", "/api/v3/order"): 1,
        ("GET", "/api/v3/order"): 4,
        ("GET", "/api/v3/allOrders"): 20,
    }

    def __init__(
        self, symbols: Iterable[FakeSymbol] = (BTCUSDC,), clock: Callable[[], float] = time.time
    ) -> None:
        """`clock` (seconds) times the weight minutes, bans, order counts and look-up lags;
        signed timestamps are still checked against the wall clock the real client signs with.
        """
        super().__init__(_Handler, poll_interval=0.01)
        self._changed = threading.Condition(self._lock)
        self._symbols: dict[str, FakeSymbol] = {s.symbol: s for s in symbols}
        self._prices: dict[str, Decimal] = {s.symbol: Decimal("100000") for s in symbols}
        self._books: dict[str, list[tuple[Decimal, Decimal]]] = {}
        self._accounts: dict[str, _Account] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: list[_ArmedFault] = []
        self._ids = itertools.count(1)
        self._uids = itertools.count(1000)
        self.commission_rate = Decimal("0.001")
        self.commission_asset: str | None = None  # None = the asset the order receives
        self.clock_skew_ms = 0
        self._clock = clock
        self.weight_limit = REQUEST_WEIGHT_PER_MINUTE  # published in exchangeInfo's rateLimits
        self._weight = _MinuteWindow()  # X-MBX-USED-WEIGHT-1M: /api weight of this minute
        self._sapi_weight = _MinuteWindow()  # X-SAPI-USED-IP-WEIGHT-1M: /sapi's own counter
        # 429s answered while the client kept sending over the limit; this many earn a 418.
        # rest-api.md "IP Limits" names no number: "Repeatedly violating ... will result in an
        # automated IP ban (HTTP status 418)".
        self.ban_after_429s = 3
        self.ban_seconds = FIRST_BAN_SECONDS
        self._unheeded_429s = 0
        self._banned_until: float | None = None
        # Seconds during which a look-up of an order executed under a fault (its answer dropped,
        # replaced or late) still says -2013. rest-api.md "Data Sources": "The API system is
        # asynchronous, so some delay in the response is normal and expected"; Query order reads
        # "Memory => Database".
        self.lookup_delay_seconds: float = 0
        self._hidden_until: dict[int, float] = {}  # orderId -> when look-ups first see it
        self._quote_unknown: set[int] = set()  # orderIds whose cummulativeQuoteQty reads < 0
        # A test aid, not a Binance behaviour: seconds every order POST (spot or margin) waits
        # before it is handled, as the round trip to the real exchange does (50-200 ms). Each
        # request waits on its own server thread, so concurrent orders overlap.
        self.order_latency_seconds: float = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, api_key: str | None, secret: str | None, timeout: float = 5.0) -> Any:
        """A real python-binance Client aimed at this server (recvWindow 5000 like Binance)."""
        client_class = type(
            "FakeBinanceClient",
            (Client,),
            {
                "API_URL": f"{self.url}/api",
                "MARGIN_API_URL": f"{self.url}/sapi",
                "API_TESTNET_URL": f"{self.url}/api",
            },
        )
        client = client_class(api_key, secret, requests_params={"timeout": timeout}, ping=False)
        client.REQUEST_RECVWINDOW = DEFAULT_RECV_WINDOW_MS
        return client

    # ---- market and accounts

    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_skew_ms

    @property
    def used_weight(self) -> int:
        """This minute's /api weight (X-MBX-USED-WEIGHT-1M); set it to test throttling."""
        with self._lock:
            return self._weight.current(self._clock())

    @used_weight.setter
    def used_weight(self, used: int) -> None:
        with self._lock:
            self._weight.set(used, self._clock())

    @property
    def sapi_used_weight(self) -> int:
        """This minute's /sapi weight (X-SAPI-USED-IP-WEIGHT-1M), counted apart from /api."""
        with self._lock:
            return self._sapi_weight.current(self._clock())

    @sapi_used_weight.setter
    def sapi_used_weight(self, used: int) -> None:
        with self._lock:
            self._sapi_weight.set(used, self._clock())

    def add_symbol(self, symbol: FakeSymbol, price: Decimal = Decimal("100000")) -> None:
        with self._lock:
            self._symbols[symbol.symbol] = symbol
            self._prices[symbol.symbol] = price

    def set_price(self, symbol: str, price: Decimal) -> None:
        """The market trades at `price`: resting stops it reaches trigger (and may fill)."""
        with self._lock:
            self._prices[symbol] = price
            binance_stops.trigger_stops(self, symbol)

    def open_orders(self, api_key: str) -> list[dict[str, Any]]:
        """The key's orders still working (NEW or PARTIALLY_FILLED), oldest first."""
        with self._lock:
            return [
                dict(o) for o in self._accounts[api_key].orders if o["status"] in _OPEN_STATUSES
            ]

    def set_book(self, symbol: str, levels: Iterable[tuple[Decimal, Decimal]] | None) -> None:
        """Price levels (price, quantity) a MARKET order walks; None = unlimited at the price."""
        with self._lock:
            if levels is None:
                self._books.pop(symbol, None)
            else:
                self._books[symbol] = list(levels)

    def set_commission(self, rate: Decimal = Decimal("0.001"), asset: str | None = None) -> None:
        """Fee rate, charged in `asset` (converted at its USDC price) or in what is received."""
        with self._lock:
            self.commission_rate = rate
            self.commission_asset = asset

    def fund(
        self,
        api_key: str,
        secret: str,
        balances: Mapping[str, Decimal],
        *,
        can_trade: bool = True,
    ) -> None:
        """Register a spot account, or update it; the listed assets' free balances are SET."""
        with self._lock:
            account = self._accounts.get(api_key)
            if account is None:
                account = _Account(api_key, secret, next(self._uids), can_trade)
                self._accounts[api_key] = account
            account.secret = secret
            account.can_trade = can_trade
            account.balances.update(balances)

    def fund_isolated(self, api_key: str, symbol: str, balances: Mapping[str, Decimal]) -> None:
        """Create the key's isolated margin account for `symbol` and set its free balances."""
        with self._lock:
            account = self._accounts[api_key]
            spec = self._symbols[symbol]
            pair = account.isolated.setdefault(
                symbol, {spec.base_asset: MarginAsset(), spec.quote_asset: MarginAsset()}
            )
            for asset, amount in balances.items():
                pair[asset].free = amount

    def balances(self, api_key: str) -> dict[str, Decimal]:
        """Free spot balances (what resting orders hold is `locked`)."""
        with self._lock:
            return dict(self._accounts[api_key].balances)

    def held(self, api_key: str) -> dict[str, Decimal]:
        """Free plus locked spot balances: everything the account owns."""
        with self._lock:
            account = self._accounts[api_key]
            assets = {*account.balances, *account.locked}
            return {
                a: account.balances.get(a, Decimal(0)) + account.locked.get(a, Decimal(0))
                for a in assets
            }

    def isolated_account(self, api_key: str, symbol: str) -> dict[str, MarginAsset]:
        with self._lock:
            pair = self._accounts[api_key].isolated[symbol]
            return {a: MarginAsset(m.free, m.borrowed, m.interest) for a, m in pair.items()}

    def accrue_interest(self, api_key: str, symbol: str, asset: str, amount: Decimal) -> None:
        """Charge interest on the isolated loan, as Binance does every hour."""
        with self._lock:
            self._accounts[api_key].isolated[symbol][asset].interest += amount

    def order(self, api_key: str, client_order_id: str) -> dict[str, Any] | None:
        """The stored (executed or expired) order, spot or margin, with its fills."""
        with self._lock:
            for order in self._accounts[api_key].orders:
                if order["clientOrderId"] == client_order_id:
                    return dict(order)
            return None

    def orders(self, api_key: str) -> list[dict[str, Any]]:
        """Every stored order of the key, oldest first (several may share a client order id)."""
        with self._lock:
            return [dict(order) for order in self._accounts[api_key].orders]

    def rest_order(
        self,
        api_key: str,
        client_order_id: str,
        *,
        symbol: str = "BTCUSDC",
        price: Decimal = Decimal("90000"),
        quantity: Decimal = Decimal("0.001"),
        margin: bool = False,
    ) -> None:
        """Leave an order open on the book (a GTC LIMIT BUY placed elsewhere, nothing filled).

        Only its client order id matters here: the fake holds none of the key's funds for it.
        """
        with self._lock:
            now = self.server_time_ms()
            self._accounts[api_key].orders.append(
                {
                    "symbol": symbol,
                    "orderId": next(self._ids),
                    "orderListId": -1,
                    "clientOrderId": client_order_id,
                    "transactTime": now,
                    "price": _fmt(price),
                    "origQty": _fmt(quantity),
                    "executedQty": _fmt(Decimal(0)),
                    "origQuoteOrderQty": _fmt(Decimal(0)),
                    "cummulativeQuoteQty": _fmt(Decimal(0)),
                    "status": "NEW",
                    "timeInForce": "GTC",
                    "type": "LIMIT",
                    "side": "BUY",
                    "workingTime": now,
                    "selfTradePreventionMode": "EXPIRE_MAKER",
                    "isIsolated": margin,
                    "fills": [],
                }
            )

    def forget_quote_quantity(self, api_key: str, client_order_id: str) -> None:
        """Make look-ups of this order answer a negative cummulativeQuoteQty.

        rest-api.md "Query order (USER_DATA)", Notes: "For some historical orders
        `cummulativeQuoteQty` will be < 0, meaning the data is not available at this time."
        """
        with self._lock:
            for order in self._accounts[api_key].orders:
                if order["clientOrderId"] == client_order_id:
                    self._quote_unknown.add(int(order["orderId"]))

    # ---- observation

    def requests(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self._requests
                if (path is None or r.path == path) and (method is None or r.method == method)
            ]

    def request_count(self, path: str | None = None, method: str | None = None) -> int:
        return len(self.requests(path, method))

    def orders_received(
        self, client_order_id: str | None = None, order_type: str | None = None
    ) -> list[RecordedRequest]:
        """Every order POST that reached the server (spot and margin), accepted or not;
        `order_type` (MARKET, STOP_LOSS_LIMIT) keeps those of one type."""
        return [
            r
            for r in self.requests(method="POST")
            if r.path in _ORDER_PATHS
            and (client_order_id is None or r.client_order_id == client_order_id)
            and (order_type is None or r.params.get("type") == order_type)
        ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate()` holds (re-checked whenever a request completes)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    # ---- faults

    def inject(self, fault: Fault, *, path: str, method: str | None = None, times: int = 1) -> None:
        """Arm `fault` for the next `times` requests to `path` (and `method`, if given)."""
        with self._lock:
            self._faults.append(_ArmedFault(fault, path, method, times))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for armed in self._faults:
                if armed.path == path and armed.method in (None, method):
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._faults.remove(armed)
                    return armed.fault
            return None

    # ---- request handling (called from the handler threads)

    def _handle(self, handler: _Handler, method: str, raw_query: str, raw_body: str) -> None:
        path = urlsplit(handler.path).path
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(raw_body, keep_blank_values=True))
        api_key = handler.headers.get("X-MBX-APIKEY")
        if method == "POST" and path in _ORDER_PATHS and self.order_latency_seconds > 0:
            self._stopping.wait(self.order_latency_seconds)
        record = RecordedRequest(method, path, params, api_key)
        with self._lock:
            self._requests.append(record)
            limited = self._charge_weight(method, path, params)
        try:
            fault = None if limited is not None else self._take_fault(method, path)
            reply: _Reply | None
            if limited is not None:
                reply = limited
            elif isinstance(fault, RateLimit):
                reply = self._rate_limit_reply(fault)
            elif isinstance(fault, ApiError):
                reply = _error_reply(fault.code, fault.msg, fault.status)
            elif isinstance(fault, RawResponse | DropConnection | Delay) and not fault.execute:
                reply = None
            else:
                reply = self._dispatch(method, path, params, api_key, raw_query, raw_body)
                if isinstance(fault, RawResponse | DropConnection | Delay):
                    self._lag_lookups(method, path, reply)
            if isinstance(fault, Delay):
                self._stopping.wait(fault.seconds)
                if reply is None:
                    reply = self._dispatch(method, path, params, api_key, raw_query, raw_body)
            elif isinstance(fault, DropConnection):
                handler.close_connection = True
                return
            elif isinstance(fault, RawResponse):
                reply = _Reply(fault.status, fault.body.encode(), content_type=fault.content_type)
            assert reply is not None
            # rest-api.md "IP Limits": "Every request will contain
            # X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) in the response headers".
            with self._lock:
                if path.startswith("/api/"):
                    reply.headers["X-MBX-USED-WEIGHT-1M"] = str(self.used_weight)
                elif path.startswith("/sapi/"):
                    reply.headers["X-SAPI-USED-IP-WEIGHT-1M"] = str(self.sapi_used_weight)
            record.status = reply.status
            handler.send(reply)
        finally:
            with self._changed:
                self._changed.notify_all()

    def _request_weight(self, method: str, path: str, params: dict[str, str]) -> int:
        if (method, path) == ("GET", "/api/v3/ticker/price"):
            # rest-api.md "Symbol price ticker": 2 for one symbol, 4 when it is omitted
            return 2 if "symbol" in params else 4
        if (method, path) == ("GET", "/api/v3/myTrades"):
            # rest-api.md "Account trade list (USER_DATA)": 20 without orderId, 5 with it
            return 5 if "orderId" in params else 20
        return self._WEIGHTS.get((method, path), 1)

    def _charge_weight(self, method: str, path: str, params: dict[str, str]) -> _Reply | None:
        """Count the request's weight in this minute; a 429 or 418 when it may not run.

        rest-api.md "LIMITS": "Requests fail with HTTP status code 429 when you exceed the
        request rate limit"; "IP Limits": "Repeatedly violating rate limits and/or failing to
        back off after receiving 429s will result in an automated IP ban (HTTP status 418)",
        and Retry-After gives the seconds "to prevent a ban" (429) or "until the ban is over"
        (418). Nothing runs in either case.
        """
        now = self._clock()
        weight = self._request_weight(method, path, params)
        if path.startswith("/sapi/"):
            self._sapi_weight.add(weight, now)
            return None
        if not path.startswith("/api/"):
            return None
        if self._banned_until is not None and now < self._banned_until:
            return self._limit_reply(418, math.ceil(self._banned_until - now))
        used = self._weight.add(weight, now)
        if used <= self.weight_limit:
            self._unheeded_429s = 0
            return None
        if self._unheeded_429s >= self.ban_after_429s:
            self._banned_until = now + self.ban_seconds
            self._unheeded_429s = 0
            return self._limit_reply(418, self.ban_seconds)
        self._unheeded_429s += 1
        return self._limit_reply(429, math.ceil(60 - now % 60))  # the minute's end

    def _limit_reply(self, status: Literal[429, 418], retry_after: int) -> _Reply:
        """errors.md "-1003 TOO_MANY_REQUESTS": its messages, with the published limit."""
        if status == 418:
            until = int((self._clock() + retry_after) * 1000)
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Too much request weight used; current limit is {self.weight_limit} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API."
            )
        reply = _error_reply(-1003, msg, status)
        reply.headers["Retry-After"] = str(retry_after)
        return reply

    def _rate_limit_reply(self, fault: RateLimit) -> _Reply:
        return self._limit_reply(fault.status, fault.retry_after)

    def _lag_lookups(self, method: str, path: str, reply: _Reply) -> None:
        """An order executed while its answer was lost stays invisible to look-ups a while."""
        if method != "POST" or path not in _ORDER_PATHS or reply.status != 200:
            return
        if self.lookup_delay_seconds <= 0:
            return
        order_id = int(json.loads(reply.body)["orderId"])
        with self._lock:
            self._hidden_until[order_id] = self._clock() + self.lookup_delay_seconds

    def _dispatch(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        api_key: str | None,
        raw_query: str,
        raw_body: str,
    ) -> _Reply:
        public: dict[tuple[str, str], Callable[[dict[str, str]], _Reply]] = {
            ("GET", "/api/v3/ping"): lambda p: _json_reply(200, {}),
            ("GET", "/api/v3/time"): lambda p: _json_reply(
                200, {"serverTime": self.server_time_ms()}
            ),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/ticker/price"): self._ticker,
        }
        signed: dict[tuple[str, str], Callable[[_Account, dict[str, str]], _Reply]] = {
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order"): self._new_spot_order,
            ("GET", "/api/v3/order"): self._query_spot_order,
            ("GET", "/api/v3/myTrades"): self._spot_trades,
            ("GET", "/api/v3/allOrders"): self._all_spot_orders,
            ("GET", "/sapi/v1/margin/allOrders"): self._all_margin_orders,
            ("DELETE", "/api/v3/order"): lambda a, p: binance_stops.cancel(
                self, a, p, margin=False
            ),
            ("POST", "/api/v3/order/cancelReplace"): lambda a, p: binance_stops.cancel_replace(
                self, a, p
            ),
            ("POST", "/sapi/v1/margin/order"): self._new_margin_order,
            ("DELETE", "/sapi/v1/margin/order"): lambda a, p: binance_stops.cancel(
                self, a, p, margin=True
            ),
            ("GET", "/sapi/v1/margin/order"): self._query_margin_order,
            ("GET", "/sapi/v1/margin/myTrades"): self._margin_trades,
            ("POST", "/sapi/v1/margin/borrow-repay"): self._borrow_repay,
            ("GET", "/sapi/v1/margin/isolated/account"): self._isolated_account,
        }
        try:
            with self._lock:
                if (method, path) in public:
                    return public[(method, path)](params)
                if (method, path) in signed:
                    account = self._authenticate(api_key, params, raw_query, raw_body)
                    return signed[(method, path)](account, params)
            return _error_reply(-1000, f"Unknown endpoint {method} {path}", 404)
        except _Reject as rejection:
            return _error_reply(rejection.code, rejection.msg, rejection.status)

    def _authenticate(
        self, api_key: str | None, params: dict[str, str], raw_query: str, raw_body: str
    ) -> _Account:
        """Key, then signature over query+body minus `signature`, then the timing window."""
        if not api_key:
            raise _Reject(-2014, "API-key format invalid.", 401)
        account = self._accounts.get(api_key)
        if account is None:
            raise _Reject(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signature = params.get("signature")
        if not signature:
            raise _Reject(
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            )
        payload = _strip_signature(raw_query) + _strip_signature(raw_body)
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise _Reject(-1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (KeyError, ValueError):
            raise _Reject(
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            ) from None
        if recv_window > MAX_RECV_WINDOW_MS:
            raise _Reject(-1131, "recvWindow must be less than 60000")
        now = self.server_time_ms()
        if timestamp >= now + 1000:
            raise _Reject(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > recv_window:
            raise _Reject(-1021, "Timestamp for this request is outside of the recvWindow.")
        return account

    # ---- public endpoints

    def _exchange_info(self, params: dict[str, str]) -> _Reply:
        symbols = [s.exchange_info() for s in self._symbols.values()]
        if "symbol" in params:
            symbols = [s for s in symbols if s["symbol"] == params["symbol"]]
            if not symbols:
                raise _Reject(-1121, "Invalid symbol.")
        return _json_reply(
            200,
            {
                "timezone": "UTC",
                "serverTime": self.server_time_ms(),
                # enums.md "Rate limiters (rateLimitType)"; CHANGELOG.md 2023-08-25
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.weight_limit,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                    {
                        "rateLimitType": "RAW_REQUESTS",
                        "interval": "MINUTE",
                        "intervalNum": 5,
                        "limit": 61000,
                    },
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            },
        )

    def _ticker(self, params: dict[str, str]) -> _Reply:
        if "symbol" not in params:
            return _json_reply(
                200, [{"symbol": s, "price": _fmt(p)} for s, p in self._prices.items()]
            )
        symbol = params["symbol"]
        if symbol not in self._prices:
            raise _Reject(-1121, "Invalid symbol.")
        return _json_reply(200, {"symbol": symbol, "price": _fmt(self._prices[symbol])})

    # ---- spot account and orders

    def _account(self, account: _Account, params: dict[str, str]) -> _Reply:
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        assets = sorted({*account.balances, *account.locked})
        balances = [
            {
                "asset": asset,
                "free": _fmt(account.balances.get(asset, Decimal(0))),
                "locked": _fmt(account.locked.get(asset, Decimal(0))),
            }
            for asset in assets
            if not (
                omit_zero
                and account.balances.get(asset, Decimal(0)) == 0
                and account.locked.get(asset, Decimal(0)) == 0
            )
        ]
        rate = _fmt(self.commission_rate)
        return _json_reply(
            200,
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": rate, "taker": rate, "buyer": "0", "seller": "0"},
                "canTrade": account.can_trade,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.server_time_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": account.uid,
            },
        )

    def _new_spot_order(self, account: _Account, params: dict[str, str]) -> _Reply:
        return self._new_order(account, params, margin=False)

    def _new_margin_order(self, account: _Account, params: dict[str, str]) -> _Reply:
        return self._new_order(account, params, margin=True)

    def _new_order(self, account: _Account, params: dict[str, str], *, margin: bool) -> _Reply:
        if not account.can_trade:
            raise _Reject(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        spec = self._symbol(params)
        side = _required(params, "side")
        if side not in ("BUY", "SELL"):
            raise _Reject(-1117, "Invalid side.")
        order_type = _required(params, "type")
        if "price" in params:
            self._check_price_filter(spec, _decimal_param(params, "price"))
            if order_type == "MARKET":
                raise _Reject(-1106, "Parameter 'price' sent when not required.")
        if order_type == "STOP_LOSS_LIMIT":
            return binance_stops.new_stop(self, account, spec, params, margin=margin)
        if order_type != "MARKET":
            raise _Reject(
                -1116, "Invalid orderType. (FakeBinance takes MARKET and STOP_LOSS_LIMIT only.)"
            )
        quantity = _decimal_param(params, "quantity") if "quantity" in params else None
        quote = _decimal_param(params, "quoteOrderQty") if "quoteOrderQty" in params else None
        if (quantity is None) == (quote is None):
            raise _Reject(
                -1102,
                "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
            )
        client_order_id = params.get("newClientOrderId") or f"fake{next(self._ids)}"
        # rest-api.md "New order (TRADE)": newClientOrderId is "A unique id among open orders
        # ... Orders with the same `newClientOrderID` can be accepted only when the previous one
        # is filled, otherwise the order will be rejected." errors.md "Messages for ... -2010
        # NEW_ORDER_REJECTED": "Duplicate order sent." - "The `clOrdId` is already in use."
        # A filled (or expired) MARKET order is no longer open: the same id trades again.
        if any(
            o["clientOrderId"] == client_order_id
            and o["isIsolated"] is margin
            and o["status"] in _OPEN_STATUSES
            for o in account.orders
        ):
            raise _Reject(-2010, "Duplicate order sent.")
        fills, complete = self._match(spec, quantity, quote)
        wallet = self._wallet(account, spec, params, margin=margin)
        fees, borrowed = self._settle(spec, side, fills, wallet, params, margin=margin)
        if not margin:
            account.balances.update({asset: held.free for asset, held in wallet.items()})
        return self._store_order(
            account,
            spec,
            params,
            client_order_id,
            fills,
            fees,
            complete,
            borrowed,
            margin=margin,
        )

    def _symbol(self, params: dict[str, str]) -> FakeSymbol:
        spec = self._symbols.get(_required(params, "symbol"))
        if spec is None:
            raise _Reject(-1121, "Invalid symbol.")
        return spec

    @staticmethod
    def _check_price_filter(spec: FakeSymbol, price: Decimal) -> None:
        if (
            price < spec.min_price
            or price > spec.max_price
            or (price - spec.min_price) % spec.tick_size != 0
        ):
            raise _Reject(-1013, "Filter failure: PRICE_FILTER")

    @staticmethod
    def _check_lot(spec: FakeSymbol, quantity: Decimal) -> None:
        lots = [("LOT_SIZE", spec.min_qty, spec.max_qty, spec.step_size)]
        if spec.market_lot is not None:
            lots.append(("MARKET_LOT_SIZE", *spec.market_lot))
        for name, low, high, step in lots:
            off_step = step != 0 and (quantity - low) % step != 0
            if quantity < low or quantity > high or off_step:
                raise _Reject(-1013, f"Filter failure: {name}")

    def _match(
        self, spec: FakeSymbol, quantity: Decimal | None, quote: Decimal | None
    ) -> tuple[list[tuple[Decimal, Decimal]], bool]:
        """Check the filters, then walk the book (or unlimited liquidity at the price).

        Returns the fills and whether the order was completely filled.
        """
        price = self._prices[spec.symbol]
        levels = self._books.get(spec.symbol, [(price, INFINITE)])
        fills: list[tuple[Decimal, Decimal]] = []
        if quantity is not None:
            if _places(quantity) > 8:
                raise _Reject(-1111, "Parameter 'quantity' has too much precision.")
            self._check_lot(spec, quantity)
            if quantity * price < spec.min_notional:
                raise _Reject(-1013, f"Filter failure: {spec.notional_filter}")
            remaining = quantity
            for level_price, available in levels:
                take = min(remaining, available)
                if take > 0:
                    fills.append((level_price, take))
                    remaining -= take
                if remaining == 0:
                    break
            return fills, remaining == 0
        assert quote is not None
        if _places(quote) > 8:
            raise _Reject(-1111, "Parameter 'quoteOrderQty' has too much precision.")
        if not spec.quote_order_qty_market_allowed:
            raise _Reject(-1013, "Quote order qty market orders are not support for this symbol.")
        if quote < spec.min_notional:
            raise _Reject(-1013, f"Filter failure: {spec.notional_filter}")
        remaining_quote = quote
        complete = False
        for level_price, available in levels:
            take = _floor(min(available, remaining_quote / level_price), spec.step_size)
            if take > 0:
                fills.append((level_price, take))
                remaining_quote -= take * level_price
            if take < available:
                complete = True
                break
        if sum((q for _, q in fills), Decimal(0)) < spec.min_qty:
            raise _Reject(-1013, "Filter failure: LOT_SIZE")
        return fills, complete

    def _wallet(
        self, account: _Account, spec: FakeSymbol, params: dict[str, str], *, margin: bool
    ) -> dict[str, MarginAsset]:
        """The balances an order moves: a copy of the spot balances, or the isolated pair."""
        if not margin:
            assets = {spec.base_asset, spec.quote_asset, *account.balances}
            return {a: MarginAsset(account.balances.get(a, Decimal(0))) for a in assets}
        if params.get("isIsolated", "FALSE").upper() != "TRUE":
            raise _Reject(-1102, "FakeBinance supports isolated margin only (isIsolated=TRUE).")
        if spec.symbol not in account.isolated:
            raise _Reject(-11001, "Isolated margin account does not exist.")
        return account.isolated[spec.symbol]

    def _settle(
        self,
        spec: FakeSymbol,
        side: str,
        fills: list[tuple[Decimal, Decimal]],
        wallet: dict[str, MarginAsset],
        params: dict[str, str],
        *,
        margin: bool,
    ) -> tuple[list[tuple[str, Decimal]], tuple[str, Decimal] | None]:
        """Check funds (borrowing for MARGIN_BUY), move balances and charge the commission.

        Everything that can refuse runs before the first balance moves.
        Returns the commission per fill and what was borrowed, if anything.
        """
        base_qty = sum((q for _, q in fills), Decimal(0))
        quote_qty = sum((p * q for p, q in fills), Decimal(0))
        if side == "BUY":
            spent, spend, received, receive = spec.quote_asset, quote_qty, spec.base_asset, base_qty
            # Binance holds the whole quote amount of a quoteOrderQty buy, not only what fills
            needed = max(spend, Decimal(params.get("quoteOrderQty", "0")))
        else:
            spent, spend, received, receive = spec.base_asset, base_qty, spec.quote_asset, quote_qty
            needed = _decimal_param(params, "quantity") if "quantity" in params else base_qty
        effect = params.get("sideEffectType", "NO_SIDE_EFFECT") if margin else "NO_SIDE_EFFECT"
        shortfall = needed - wallet[spent].free
        if shortfall > 0 and effect not in ("MARGIN_BUY", "AUTO_BORROW_REPAY"):
            raise _Reject(-2010, "Account has insufficient balance for requested action.")
        borrowed: tuple[str, Decimal] | None = None
        if shortfall > 0:
            wallet[spent].borrowed += shortfall
            wallet[spent].free += shortfall
            borrowed = (spent, shortfall)
        wallet[spent].free -= spend
        wallet[received].free += receive
        fees: list[tuple[str, Decimal]] = []
        for fill_price, fill_qty in fills:
            asset, fee = self._commission(spec, side, fill_price, fill_qty, wallet)
            wallet[asset].free -= fee
            fees.append((asset, fee))
        if effect in ("AUTO_REPAY", "AUTO_BORROW_REPAY"):
            holding = wallet[received]
            holding.repay(min(holding.free, holding.borrowed + holding.interest))
        return fees, borrowed

    def _commission(
        self,
        spec: FakeSymbol,
        side: str,
        price: Decimal,
        quantity: Decimal,
        wallet: dict[str, MarginAsset],
    ) -> tuple[str, Decimal]:
        """Fee for one fill: in the configured asset when it can pay, else in what was received."""
        received_asset = spec.base_asset if side == "BUY" else spec.quote_asset
        received_fee = quantity if side == "BUY" else price * quantity
        asset, fee = received_asset, received_fee * self.commission_rate
        wanted = self.commission_asset
        if wanted == spec.quote_asset:
            asset, fee = wanted, price * quantity * self.commission_rate
        elif wanted == spec.base_asset:
            asset, fee = wanted, quantity * self.commission_rate
        elif wanted is not None and wanted in wallet:
            fee_price = self._prices.get(f"{wanted}{spec.quote_asset}")
            if fee_price is not None:
                converted = price * quantity * self.commission_rate / fee_price
                if wallet[wanted].free >= converted:
                    asset, fee = wanted, converted
        return asset, fee.quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP)

    def _store_order(
        self,
        account: _Account,
        spec: FakeSymbol,
        params: dict[str, str],
        client_order_id: str,
        fills: list[tuple[Decimal, Decimal]],
        fees: list[tuple[str, Decimal]],
        complete: bool,
        borrowed: tuple[str, Decimal] | None,
        *,
        margin: bool,
    ) -> _Reply:
        order_id = next(self._ids)
        now = self.server_time_ms()
        side = params["side"]
        executed = sum((q for _, q in fills), Decimal(0))
        cumulative = sum((p * q for p, q in fills), Decimal(0))
        trades: list[dict[str, Any]] = [
            {
                "symbol": spec.symbol,
                "id": next(self._ids),
                "orderId": order_id,
                "price": fill_price,
                "qty": fill_qty,
                "commission": fee,
                "commissionAsset": fee_asset,
                "time": now,
                "isBuyer": side == "BUY",
                "isIsolated": margin,
            }
            for (fill_price, fill_qty), (fee_asset, fee) in zip(fills, fees, strict=True)
        ]
        account.trades.extend(trades)
        quantity = params.get("quantity")
        order: dict[str, Any] = {
            "symbol": spec.symbol,
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": client_order_id,
            "transactTime": now,
            "price": _fmt(Decimal(0)),
            "origQty": _fmt(Decimal(quantity) if quantity is not None else executed),
            "executedQty": _fmt(executed),
            "origQuoteOrderQty": _fmt(Decimal(params.get("quoteOrderQty", "0"))),
            "cummulativeQuoteQty": _fmt(cumulative),
            "status": "FILLED" if complete and executed > 0 else "EXPIRED",
            "timeInForce": "GTC",
            "type": "MARKET",
            "side": side,
            "workingTime": now,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "isIsolated": margin,
            "fills": [
                {
                    "price": _fmt(t["price"]),
                    "qty": _fmt(t["qty"]),
                    "commission": _fmt(t["commission"]),
                    "commissionAsset": t["commissionAsset"],
                    "tradeId": t["id"],
                }
                for t in trades
            ],
        }
        if borrowed is not None:
            order["marginBuyBorrowAsset"] = borrowed[0]
            order["marginBuyBorrowAmount"] = _fmt(borrowed[1])
        account.orders.append(order)
        account.order_times.append(self._clock())
        body = dict(order)
        if not margin:
            del body["isIsolated"]
        response_type = params.get("newOrderRespType", "FULL")
        if response_type in ("ACK", "RESULT"):
            del body["fills"]
        if response_type == "ACK":
            keys = ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
            body = {k: body[k] for k in keys}
        reply = _json_reply(200, body)
        recent = [t for t in account.order_times if self._clock() - t <= 10]
        reply.headers["X-MBX-ORDER-COUNT-10S"] = str(len(recent))
        reply.headers["X-MBX-ORDER-COUNT-1D"] = str(len(account.order_times))
        return reply

    def _find_order(
        self, account: _Account, params: dict[str, str], *, margin: bool
    ) -> dict[str, Any]:
        spec = self._symbol(params)
        if "orderId" not in params and "origClientOrderId" not in params:
            raise _Reject(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        now = self._clock()
        # A reused client order id names several orders; the docs do not say which a look-up
        # answers, so the fake answers the newest (the one the id is "in use" by, if open).
        order: dict[str, Any]
        for order in reversed(account.orders):
            if (
                order["symbol"] == spec.symbol
                and order["isIsolated"] is margin
                and (
                    str(order["orderId"]) == params.get("orderId")
                    or order["clientOrderId"] == params.get("origClientOrderId")
                )
                and self._hidden_until.get(int(order["orderId"]), now) <= now
            ):
                return order
        # errors.md "-2013 NO_SUCH_ORDER": "Order does not exist."
        raise _Reject(-2013, "Order does not exist.")

    def _order_view(self, order: dict[str, Any], *, margin: bool) -> dict[str, Any]:
        """The query-order shape: no fills, `time`/`updateTime` instead of `transactTime`."""
        hidden = {"fills", "transactTime", "marginBuyBorrowAsset", "marginBuyBorrowAmount"}
        if not margin:
            hidden.add("isIsolated")
        view = {k: v for k, v in order.items() if k not in hidden and not k.startswith("_")}
        if int(order["orderId"]) in self._quote_unknown:
            view["cummulativeQuoteQty"] = _fmt(Decimal(-1))  # see forget_quote_quantity
        view.update(
            stopPrice=order.get("stopPrice", _fmt(Decimal(0))),
            icebergQty=_fmt(Decimal(0)),
            time=order["transactTime"],
            updateTime=order["transactTime"],
            isWorking=True,
        )
        return view

    def _query_spot_order(self, account: _Account, params: dict[str, str]) -> _Reply:
        return _json_reply(
            200, self._order_view(self._find_order(account, params, margin=False), margin=False)
        )

    def _query_margin_order(self, account: _Account, params: dict[str, str]) -> _Reply:
        if params.get("isIsolated", "FALSE").upper() != "TRUE":
            raise _Reject(-2013, "Order does not exist.")
        return _json_reply(
            200, self._order_view(self._find_order(account, params, margin=True), margin=True)
        )

    def _all_orders(self, account: _Account, params: dict[str, str], *, margin: bool) -> _Reply:
        """rest-api.md "All orders (USER_DATA)" (and the margin "Query Margin Account's All
        Orders"): the symbol's orders in the query-order shape, paged like the trade list. Its
        "Data Source: Database" lags like Query order's, so a lagging order is not listed yet."""
        spec = self._symbol(params)
        now = self._clock()
        rows = [
            {**self._order_view(o, margin=margin), "id": o["orderId"], "time": o["transactTime"]}
            for o in account.orders
            if o["symbol"] == spec.symbol
            and o["isIsolated"] is margin
            and self._hidden_until.get(int(o["orderId"]), now) <= now
        ]
        # "If orderId is set, it will get orders >= that orderId": the trade list's fromId.
        page = _trade_page({("fromId" if k == "orderId" else k): v for k, v in params.items()})
        return _json_reply(200, [{k: v for k, v in r.items() if k != "id"} for r in page(rows)])

    def _all_spot_orders(self, account: _Account, params: dict[str, str]) -> _Reply:
        return self._all_orders(account, params, margin=False)

    def _all_margin_orders(self, account: _Account, params: dict[str, str]) -> _Reply:
        if params.get("isIsolated", "FALSE").upper() != "TRUE":
            raise _Reject(-1102, "FakeBinance supports isolated margin only (isIsolated=TRUE).")
        return self._all_orders(account, params, margin=True)

    def _trades(self, account: _Account, params: dict[str, str], *, margin: bool) -> _Reply:
        spec = self._symbol(params)
        order_id = params.get("orderId")
        pick = _trade_page(params)
        rows = [
            {
                "symbol": t["symbol"],
                "id": t["id"],
                "orderId": t["orderId"],
                "orderListId": -1,
                "price": _fmt(t["price"]),
                "qty": _fmt(t["qty"]),
                "quoteQty": _fmt(t["price"] * t["qty"]),
                "commission": _fmt(t["commission"]),
                "commissionAsset": t["commissionAsset"],
                "time": t["time"],
                "isBuyer": t["isBuyer"],
                "isMaker": False,
                "isBestMatch": True,
                **({"isIsolated": True} if margin else {}),
            }
            for t in account.trades
            if t["symbol"] == spec.symbol
            and t["isIsolated"] is margin
            and (order_id is None or str(t["orderId"]) == order_id)
        ]
        return _json_reply(200, pick(rows))

    def _spot_trades(self, account: _Account, params: dict[str, str]) -> _Reply:
        return self._trades(account, params, margin=False)

    def _margin_trades(self, account: _Account, params: dict[str, str]) -> _Reply:
        return self._trades(account, params, margin=True)

    # ---- isolated margin

    def _borrow_repay(self, account: _Account, params: dict[str, str]) -> _Reply:
        if params.get("isIsolated", "FALSE").upper() != "TRUE":
            raise _Reject(-1102, "FakeBinance supports isolated margin only (isIsolated=TRUE).")
        spec = self._symbol(params)
        asset = _required(params, "asset")
        amount = _decimal_param(params, "amount")
        kind = _required(params, "type")
        pair = account.isolated.get(spec.symbol)
        if pair is None:
            raise _Reject(-11001, "Isolated margin account does not exist.")
        if asset not in pair:
            raise _Reject(-3027, "Not a valid margin asset.")
        holding = pair[asset]
        if kind == "BORROW":
            holding.borrowed += amount
            holding.free += amount
        elif kind == "REPAY":
            if amount > holding.borrowed + holding.interest:
                raise _Reject(-3015, "The repayment amount has exceeded the liability.")
            if amount > holding.free:
                raise _Reject(-3041, "Balance is not enough")
            holding.repay(amount)
        else:
            raise _Reject(-1102, "Param 'type' must be BORROW or REPAY.")
        return _json_reply(200, {"tranId": next(self._ids)})

    def _isolated_account(self, account: _Account, params: dict[str, str]) -> _Reply:
        wanted = params.get("symbols")
        symbols = wanted.split(",") if wanted else list(account.isolated)

        def side(asset: str, holding: MarginAsset) -> dict[str, Any]:
            return {
                "asset": asset,
                "borrowEnabled": True,
                "borrowed": _fmt(holding.borrowed),
                "free": _fmt(holding.free),
                "interest": _fmt(holding.interest),
                "locked": _fmt(holding.locked),
                "netAsset": _fmt(
                    holding.free + holding.locked - holding.borrowed - holding.interest
                ),
                "netAssetOfBtc": _fmt(Decimal(0)),
                "repayEnabled": True,
                "totalAsset": _fmt(holding.free),
            }

        assets = []
        for symbol in symbols:
            pair = account.isolated.get(symbol)
            if pair is None:
                continue
            spec = self._symbols[symbol]
            assets.append(
                {
                    "baseAsset": side(spec.base_asset, pair[spec.base_asset]),
                    "quoteAsset": side(spec.quote_asset, pair[spec.quote_asset]),
                    "symbol": symbol,
                    "isolatedCreated": True,
                    "enabled": True,
                    "marginLevel": "999.00000000",
                    "marginLevelStatus": "EXCESSIVE",
                    "marginRatio": "5.00000000",
                    "indexPrice": _fmt(self._prices[symbol]),
                    "liquidatePrice": _fmt(Decimal(0)),
                    "liquidateRate": _fmt(Decimal(0)),
                    "tradeEnabled": True,
                }
            )
        zero = _fmt(Decimal(0))
        return _json_reply(
            200,
            {
                "assets": assets,
                "totalAssetOfBtc": zero,
                "totalLiabilityOfBtc": zero,
                "totalNetAssetOfBtc": zero,
            },
        )


def _trade_page(params: dict[str, str]) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """One page of a trade list, oldest first, as rest-api.md "Account trade list (USER_DATA)"
    describes it (the margin list, developers.binance.com "Query Margin Account's Trade List",
    takes the same fromId, startTime, endTime and limit):

    - limit "Default: 500; Maximum: 1000" (a larger one is served as 1000);
    - "If `fromId` is set, it will get trades >= that `fromId`. Otherwise most recent trades
      are returned.";
    - "The time between `startTime` and `endTime` can't be longer than 24 hours." (errors.md
      "-1127 MORE_THAN_XX_HOURS");
    - the supported combinations: symbol alone, or with orderId, startTime, endTime, fromId,
      startTime + endTime, or orderId + fromId (errors.md "-1128 OPTIONAL_PARAMS_BAD_COMBO").
    """
    given = frozenset(k for k in ("orderId", "startTime", "endTime", "fromId") if k in params)
    supported = {
        frozenset(),
        frozenset({"orderId"}),
        frozenset({"startTime"}),
        frozenset({"endTime"}),
        frozenset({"fromId"}),
        frozenset({"startTime", "endTime"}),
        frozenset({"orderId", "fromId"}),
    }
    if given not in supported:
        raise _Reject(-1128, "Combination of optional parameters invalid.")
    numbers: dict[str, int] = {}
    for name in (*given, "limit"):
        if name in params:
            try:
                numbers[name] = int(params[name])
            except ValueError:
                raise _Reject(-1130, f"Data sent for parameter '{name}' is not valid.") from None
    limit = min(numbers.get("limit", TRADES_DEFAULT_LIMIT), TRADES_MAX_LIMIT)
    if limit < 1:
        raise _Reject(-1130, "Data sent for parameter 'limit' is not valid.")
    start, end = numbers.get("startTime"), numbers.get("endTime")
    if start is not None and end is not None and end - start > 24 * 3600 * 1000:
        raise _Reject(-1127, "More than 24 hours between startTime and endTime.")

    def page(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = sorted(rows, key=lambda t: int(t["id"]))
        if "fromId" in numbers:
            return [t for t in rows if int(t["id"]) >= numbers["fromId"]][:limit]
        if start is not None:
            rows = [t for t in rows if int(t["time"]) >= start]
        if end is not None:
            rows = [t for t in rows if int(t["time"]) <= end]
        if start is not None:
            return rows[:limit]  # onwards from startTime
        return rows[-limit:]  # the most recent

    return page


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _strip_signature(raw: str) -> str:
    return "&".join(item for item in raw.split("&") if item and not item.startswith("signature="))


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _Reject(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _decimal_param(params: dict[str, str], name: str) -> Decimal:
    """Binance accepts plain decimals only: '1e-05' is an illegal character error."""
    value = _required(params, name)
    if not _DECIMAL_PARAM.match(value):
        raise _Reject(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return Decimal(value)


class _Server(LoopbackServer):
    fake: FakeBinance


class _Handler(TrackedHandler):
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _Server

    def serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.fake._handle(self, method, urlsplit(self.path).query, body)

    def do_DELETE(self) -> None:  # noqa: N802 (the name http.server looks up)
        self.serve("DELETE")

    def send(self, reply: _Reply) -> None:
        self.answer(reply.status, reply.content_type, reply.body, reply.headers)
