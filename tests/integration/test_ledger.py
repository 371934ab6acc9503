"""The ledger's contract, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import (
    AlreadyExists,
    CredentialsMissing,
    IllegalTransition,
    PositionNotFound,
    RiskRuleViolated,
    TradingDisabled,
    Unauthorized,
)
from domain.ledger import Ledger, TradingConfig
from domain.market import Side
from domain.policy import Policy
from domain.position import ExitReason, Position, Status
from domain.protections import ProtectionSettings
from domain.store import retry_on_conflict
from infra.bootstrap import Services
from infra.clock import ManualClock
from infra.paper_exchange import PaperExchange
from tests.factories import long_plan, open_long, register


def rules_of(position: Position) -> list[str]:
    return [v["rule"] for v in position.violations]


def test_a_position_goes_plan_validate_execute_close_with_pnl_net_of_fees(
    services: Services,
) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")

    position = open_long(ledger, client_id, stop="98000")

    # 1% of 1000 over a 2000 stop distance: 0.005 BTC, risking 10 USDC.
    assert position.status is Status.OPEN
    assert position.quantity == Decimal("0.005")
    assert position.risk_amount == Decimal("10")
    # The 0.1% fee was taken in BTC, so slightly less is held than was bought.
    assert position.open_quantity == Decimal("0.004995")

    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("104000"))
    closed = ledger.close_position(client_id, position.id)

    # Only whole lot steps can be sold: 0.00499 BTC; 0.000005 BTC of dust stays in the account.
    entry_fee = Decimal("0.000005") * Decimal("100000")
    exit_fee = Decimal("0.00499") * Decimal("104000") * Decimal("0.001")
    expected = Decimal("4000") * Decimal("0.00499") - entry_fee - exit_fee
    assert closed.status is Status.CLOSED
    assert closed.dust_quantity == Decimal("0.000005")
    assert closed.realised_pnl == expected
    policy = ledger.policy(client_id)
    assert policy.realised_pnl("2026-11") == expected
    assert policy.open_risk == {}


@pytest.mark.parametrize("risk_percent", ["1", "0.5"])
def test_the_size_preview_is_the_size_plan_gives_and_records_nothing(
    services: Services, risk_percent: str
) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    ledger.configure_policy(client_id, Decimal("1000"), risk_percent=Decimal(risk_percent))
    before = services.store.recorder.max_notification_id()

    preview = ledger.preview_size(client_id, "BTCUSDC", Side.LONG, Decimal("98000"), None)

    assert services.store.recorder.max_notification_id() == before
    planned = ledger.plan_position(client_id, long_plan("98000"))
    assert (preview.entry_price, preview.capital) == (planned.entry_price, planned.capital_base)
    assert (preview.sizing.quantity, preview.sizing.risk_amount) == (
        planned.quantity,
        planned.risk_amount,
    )


def test_balances_follow_the_fills(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    open_long(ledger, client_id)
    balances = services.exchange.balances(ledger.account_for(ledger.client(client_id)))
    assert balances["USDC"].free == Decimal("10000") - Decimal("0.005") * Decimal("100000")
    assert balances["BTC"].free == Decimal("0.004995")


def test_execute_without_validate_is_impossible(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    planned = ledger.plan_position(client_id, long_plan())
    with pytest.raises(IllegalTransition):
        ledger.execute_position(client_id, planned.id)
    assert ledger.position(client_id, planned.id).status is Status.PLANNED


def test_a_rejected_plan_lists_every_failing_rule_and_cannot_execute(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    # Stop above entry for a LONG, and far too large a quantity for 1% of 1000.
    planned = ledger.plan_position(client_id, long_plan(stop="101000", quantity=Decimal("1")))
    rejected = ledger.validate_position(client_id, planned.id)
    assert rejected.status is Status.REJECTED
    assert {"stop_wrong_side", "risk_above_limit", "insufficient_balance"} <= set(
        rules_of(rejected)
    )
    with pytest.raises(IllegalTransition):
        ledger.execute_position(client_id, planned.id)


def test_buy_without_a_stop_is_blocked_with_the_reason(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    with pytest.raises(RiskRuleViolated) as refused:
        ledger.plan_validate_execute(client_id, long_plan(stop="1", stop_price=None))
    assert "stop-loss price is required" in str(refused.value)


def test_risk_above_the_months_remaining_budget_is_rejected(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    # Four positions at 1% each use the whole 4% monthly budget.
    for _ in range(4):
        assert open_long(ledger, client_id).status is Status.OPEN
    fifth = ledger.plan_position(client_id, long_plan())
    rejected = ledger.validate_position(client_id, fifth.id)
    assert rules_of(rejected) == ["monthly_budget_exceeded"]
    assert rejected.violations[0]["reason"] == (
        "The risk of open positions holds the rest of this month's 4% loss budget"
    )


def test_a_stop_tightened_to_the_entry_gives_the_month_its_budget_back(
    services: Services,
) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    # Four positions risking 10 each (entry 100000, stop 98000) fill the 40 of the month's 4%.
    opened = [open_long(ledger, client_id) for _ in range(4)]
    entry = opened[0].average_entry_price
    assert entry is not None

    def fifth_validates() -> bool:
        fifth = ledger.plan_position(client_id, long_plan())
        return ledger.validate_position(client_id, fifth.id).status is Status.VALIDATED

    # Halfway to the entry, half of one position's risk is freed: not enough for a 1% trade.
    assert ledger.adjust_stop(client_id, opened[0].id, entry - 1000, span=1)
    assert ledger.policy(client_id).open_risk[str(opened[0].id)] == opened[0].open_quantity * 1000
    assert not fifth_validates()

    # At the entry the position can lose nothing more, and the fifth trade fits.
    assert ledger.adjust_stop(client_id, opened[0].id, entry, span=2)
    assert str(opened[0].id) not in ledger.policy(client_id).open_risk
    assert fifth_validates()


def test_realised_losses_shrink_the_budget_and_slippage_past_four_percent_pauses(
    services: Services,
) -> None:
    ledger = services.ledger
    paper = services.paper
    assert paper is not None
    client_id, _ = register(ledger, capital="1000")
    # The month's rule alone: the daily cap and the cooldown would refuse the third entry.
    loose = ProtectionSettings(stop_out_limit=10, daily_loss_limit_percent=Decimal(10))
    ledger.configure_policy(client_id, Decimal(1000), protection=loose)

    def stopped_out(exit_price: str, **plan: object) -> Decimal:
        paper.set_price("BTCUSDC", Decimal("100000"))
        position = open_long(ledger, client_id, stop="98000", **plan)
        paper.set_price("BTCUSDC", Decimal(exit_price))
        return ledger.close_position(client_id, position.id, ExitReason.STOP_LOSS).realised_pnl

    losses = sum((stopped_out("97900") for _ in range(3)), Decimal(0))
    policy = ledger.policy(client_id)
    assert 3 <= -losses * 100 / 1000 < 4
    assert policy.alerts["2026-11"] == [Decimal(2), Decimal(3)]
    assert not policy.paused

    # A full 1% trade no longer fits what is left of the month's 4%.
    paper.set_price("BTCUSDC", Decimal("100000"))
    too_big = ledger.validate_position(client_id, ledger.plan_position(client_id, long_plan()).id)
    assert rules_of(too_big) == ["monthly_budget_exceeded"]

    # A smaller one fits, but the market gaps far through its stop.
    stopped_out("90000", quantity=Decimal("0.002"))
    policy = ledger.policy(client_id)
    assert policy.paused
    assert policy.paused_month == "2026-11"
    paper.set_price("BTCUSDC", Decimal("100000"))
    blocked = ledger.validate_position(client_id, ledger.plan_position(client_id, long_plan()).id)
    assert "policy_paused" in rules_of(blocked)


def test_a_paused_policy_stays_paused_across_months_until_resumed(
    services: Services, clock: ManualClock
) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    ledger.observe_drawdown(client_id, "2026-11", Decimal("4.0"))
    clock.advance(timedelta(days=40))  # into December
    blocked = ledger.validate_position(client_id, ledger.plan_position(client_id, long_plan()).id)
    assert "policy_paused" in rules_of(blocked)

    resumed = ledger.resume_trading(client_id, "risk-officer", "Reviewed the losing trades")
    assert not resumed.paused
    assert resumed.last_resume == ("risk-officer", "Reviewed the losing trades")
    assert open_long(ledger, client_id).status is Status.OPEN


def test_observing_the_same_drawdown_twice_pauses_once(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    for _ in range(3):
        ledger.observe_drawdown(client_id, "2026-11", Decimal("4.5"))
    topics = [type(e).__name__ for e in services.store.events.get(Policy.create_id(client_id))]
    assert topics.count("TradingPaused") == 1
    assert topics.count("DrawdownAlerted") == 2


def test_trading_disabled_refuses_every_order(services: Services, settings: object) -> None:
    ledger = Ledger(
        services.store,
        services.exchange,
        services.vault,
        services.clock,
        TradingConfig(trading_enabled=False),
    )
    client_id, _ = register(ledger)
    planned = ledger.plan_position(client_id, long_plan())
    rejected = ledger.validate_position(client_id, planned.id)
    assert "trading_disabled" in rules_of(rejected)
    with pytest.raises(TradingDisabled, match="Set TRADING_ENABLED=True to enable"):
        ledger.execute_position(client_id, planned.id)


def test_tenants_cannot_see_or_touch_each_others_positions(services: Services) -> None:
    ledger = services.ledger
    alice, _ = register(ledger)
    bob, _ = register(ledger)
    position = open_long(ledger, alice)
    with pytest.raises(PositionNotFound):
        ledger.position(bob, position.id)
    with pytest.raises(PositionNotFound):
        ledger.close_position(bob, position.id)
    assert ledger.position(alice, position.id).status is Status.OPEN


def test_tokens_authenticate_until_revoked_or_deactivated(services: Services) -> None:
    ledger = services.ledger
    client_id, token = register(ledger)
    assert ledger.authenticate(token).id == client_id
    second = ledger.issue_token(ledger.client(client_id).email)
    assert ledger.authenticate(second).id == client_id
    with pytest.raises(Unauthorized):
        ledger.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(Unauthorized):
        ledger.authenticate("garbage")
    token_id = token.split("_")[2]
    ledger.revoke_token(client_id, token_id)
    with pytest.raises(Unauthorized):
        ledger.authenticate(token)
    ledger.set_active(ledger.client(client_id).email, False)
    with pytest.raises(Unauthorized):
        ledger.authenticate(second)


def test_an_email_registers_once(services: Services) -> None:
    services.ledger.register_client("A", "same@example.com", Decimal(1000))
    with pytest.raises(AlreadyExists):
        services.ledger.register_client("B", " Same@Example.com ", Decimal(1000))


def test_credentials_are_stored_encrypted_and_only_masked_outside(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    email = ledger.client(client_id).email
    masked = ledger.set_credentials(email, "AKEYabcdefghijklmnopZ9Z9", "SECRETvalue-123456")
    assert masked == "AKEY****************Z9Z9"
    client = ledger.client(client_id)
    assert client.has_credentials
    assert client.api_key_ciphertext != "AKEYabcdefghijklmnopZ9Z9"
    creds = ledger.credentials_for(client)
    assert creds is not None
    assert (creds.api_key, creds.secret_key) == ("AKEYabcdefghijklmnopZ9Z9", "SECRETvalue-123456")
    assert "SECRETvalue" not in repr(creds)


def test_operator_keys_serve_only_the_operator(services: Services) -> None:
    from domain.ports import ApiCredentials

    operator_keys = ApiCredentials("OPERATORKEY0000", "OPERATORSECRET")
    ledger = Ledger(
        services.store,
        services.exchange,
        services.vault,
        services.clock,
        TradingConfig(trading_enabled=True, operator_credentials=operator_keys),
    )
    operator, _ = register(ledger, operator=True)
    tenant, _ = register(ledger)
    assert ledger.credentials_for(ledger.client(operator)) == operator_keys
    assert ledger.credentials_for(ledger.client(tenant)) is None


def test_live_exchange_without_credentials_is_refused(services: Services) -> None:
    class KeyedPaper(PaperExchange):
        is_live = True  # behaves like an exchange that needs API keys

    ledger = Ledger(
        services.store,
        KeyedPaper(services.store, services.clock, Decimal(10000)),
        services.vault,
        services.clock,
        TradingConfig(trading_enabled=True),
    )
    client_id, _ = register(ledger)
    planned = ledger.plan_position(client_id, long_plan())
    assert "credentials_missing" in rules_of(ledger.validate_position(client_id, planned.id))
    with pytest.raises(CredentialsMissing, match="not configured for production mode"):
        ledger.account_for(ledger.client(client_id))


def test_partial_exit_leaves_the_rest_open(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="10000")
    position = open_long(ledger, client_id)  # 0.05 BTC bought, 0.04995 held
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("101000"))
    part = ledger.close_position(client_id, position.id, quantity=Decimal("0.02"))
    assert part.status is Status.OPEN
    assert part.open_quantity == Decimal("0.02995")
    rest = ledger.close_position(client_id, position.id)
    assert rest.status is Status.CLOSED
    assert rest.realised_pnl == sum((e["pnl"] for e in rest.exits), Decimal(0))
    assert len(rest.exits) == 2


def test_a_short_opens_and_closes_on_isolated_margin(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    short = ledger.plan_validate_execute(
        client_id, long_plan(stop="102000", side=Side.SHORT, leverage=Decimal(3))
    )
    assert short.status is Status.OPEN and short.margin
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("98000"))
    closed = ledger.close_position(client_id, short.id)
    assert closed.status is Status.CLOSED
    assert closed.realised_pnl > 0


# --- concurrency: optimistic locking, nothing lost ---


def test_two_writers_of_one_aggregate_one_wins_the_other_retries(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    first = ledger.policy(client_id)
    second = ledger.policy(client_id)
    first.reserve_risk(uuid4(), Decimal(1), services.clock.now())
    second.reserve_risk(uuid4(), Decimal(2), services.clock.now())
    services.store.save(first)
    with pytest.raises(IntegrityError):
        services.store.save(second)

    stale = ledger.policy(client_id)
    services.ledger.observe_drawdown(client_id, "2026-11", Decimal("2.5"))  # another writer
    attempts: list[int] = []

    def command() -> None:
        policy = stale if not attempts else ledger.policy(client_id)
        attempts.append(1)
        policy.reserve_risk(uuid4(), Decimal(3), services.clock.now())
        services.store.save(policy)

    retry_on_conflict(command)
    assert len(attempts) == 2  # the stale copy lost, the reloaded one won
    policy = ledger.policy(client_id)
    assert sorted(policy.open_risk.values()) == [Decimal(1), Decimal(3)]
    assert policy.alerts["2026-11"] == [Decimal(2)]  # the other writer's event is kept


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Start every call at the same moment; return results or raised exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as error:  # collected for the assertions
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_validations_cannot_overspend_the_monthly_budget(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger, capital="1000")
    for _ in range(3):
        open_long(ledger, client_id)  # 30 of the 40 budget used
    plans = [ledger.plan_position(client_id, long_plan()) for _ in range(4)]

    results = run_together(*[lambda p=p: ledger.validate_position(client_id, p.id) for p in plans])

    statuses = [ledger.position(client_id, p.id).status for p in plans]
    assert statuses.count(Status.VALIDATED) == 1, results
    assert statuses.count(Status.REJECTED) == 3
    assert sum(ledger.policy(client_id).open_risk.values()) == Decimal(40)


def test_concurrent_closes_send_exactly_one_exit_order(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)

    results = run_together(
        lambda: ledger.close_position(client_id, position.id),
        lambda: ledger.close_position(client_id, position.id),
    )

    assert sum(isinstance(r, Position) for r in results) == 1
    assert sum(isinstance(r, IllegalTransition) for r in results) == 1
    closed = ledger.position(client_id, position.id)
    assert closed.status is Status.CLOSED and len(closed.exits) == 1
    assert services.paper is not None
    assert services.paper.orders_filled(client_id) == 2  # the entry and one exit


def test_a_protective_exit_is_not_blocked_by_a_paused_policy(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)
    ledger.observe_drawdown(client_id, "2026-11", Decimal(5))
    closed = ledger.close_position(
        client_id, position.id, ExitReason.STOP_LOSS, trigger_price=Decimal("97000")
    )
    assert closed.status is Status.CLOSED
    assert closed.exit_reason is ExitReason.STOP_LOSS


def test_a_pause_recorded_after_validation_still_stops_the_entry(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    planned = ledger.plan_position(client_id, long_plan())
    assert ledger.validate_position(client_id, planned.id).status is Status.VALIDATED
    ledger.observe_drawdown(client_id, "2026-11", Decimal(4))

    with pytest.raises(RiskRuleViolated, match="paused"):
        ledger.execute_position(client_id, planned.id)
    assert ledger.position(client_id, planned.id).status is Status.VALIDATED
    assert services.paper is not None and services.paper.orders_filled(client_id) == 0
