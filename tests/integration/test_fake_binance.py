"""The fake Binance server behaves like Binance for python-binance's real Client."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance import (
    ApiError,
    Delay,
    DropConnection,
    FakeBinance,
    RateLimit,
    RawResponse,
)

KEY = "alice-api-key-0001"
SECRET = "alice-secret-key-never-shown"
MINUTE_START = 60 * 29_833_333.0  # a whole minute, in seconds since the epoch


class Ticks:
    """The fake's clock, moved by hand: weight minutes, bans and look-up lags without sleeping."""

    def __init__(self) -> None:
        self.now = MINUTE_START + 15

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def fake(ticks: Ticks) -> Iterator[FakeBinance]:
    with FakeBinance(clock=ticks) as server:
        server.fund(KEY, SECRET, {"USDC": Decimal("10000")})
        yield server


@contextmanager
def connected(
    fake: FakeBinance, key: str | None, secret: str | None, timeout: float = 5.0
) -> Iterator[Any]:
    """python-binance's Client on the fake with these credentials, its session closed after."""
    client = fake.client(key, secret, timeout=timeout)
    try:
        yield client
    finally:
        client.session.close()


@pytest.fixture
def client(fake: FakeBinance) -> Iterator[Any]:
    with connected(fake, KEY, SECRET) as client:
        yield client


def api_error(excinfo: pytest.ExceptionInfo[BaseException]) -> BinanceAPIException:
    error = excinfo.value
    assert isinstance(error, BinanceAPIException)
    return error


def buy(client: Any, **params: str) -> Any:
    return client.create_order(symbol="BTCUSDC", side="BUY", type="MARKET", **params)


def margin_order(client: Any, side: str = "BUY", **params: str) -> Any:
    """A market order on the isolated BTCUSDC margin account."""
    return client.create_margin_order(
        symbol="BTCUSDC", isIsolated="TRUE", side=side, type="MARKET", **params
    )


def sign(query: str, body: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()


# ---- public endpoints


def test_exchange_info_publishes_the_btcusdc_filters(client: Any) -> None:
    info = client.get_symbol_info("BTCUSDC")
    filters = {f["filterType"]: f for f in info["filters"]}

    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["LOT_SIZE"]["minQty"] == "0.00001000"
    assert filters["LOT_SIZE"]["maxQty"] == "9000.00000000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert filters["NOTIONAL"]["applyMinToMarket"] is True
    assert info["quoteOrderQtyMarketAllowed"] is True
    assert info["isMarginTradingAllowed"] is True
    assert (info["baseAsset"], info["quoteAsset"]) == ("BTC", "USDC")


def test_ping_time_and_ticker_answer_without_a_key(fake: FakeBinance) -> None:
    fake.set_price("BTCUSDC", Decimal("98500.5"))
    with connected(fake, None, None) as anonymous:
        assert anonymous.ping() == {}
        assert abs(anonymous.get_server_time()["serverTime"] - time.time() * 1000) < 5000
        assert anonymous.get_symbol_ticker(symbol="BTCUSDC") == {
            "symbol": "BTCUSDC",
            "price": "98500.50000000",
        }


# ---- keys, signatures, timestamps


def test_a_signed_call_with_the_right_key_and_secret_is_accepted(client: Any) -> None:
    account = client.get_account()

    assert {"asset": "USDC", "free": "10000.00000000", "locked": "0.00000000"} in account[
        "balances"
    ]


def test_an_unknown_api_key_is_refused_with_401_and_2015(fake: FakeBinance) -> None:
    with (
        connected(fake, "nobody-knows-this-key", SECRET) as stranger,
        pytest.raises(BinanceAPIException) as excinfo,
    ):
        stranger.get_account()

    error = api_error(excinfo)
    assert (error.status_code, error.code) == (401, -2015)
    assert error.message == "Invalid API-key, IP, or permissions for action."


def test_a_wrong_secret_fails_the_signature_check_with_1022(fake: FakeBinance) -> None:
    with (
        connected(fake, KEY, "not-the-secret") as impostor,
        pytest.raises(BinanceAPIException) as excinfo,
    ):
        impostor.get_account()

    assert api_error(excinfo).code == -1022


def test_the_signature_covers_query_string_and_body_without_a_separator(
    fake: FakeBinance,
) -> None:
    query = "symbol=BTCUSDC&side=BUY&type=MARKET"
    body = f"quantity=0.001&newClientOrderId=raw-1&timestamp={fake.server_time_ms()}"
    url = f"{fake.url}/api/v3/order?{query}"
    headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}

    tampered = body.replace("0.001", "0.002") + f"&signature={sign(query, body)}"
    refused = httpx.post(url, content=tampered, headers=headers)
    accepted = httpx.post(url, content=f"{body}&signature={sign(query, body)}", headers=headers)

    assert (refused.status_code, refused.json()["code"]) == (400, -1022)
    assert accepted.status_code == 200
    assert accepted.json()["executedQty"] == "0.00100000"


