"""The insurance stop on Binance spot (the real client against the fake server): a stop-limit
rests at the exchange after the entry, follows the trailing stop at most once per interval,
is cancelled before Robson's own exit, and its fill is recorded as the exit exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.errors import InvalidInput
from domain.exchange_stop import StopState
from domain.identity import position_of_order
from domain.ledger import Ledger, PlanRequest, TradingConfig
from domain.market import Side
from domain.position import ExitReason, Position, Status
from infra.bootstrap import Services, build_services
from infra.clock import ManualClock
from infra.settings import Settings
from tests.fakes.binance import FakeBinance
from tests.integration.binance_ledger import funded_tenant, ledger_at
from workers.index import PositionIndex, Watched
from workers.worker import Worker

BTC = "BTCUSDC"
D = Decimal
REPLACE = "/api/v3/order/cancelReplace"
CANCEL = "/api/v3/order"


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance
    clock: ManualClock
    key: str = "insured-api-key-000000000"
    secret: str = "insured-secret-000000000"

    def tenant(self) -> UUID:
        return funded_tenant(self.ledger, self.fake, self.key, self.secret)

    def open(self, client_id: UUID, stop: str = "98", quantity: str = "1") -> Position:
        return self.ledger.plan_validate_execute(
            client_id, PlanRequest(BTC, Side.LONG, stop_price=D(stop), quantity=D(quantity))
        )

    def stop_order(self, position: Position) -> dict[str, object]:
        assert position.exchange_stop_id is not None
        order = self.fake.order(self.key, position.exchange_stop_id)
        assert order is not None
        return order


@pytest.fixture
def desk(services: Services) -> Iterator[Desk]:
    clock = services.clock
    assert isinstance(clock, ManualClock)
    with FakeBinance() as fake:
        fake.set_price(BTC, D(100))
        config = TradingConfig(trading_enabled=True, exchange_stop_interval=timedelta(seconds=60))
        with ledger_at(fake, services, config, clock) as ledger:
            yield Desk(ledger, fake, clock)


def test_after_the_entry_a_stop_limit_rests_at_the_exchange_recorded_before_it_was_sent(
    desk: Desk,
) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)

    assert position.exchange_stop_state is StopState.RESTING
    order = desk.stop_order(position)
    held = position.sellable_quantity
    assert (order["type"], order["side"], order["status"]) == ("STOP_LOSS_LIMIT", "SELL", "NEW")
    # At the stop, its limit 0.5% beyond it; for what the position holds (the fee came off).
    assert (D(order["stopPrice"]), D(order["price"]), D(order["origQty"])) == (  # type: ignore[arg-type]
        D("98"),
        D("97.51"),
        held,
    )
    # Its id derives from the position and a sequence, like every order's.
    assert position_of_order(str(order["clientOrderId"])) == (position.id, 2)
    history = [type(e).__name__ for e in desk.ledger.history(position.id)]
    assert history[-2:] == ["ExchangeStopSubmitted", "ExchangeStopResting"]
    # Binance holds what the stop would sell.
    assert desk.fake.balances(desk.key)["BTC"] == 0
    assert desk.fake.held(desk.key)["BTC"] == position.open_quantity


def test_the_exchange_stop_follows_the_hand_span_trail_at_most_once_per_interval(
    desk: Desk,
) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)  # entry 100, stop 98: a span of 2
    desk.clock.advance(timedelta(seconds=60))

    # 102: break-even. The exchange stop follows at once (a minute since it was rested).
    desk.fake.set_price(BTC, D(102))
    assert desk.ledger.adjust_stop(client_id, position.id, D(100), 1)
    moved = desk.ledger.position(client_id, position.id)
    assert moved.exchange_stop_price == D(100)
    assert desk.fake.request_count(REPLACE, "POST") == 1

    # 104, ten seconds later: Robson's stop moves to 102, the exchange's waits its interval.
    desk.clock.advance(timedelta(seconds=10))
    desk.fake.set_price(BTC, D(104))
    assert desk.ledger.adjust_stop(client_id, position.id, D(102), 2)
    assert desk.ledger.follow_exchange_stop(client_id, position.id) is True  # still lagging
    assert desk.fake.request_count(REPLACE, "POST") == 1
    assert desk.ledger.position(client_id, position.id).exchange_stop_price == D(100)

    desk.clock.advance(timedelta(seconds=50))
    assert desk.ledger.follow_exchange_stop(client_id, position.id) is False
    followed = desk.ledger.position(client_id, position.id)
    assert followed.exchange_stop_price == D(102)
    assert desk.fake.request_count(REPLACE, "POST") == 2
    # One stop rests, at 102; the ones it replaced are cancelled.
    open_stops = desk.fake.open_orders(desk.key)
    assert [(o["clientOrderId"], o["stopPrice"]) for o in open_stops] == [
        (followed.exchange_stop_id, "102.00000000")
    ]
    # Never looser: a lower stop is not a move at all.
    assert not desk.ledger.adjust_stop(client_id, position.id, D(101), 1)
    assert desk.ledger.follow_exchange_stop(client_id, position.id) is False
    assert desk.fake.request_count(REPLACE, "POST") == 2


def test_robsons_own_exit_cancels_the_insurance_stop_first(desk: Desk) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)
    stop_id = position.exchange_stop_id

    closed = desk.ledger.close_position(client_id, position.id)

    assert closed.status is Status.CLOSED and closed.exit_reason is ExitReason.MANUAL
    assert desk.fake.request_count(CANCEL, "DELETE") == 1
    assert desk.fake.order(desk.key, str(stop_id))["status"] == "CANCELED"  # type: ignore[index]
    assert desk.fake.open_orders(desk.key) == []
    assert closed.exchange_stop_state is StopState.CANCELLED


def test_the_stops_cancel_is_written_with_the_exits_order_id_before_the_order_goes(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)
    writes: list[list[str]] = []
    save = desk.ledger.store.save

    def recording(*aggregates: Any, **kwargs: Any) -> Any:
        writes.append([type(e).__name__ for a in aggregates for e in a.pending_events])
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(desk.ledger.store, "save", recording)
    closed = desk.ledger.close_position(client_id, position.id)

    assert closed.status is Status.CLOSED
    assert writes[0] == ["ExchangeStopCancelled", "ExitTriggered", "ExitSubmitted"]
    assert len(writes) == 2  # then the fill, with the month's policy


def test_an_exit_refused_after_the_stops_cancel_still_records_the_cancel(desk: Desk) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)

    with pytest.raises(InvalidInput):
        desk.ledger.close_position(client_id, position.id, quantity=D(5))  # more than it holds

    after = desk.ledger.position(client_id, position.id)
    assert desk.fake.open_orders(desk.key) == []
    assert after.status is Status.OPEN
    assert after.exchange_stop_state is StopState.CANCELLED


def test_a_stop_filled_while_robson_cancels_is_the_one_exit(desk: Desk) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)
    # The price falls through the stop: the exchange fills the resting stop-limit at 97.9.
    desk.fake.set_price(BTC, D("97.9"))
    assert desk.stop_order(position)["status"] == "FILLED"

    # Robson's stop monitor sees the same price and exits: its cancel finds nothing open.
    closed = desk.ledger.close_position(
        client_id, position.id, ExitReason.STOP_LOSS, trigger_price=D("97.9")
    )

    assert closed.status is Status.CLOSED
    assert closed.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert desk.fake.orders_received(order_type="MARKET") == desk.fake.orders_received(
        position.entry_order_id
    )  # no market exit was sent
    assert len(closed.exits) == 1
    exit_fill = closed.exits[0]
    assert exit_fill["client_order_id"] == position.exchange_stop_id
    assert exit_fill["price"] == D("97.9")
    # P&L from the exchange's own fills and fees.
    fee_events = [e for e in desk.ledger.history(position.id) if isinstance(e, Position.ExitFilled)]
    assert len(fee_events) == 1
    assert fee_events[0].fees == {"USDC": (D("97.9") * exit_fill["quantity"] * D("0.001"))}
    # Asked again (the worker, reconciliation): nothing more is recorded.
    again = desk.ledger.check_exchange_stop(client_id, position.id)
    assert again.version == closed.version


def test_a_stop_fill_is_found_by_checking_the_exchange(desk: Desk) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)
    desk.fake.set_price(BTC, D("97.95"))
    desk.fake.set_price(BTC, D("100"))  # back above the stop: Robson's monitor never saw it

    found = desk.ledger.check_exchange_stop(client_id, position.id)

    assert found.status is Status.CLOSED
    assert found.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert desk.fake.held(desk.key).get("BTC", D(0)) == found.dust_quantity
    usdc = (
        D(10000)
        - D(100) * position.quantity
        + D("97.95") * found.exits[0]["quantity"] * (1 - D("0.001"))
    )
    assert desk.fake.balances(desk.key)["USDC"] == usdc


def test_a_replace_that_finds_the_stop_filled_records_that_fill(desk: Desk) -> None:
    client_id = desk.tenant()
    position = desk.open(client_id)
    first_stop = position.exchange_stop_id
    desk.fake.set_price(BTC, D("97.95"))  # fills at the exchange
    desk.fake.set_price(BTC, D("102.5"))
    desk.clock.advance(timedelta(seconds=60))

    desk.ledger.adjust_stop(client_id, position.id, D(100), 1)  # the trail, from a stale price

    after = desk.ledger.position(client_id, position.id)
    assert after.status is Status.CLOSED
    assert after.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert [e["client_order_id"] for e in after.exits] == [first_stop]
    assert desk.fake.open_orders(desk.key) == []


def test_seven_positions_on_one_symbol_protect_the_most_at_risk_within_the_limit(
    desk: Desk,
) -> None:
    client_id = desk.tenant()
    # Stops further away risk more; the exchange rests at most 5 stops per symbol.
    opened = [desk.open(client_id, stop=str(99 - i), quantity="0.1") for i in range(7)]
    states = [desk.ledger.position(client_id, p.id) for p in opened]

    protected = [p for p in states if p.protected_at_exchange]
    refused = [p for p in states if p.exchange_stop_state is StopState.REFUSED]
    assert len(protected) == 5 and len(refused) == 2
    assert len(desk.fake.open_orders(desk.key)) == 5
    for p in refused:
        assert p.exchange_stop_note is not None and "stop orders" in p.exchange_stop_note

    desk.ledger.insure_positions(client_id, [p.id for p in opened])

    ranked = sorted(
        (desk.ledger.position(client_id, p.id) for p in opened),
        key=lambda p: p.open_risk,
        reverse=True,
    )
    assert [p.protected_at_exchange for p in ranked] == [True] * 5 + [False] * 2
    assert len(desk.fake.open_orders(desk.key)) == 5


@contextmanager
def binance_services(env: dict[str, str], clock: ManualClock) -> Iterator[tuple[Services, Desk]]:
    """The whole service on the fake Binance, as the worker process builds it."""
    with FakeBinance() as fake:
        fake.set_price(BTC, D(100))
        binance = {
            **env,
            "ROBSON_EXCHANGE": "binance",
            "ROBSON_BINANCE_BASE_URL": fake.url,
            "TRADING_ENABLED": "True",
        }
        services = build_services(Settings.from_env(binance), clock=clock)
        try:
            yield services, Desk(services.ledger, fake, clock)
        finally:
            services.close()


class CountedWalks:
    """A position index that counts the walks over all of its positions."""

    def __init__(self, index: PositionIndex) -> None:
        self.index = index
        self.walks = 0

    def __iter__(self) -> Iterator[Watched]:
        self.walks += 1
        return iter(self.index)

    def __getattr__(self, name: str) -> object:
        return getattr(self.index, name)


def test_between_two_looks_the_insurance_job_walks_no_positions(
    env: dict[str, str], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick's cost must not grow with the positions held: the insurance job walks a
    symbol's positions once per interval (60 s here), not on every tick."""
    with binance_services(env, clock) as (services, desk):
        desk.open(desk.tenant())
        worker = Worker.from_services(services)
        counted = CountedWalks(worker.positions.index)
        monkeypatch.setattr(worker.positions, "index", counted)
        for _ in range(6):  # at 10, 20, ... 60 s: the first look, then nothing due
            clock.advance(timedelta(seconds=10))
            worker.tick()
        assert counted.walks == 1
        clock.advance(timedelta(seconds=10))  # 70 s: the next look is due
        worker.tick()
        assert counted.walks == 2


