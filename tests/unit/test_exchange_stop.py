"""The insurance stop on the Position aggregate: recorded before it is sent, never looser,
and its fill recorded once as the exit with the exchange's price and fees."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import IllegalTransition
from domain.exchange_stop import StopState, exchange_stop_summary
from domain.identity import position_of_order
from domain.market import BTCUSDC, Side
from domain.position import ExitReason, Status
from tests.factories import later, opened_position

D = Decimal
MINUTE = timedelta(seconds=60)


def test_a_stop_limit_sits_its_slippage_beyond_the_stop_rounded_outwards() -> None:
    assert BTCUSDC.stop_limit(Side.LONG, D("49000"), D("0.005")) == D("48755.00")
    assert BTCUSDC.stop_limit(Side.LONG, D("100.01"), D("0.005")) == D("99.50")  # floor
    assert BTCUSDC.stop_limit(Side.SHORT, D("100.01"), D("0.005")) == D("100.52")  # ceiling


def test_the_insurance_stop_is_recorded_with_a_position_derived_id_before_it_is_sent() -> None:
    position = opened_position()
    order_id = position.submit_exchange_stop(D("49000"), D("48755"), D("0.1"), later(4))

    assert position_of_order(order_id) == (position.id, 2)
    assert position.exchange_stop_state is StopState.SENDING
    assert not position.protected_at_exchange
    with pytest.raises(IllegalTransition):  # one at a time
        position.submit_exchange_stop(D("49000"), D("48755"), D("0.1"), later(4))
    position.record_exchange_stop_resting(order_id, "x1", later(5))
    assert position.protected_at_exchange


def test_it_lags_only_behind_a_tighter_stop_and_only_once_its_interval_passed() -> None:
    position = opened_position()  # entry 50000, stop 49000
    order_id = position.submit_exchange_stop(D("49000"), D("48755"), D("0.1"), later(4))
    position.record_exchange_stop_resting(order_id, "x1", later(5))
    assert not position.exchange_stop_lags(MINUTE, later(10))  # the same stop

    position.adjust_stop(D("50000"), 1, later(6))
    assert not position.exchange_stop_lags(MINUTE, later(5) + timedelta(seconds=30))
    assert position.exchange_stop_lags(MINUTE, later(6))

    replacement = position.submit_exchange_stop(D("50000"), D("49750"), D("0.1"), later(7))
    assert position.exchange_stop_replaces == order_id
    position.record_exchange_stop_resting(replacement, "x2", later(7))
    assert position.exchange_stop_replaces is None
    assert not position.exchange_stop_lags(MINUTE, later(20))


def test_its_fill_is_the_exit_once_with_the_exchanges_price_and_fees() -> None:
    position = opened_position(fees={"BTC": D("0.0001")})  # holds 0.0999
    order_id = position.submit_exchange_stop(D("49000"), D("48755"), D("0.0999"), later(4))
    position.record_exchange_stop_resting(order_id, "x1", later(5))

    position.record_exchange_stop_fill(
        order_id, "x1", D("48900"), D("0.0999"), {"USDC": D("4.885")}, later(6)
    )

    assert position.status is Status.CLOSED
    assert position.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert position.exchange_stop_state is StopState.FILLED
    (fill,) = position.exits
    assert (fill["client_order_id"], fill["price"], fill["quantity"]) == (
        order_id,
        D("48900"),
        D("0.0999"),
    )
    entry_fee = D("0.0001") * D("50000")
    assert position.realised_pnl == (D("48900") - D("50000")) * D("0.0999") - entry_fee - D("4.885")
    with pytest.raises(IllegalTransition):  # never twice
        position.record_exchange_stop_fill(order_id, "x1", D("48900"), D("0.0999"), {}, later(7))


def test_a_read_of_the_log_says_whether_it_is_protected() -> None:
    position = opened_position()
    order_id = position.submit_exchange_stop(D("49000"), D("48755"), D("0.1"), later(4))
    position.record_exchange_stop_resting(order_id, "x1", later(5))
    log = list(position.collect_events())
    resting = exchange_stop_summary(log)
    assert resting == {
        "protected": True,
        "state": "resting",
        "client_order_id": order_id,
        "stop_price": D("49000"),
        "limit_price": D("48755"),
        "quantity": D("0.1"),
        "note": None,
    }
    position.record_exchange_stop_cancelled(
        order_id, "cancelled before Robson's own exit", later(6)
    )
    cancelled = exchange_stop_summary([*log, *position.collect_events()])
    assert cancelled["protected"] is False and cancelled["state"] == "cancelled"