@pytest.mark.parametrize(
    ("skew_ms", "reason"),
    [
        (-5000, "ahead of the server"),  # the server is 5 s behind: 1000 ms ahead is too far
        (6000, "recvWindow"),  # older than recvWindow (5000)
    ],
)
def test_a_timestamp_ahead_of_the_server_or_older_than_recv_window_is_refused_with_1021(
    fake: FakeBinance, client: Any, skew_ms: int, reason: str
) -> None:
    fake.clock_skew_ms = skew_ms

    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_account()

    assert api_error(excinfo).code == -1021
    assert reason in api_error(excinfo).message


def test_a_client_timestamp_offset_from_server_time_cures_1021(
    fake: FakeBinance, client: Any
) -> None:
    fake.clock_skew_ms = -30000
    client.timestamp_offset = client.get_server_time()["serverTime"] - int(time.time() * 1000)

    assert client.get_account()["accountType"] == "SPOT"


# ---- orders


def test_a_market_buy_by_quantity_fills_and_charges_the_fee_in_btc(
    fake: FakeBinance, client: Any
) -> None:
    order = buy(client, quantity="0.001", newClientOrderId="buy-1")

    assert order["clientOrderId"] == "buy-1"
    assert order["status"] == "FILLED"
    assert order["cummulativeQuoteQty"] == "100.00000000"
    assert order["fills"] == [
        {
            "price": "100000.00000000",
            "qty": "0.00100000",
            "commission": "0.00000100",
            "commissionAsset": "BTC",
            "tradeId": order["fills"][0]["tradeId"],
        }
    ]
    assert fake.balances(KEY) == {"USDC": Decimal("9900"), "BTC": Decimal("0.000999")}


def test_a_market_buy_by_quote_amount_floors_the_quantity_to_the_step(
    fake: FakeBinance, client: Any
) -> None:
    fake.set_price("BTCUSDC", Decimal("30000"))

    order = buy(client, quoteOrderQty="50", newClientOrderId="quote-1")

    assert order["executedQty"] == "0.00166000"  # 50 / 30000 = 0.0016666...
    assert order["cummulativeQuoteQty"] == "49.80000000"
    assert order["origQuoteOrderQty"] == "50.00000000"
    assert fake.balances(KEY)["USDC"] == Decimal("9950.2")


def test_a_market_sell_charges_the_fee_in_usdc(fake: FakeBinance, client: Any) -> None:
    fake.fund(KEY, SECRET, {"BTC": Decimal("0.01")})

    order = client.create_order(
        symbol="BTCUSDC", side="SELL", type="MARKET", quantity="0.005", newClientOrderId="sell-1"
    )

    assert order["fills"][0]["commissionAsset"] == "USDC"
    assert order["fills"][0]["commission"] == "0.50000000"
    assert fake.balances(KEY) == {"USDC": Decimal("10499.5"), "BTC": Decimal("0.005")}


