"""The ledger trading on Binance (the real client against the fake server): crash-safe orders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID

import pytest

from domain.errors import CredentialsMissing, OrderOutcomeUnknown, RateLimited, RiskRuleViolated
from domain.identity import client_order_id, position_of_order
from domain.ledger import EVIDENCE_WINDOW, Ledger, TradingConfig
from domain.ports import ApiCredentials
from domain.position import Status
from infra.bootstrap import Services
from tests.factories import long_plan, open_long, register
from tests.fakes.binance import DropConnection, FakeBinance, RateLimit, RawResponse
from tests.integration.binance_ledger import funded_tenant, ledger_at

ORDER = "/api/v3/order"
D = Decimal
OPERATOR_KEYS = ApiCredentials("operator-key-0000000", "operator-secret-0000000")


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance

    def tenant(self, name: str, usdc: str = "10000") -> tuple[UUID, str]:
        key = f"{name}-api-key-0000000000"
        secret = f"{name}-secret-0000000000"
        return funded_tenant(self.ledger, self.fake, key, secret, usdc), key


@pytest.fixture
def desk(services: Services) -> Iterator[Desk]:
    with FakeBinance() as fake:
        fake.set_price("BTCUSDC", Decimal("100000"))
        config = TradingConfig(trading_enabled=True, operator_credentials=OPERATOR_KEYS)
        with ledger_at(fake, services, config) as ledger:
            yield Desk(ledger, fake)


def test_orders_use_the_tenants_own_keys_never_another_tenants_or_the_operators(
    desk: Desk,
) -> None:
    alice, alice_key = desk.tenant("alice")
    bob, bob_key = desk.tenant("bob")
    desk.fake.fund(OPERATOR_KEYS.api_key, OPERATOR_KEYS.secret_key, {"USDC": Decimal(10000)})

    a = open_long(desk.ledger, alice)
    b = open_long(desk.ledger, bob)

    assert [r.api_key for r in desk.fake.orders_received(a.entry_order_id)] == [alice_key]
    assert [r.api_key for r in desk.fake.orders_received(b.entry_order_id)] == [bob_key]
    assert desk.fake.balances(OPERATOR_KEYS.api_key)["USDC"] == Decimal(10000)


def test_a_tenant_without_keys_cannot_trade_even_when_the_operator_has_keys(desk: Desk) -> None:
    client_id, _ = register(desk.ledger)
    planned = desk.ledger.plan_position(client_id, long_plan())
    rejected = desk.ledger.validate_position(client_id, planned.id)
    assert [v["rule"] for v in rejected.violations] == ["credentials_missing"]
    with pytest.raises(CredentialsMissing):
        desk.ledger.trading_account(client_id)
    assert desk.fake.orders_received() == []


def test_only_the_operator_tenant_trades_with_the_operators_keys(desk: Desk) -> None:
    desk.fake.fund(OPERATOR_KEYS.api_key, OPERATOR_KEYS.secret_key, {"USDC": Decimal(10000)})
    operator, _ = register(desk.ledger, operator=True)
    position = open_long(desk.ledger, operator)
    received = desk.fake.orders_received(position.entry_order_id)
    assert [r.api_key for r in received] == [OPERATOR_KEYS.api_key]


def test_an_entry_whose_response_is_lost_is_reconciled_into_exactly_one_fill(
    desk: Desk, services: Services
) -> None:
    client_id, key = desk.tenant("carol")
    # The order executes but its response never arrives, and the immediate look-up fails too.
    desk.fake.inject(DropConnection(execute=True), path=ORDER, method="POST")
    desk.fake.inject(
        RawResponse(502, "<html>bad gateway</html>", execute=False), path=ORDER, method="GET"
    )
    planned = desk.ledger.plan_position(client_id, long_plan())
    desk.ledger.validate_position(client_id, planned.id)
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.execute_position(client_id, planned.id)
    assert desk.ledger.position(client_id, planned.id).status is Status.ENTERING

    # Reconciliation waits out the grace period, then asks by client order id.
    assert desk.ledger.reconcile(planned.id).status is Status.ENTERING  # type: ignore[union-attr]
    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    settled = desk.ledger.reconcile(planned.id)

    assert settled is not None and settled.status is Status.OPEN
    assert len(desk.fake.orders_received(settled.entry_order_id)) == 1
    assert desk.fake.held(key)["BTC"] == settled.open_quantity  # a resting stop holds most
    assert desk.ledger.reconcile(planned.id) is not None  # idempotent: nothing new
    assert len(desk.fake.orders_received(order_type="MARKET")) == 1


def test_an_exit_lost_in_flight_is_completed_by_reconciliation_without_a_second_sell(
    desk: Desk, services: Services
) -> None:
    client_id, key = desk.tenant("dave")
    position = open_long(desk.ledger, client_id)
    desk.fake.inject(RawResponse(503, "unavailable", execute=True), path=ORDER, method="POST")
    desk.fake.inject(DropConnection(execute=False), path=ORDER, method="GET")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.close_position(client_id, position.id)
    assert desk.ledger.position(client_id, position.id).status is Status.CLOSING

    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    closed = desk.ledger.reconcile(position.id)

    assert closed is not None and closed.status is Status.CLOSED
    sells = [
        r for r in desk.fake.orders_received(order_type="MARKET") if r.params.get("side") == "SELL"
    ]
    assert len(sells) == 1
    assert desk.fake.balances(key)["BTC"] == closed.dust_quantity


def test_an_exit_that_never_reached_the_exchange_is_resent_under_a_new_order_id(
    desk: Desk, services: Services
) -> None:
    client_id, key = desk.tenant("erin")
    position = open_long(desk.ledger, client_id)
    # The request dies before executing, and so does the immediate look-up.
    desk.fake.inject(DropConnection(execute=False), path=ORDER, method="POST")
    desk.fake.inject(DropConnection(execute=False), path=ORDER, method="GET")
    with pytest.raises(OrderOutcomeUnknown):
        desk.ledger.close_position(client_id, position.id)
    exit_id = desk.ledger.position(client_id, position.id).exit_order_id
    assert exit_id is not None

    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    waiting = desk.ledger.reconcile(position.id)
    assert waiting is not None and waiting.status is Status.CLOSING  # a miss is no proof yet
    services.clock.advance(EVIDENCE_WINDOW)  # type: ignore[attr-defined]
    closed = desk.ledger.reconcile(position.id)

    assert closed is not None and closed.status is Status.CLOSED
    lost = position_of_order(exit_id)
    assert lost is not None
    resent_id = client_order_id(position.id, lost[1], attempt=2)
    assert [a.status for a in desk.fake.orders_received(exit_id)] == [None]  # lost
    assert [a.status for a in desk.fake.orders_received(resent_id)] == [200]
    assert closed.exits[0]["client_order_id"] == resent_id
    assert desk.fake.balances(key)["BTC"] == closed.dust_quantity


def test_an_exchange_rejection_fails_the_entry_and_releases_its_risk(desk: Desk) -> None:
    client_id, _ = desk.tenant("frank", usdc="10000")
    desk.fake.fund("frank-api-key-0000000000", "frank-secret-0000000000", {"USDC": Decimal(0)})
    with pytest.raises(RiskRuleViolated, match="No USDC available for trading"):
        open_long(desk.ledger, client_id)
    assert desk.ledger.policy(client_id).open_risk == {}


# Binance answers 429 (request rate) and 418 (IP ban) instead of handling the request: "4XX
# return codes are used for malformed requests; the issue is on the sender's side", while
# only "5XX ... the execution status is UNKNOWN" (binance-spot-api-docs, rest-api.md,
# "HTTP Return Codes"). Such an order never executed: nothing is left in flight for the
# reconciliation window to prove.
@pytest.mark.parametrize("status", [429, 418])
def test_an_exit_refused_by_a_rate_limit_is_open_again_and_the_next_close_sells_once(
    desk: Desk, status: Literal[429, 418]
) -> None:
    client_id, key = desk.tenant("erin")
    position = open_long(desk.ledger, client_id)
    desk.fake.inject(RateLimit(retry_after=0, status=status), path=ORDER, method="POST")

    with pytest.raises(RateLimited):
        desk.ledger.close_position(client_id, position.id)

    refused = desk.ledger.position(client_id, position.id)
    assert (refused.status, refused.order_in_flight) == (Status.OPEN, None)
    closed = desk.ledger.close_position(client_id, position.id)
    assert closed.status is Status.CLOSED
    assert [o["side"] for o in desk.fake.orders(key) if D(o["executedQty"]) > 0] == [
        "BUY",
        "SELL",
    ]


@pytest.mark.parametrize("status", [429, 418])
def test_an_entry_refused_by_a_rate_limit_is_given_up_and_its_risk_released(
    desk: Desk, status: Literal[429, 418]
) -> None:
    client_id, key = desk.tenant("frank")
    planned = desk.ledger.plan_position(client_id, long_plan())
    desk.ledger.validate_position(client_id, planned.id)
    desk.fake.inject(RateLimit(retry_after=0, status=status), path=ORDER, method="POST")

    with pytest.raises(RateLimited):
        desk.ledger.execute_position(client_id, planned.id)

    given_up = desk.ledger.position(client_id, planned.id)
    assert given_up.status is not Status.ENTERING and given_up.order_in_flight is None
    assert desk.ledger.policy(client_id).open_risk == {}
    assert desk.fake.orders(key) == []
