"""Reconciling an exit on Binance as documented: a look-up may not see an order for a while
after its answer was lost, and a client order id is free again once its order filled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import ExchangeUnavailable, OrderOutcomeUnknown
from domain.identity import client_order_id
from domain.ledger import EVIDENCE_WINDOW, Ledger, TradingConfig
from domain.position import Status
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.factories import long_plan, open_long
from tests.fakes.binance import DropConnection, FakeBinance, RawResponse
from tests.integration.binance_ledger import funded_tenant, ledger_at

ORDER = "/api/v3/order"
KEY = "grace-api-key-0000000000"
SECRET = "grace-secret-0000000000"
OTHER_BTC = Decimal("1")  # held apart from the position, e.g. by another one


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance
    clock: ManualClock


@pytest.fixture
def desk(services: Services, clock: ManualClock) -> Iterator[Desk]:
    with FakeBinance(clock=lambda: clock.now().timestamp()) as fake:
        fake.set_price("BTCUSDC", Decimal("100000"))
        config = TradingConfig(trading_enabled=True, exchange_stops=False)  # Robson's own exits
        with ledger_at(fake, services, config, clock) as ledger:
            yield Desk(ledger, fake, clock)


def tenant(desk: Desk) -> UUID:
    return funded_tenant(desk.ledger, desk.fake, KEY, SECRET)


def test_an_exit_whose_lookup_lags_past_the_grace_is_sold_exactly_once(desk: Desk) -> None:
    client_id = tenant(desk)
    position = open_long(desk.ledger, client_id)
    held = desk.fake.balances(KEY)["BTC"]
    desk.fake.fund(KEY, SECRET, {"BTC": held + OTHER_BTC})
    # The exit executes but its answer is lost, and look-ups miss it for 45 s (> the 30 s grace).
    desk.fake.lookup_delay_seconds = 45
    desk.fake.inject(DropConnection(execute=True), path=ORDER, method="POST")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.close_position(client_id, position.id)

    desk.clock.advance(timedelta(seconds=31))
    desk.ledger.reconcile(position.id)
    desk.clock.advance(timedelta(seconds=30))
    settled = desk.ledger.reconcile(position.id)

    sells = [o for o in desk.fake.orders(KEY) if o["side"] == "SELL" and o["status"] == "FILLED"]
    assert len(sells) == 1
    assert settled is not None and settled.status is Status.CLOSED
    assert desk.fake.balances(KEY)["BTC"] == OTHER_BTC + settled.dust_quantity


def sells(desk: Desk) -> list[dict[str, object]]:
    return [o for o in desk.fake.orders(KEY) if o["side"] == "SELL" and o["status"] == "FILLED"]


def lost_exit(desk: Desk, *, executed: bool, lag_seconds: float = 45) -> tuple[UUID, UUID, str]:
    """An open LONG whose exit's connection dropped (after or before it executed), in an
    account holding more BTC than the position, so the balance alone proves nothing."""
    client_id = tenant(desk)
    position = open_long(desk.ledger, client_id)
    desk.fake.fund(KEY, SECRET, {"BTC": desk.fake.balances(KEY)["BTC"] + OTHER_BTC})
    desk.fake.lookup_delay_seconds = lag_seconds
    desk.fake.inject(DropConnection(execute=executed), path=ORDER, method="POST")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.close_position(client_id, position.id)
    exit_id = desk.ledger.position(client_id, position.id).exit_order_id
    assert exit_id is not None
    return client_id, position.id, exit_id


def test_an_exit_that_never_reached_binance_is_resent_once_under_a_new_id(desk: Desk) -> None:
    _, position_id, exit_id = lost_exit(desk, executed=False)

    desk.clock.advance(timedelta(seconds=31))
    waiting = desk.ledger.reconcile(position_id)
    assert waiting is not None and waiting.status is Status.CLOSING
    assert len(desk.fake.orders_received()) == 2  # the entry and the lost exit: nothing new
    desk.clock.advance(EVIDENCE_WINDOW)
    closed = desk.ledger.reconcile(position_id)
    desk.clock.advance(EVIDENCE_WINDOW)
    again = desk.ledger.reconcile(position_id)

    resent_id = client_order_id(position_id, 2, attempt=2)
    assert [o.client_order_id for o in desk.fake.orders_received()][1:] == [exit_id, resent_id]
    assert [o["clientOrderId"] for o in sells(desk)] == [resent_id]
    assert closed is not None and closed.status is Status.CLOSED
    assert again is not None and again.version == closed.version  # nothing more recorded
    assert desk.fake.balances(KEY)["BTC"] == OTHER_BTC + closed.dust_quantity


def test_an_execution_the_lookups_miss_past_the_window_is_never_sold_again(desk: Desk) -> None:
    # The look-up still says -2013 after the evidence window, but the trade list shows a sale
    # that no other order explains: that is no proof, so nothing is sent until it settles.
    _, position_id, _ = lost_exit(desk, executed=True, lag_seconds=600)
    desk.clock.advance(EVIDENCE_WINDOW + timedelta(seconds=1))
    waiting = desk.ledger.reconcile(position_id)
    assert waiting is not None and waiting.status is Status.CLOSING
    assert len(sells(desk)) == 1 and len(desk.fake.orders_received()) == 2

    desk.clock.advance(timedelta(minutes=10))
    settled = desk.ledger.reconcile(position_id)

    assert settled is not None and settled.status is Status.CLOSED
    assert len(sells(desk)) == 1 and len(desk.fake.orders_received()) == 2


def test_an_order_list_that_cannot_be_read_is_no_proof_and_is_asked_again(desk: Desk) -> None:
    _, position_id, _ = lost_exit(desk, executed=False)
    desk.clock.advance(EVIDENCE_WINDOW + timedelta(seconds=1))
    desk.fake.inject(RawResponse(502, "<html>bad gateway</html>"), path="/api/v3/allOrders")

    with pytest.raises(ExchangeUnavailable):
        desk.ledger.reconcile(position_id)
    assert len(desk.fake.orders_received()) == 2  # nothing sent on a guess

    settled = desk.ledger.reconcile(position_id)
    assert settled is not None and settled.status is Status.CLOSED
    assert len(sells(desk)) == 1


def test_an_exit_is_not_resent_when_the_account_no_longer_holds_what_it_sells(
    desk: Desk,
) -> None:
    _, position_id, _ = lost_exit(desk, executed=False)
    desk.fake.fund(KEY, SECRET, {"BTC": Decimal(0)})  # moved away by hand meanwhile
    desk.clock.advance(EVIDENCE_WINDOW + timedelta(seconds=1))

    waiting = desk.ledger.reconcile(position_id)

    assert waiting is not None and waiting.status is Status.CLOSING
    assert len(desk.fake.orders_received()) == 2


def lost_entry(desk: Desk, *, executed: bool) -> tuple[UUID, UUID]:
    client_id = tenant(desk)
    planned = desk.ledger.plan_position(client_id, long_plan())
    desk.ledger.validate_position(client_id, planned.id)
    desk.fake.lookup_delay_seconds = 45
    desk.fake.inject(DropConnection(execute=executed), path=ORDER, method="POST")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.execute_position(client_id, planned.id)
    return client_id, planned.id


def test_an_entry_whose_lookup_lags_past_the_grace_is_filled_not_given_up(desk: Desk) -> None:
    client_id, position_id = lost_entry(desk, executed=True)
    desk.clock.advance(timedelta(seconds=31))
    waiting = desk.ledger.reconcile(position_id)
    assert waiting is not None and waiting.status is Status.ENTERING

    desk.clock.advance(timedelta(seconds=30))
    settled = desk.ledger.reconcile(position_id)

    assert settled is not None and settled.status is Status.OPEN
    assert len(desk.fake.orders_received()) == 1
    assert desk.fake.balances(KEY)["BTC"] == settled.open_quantity
    assert str(position_id) in desk.ledger.policy(client_id).open_risk


def test_an_entry_that_never_reached_binance_is_given_up_only_after_the_window(
    desk: Desk,
) -> None:
    client_id, position_id = lost_entry(desk, executed=False)
    desk.clock.advance(timedelta(seconds=31))
    waiting = desk.ledger.reconcile(position_id)
    assert waiting is not None and waiting.status is Status.ENTERING
    assert str(position_id) in desk.ledger.policy(client_id).open_risk

    desk.clock.advance(EVIDENCE_WINDOW)
    given_up = desk.ledger.reconcile(position_id)

    assert given_up is not None and given_up.status is Status.CANCELLED
    assert len(desk.fake.orders_received()) == 1  # never sent again
    assert str(position_id) not in desk.ledger.policy(client_id).open_risk