def test_the_commission_can_be_charged_in_another_asset_at_its_price(
    fake: FakeBinance, client: Any
) -> None:
    fake.set_price("BNBUSDC", Decimal("500"))
    fake.fund(KEY, SECRET, {"BNB": Decimal("1")})
    fake.set_commission(Decimal("0.00075"), asset="BNB")

    order = buy(client, quantity="0.001", newClientOrderId="bnb-1")

    assert order["fills"][0]["commissionAsset"] == "BNB"
    assert order["fills"][0]["commission"] == "0.00015000"  # 100 USDC x 0.075% / 500
    assert fake.balances(KEY)["BTC"] == Decimal("0.001")
    assert fake.balances(KEY)["BNB"] == Decimal("0.99985")


def test_a_thin_book_gives_several_fills_and_expires_when_it_runs_out(
    fake: FakeBinance, client: Any
) -> None:
    fake.set_book(
        "BTCUSDC", [(Decimal("100000"), Decimal("0.0004")), (Decimal("100100"), Decimal("0.0003"))]
    )

    order = buy(client, quantity="0.001", newClientOrderId="thin-1")

    assert [(f["price"], f["qty"]) for f in order["fills"]] == [
        ("100000.00000000", "0.00040000"),
        ("100100.00000000", "0.00030000"),
    ]
    assert order["status"] == "EXPIRED"
    assert order["executedQty"] == "0.00070000"
    assert order["cummulativeQuoteQty"] == "70.03000000"


@pytest.mark.parametrize(
    ("params", "failure"),
    [
        ({"quantity": "0.000009"}, "Filter failure: LOT_SIZE"),  # below minQty
        ({"quantity": "0.000015"}, "Filter failure: LOT_SIZE"),  # not a step multiple
        ({"quantity": "9001"}, "Filter failure: LOT_SIZE"),  # above maxQty
        ({"quantity": "0.00004"}, "Filter failure: NOTIONAL"),  # 4.00 USDC
        ({"quoteOrderQty": "4.99"}, "Filter failure: NOTIONAL"),
    ],
)
def test_orders_outside_the_filters_are_refused_with_1013(
    fake: FakeBinance, client: Any, params: dict[str, str], failure: str
) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, **params)

    assert (api_error(excinfo).code, api_error(excinfo).message) == (-1013, failure)
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}


def test_a_minimum_notional_of_exactly_5_is_accepted(client: Any) -> None:
    assert buy(client, quoteOrderQty="5")["executedQty"] == "0.00005000"
    assert buy(client, quantity="0.00005")["cummulativeQuoteQty"] == "5.00000000"


def test_a_price_off_the_tick_is_refused_with_price_filter(client: Any) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        client.create_order(
            symbol="BTCUSDC",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price="100000.005",
        )

    assert api_error(excinfo).message == "Filter failure: PRICE_FILTER"


def test_scientific_notation_is_refused_as_illegal_characters(client: Any) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="1e-05")

    assert api_error(excinfo).code == -1100


def test_a_client_order_id_held_by_an_open_order_is_refused_as_a_duplicate(
    fake: FakeBinance, client: Any
) -> None:
    fake.rest_order(KEY, "held-1")

    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="0.001", newClientOrderId="held-1")

    assert (api_error(excinfo).code, api_error(excinfo).message) == (-2010, "Duplicate order sent.")
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}


def test_the_client_order_id_of_a_filled_order_can_be_used_again_and_fills_again(
    fake: FakeBinance, client: Any
) -> None:
    first = buy(client, quantity="0.001", newClientOrderId="once-1")

    second = buy(client, quantity="0.001", newClientOrderId="once-1")

    assert (first["status"], second["status"]) == ("FILLED", "FILLED")
    assert second["orderId"] != first["orderId"]
    assert [o["clientOrderId"] for o in fake.orders(KEY)] == ["once-1", "once-1"]
    assert fake.balances(KEY)["USDC"] == Decimal("9800")
    found = client.get_order(symbol="BTCUSDC", origClientOrderId="once-1")
    assert found["orderId"] == second["orderId"]  # the newest order holding the id


