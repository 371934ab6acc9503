"""The insurance stop on isolated margin (the real client against the fake server): a
STOP_LOSS_LIMIT with AUTO_REPAY rests through the margin order endpoint, and a stop that
fills while Robson cancels it is the one exit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.exchange_stop import StopState
from domain.ledger import Ledger, TradingConfig
from domain.market import Side
from domain.position import ExitReason, Position, Status
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.factories import long_plan, register
from tests.fakes.binance import FakeBinance

KEY, SECRET = "margin-insured-key-00000", "margin-insured-secret-000"
BTC = "BTCUSDC"
MARGIN_ORDER = "/sapi/v1/margin/order"
SHORT = long_plan("102000", side=Side.SHORT, margin=True, leverage=Decimal(2))
D = Decimal


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance

    def short(self) -> tuple[UUID, Position]:
        """Short 0.005 BTC at 100000 (stop 102000), 1000 USDC in the isolated account."""
        client_id, _ = register(self.ledger, capital="1000")
        self.fake.fund(KEY, SECRET, {"USDC": D(0)})
        self.fake.fund_isolated(KEY, BTC, {"USDC": D(1000)})
        self.ledger.set_credentials(self.ledger.client(client_id).email, KEY, SECRET)
        return client_id, self.ledger.plan_validate_execute(client_id, SHORT)


@pytest.fixture
def desk(services: Services) -> Iterator[Desk]:
    with FakeBinance() as fake:
        fake.set_price(BTC, D(100000))
        exchange = BinanceExchange(testnet=False, base_url=fake.url, timeout_seconds=2)
        config = TradingConfig(trading_enabled=True)
        yield Desk(Ledger(services.store, exchange, services.vault, services.clock, config), fake)
        exchange.close()


def test_a_margin_short_rests_a_buy_stop_limit_that_repays_the_loan(desk: Desk) -> None:
    _, position = desk.short()

    assert position.exchange_stop_state is StopState.RESTING
    (sent,) = desk.fake.orders_received(order_type="STOP_LOSS_LIMIT")
    assert sent.path == MARGIN_ORDER
    assert (sent.params["side"], sent.params["sideEffectType"], sent.params["isIsolated"]) == (
        "BUY",
        "AUTO_REPAY",
        "TRUE",
    )
    assert (D(sent.params["stopPrice"]), D(sent.params["price"])) == (D(102000), D(102510))
    # It buys back the entry's fee as well, so the whole loan can be repaid.
    assert D(sent.params["quantity"]) == D("0.00501")


def test_a_margin_stop_filled_while_robson_cancels_is_the_one_exit(desk: Desk) -> None:
    client_id, position = desk.short()
    desk.fake.set_price(BTC, D(102100))  # through the stop, within its limit: it fills
    assert desk.fake.order(KEY, str(position.exchange_stop_id))["status"] == "FILLED"  # type: ignore[index]

    closed = desk.ledger.close_position(
        client_id, position.id, ExitReason.STOP_LOSS, trigger_price=D(102100)
    )

    assert closed.status is Status.CLOSED
    assert closed.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert desk.fake.request_count(MARGIN_ORDER, "DELETE") == 1  # the cancel: unknown order
    buys = [r for r in desk.fake.orders_received(order_type="MARKET") if r.params["side"] == "BUY"]
    assert buys == []  # no market buy-back: the stop's fill was the exit
    fills = [e for e in desk.ledger.history(position.id) if isinstance(e, Position.ExitFilled)]
    assert len(fills) == 1 and fills[0].price == D(102100)
    btc = desk.fake.isolated_account(KEY, BTC)["BTC"]
    assert btc.borrowed + btc.interest == 0  # AUTO_REPAY repaid the loan from the fill
    assert closed.realised_pnl < 0


def test_on_margin_the_stop_follows_the_trail_by_a_cancel_then_a_new_order(
    desk: Desk, services: Services
) -> None:
    client_id, position = desk.short()  # entry 100000, stop 102000
    clock = services.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(seconds=60))
    desk.fake.set_price(BTC, D(98000))  # one span in favour: the stop goes to break-even

    assert desk.ledger.adjust_stop(client_id, position.id, D(100000), 1)

    moved = desk.ledger.position(client_id, position.id)
    assert moved.protected_at_exchange and moved.exchange_stop_price == D(100000)
    assert desk.fake.request_count(MARGIN_ORDER, "DELETE") == 1
    assert desk.fake.request_count("/api/v3/order/cancelReplace", "POST") == 0
    (working,) = desk.fake.open_orders(KEY)
    assert (working["clientOrderId"], working["stopPrice"], working["isIsolated"]) == (
        moved.exchange_stop_id,
        "100000.00000000",
        True,
    )