def test_the_worker_moves_the_exchange_stop_with_the_trail_once_per_interval(
    env: dict[str, str], clock: ManualClock
) -> None:
    with binance_services(env, clock) as (services, desk):
        fake = desk.fake
        client_id = desk.tenant()
        position = desk.open(client_id)  # entry 100, stop 98
        worker = Worker.from_services(services)

        def tick_at(price: str, seconds: int) -> Position:
            clock.advance(timedelta(seconds=seconds))
            fake.set_price(BTC, D(price))
            worker.tick()
            return services.ledger.position(client_id, position.id)

        at_102 = tick_at("102", 60)  # break-even: Robson's stop and the exchange's to 100
        assert (at_102.stop_price, at_102.exchange_stop_price) == (D(100), D(100))
        at_104 = tick_at("104", 10)  # 102, but the exchange's waits out its minute
        assert (at_104.stop_price, at_104.exchange_stop_price) == (D(102), D(100))
        assert fake.request_count(REPLACE, "POST") == 1
        still = tick_at("104", 30)
        assert still.exchange_stop_price == D(100)
        caught_up = tick_at("104", 30)
        assert caught_up.exchange_stop_price == D(102)
        assert fake.request_count(REPLACE, "POST") == 2
        assert [o["stopPrice"] for o in fake.open_orders(desk.key)] == ["102.00000000"]