def test_an_order_larger_than_the_balance_is_refused_with_2010(
    fake: FakeBinance, client: Any
) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quoteOrderQty="10000.01")

    assert api_error(excinfo).code == -2010
    assert api_error(excinfo).message == "Account has insufficient balance for requested action."
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}


def test_an_order_can_be_looked_up_by_client_id_or_order_id_with_its_trades(
    client: Any,
) -> None:
    placed = buy(client, quantity="0.002", newClientOrderId="look-1")

    by_client_id = client.get_order(symbol="BTCUSDC", origClientOrderId="look-1")
    by_order_id = client.get_order(symbol="BTCUSDC", orderId=placed["orderId"])
    trades = client.get_my_trades(symbol="BTCUSDC", orderId=placed["orderId"])

    assert by_client_id == by_order_id
    assert by_client_id["status"] == "FILLED"
    assert by_client_id["executedQty"] == "0.00200000"
    assert by_client_id["updateTime"] == placed["transactTime"]
    assert [(t["qty"], t["commission"], t["commissionAsset"]) for t in trades] == [
        ("0.00200000", "0.00000200", "BTC")
    ]


def test_an_unknown_order_is_2013(client: Any) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_order(symbol="BTCUSDC", origClientOrderId="never-sent")

    assert (api_error(excinfo).code, api_error(excinfo).message) == (-2013, "Order does not exist.")


def test_a_key_without_trade_permission_cannot_order(fake: FakeBinance) -> None:
    fake.fund("read-only-key", "read-only-secret", {"USDC": Decimal("100")}, can_trade=False)
    with connected(fake, "read-only-key", "read-only-secret") as read_only:
        assert read_only.get_account()["canTrade"] is False
        with pytest.raises(BinanceAPIException) as excinfo:
            buy(read_only, quantity="0.0001")

    assert api_error(excinfo).code == -2015


# ---- rate-limit headers


def test_every_api_answer_reports_the_used_weight_and_orders_the_order_count(
    fake: FakeBinance, client: Any
) -> None:
    fake.used_weight = 900
    client.ping()
    ping_weight = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    buy(client, quantity="0.001")
    order_headers = client.response.headers

    assert ping_weight == 901
    assert int(order_headers["X-MBX-USED-WEIGHT-1M"]) == 902
    assert order_headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert order_headers["X-MBX-ORDER-COUNT-1D"] == "1"


def test_an_error_answer_reports_the_used_weight_too(client: Any) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="0.000001")

    assert "X-MBX-USED-WEIGHT-1M" in api_error(excinfo).response.headers


# ---- faults


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_faults_carry_retry_after_and_1003(
    fake: FakeBinance, client: Any, status: int
) -> None:
    fake.inject(RateLimit(retry_after=7, status=status), path="/api/v3/ticker/price")  # type: ignore[arg-type]

    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_symbol_ticker(symbol="BTCUSDC")

    error = api_error(excinfo)
    assert (error.status_code, error.code) == (status, -1003)
    assert error.response.headers["Retry-After"] == "7"
    assert client.get_symbol_ticker(symbol="BTCUSDC")["price"] == "100000.00000000"  # one-shot


def test_a_fault_can_be_armed_for_n_requests(fake: FakeBinance, client: Any) -> None:
    fake.inject(RateLimit(retry_after=1), path="/api/v3/ping", times=2)

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(client.ping())
        except BinanceAPIException as error:
            outcomes.append(error.status_code)

    assert outcomes == [429, 429, {}]


