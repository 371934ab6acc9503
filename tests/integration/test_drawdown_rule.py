"""The drawdown rule on the log: alerts at 2% and 3%, one pause at 4%, unrealised losses count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.policy import Policy
from infra.bootstrap import Services
from infra.clock import ManualClock
from projections.catalog import all_projections
from projections.drawdown_rule import DrawdownRule
from projections.rebuild import rebuild
from tests.factories import long_plan, register
from tests.trade_builders import filled, realise, save

NOVEMBER = "2026-11"  # the clock fixture starts on 2 November 2026
ALERTS = (Decimal(2), Decimal(3))
TWENTY = Decimal(20)


@pytest.fixture
def following(services: Services) -> Iterator[Services]:
    """Services whose projection runner follows the log in the background."""
    services.projections.start()
    yield services
    services.projections.stop()


def rule_for(services: Services) -> DrawdownRule:
    return DrawdownRule(services.ledger, services.read_models, services.exchange.price)


def policy_events(services: Services, client_id: UUID) -> list[str]:
    stream = services.store.events.get(Policy.create_id(client_id))
    return [type(e).__name__ for e in stream]


def lose(services: Services, client_id: UUID, amount: str) -> None:
    """A realised loss this month, recorded without the ledger observing the drawdown."""
    policy = services.ledger.policy(client_id)
    realise(services.store, policy, NOVEMBER, f"-{amount}", services.clock.now())


def test_a_loss_of_3_99_percent_alerts_but_does_not_pause(following: Services) -> None:
    client_id, _ = register(following.ledger, capital="1000")
    lose(following, client_id, "39.90")

    [seen] = rule_for(following).run_once()

    assert (seen.loss_percent, seen.alerts, seen.pause) == (Decimal("3.99"), ALERTS, False)
    assert policy_events(following, client_id).count("DrawdownAlerted") == 2
    assert "TradingPaused" not in policy_events(following, client_id)
    assert following.read_models.wait_for(following.read_models.log_position())
    row = following.read_models.drawdown(client_id, NOVEMBER)
    assert row is not None
    assert (row.loss_percent, row.alert_level, row.paused) == (Decimal("3.99"), Decimal(3), False)


def test_reaching_4_percent_pauses_exactly_once_across_reruns_restarts_and_rebuilds(
    following: Services,
) -> None:
    client_id, _ = register(following.ledger, capital="1000")
    lose(following, client_id, "39.90")
    rule = rule_for(following)
    rule.run_once()
    lose(following, client_id, "0.10")

    [seen] = rule.run_once()

    assert (seen.loss_percent, seen.alerts, seen.pause) == (Decimal(4), (), True)
    assert following.ledger.policy(client_id).paused
    # The same loss seen again: by the same rule, a restarted one, after a rebuild.
    assert rule.run_once() == []
    assert rule_for(following).run_once() == []
    rebuild(following.read_models.database, following.store, all_projections())
    assert rule_for(following).run_once() == []
    events = policy_events(following, client_id)
    assert (events.count("TradingPaused"), events.count("DrawdownAlerted")) == (1, 2)


def test_unrealised_losses_of_open_positions_count(following: Services) -> None:
    assert following.paper is not None
    client_id, _ = register(following.ledger, capital="1000")
    # 0.01 BTC held from 100000, no fees; 2% already lost this month.
    save(following.store, filled(client_id, following.clock.now(), entry="100000", quantity="0.01"))
    lose(following, client_id, "20")
    rule = rule_for(following)

    following.paper.set_price("BTCUSDC", Decimal("98001"))  # −19.99 open: 3.999%
    [alerts_only] = rule.run_once()
    assert (alerts_only.alerts, alerts_only.pause) == (ALERTS, False)

    following.paper.set_price("BTCUSDC", Decimal("98000"))  # −20 open: 4%
    [paused] = rule.run_once()
    assert (paused.loss_percent, paused.pause) == (Decimal(4), True)
    assert following.read_models.wait_for(following.read_models.log_position())
    row = following.read_models.drawdown(client_id, NOVEMBER)
    assert row is not None
    assert (row.realised_pnl, row.unrealised_pnl, row.paused) == (-TWENTY, -TWENTY, True)


def test_the_pause_survives_a_new_month_until_a_resume_is_recorded(
    following: Services, clock: ManualClock
) -> None:
    client_id, _ = register(following.ledger, capital="1000")
    lose(following, client_id, "40")
    assert rule_for(following).run_once()[0].pause

    clock.advance(timedelta(days=40))  # December: nothing lost yet this month
    assert rule_for(following).run_once() == []
    read_models = following.read_models
    assert read_models.wait_for(read_models.log_position())
    december = read_models.drawdown(client_id, "2026-12")
    assert december is not None
    assert (december.loss_percent, december.paused) == (Decimal(0), True)
    planned = following.ledger.plan_position(client_id, long_plan())
    blocked = following.ledger.validate_position(client_id, planned.id)
    assert "policy_paused" in [v["rule"] for v in blocked.violations]

    following.ledger.resume_trading(client_id, "risk-officer", "Reviewed November")
    assert read_models.wait_for(read_models.log_position())
    resumed = read_models.drawdown(client_id, "2026-12")
    assert resumed is not None and not resumed.paused


def test_a_tenant_resumed_in_the_same_month_is_not_paused_again_by_the_same_loss(
    following: Services,
) -> None:
    client_id, _ = register(following.ledger, capital="1000")
    lose(following, client_id, "45")
    rule = rule_for(following)
    rule.run_once()
    following.ledger.resume_trading(client_id, "risk-officer", "Reviewed; limits adjusted")

    assert rule.run_once() == []
    assert policy_events(following, client_id).count("TradingPaused") == 1
    assert not following.ledger.policy(client_id).paused


def test_only_tenants_whose_loss_reached_a_level_are_touched(following: Services) -> None:
    losing, _ = register(following.ledger, capital="1000")
    fine, _ = register(following.ledger, capital="1000")
    lose(following, losing, "25")
    lose(following, fine, "19.99")

    [seen] = rule_for(following).run_once()

    assert (seen.client_id, seen.alerts) == (losing, (Decimal(2),))
    assert "DrawdownAlerted" not in policy_events(following, fine)


def test_sharded_rules_each_watch_their_own_tenants(following: Services) -> None:
    tenants = [register(following.ledger, capital="1000")[0] for _ in range(4)]
    for client_id in tenants:
        lose(following, client_id, "21")

    rules = [
        DrawdownRule(following.ledger, following.read_models, following.exchange.price, shard=s)
        for s in ((0, 2), (1, 2))
    ]

    first, second = ({seen.client_id for seen in rule.run_once()} for rule in rules)

    assert first | second == set(tenants) and not first & second
    assert all(c.int % 2 == 0 for c in first) and all(c.int % 2 == 1 for c in second)


def test_without_a_runner_in_the_process_the_rule_catches_up_itself(services: Services) -> None:
    client_id, _ = register(services.ledger, capital="1000")
    lose(services, client_id, "40")
    rule = DrawdownRule(
        services.ledger,
        services.read_models,
        services.exchange.price,
        catch_up=services.projections.run_once,
    )

    assert rule.run_once()[0].pause
    assert rule.run_once() == []
