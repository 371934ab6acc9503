"""What protects a position while Robson is down: a `robson worker` process is SIGKILLed,
the price falls through the stop, the fake Binance fills the resting insurance stop; after a
restart the ledger holds exactly that one exit, its P&L and balances the exchange's own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal

import pytest

from domain.position import ExitReason, Position, Status
from tests.fakes.binance import FakeBinance
from tests.integration.test_worker_process import (
    BTC,
    KEY,
    funded_fake,
    opened_on_binance,
    run_worker,
    start_worker,
    wait_for_line,
)

pytestmark = pytest.mark.slow

D = Decimal


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with funded_fake() as server:
        yield server


def test_a_stop_filled_while_the_worker_was_killed_is_the_one_exit_after_a_restart(
    env: dict[str, str], fake: FakeBinance
) -> None:
    with opened_on_binance(env, fake) as opened:
        services, client_id, position = opened.services, opened.client_id, opened.position
        assert position.protected_at_exchange

        worker = start_worker(opened.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert worker.stderr is not None
            wait_for_line(worker.stderr, "worker started")
        finally:
            worker.kill()  # SIGKILL: the worker is gone, nothing of Robson watches the price
            worker.wait(timeout=30)
            if worker.stderr is not None:
                worker.stderr.close()

        fake.set_price(BTC, D(88000))  # through the stop, within its limit
        assert fake.order(KEY, str(position.exchange_stop_id))["status"] == "FILLED"  # type: ignore[index]
        assert fake.orders_received(order_type="MARKET") == fake.orders_received(
            position.entry_order_id
        )

        restarted = run_worker(opened.env)
        assert restarted.returncode == 0, restarted.stderr

        closed = services.ledger.position(client_id, position.id)
        assert closed.status is Status.CLOSED
        assert closed.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
        exits = [
            e for e in services.ledger.history(position.id) if isinstance(e, Position.ExitFilled)
        ]
        assert len(exits) == 1 and exits[0].client_order_id == position.exchange_stop_id
        # No market exit was ever sent: the exchange's stop was the exit.
        assert len(fake.orders_received(order_type="MARKET")) == 1
        # P&L equals what the exchange's balances say: USDC gained or lost, plus the dust
        # (below the lot step, never sellable) valued at the entry price.
        held = fake.held(KEY)
        assert held["BTC"] == closed.dust_quantity
        entry = closed.average_entry_price
        assert entry is not None
        assert closed.realised_pnl == held["USDC"] - D(10000) + closed.dust_quantity * entry
        assert exits[0].price == D(88000)
        assert exits[0].fees == {"USDC": D(88000) * exits[0].quantity * D("0.001")}