def test_a_5xx_after_execution_still_moved_the_balance(fake: FakeBinance, client: Any) -> None:
    fake.inject(RawResponse(502, "<html>502 Bad Gateway</html>"), path="/api/v3/order")

    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="0.001", newClientOrderId="lost-1")

    assert api_error(excinfo).status_code == 502
    assert api_error(excinfo).code == 0  # not JSON
    assert fake.balances(KEY)["USDC"] == Decimal("9900")
    assert client.get_order(symbol="BTCUSDC", origClientOrderId="lost-1")["status"] == "FILLED"


def test_a_dropped_connection_after_execution_gives_no_answer_but_the_order_exists(
    fake: FakeBinance, client: Any
) -> None:
    fake.inject(DropConnection(), path="/api/v3/order", method="POST")

    with pytest.raises(OSError) as excinfo:  # requests' ConnectionError is an OSError
        buy(client, quantity="0.001", newClientOrderId="dropped-1")

    assert type(excinfo.value).__name__ == "ConnectionError"
    assert fake.requests(path="/api/v3/order")[0].status is None
    assert fake.order(KEY, "dropped-1") is not None
    assert len(fake.orders_received(client_order_id="dropped-1")) == 1  # no silent retry


def test_a_delay_longer_than_the_client_timeout_times_out_after_execution(
    fake: FakeBinance,
) -> None:
    fake.inject(Delay(seconds=10), path="/api/v3/order")
    with connected(fake, KEY, SECRET, timeout=1) as impatient, pytest.raises(OSError) as excinfo:
        buy(impatient, quantity="0.001", newClientOrderId="slow-1")

    assert type(excinfo.value).__name__ == "ReadTimeout"
    assert fake.wait_for(lambda: fake.order(KEY, "slow-1") is not None)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (ApiError.invalid_api_key(), -2015),
        (ApiError.insufficient_balance(), -2010),
        (ApiError.filter_failure("PRICE_FILTER"), -1013),
    ],
)
def test_an_injected_error_refuses_without_executing(
    fake: FakeBinance, client: Any, fault: ApiError, code: int
) -> None:
    fake.inject(fault, path="/api/v3/order")

    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="0.001", newClientOrderId="refused-1")

    assert (api_error(excinfo).code, api_error(excinfo).message) == (code, fault.msg)
    assert fake.order(KEY, "refused-1") is None
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}


def test_a_non_json_success_body_can_be_injected(fake: FakeBinance, client: Any) -> None:
    fake.inject(RawResponse(200, "OK"), path="/api/v3/order")

    with pytest.raises(Exception, match="Invalid Response: OK"):
        buy(client, quantity="0.001", newClientOrderId="garbled-1")

    assert fake.order(KEY, "garbled-1") is not None


# ---- isolated margin


def test_margin_buy_borrows_the_shortfall_and_auto_repay_pays_it_back(
    fake: FakeBinance, client: Any
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    opened = margin_order(
        client, quoteOrderQty="300", sideEffectType="MARGIN_BUY", newClientOrderId="long-1"
    )
    after_open = fake.isolated_account(KEY, "BTCUSDC")
    margin_order(
        client, "SELL", quantity="0.0025", sideEffectType="AUTO_REPAY", newClientOrderId="close-1"
    )
    after_close = fake.isolated_account(KEY, "BTCUSDC")

    assert opened["isIsolated"] is True
    assert (opened["marginBuyBorrowAsset"], opened["marginBuyBorrowAmount"]) == (
        "USDC",
        "200.00000000",
    )
    assert after_open["USDC"].borrowed == Decimal("200")
    assert after_open["BTC"].free == Decimal("0.002997")
    assert after_close["USDC"].borrowed == 0
    assert after_close["USDC"].free == Decimal("49.75")  # 0 + 250 - 0.25 fee - 200 repaid
    assert after_close["BTC"].free == Decimal("0.000497")
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}  # spot untouched


def test_margin_orders_without_side_effect_need_the_funds(fake: FakeBinance, client: Any) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    with pytest.raises(BinanceAPIException) as excinfo:
        margin_order(client, quoteOrderQty="300")

    assert api_error(excinfo).code == -2010


