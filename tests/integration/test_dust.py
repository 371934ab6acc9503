"""No position is left holding what its stop cannot sell: an entry too small to exit after
its fee is refused at VALIDATE, and the smallest one accepted exits cleanly at its stop."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from starlette.testclient import TestClient

from domain.position import ExitReason, Status
from infra.bootstrap import Services
from tests.integration.test_api_support import Tenant, buy
from workers.jobs import Job, Outcome
from workers.worker import Worker

D = Decimal


def test_an_entry_its_stop_could_not_sell_after_the_fee_is_refused_at_validate(
    api: TestClient, alice: Tenant
) -> None:
    # 0.00005 BTC is 5 USDC at 100000, but after the 0.1% fee 0.00004 BTC is sellable,
    # 3.92 USDC at the 98000 stop: below the 5 USDC minimum, the stop could never exit it.
    reply = api.post(
        "/api/trade/buy-btc/",
        headers=alice.headers,
        json={"quantity": "0.00005", "stop_price": "98000"},
    )

    assert reply.status_code == 422, reply.text
    (violation,) = reply.json()["violations"]
    assert violation["rule"] == "exit_unsellable"
    assert "would hold 0.00004 BTC after the entry fee" in violation["reason"]
    assert "NOTIONAL" in violation["reason"]
    assert "buy at least 0.00007 BTC" in violation["reason"]
    assert api.get("/api/positions/?status=open", headers=alice.headers).json() == {"positions": []}


def test_the_smallest_entry_accepted_exits_cleanly_at_its_stop(
    services: Services, api: TestClient, alice: Tenant
) -> None:
    assert services.paper is not None
    bought = buy(api, alice, stop="98000", quantity="0.00007")
    worker = Worker.from_services(services)

    services.paper.set_price("BTCUSDC", D(98000))
    actions = worker.tick()

    # Robson's stop, or the insurance stop resting at the exchange: one exit either way.
    assert {(a.job, a.outcome) for a in actions} == {(Job.STOPS, Outcome.DONE)}
    assert {a.reason for a in actions} <= {ExitReason.STOP_LOSS, ExitReason.STOP_LOSS_AT_EXCHANGE}
    position = services.ledger.position(alice.client_id, UUID(bought["position_id"]))
    assert position.status is Status.CLOSED
    # 0.00006993 held after the fee: 0.00006 sold (5.88 USDC), 0.00000993 below one lot step.
    assert position.exits[-1]["quantity"] == D("0.00006")
    assert position.dust_quantity == D("0.00000993")
    assert worker.tick() == []  # nothing left for the stop to retry
