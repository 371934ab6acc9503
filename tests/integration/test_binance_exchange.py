"""BinanceExchange against the fake Binance server, through python-binance's real Client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import (
    CredentialsMissing,
    CredentialsRejected,
    DomainError,
    ExchangeUnavailable,
    FilterFailure,
    InsufficientBalance,
    InvalidInput,
    MarginUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)
from domain.market import BTCUSDC, OrderSide
from domain.ports import (
    ApiCredentials,
    Balance,
    Exchange,
    MarginEffect,
    MarginHolding,
    OrderRequest,
    OrderStatus,
    TradingAccount,
)
from infra.binance.exchange import BinanceExchange
from infra.clock import ManualClock
from tests.fakes.binance import (
    ApiError,
    Delay,
    DropConnection,
    FakeBinance,
    FakeSymbol,
    RateLimit,
    RawResponse,
)

KEY = "alice-api-key-0001"
SECRET = "alice-secret-key-never-shown"
ALICE = TradingAccount(uuid4(), ApiCredentials(KEY, SECRET))
ORDER_PATH = "/api/v3/order"
ISOLATED = "/sapi/v1/margin/isolated/account"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance() as server:
        server.fund(KEY, SECRET, {"USDC": Decimal("10000")})
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC))


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_exchange(
    fake: FakeBinance,
    clock: ManualClock,
    sleeps: list[float],
    *,
    testnet: bool = False,
    timeout_seconds: float = 5.0,
) -> BinanceExchange:
    return BinanceExchange(
        testnet=testnet,
        base_url=fake.url,
        timeout_seconds=timeout_seconds,
        sleep=sleeps.append,
        clock=clock,
    )


@pytest.fixture
def exchange(
    fake: FakeBinance, clock: ManualClock, sleeps: list[float]
) -> Iterator[BinanceExchange]:
    exchange = make_exchange(fake, clock, sleeps)
    yield exchange
    exchange.close()


@pytest.fixture
def testnet(
    fake: FakeBinance, clock: ManualClock, sleeps: list[float]
) -> Iterator[BinanceExchange]:
    exchange = make_exchange(fake, clock, sleeps, testnet=True)
    yield exchange
    exchange.close()


def buy(
    client_order_id: str,
    *,
    quantity: str | None = None,
    quote: str | None = None,
    margin: MarginEffect | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDC",
        side=OrderSide.BUY,
        client_order_id=client_order_id,
        quantity=Decimal(quantity) if quantity else None,
        quote_amount=Decimal(quote) if quote else None,
        margin=margin,
    )


def sell(client_order_id: str, quantity: str, margin: MarginEffect | None = None) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDC",
        side=OrderSide.SELL,
        client_order_id=client_order_id,
        quantity=Decimal(quantity),
        margin=margin,
    )


def test_it_is_a_live_exchange_port(exchange: BinanceExchange) -> None:
    port: Exchange = exchange

    assert (port.name, port.is_live) == ("binance", True)


# ---- market data


def test_symbol_rules_come_from_exchange_info(exchange: BinanceExchange) -> None:
    assert exchange.symbol_rules("BTCUSDC") == BTCUSDC


def test_symbol_rules_are_fetched_once(exchange: BinanceExchange, fake: FakeBinance) -> None:
    exchange.symbol_rules("BTCUSDC")
    exchange.symbol_rules("BTCUSDC")

    assert fake.request_count("/api/v3/exchangeInfo") == 1


def test_older_min_notional_and_market_lot_size_are_understood(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.add_symbol(
        FakeSymbol(
            symbol="ETHUSDC",
            base_asset="ETH",
            quote_asset="USDC",
            step_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            min_notional=Decimal("10"),
            notional_filter="MIN_NOTIONAL",
            market_lot=(Decimal("0.001"), Decimal("100"), Decimal("0.001")),
        )
    )

    rules = exchange.symbol_rules("ETHUSDC")

    assert (rules.step_size, rules.min_qty, rules.max_qty) == (
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("100"),
    )
    assert rules.min_notional == Decimal("10")


def test_an_unknown_symbol_is_invalid_input(exchange: BinanceExchange) -> None:
    with pytest.raises(InvalidInput, match="DOGEUSDC"):
        exchange.symbol_rules("DOGEUSDC")


def test_price_is_the_ticker_as_a_decimal(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.set_price("BTCUSDC", Decimal("98500.12"))

    assert exchange.price("BTCUSDC") == Decimal("98500.12")


def test_balances_list_the_assets_held(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.fund(KEY, SECRET, {"BTC": Decimal("0.5"), "ETH": Decimal("0")})

    assert exchange.balances(ALICE) == {
        "USDC": Balance("USDC", Decimal("10000")),
        "BTC": Balance("BTC", Decimal("0.5")),
    }


def test_each_tenant_trades_with_its_own_keys(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.fund("bob-api-key-0002", "bob-secret", {"USDC": Decimal("50")})
    bob = TradingAccount(uuid4(), ApiCredentials("bob-api-key-0002", "bob-secret"))

    exchange.place_order(bob, buy("bob-1", quote="20"))

    assert exchange.balances(bob)["USDC"].free == Decimal("30")
    assert exchange.balances(ALICE)["USDC"].free == Decimal("10000")


# ---- orders


def test_a_buy_by_quote_amount_reports_the_fill(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    result = exchange.place_order(ALICE, buy("quote-1", quote="250"))

    stored = fake.order(KEY, "quote-1")
    assert stored is not None
    assert fake.orders_received("quote-1")[0].params["quoteOrderQty"] == "250"
    assert result.client_order_id == "quote-1"
    assert result.exchange_order_id == str(stored["orderId"])
    assert result.status is OrderStatus.FILLED
    assert result.executed_quantity == Decimal("0.0025")
    assert result.average_price == Decimal("100000")
    assert result.quote_quantity == Decimal("250")
    assert result.fees == {"BTC": Decimal("0.0000025")}
    assert result.executed_at == datetime.fromtimestamp(stored["transactTime"] / 1000, tz=UTC)


def test_a_buy_by_quantity_averages_the_fills_by_size(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_book(
        "BTCUSDC",
        [
            (Decimal("100000"), Decimal("0.0004")),
            (Decimal("100010"), Decimal("0.0004")),
            (Decimal("100020"), Decimal("1")),
        ],
    )

    result = exchange.place_order(ALICE, buy("qty-1", quantity="0.001"))

    assert result.executed_quantity == Decimal("0.001")
    assert result.quote_quantity == Decimal("100.008")  # 40 + 40.004 + 20.004
    assert result.average_price == Decimal("100008")
    assert result.fees == {"BTC": Decimal("0.000001")}  # summed over the three fills


def test_a_sell_pays_its_fee_in_usdc(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.fund(KEY, SECRET, {"BTC": Decimal("0.01")})

    result = exchange.place_order(ALICE, sell("sell-1", "0.005"))

    assert result.fees == {"USDC": Decimal("0.5")}
    assert result.quote_quantity == Decimal("500")
    assert fake.balances(KEY)["USDC"] == Decimal("10499.5")


def test_fees_are_read_in_whatever_asset_binance_charged(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_price("BNBUSDC", Decimal("500"))
    fake.fund(KEY, SECRET, {"BNB": Decimal("1")})
    fake.set_commission(Decimal("0.00075"), asset="BNB")

    result = exchange.place_order(ALICE, buy("bnb-1", quantity="0.001"))

    assert result.fees == {"BNB": Decimal("0.00015")}


def test_a_market_order_cut_short_by_liquidity_is_partially_filled(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_book("BTCUSDC", [(Decimal("100000"), Decimal("0.0004"))])

    result = exchange.place_order(ALICE, buy("thin-1", quantity="0.001"))
    found = exchange.find_order(ALICE, "BTCUSDC", "thin-1")

    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.executed_quantity == Decimal("0.0004")
    assert found == result  # the lookup reads the same order back, fees from its trades


def test_a_market_order_that_fills_nothing_is_rejected(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_book("BTCUSDC", [])

    with pytest.raises(OrderRejected, match="without filling"):
        exchange.place_order(ALICE, buy("empty-1", quantity="0.001"))


def test_a_client_order_id_held_by_an_open_order_returns_that_order_instead(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.rest_order(KEY, "again-1")  # Binance refuses the id only while this one is open

    second = exchange.place_order(ALICE, buy("again-1", quantity="0.001"))

    assert second.status is OrderStatus.PENDING
    assert second.executed_quantity == 0
    assert fake.balances(KEY)["USDC"] == Decimal("10000")


def test_a_client_order_id_binance_would_sign_wrongly_is_refused_before_sending(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    with pytest.raises(InvalidInput, match="client_order_id"):
        exchange.place_order(ALICE, buy("bot:1/a", quantity="0.001"))

    assert fake.orders_received() == []


def test_an_account_without_keys_cannot_trade(exchange: BinanceExchange) -> None:
    with pytest.raises(CredentialsMissing):
        exchange.place_order(TradingAccount(uuid4()), buy("nokey-1", quantity="0.001"))


# ---- rounding at the filter edges


def test_quantity_is_rounded_down_to_the_step_and_sent_as_plain_digits(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    result = exchange.place_order(ALICE, buy("step-1", quantity="0.00123999"))

    assert fake.orders_received("step-1")[0].params["quantity"] == "0.00123"
    assert result.executed_quantity == Decimal("0.00123")


def test_the_smallest_quantity_is_never_sent_as_1e_05(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_price("BTCUSDC", Decimal("600000"))

    exchange.place_order(ALICE, buy("tiny-1", quantity="1E-5"))

    assert fake.orders_received("tiny-1")[0].params["quantity"] == "0.00001"


def test_a_quantity_just_below_the_minimum_fails_lot_size_without_a_request(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    with pytest.raises(FilterFailure) as excinfo:
        exchange.place_order(ALICE, buy("small-1", quantity="0.0000099"))

    assert excinfo.value.filter_name == "LOT_SIZE"
    assert fake.orders_received() == []


@pytest.mark.parametrize(
    ("price", "accepted"), [(Decimal("99800"), False), (Decimal("100000"), True)]
)
def test_notional_4_99_is_refused_and_5_00_is_sent(
    exchange: BinanceExchange, fake: FakeBinance, price: Decimal, accepted: bool
) -> None:
    fake.set_price("BTCUSDC", price)  # 0.00005 BTC is worth 4.99 or 5.00 USDC
    order = buy("edge-1", quantity="0.00005")

    if accepted:
        assert exchange.place_order(ALICE, order).quote_quantity == Decimal("5")
    else:
        with pytest.raises(FilterFailure) as excinfo:
            exchange.place_order(ALICE, order)
        assert excinfo.value.filter_name == "NOTIONAL"
        assert "4.99" in excinfo.value.message
        assert fake.orders_received() == []


def test_an_order_given_the_price_just_seen_checks_its_notional_without_reading_it_again(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund(KEY, SECRET, {"BTC": Decimal("0.01")})
    exchange.symbol_rules("BTCUSDC")
    fake.set_price("BTCUSDC", Decimal("100000"))  # 0.00005 BTC is worth 5.00 USDC here
    seen = replace(sell("seen-1", "0.00005"), is_exit=True, reference_price=Decimal("99800"))

    with pytest.raises(FilterFailure) as excinfo:  # 4.99 USDC at the price the exit saw
        exchange.place_order(ALICE, seen)
    exchange.place_order(ALICE, replace(seen, reference_price=Decimal("100000")))

    assert excinfo.value.filter_name == "NOTIONAL"
    assert fake.request_count("/api/v3/ticker/price") == 0
    assert [r.client_order_id for r in fake.orders_received()] == ["seen-1"]


def test_the_environment_s_proxies_are_read_once_when_the_client_is_made(
    fake: FakeBinance, clock: ManualClock, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    exchange = make_exchange(fake, clock, sleeps)
    try:
        # Read on every request, this would send the next one to a proxy that is not there.
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")

        assert exchange.price("BTCUSDC") == Decimal("100000")
    finally:
        exchange.close()


def test_a_proxy_in_the_environment_when_the_client_is_made_is_used(
    fake: FakeBinance, clock: ManualClock, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    exchange = make_exchange(fake, clock, sleeps)
    try:
        with pytest.raises(ExchangeUnavailable):
            exchange.price("BTCUSDC")
    finally:
        exchange.close()
    assert fake.request_count("/api/v3/ticker/price") == 0


@pytest.mark.parametrize(("quote", "accepted"), [("4.99", False), ("5.00", True)])
def test_a_quote_amount_below_the_minimum_notional_is_refused_before_sending(
    exchange: BinanceExchange, fake: FakeBinance, quote: str, accepted: bool
) -> None:
    if accepted:
        assert exchange.place_order(ALICE, buy("q-edge", quote=quote)).executed_quantity == (
            Decimal("0.00005")
        )
    else:
        with pytest.raises(FilterFailure) as excinfo:
            exchange.place_order(ALICE, buy("q-edge", quote=quote))
        assert excinfo.value.filter_name == "NOTIONAL"
        assert fake.orders_received() == []


# ---- Binance's refusals


def test_an_unknown_key_is_rejected_with_a_message_about_permissions_and_ip_whitelist(
    exchange: BinanceExchange,
) -> None:
    stranger = TradingAccount(uuid4(), ApiCredentials("stranger-key-9999", SECRET))

    with pytest.raises(CredentialsRejected) as excinfo:
        exchange.place_order(stranger, buy("who-1", quantity="0.001"))

    message = excinfo.value.message
    assert "stra...9999" in message
    assert "permission" in message
    assert "IP whitelist" in message
    assert SECRET not in message
    assert "stranger-key-9999" not in message


def test_a_key_without_trading_permission_is_rejected_on_order(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund(KEY, SECRET, {}, can_trade=False)

    with pytest.raises(CredentialsRejected, match="IP whitelist"):
        exchange.place_order(ALICE, buy("ro-1", quantity="0.001"))


def test_a_wrong_secret_is_rejected_without_showing_it(
    exchange: BinanceExchange,
) -> None:
    impostor = TradingAccount(uuid4(), ApiCredentials(KEY, "wrong-secret-value"))

    with pytest.raises(CredentialsRejected) as excinfo:
        exchange.balances(impostor)

    assert "secret key does not belong" in excinfo.value.message
    assert "wrong-secret-value" not in excinfo.value.message
    assert "wrong-secret-value" not in repr(exchange)


@pytest.mark.parametrize(("side", "asset"), [(OrderSide.BUY, "USDC"), (OrderSide.SELL, "BTC")])
def test_insufficient_balance_names_the_asset_being_spent(
    exchange: BinanceExchange, fake: FakeBinance, side: OrderSide, asset: str
) -> None:
    order = OrderRequest("BTCUSDC", side, "big-1", quantity=Decimal("0.2"))  # 20000 USDC

    with pytest.raises(InsufficientBalance) as excinfo:
        exchange.place_order(ALICE, order)

    assert excinfo.value.asset == asset
    assert excinfo.value.message == f"No {asset} available for trading"
    assert fake.orders_received("big-1")[0].status == 400


def test_another_2010_is_a_plain_rejection(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.inject(ApiError.order_rejected("Market is closed."), path=ORDER_PATH)

    with pytest.raises(OrderRejected, match="Market is closed") as excinfo:
        exchange.place_order(ALICE, buy("closed-1", quantity="0.001"))

    assert not isinstance(excinfo.value, InsufficientBalance)


def test_a_1013_names_the_filter(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.inject(ApiError.filter_failure("PRICE_FILTER"), path=ORDER_PATH)

    with pytest.raises(FilterFailure) as excinfo:
        exchange.place_order(ALICE, buy("tick-1", quantity="0.001"))

    assert excinfo.value.filter_name == "PRICE_FILTER"


def test_a_1021_resyncs_the_clock_and_retries_once(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.clock_skew_ms = -30000  # Binance's clock is 30 s behind ours

    result = exchange.place_order(ALICE, buy("skew-1", quantity="0.001"))
    exchange.place_order(ALICE, buy("skew-2", quantity="0.001"))

    assert result.status is OrderStatus.FILLED
    assert [r.status for r in fake.orders_received("skew-1")] == [400, 200]
    assert len(fake.orders_received("skew-2")) == 1  # the offset stays synced
    assert fake.request_count("/api/v3/time") == 1
    assert fake.balances(KEY)["USDC"] == Decimal("9800")


def test_a_1021_that_persists_after_the_resync_is_a_rejection_not_a_loop(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.inject(
        ApiError(-1021, "Timestamp for this request is outside of the recvWindow."),
        path=ORDER_PATH,
        times=5,
    )

    with pytest.raises(OrderRejected, match="clock"):
        exchange.place_order(ALICE, buy("skew-3", quantity="0.001"))

    assert len(fake.orders_received("skew-3")) == 2
    assert fake.request_count("/api/v3/time") == 1


def test_a_1021_on_a_read_also_resyncs(exchange: BinanceExchange, fake: FakeBinance) -> None:
    fake.clock_skew_ms = 20000

    assert exchange.balances(ALICE)["USDC"].free == Decimal("10000")


# ---- rate limits


def test_a_429_bans_every_request_until_retry_after_has_passed(
    exchange: BinanceExchange, fake: FakeBinance, clock: ManualClock
) -> None:
    fake.inject(RateLimit(retry_after=30), path=ORDER_PATH)

    with pytest.raises(RateLimited) as excinfo:
        exchange.place_order(ALICE, buy("busy-1", quantity="0.001"))
    sent = fake.request_count()
    clock.advance(timedelta(seconds=29))
    with pytest.raises(RateLimited) as during_ban:
        exchange.price("BTCUSDC")

    assert excinfo.value.retry_after_seconds == Decimal("30")
    assert exchange.banned_at == datetime(2026, 3, 2, 12, 0, 45, tzinfo=UTC)
    assert exchange.banned_until == datetime(2026, 3, 2, 12, 1, 15, tzinfo=UTC)
    assert during_ban.value.retry_after_seconds == Decimal("1")
    assert fake.request_count() == sent  # nothing was sent during the ban
    clock.advance(timedelta(seconds=1))
    assert exchange.price("BTCUSDC") == Decimal("100000")
    assert fake.order(KEY, "busy-1") is None


def test_a_418_ban_is_honoured_for_orders_too(
    exchange: BinanceExchange, fake: FakeBinance, clock: ManualClock
) -> None:
    exchange.symbol_rules("BTCUSDC")
    fake.inject(RateLimit(retry_after=120, status=418), path="/api/v3/ticker/price")

    with pytest.raises(RateLimited) as excinfo:
        exchange.price("BTCUSDC")
    with pytest.raises(RateLimited):
        exchange.place_order(ALICE, buy("banned-1", quantity="0.001"))
    clock.advance(timedelta(seconds=119))
    with pytest.raises(RateLimited):
        exchange.balances(ALICE)

    assert excinfo.value.retry_after_seconds == Decimal("120")
    assert fake.orders_received() == []
    assert fake.request_count("/api/v3/account") == 0


def test_near_the_weight_limit_the_adapter_waits_for_the_next_minute(
    exchange: BinanceExchange, fake: FakeBinance, sleeps: list[float]
) -> None:
    exchange.price("BTCUSDC")
    assert sleeps == []  # far from the limit
    fake.used_weight = 4798

    exchange.price("BTCUSDC")
    reported = exchange.used_weight
    sleeps_before_next = list(sleeps)
    exchange.price("BTCUSDC")

    assert reported == 4800  # 80% of the 6000 Binance publishes
    assert sleeps_before_next == []
    assert sleeps == [16.0]  # 12:00:45 -> the next minute, plus a second of margin
    assert fake.request_count("/api/v3/ticker/price") == 3


def test_the_weight_limit_is_the_one_exchange_info_publishes(
    exchange: BinanceExchange, fake: FakeBinance, sleeps: list[float]
) -> None:
    fake.weight_limit = 2000
    exchange.symbol_rules("BTCUSDC")  # reads exchangeInfo, rateLimits included
    fake.used_weight = 1598

    exchange.price("BTCUSDC")
    exchange.price("BTCUSDC")

    assert sleeps == [16.0]  # 1600 is 80% of 2000


def exit_sell(client_order_id: str, quantity: str) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDC",
        side=OrderSide.SELL,
        client_order_id=client_order_id,
        quantity=Decimal(quantity),
        is_exit=True,
    )


def test_near_the_weight_limit_an_exit_goes_out_at_once_while_an_entry_waits(
    fake: FakeBinance, clock: ManualClock
) -> None:
    sleeps: list[float] = []

    def next_minute(seconds: float) -> None:
        sleeps.append(seconds)
        fake.used_weight = 0  # the fake's window restarts as Binance's would

    exchange = BinanceExchange(testnet=False, base_url=fake.url, sleep=next_minute, clock=clock)
    fake.fund(KEY, SECRET, {"USDC": Decimal("10000"), "BTC": Decimal("0.01")})
    exchange.symbol_rules("BTCUSDC")
    fake.used_weight = 5000  # past 80% of 6000

    sold = exchange.place_order(ALICE, exit_sell("exit-1", "0.005"))
    sleeps_for_the_exit = list(sleeps)
    bought = exchange.place_order(ALICE, buy("entry-1", quantity="0.001"))
    exchange.close()

    assert sold.status is OrderStatus.FILLED and bought.status is OrderStatus.FILLED
    assert sleeps_for_the_exit == []  # its price read and the order itself went straight out
    assert sleeps == [16.0]  # the entry yielded until the next minute
    sent = [r.client_order_id for r in fake.requests(ORDER_PATH, "POST")]
    assert sent == ["exit-1", "entry-1"]


def test_a_retry_after_from_binance_stops_exits_too(
    exchange: BinanceExchange, fake: FakeBinance, sleeps: list[float]
) -> None:
    fake.fund(KEY, SECRET, {"USDC": Decimal("10000"), "BTC": Decimal("0.01")})
    fake.inject(RateLimit(retry_after=30), path="/api/v3/ticker/price")
    with pytest.raises(RateLimited):
        exchange.price("BTCUSDC")

    with pytest.raises(RateLimited, match="Retry-After"):
        exchange.place_order(ALICE, exit_sell("exit-banned", "0.005"))

    assert fake.orders_received("exit-banned") == []
    assert sleeps == []  # refused at once, never slept on


# ---- unclear answers


def test_a_5xx_after_execution_is_an_unknown_outcome_that_find_order_resolves(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.inject(RawResponse(502, "<html>502 Bad Gateway</html>"), path=ORDER_PATH)

    with pytest.raises(OrderOutcomeUnknown, match="HTTP 502"):
        exchange.place_order(ALICE, buy("5xx-1", quantity="0.002"))
    found = exchange.find_order(ALICE, "BTCUSDC", "5xx-1")

    assert found is not None
    assert found.status is OrderStatus.FILLED
    assert found.executed_quantity == Decimal("0.002")
    assert found.average_price == Decimal("100000")
    assert found.quote_quantity == Decimal("200")
    assert found.fees == {"BTC": Decimal("0.000002")}
    assert len(fake.orders_received("5xx-1")) == 1


def test_a_dropped_connection_after_execution_is_unknown_and_never_resent(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.inject(DropConnection(), path=ORDER_PATH)

    with pytest.raises(OrderOutcomeUnknown):
        exchange.place_order(ALICE, buy("drop-1", quantity="0.001"))
    found = exchange.find_order(ALICE, "BTCUSDC", "drop-1")

    assert found is not None and found.status is OrderStatus.FILLED
    assert len(fake.orders_received("drop-1")) == 1


def test_a_timeout_is_an_unknown_outcome(
    fake: FakeBinance, clock: ManualClock, sleeps: list[float]
) -> None:
    impatient = make_exchange(fake, clock, sleeps, timeout_seconds=1)
    fake.inject(Delay(seconds=10), path=ORDER_PATH)
    try:
        with pytest.raises(OrderOutcomeUnknown, match="ReadTimeout"):
            impatient.place_order(ALICE, buy("slow-1", quantity="0.001"))
        found = impatient.find_order(ALICE, "BTCUSDC", "slow-1")
    finally:
        impatient.close()

    assert found is not None and found.executed_quantity == Decimal("0.001")


def test_a_non_json_success_body_is_an_unknown_outcome(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.inject(RawResponse(200, "<html>cached page</html>"), path=ORDER_PATH)

    with pytest.raises(OrderOutcomeUnknown):
        exchange.place_order(ALICE, buy("garbled-1", quantity="0.001"))


def test_transport_failures_on_reads_mean_the_exchange_is_unavailable(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    exchange.place_order(ALICE, buy("read-1", quantity="0.001"))
    fake.inject(RawResponse(503, "Service Unavailable"), path="/api/v3/ticker/price")
    fake.inject(DropConnection(), path="/api/v3/account")
    fake.inject(RawResponse(500, "oops"), path=ORDER_PATH, method="GET")

    with pytest.raises(ExchangeUnavailable):
        exchange.price("BTCUSDC")
    with pytest.raises(ExchangeUnavailable):
        exchange.balances(ALICE)
    with pytest.raises(ExchangeUnavailable):
        exchange.find_order(ALICE, "BTCUSDC", "read-1")


def test_find_order_returns_none_for_an_order_binance_never_saw(
    exchange: BinanceExchange,
) -> None:
    assert exchange.find_order(ALICE, "BTCUSDC", "never-sent") is None


# ---- isolated margin


def test_testnet_refuses_margin_before_sending_anything(
    testnet: BinanceExchange, fake: FakeBinance
) -> None:
    with pytest.raises(MarginUnavailable, match="Binance testnet has no margin API"):
        testnet.place_order(ALICE, buy("m-1", quote="100", margin=MarginEffect.MARGIN_BUY))
    with pytest.raises(MarginUnavailable):
        testnet.borrow(ALICE, "BTCUSDC", "USDC", Decimal("10"))
    with pytest.raises(MarginUnavailable):
        testnet.repay(ALICE, "BTCUSDC", "USDC", Decimal("10"))
    with pytest.raises(MarginUnavailable):
        testnet.isolated_margin(ALICE, "BTCUSDC")

    assert fake.request_count() == 0


def test_testnet_spot_orders_go_to_the_testnet_host(
    testnet: BinanceExchange, fake: FakeBinance
) -> None:
    result = testnet.place_order(ALICE, buy("tn-1", quote="100"))

    assert result.executed_quantity == Decimal("0.001")
    assert fake.request_count(ORDER_PATH, "POST") == 1
    assert testnet.find_order(ALICE, "BTCUSDC", "never-sent") is None
    assert [r for r in fake.requests() if r.path.startswith("/sapi/")] == []


def test_a_margin_buy_borrows_and_an_auto_repay_sell_pays_back(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    opened = exchange.place_order(ALICE, buy("long-1", quote="300", margin=MarginEffect.MARGIN_BUY))
    borrowed = fake.isolated_account(KEY, "BTCUSDC")["USDC"].borrowed
    exchange.place_order(ALICE, sell("close-1", "0.0025", margin=MarginEffect.AUTO_REPAY))

    sent = fake.orders_received("long-1")[0]
    assert sent.path == "/sapi/v1/margin/order"
    assert (sent.params["isIsolated"], sent.params["sideEffectType"]) == ("TRUE", "MARGIN_BUY")
    assert opened.executed_quantity == Decimal("0.003")
    assert borrowed == Decimal("200")
    assert fake.isolated_account(KEY, "BTCUSDC")["USDC"].borrowed == 0
    assert fake.balances(KEY) == {"USDC": Decimal("10000")}


def test_find_order_falls_back_to_isolated_margin(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("500")})
    exchange.place_order(ALICE, buy("m-find", quantity="0.001", margin=MarginEffect.NO_SIDE_EFFECT))

    found = exchange.find_order(ALICE, "BTCUSDC", "m-find")

    assert found is not None
    assert found.fees == {"BTC": Decimal("0.000001")}
    assert exchange.find_order(ALICE, "BTCUSDC", "m-find", margin=False) is None


def test_the_order_and_trade_lists_since_a_moment_show_every_execution(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    exchange.place_order(ALICE, buy("list-1", quantity="0.002"))
    exchange.place_order(ALICE, sell("list-2", "0.001"))
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("500")})
    exchange.place_order(ALICE, buy("list-m", quantity="0.001", margin=MarginEffect.NO_SIDE_EFFECT))

    orders = exchange.orders_since(ALICE, "BTCUSDC", since)
    trades = exchange.trades_since(ALICE, "BTCUSDC", since)
    margin_orders = exchange.orders_since(ALICE, "BTCUSDC", since, margin=True)
    later = datetime.now(UTC) + timedelta(minutes=1)

    assert [(o.client_order_id, o.side, o.status, o.executed_quantity) for o in orders] == [
        ("list-1", OrderSide.BUY, OrderStatus.FILLED, Decimal("0.002")),
        ("list-2", OrderSide.SELL, OrderStatus.FILLED, Decimal("0.001")),
    ]
    assert [(t.exchange_order_id, t.side) for t in trades] == [
        (orders[0].exchange_order_id, OrderSide.BUY),
        (orders[1].exchange_order_id, OrderSide.SELL),
    ]
    assert [o.client_order_id for o in margin_orders] == ["list-m"]
    assert fake.requests("/sapi/v1/margin/allOrders")[0].params["isIsolated"] == "TRUE"
    assert exchange.orders_since(ALICE, "BTCUSDC", later) == []
    assert exchange.trades_since(ALICE, "BTCUSDC", later) == []


def test_a_full_page_of_orders_is_not_taken_for_the_whole_list(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    for n in range(500):
        fake.rest_order(KEY, f"resting-{n}")  # open LIMIT orders placed elsewhere

    with pytest.raises(ExchangeUnavailable, match="full page"):
        exchange.orders_since(ALICE, "BTCUSDC", datetime.now(UTC) - timedelta(hours=1))


def test_a_lost_margin_order_answer_is_resolved_by_find_order(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("500")})
    fake.inject(DropConnection(), path="/sapi/v1/margin/order", method="POST")

    with pytest.raises(OrderOutcomeUnknown):
        exchange.place_order(
            ALICE, buy("m-lost", quantity="0.001", margin=MarginEffect.NO_SIDE_EFFECT)
        )
    found = exchange.find_order(ALICE, "BTCUSDC", "m-lost", margin=True)

    assert found is not None and found.status is OrderStatus.FILLED


def test_borrow_and_repay_move_the_isolated_liability(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    exchange.borrow(ALICE, "BTCUSDC", "USDC", Decimal("50"))
    after_borrow = fake.isolated_account(KEY, "BTCUSDC")["USDC"]
    exchange.repay(ALICE, "BTCUSDC", "USDC", Decimal("50"))

    assert (after_borrow.free, after_borrow.borrowed) == (Decimal("150"), Decimal("50"))
    assert fake.requests("/sapi/v1/margin/borrow-repay")[0].params["amount"] == "50"
    assert fake.isolated_account(KEY, "BTCUSDC")["USDC"].borrowed == 0


def test_the_isolated_account_reads_as_collateral_principal_and_interest(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    assert exchange.isolated_margin(ALICE, "BTCUSDC") == {
        "BTC": MarginHolding("BTC"),
        "USDC": MarginHolding("USDC"),
    }
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("1000")})
    exchange.place_order(ALICE, sell("short-1", "0.002", margin=MarginEffect.MARGIN_BUY))
    fake.accrue_interest(KEY, "BTCUSDC", "BTC", Decimal("0.00000003"))

    holdings = exchange.isolated_margin(ALICE, "BTCUSDC")

    assert holdings == {
        "BTC": MarginHolding("BTC", borrowed=Decimal("0.002"), interest=Decimal("0.00000003")),
        "USDC": MarginHolding("USDC", free=Decimal("1199.8")),  # 1000 + 200 sold − 0.2 fee
    }
    assert fake.requests(ISOLATED)[-1].params["symbols"] == "BTCUSDC"


def test_an_unreadable_isolated_account_is_an_unavailable_exchange(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.inject(
        RawResponse(200, '{"assets": [{"symbol": "BTCUSDC"}]}', content_type="application/json"),
        path=ISOLATED,
    )

    with pytest.raises(ExchangeUnavailable, match="unreadable BTCUSDC isolated margin account"):
        exchange.isolated_margin(ALICE, "BTCUSDC")


def test_repaying_more_than_is_owed_is_rejected(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})

    with pytest.raises(OrderRejected, match="exceeded the liability"):
        exchange.repay(ALICE, "BTCUSDC", "USDC", Decimal("10"))


def test_a_borrow_without_an_answer_is_an_unknown_outcome(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal("100")})
    fake.inject(RawResponse(502, "Bad Gateway"), path="/sapi/v1/margin/borrow-repay")

    with pytest.raises(OrderOutcomeUnknown, match="may or may not"):
        exchange.borrow(ALICE, "BTCUSDC", "USDC", Decimal("50"))

    assert fake.isolated_account(KEY, "BTCUSDC")["USDC"].borrowed == Decimal("50")


def test_no_failure_path_logs_or_raises_the_secret(
    exchange: BinanceExchange, fake: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.clock_skew_ms = -30000
    exchange.balances(ALICE)  # -1021, resync, retry
    fake.clock_skew_ms = 30000  # off again, the other way
    fake.inject(RawResponse(502, "Bad Gateway"), path=ORDER_PATH)
    fake.inject(RateLimit(retry_after=1), path="/api/v3/time")
    stranger = TradingAccount(uuid4(), ApiCredentials("other-key-1234", SECRET))
    impostor = TradingAccount(uuid4(), ApiCredentials(KEY, "other-secret"))
    errors: list[DomainError] = []

    for attempt in (
        lambda: exchange.place_order(ALICE, buy("s-1", quantity="0.001")),
        lambda: exchange.balances(stranger),
        lambda: exchange.balances(impostor),
        lambda: exchange.balances(ALICE),  # the resync itself meets a 429
    ):
        with pytest.raises(DomainError) as excinfo:
            attempt()
        errors.append(excinfo.value)

    assert [type(e) for e in errors] == [
        OrderOutcomeUnknown,
        CredentialsRejected,
        CredentialsRejected,
        RateLimited,
    ]
    assert "-1021" in caplog.text and "429" in caplog.text  # resync and ban were logged
    assert SECRET not in caplog.text
    assert "other-secret" not in caplog.text
    assert all(SECRET not in e.message and "other-secret" not in e.message for e in errors)


def test_a_lookup_without_the_quote_quantity_averages_the_orders_trades(
    exchange: BinanceExchange, fake: FakeBinance
) -> None:
    fake.set_book("BTCUSDC", [(Decimal(100000), Decimal("0.0004")), (Decimal(100020), Decimal(1))])
    placed = exchange.place_order(ALICE, buy("old-1", quantity="0.001"))
    fake.forget_quote_quantity(KEY, "old-1")  # cummulativeQuoteQty < 0 for some old orders

    found = exchange.find_order(ALICE, "BTCUSDC", "old-1")

    assert found is not None
    assert found.average_price == placed.average_price == Decimal("100012")
    assert found.quote_quantity == Decimal("100.012")