def test_a_margin_order_needs_an_isolated_account(client: Any) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        margin_order(client, quoteOrderQty="10")

    assert api_error(excinfo).code == -11001


def test_borrow_and_repay_move_the_isolated_liability(fake: FakeBinance, client: Any) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    client.margin_borrow_repay(
        asset="USDC", amount="50", isIsolated="TRUE", symbol="BTCUSDC", type="BORROW"
    )
    borrowed = fake.isolated_account(KEY, "BTCUSDC")["USDC"]
    with pytest.raises(BinanceAPIException) as excinfo:
        client.margin_borrow_repay(
            asset="USDC", amount="60", isIsolated="TRUE", symbol="BTCUSDC", type="REPAY"
        )
    client.margin_borrow_repay(
        asset="USDC", amount="50", isIsolated="TRUE", symbol="BTCUSDC", type="REPAY"
    )

    assert (borrowed.free, borrowed.borrowed) == (Decimal("150"), Decimal("50"))
    assert api_error(excinfo).code == -3015
    assert fake.isolated_account(KEY, "BTCUSDC")["USDC"].borrowed == 0


def test_the_isolated_account_and_margin_orders_can_be_read_back(
    fake: FakeBinance, client: Any
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("500")})
    margin_order(client, quantity="0.001", newClientOrderId="m-1")

    account = client.get_isolated_margin_account(symbols="BTCUSDC")
    found = client.get_margin_order(symbol="BTCUSDC", isIsolated="TRUE", origClientOrderId="m-1")
    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_order(symbol="BTCUSDC", origClientOrderId="m-1")  # not a spot order

    pair = account["assets"][0]
    assert pair["symbol"] == "BTCUSDC"
    assert pair["quoteAsset"]["free"] == "400.00000000"
    assert pair["baseAsset"]["free"] == "0.00099900"
    assert (found["clientOrderId"], found["isIsolated"], found["status"]) == ("m-1", True, "FILLED")
    assert api_error(excinfo).code == -2013


# ---- look-ups that lag behind a lost answer


def test_an_order_whose_answer_was_lost_is_not_found_until_the_lookup_delay_passed(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    fake.lookup_delay_seconds = 45
    fake.inject(DropConnection(), path="/api/v3/order", method="POST")
    with pytest.raises(OSError):
        buy(client, quantity="0.001", newClientOrderId="lagging-1")
    answered = buy(client, quantity="0.001", newClientOrderId="answered-1")

    ticks.now += 44
    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_order(symbol="BTCUSDC", origClientOrderId="lagging-1")
    still_hidden = api_error(excinfo)
    seen_at_once = client.get_order(symbol="BTCUSDC", orderId=answered["orderId"])
    ticks.now += 1
    found = client.get_order(symbol="BTCUSDC", origClientOrderId="lagging-1")

    assert (still_hidden.code, still_hidden.message) == (-2013, "Order does not exist.")
    assert fake.order(KEY, "lagging-1") is not None  # it executed all along
    assert seen_at_once["clientOrderId"] == "answered-1"
    assert found["status"] == "FILLED"


def test_the_order_list_lags_like_a_lookup_while_the_trade_list_shows_the_fill(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    """rest-api.md: "All orders" reads "Data Source: Database", like a look-up that lags;
    "Account trade list" reads "Memory => Database"."""
    fake.lookup_delay_seconds = 45
    fake.inject(DropConnection(), path="/api/v3/order", method="POST")
    with pytest.raises(OSError):
        buy(client, quantity="0.001", newClientOrderId="lagging-2")

    listed = client.get_all_orders(symbol="BTCUSDC")
    traded = client.get_my_trades(symbol="BTCUSDC")
    ticks.now += 45
    later = client.get_all_orders(symbol="BTCUSDC", startTime="0")

    assert listed == []
    assert [(o["clientOrderId"], o["status"]) for o in later] == [("lagging-2", "FILLED")]
    assert [t["orderId"] for t in traded] == [later[0]["orderId"]]


def test_a_margin_order_executed_behind_a_5xx_lags_the_same_way(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("500")})
    fake.lookup_delay_seconds = 45
    fake.inject(RawResponse(502, "<html>502</html>"), path="/sapi/v1/margin/order", method="POST")
    with pytest.raises(BinanceAPIException):
        margin_order(client, quantity="0.001", newClientOrderId="m-lag-1")

    def lookup() -> Any:
        return client.get_margin_order(
            symbol="BTCUSDC", isIsolated="TRUE", origClientOrderId="m-lag-1"
        )

    with pytest.raises(BinanceAPIException) as excinfo:
        lookup()
    ticks.now += 45

    assert api_error(excinfo).code == -2013
    assert lookup()["status"] == "FILLED"


# ---- historical answers


def test_a_lookup_can_report_a_negative_quote_quantity_for_an_old_order(
    fake: FakeBinance, client: Any
) -> None:
    placed = buy(client, quantity="0.001", newClientOrderId="old-1")

    fake.forget_quote_quantity(KEY, "old-1")
    found = client.get_order(symbol="BTCUSDC", origClientOrderId="old-1")
    trades = client.get_my_trades(symbol="BTCUSDC", orderId=placed["orderId"])

    assert placed["cummulativeQuoteQty"] == "100.00000000"
    assert Decimal(found["cummulativeQuoteQty"]) < 0
    assert [(t["price"], t["qty"]) for t in trades] == [("100000.00000000", "0.00100000")]


# ---- trade list pages


def many_fills(fake: FakeBinance, client: Any, count: int, client_order_id: str) -> Any:
    """One order of `count` fills: a book of `count` levels of the smallest lot each."""
    fake.set_book("BTCUSDC", [(Decimal("100000") + i, Decimal("0.00001")) for i in range(count)])
    return buy(client, quantity=str(Decimal("0.00001") * count), newClientOrderId=client_order_id)


def test_trades_come_500_by_default_and_at_most_1000_most_recent_first_page_oldest_first(
    fake: FakeBinance, client: Any
) -> None:
    order = many_fills(fake, client, 1200, "big-1")
    ids = [f["tradeId"] for f in order["fills"]]

    default = client.get_my_trades(symbol="BTCUSDC")
    largest = client.get_my_trades(symbol="BTCUSDC", limit=5000)
    of_order = client.get_my_trades(symbol="BTCUSDC", orderId=order["orderId"], limit=1000)

    assert [t["id"] for t in default] == ids[-500:]
    assert [t["id"] for t in largest] == ids[-1000:]
    assert [t["id"] for t in of_order] == ids[-1000:]


def test_from_id_pages_forwards_through_an_orders_trades(fake: FakeBinance, client: Any) -> None:
    order = many_fills(fake, client, 1200, "big-2")
    ids = [f["tradeId"] for f in order["fills"]]

    first = client.get_my_trades(
        symbol="BTCUSDC", orderId=order["orderId"], fromId=ids[0], limit=1000
    )
    rest = client.get_my_trades(
        symbol="BTCUSDC", orderId=order["orderId"], fromId=first[-1]["id"] + 1, limit=1000
    )

    assert [t["id"] for t in first + rest] == ids


def test_start_and_end_time_select_trades_by_time(fake: FakeBinance, client: Any) -> None:
    early = buy(client, quantity="0.001", newClientOrderId="early-1")
    assert fake.wait_for(lambda: fake.server_time_ms() > early["transactTime"])
    late = buy(client, quantity="0.001", newClientOrderId="late-1")

    until_early = client.get_my_trades(symbol="BTCUSDC", endTime=early["transactTime"])
    from_late = client.get_my_trades(symbol="BTCUSDC", startTime=late["transactTime"])
    both = client.get_my_trades(
        symbol="BTCUSDC", startTime=early["transactTime"], endTime=late["transactTime"]
    )

    assert [t["orderId"] for t in until_early] == [early["orderId"]]
    assert [t["orderId"] for t in from_late] == [late["orderId"]]
    assert [t["orderId"] for t in both] == [early["orderId"], late["orderId"]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"startTime": 0, "endTime": 24 * 3600 * 1000 + 1}, -1127),
        ({"orderId": 1, "startTime": 0}, -1128),
        ({"fromId": 1, "endTime": 1}, -1128),
    ],
)
def test_a_trade_query_outside_the_documented_shapes_is_refused(
    client: Any, params: dict[str, int], code: int
) -> None:
    with pytest.raises(BinanceAPIException) as excinfo:
        client.get_my_trades(symbol="BTCUSDC", **params)

    assert api_error(excinfo).code == code


# ---- request weight


def test_exchange_info_publishes_the_request_weight_limit_it_enforces(
    fake: FakeBinance, client: Any
) -> None:
    limits = {r["rateLimitType"]: r for r in client.get_exchange_info()["rateLimits"]}

    assert limits["REQUEST_WEIGHT"] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    assert fake.weight_limit == 6000


def test_weights_follow_the_parameters_of_trade_lists_and_tickers(
    fake: FakeBinance, client: Any
) -> None:
    def weight_of(call: Any) -> int:
        before = fake.used_weight
        call()
        return fake.used_weight - before

    assert weight_of(lambda: client.get_my_trades(symbol="BTCUSDC")) == 20
    assert weight_of(lambda: client.get_my_trades(symbol="BTCUSDC", orderId=1)) == 5
    assert weight_of(lambda: client.get_symbol_ticker(symbol="BTCUSDC")) == 2
    assert weight_of(client.get_symbol_ticker) == 4
    placed = buy(client, quantity="0.001")
    assert weight_of(lambda: client.get_order(symbol="BTCUSDC", orderId=placed["orderId"])) == 4


def test_used_weight_restarts_with_each_minute(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    fake.used_weight = 5000
    client.ping()
    in_the_minute = client.response.headers["X-MBX-USED-WEIGHT-1M"]
    ticks.now = MINUTE_START + 60
    client.ping()

    assert in_the_minute == "5001"
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_weight_beyond_the_limit_is_429_with_retry_after_until_the_minute_ends(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    fake.used_weight = 5999
    client.ping()  # 6000: still within the limit

    with pytest.raises(BinanceAPIException) as excinfo:
        buy(client, quantity="0.001", newClientOrderId="too-many-1")
    ticks.now = MINUTE_START + 60
    after = buy(client, quantity="0.001", newClientOrderId="too-many-1")

    error = api_error(excinfo)
    assert (error.status_code, error.code) == (429, -1003)
    assert "current limit is 6000 request weight per 1 MINUTE" in error.message
    assert error.response.headers["Retry-After"] == "45"  # 15 s into the minute
    assert error.response.headers["X-MBX-USED-WEIGHT-1M"] == "6001"
    assert after["status"] == "FILLED"  # the refused one never executed
    assert len(fake.orders(KEY)) == 1


def test_sending_on_after_429s_gets_the_ip_banned_with_418(
    fake: FakeBinance, client: Any, ticks: Ticks
) -> None:
    fake.used_weight = 6000
    statuses = []
    for _ in range(fake.ban_after_429s + 2):
        with pytest.raises(BinanceAPIException) as excinfo:
            client.ping()
        statuses.append(api_error(excinfo).status_code)
    ban = api_error(excinfo)
    ticks.now = MINUTE_START + 60  # a new minute does not lift the ban
    with pytest.raises(BinanceAPIException) as still:
        client.ping()
    ticks.now = MINUTE_START + 15 + fake.ban_seconds

    assert statuses == [429] * fake.ban_after_429s + [418, 418]
    assert (ban.code, ban.response.headers["Retry-After"]) == (-1003, "120")
    assert "IP banned until" in ban.message
    assert api_error(still).status_code == 418
    assert client.ping() == {}
