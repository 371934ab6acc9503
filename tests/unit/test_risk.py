"""VALIDATE: each risk rule of DESIGN.md blocks a plan with its code and a readable reason."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import RiskRuleViolated
from domain.market import BTCUSDC, Side
from domain.risk import PlanFacts, RiskContext, check_plan
from domain.sizing import position_size

D = Decimal

# capital 1000 at 1%: 0.005 BTC between 100000 and 98000 risks exactly 10.
GOOD_LONG = PlanFacts(
    side=Side.LONG,
    entry_price=D(100000),
    stop_price=D(98000),
    target_price=D(106000),
    quantity=D("0.005"),
)
GOOD_SHORT = PlanFacts(
    side=Side.SHORT,
    entry_price=D(100000),
    stop_price=D(102000),
    target_price=D(94000),
    quantity=D("0.005"),
)
CONTEXT = RiskContext(
    capital=D(1000),
    max_risk_percent=D(1),
    paused=False,
    remaining_budget=D(40),
    trading_enabled=True,
    credentials_ok=True,
    rules=BTCUSDC,
    balance_asset="USDC",
    available_balance=D(10000),
    required_balance=D(500),
)


@pytest.mark.parametrize("plan", [GOOD_LONG, GOOD_SHORT], ids=["long", "short"])
def test_a_good_plan_passes_with_no_violations(plan: PlanFacts) -> None:
    assert check_plan(plan, CONTEXT) == []


@pytest.mark.parametrize(
    ("plan", "ctx", "rule", "reason_parts"),
    [
        pytest.param(
            replace(GOOD_LONG, stop_price=None),
            CONTEXT,
            "no_stop",
            ["stop-loss", "required"],
            id="no-stop",
        ),
        pytest.param(
            replace(GOOD_LONG, stop_price=D(101000)),
            CONTEXT,
            "stop_wrong_side",
            ["101000", "below", "100000", "LONG"],
            id="long-stop-above-entry",
        ),
        pytest.param(
            replace(GOOD_LONG, stop_price=D(100000)),
            CONTEXT,
            "stop_wrong_side",
            ["100000", "below", "LONG"],
            id="long-stop-at-entry",
        ),
        pytest.param(
            replace(GOOD_SHORT, stop_price=D(99000)),
            CONTEXT,
            "stop_wrong_side",
            ["99000", "above", "100000", "SHORT"],
            id="short-stop-below-entry",
        ),
        pytest.param(
            replace(GOOD_LONG, target_price=D(99000)),
            CONTEXT,
            "target_wrong_side",
            ["99000", "above", "100000"],
            id="long-target-below-entry",
        ),
        pytest.param(
            replace(GOOD_SHORT, target_price=D(101000)),
            CONTEXT,
            "target_wrong_side",
            ["101000", "below", "100000"],
            id="short-target-above-entry",
        ),
        pytest.param(
            replace(GOOD_LONG, quantity=D("0.006")),
            CONTEXT,
            "risk_above_limit",
            ["Risk 12 ", "1%", "(10)", "maximum allowed quantity is 0.005"],
            id="risk-above-one-percent",
        ),
        pytest.param(
            # one lot more than the 1% size: 10.02 > 10 (after rounding, risk is still checked)
            replace(GOOD_LONG, quantity=D("0.00501")),
            CONTEXT,
            "risk_above_limit",
            ["Risk 10.02 ", "(10)", "maximum allowed quantity is 0.005"],
            id="risk-one-lot-above",
        ),
        pytest.param(
            replace(GOOD_SHORT, stop_price=D(103000), quantity=D("0.004")),
            CONTEXT,
            "risk_above_limit",
            ["Risk 12 ", "(10)", "maximum allowed quantity is 0.00333"],
            id="short-risk-above-one-percent",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, paused=True),
            "policy_paused",
            ["paused", "monthly drawdown", "review"],
            id="policy-paused",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, remaining_budget=D("8.5")),
            "monthly_budget_exceeded",
            ["Risk 10 ", "remaining loss budget", "(8.5)"],
            id="month-budget-left-8.5",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, remaining_budget=D(-5)),
            "monthly_budget_exceeded",
            ["Risk 10 ", "(0)"],
            id="month-budget-overdrawn",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, trading_enabled=False),
            "trading_disabled",
            ["Trading is disabled. Set TRADING_ENABLED=True to enable."],
            id="trading-disabled",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, credentials_ok=False),
            "credentials_missing",
            ["Binance API credentials not configured for production mode"],
            id="credentials-missing",
        ),
        pytest.param(
            # 0.00004 BTC × 100000 = 4 USDC, below the 5 USDC minimum notional
            replace(GOOD_LONG, quantity=D("0.00004")),
            CONTEXT,
            "exchange_filter",
            ["NOTIONAL", "4.00 USDC", "minimum 5 USDC"],
            id="below-min-notional",
        ),
        pytest.param(
            # 5 USDC at entry, but 0.00004 BTC held after the fee is 3.92 USDC at the stop
            replace(GOOD_LONG, quantity=D("0.00005")),
            CONTEXT,
            "exit_unsellable",
            ["hold 0.00004 BTC after the entry fee", "NOTIONAL", "buy at least 0.00007 BTC"],
            id="stop-could-not-sell-what-is-held",
        ),
        pytest.param(
            replace(GOOD_LONG, quantity=D("0.004995")),
            CONTEXT,
            "exchange_filter",
            ["LOT_SIZE", "0.004995", "not a multiple of 0.00001"],
            id="not-a-whole-lot",
        ),
        pytest.param(
            replace(GOOD_LONG, quantity=D(0)),
            CONTEXT,
            "quantity_too_small",
            ["greater than zero"],
            id="zero-quantity",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, available_balance=D(0)),
            "insufficient_balance",
            ["No USDC available for trading"],
            id="no-balance",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, available_balance=D("499.99")),
            "insufficient_balance",
            ["Insufficient USDC", "needs 500", "available 499.99"],
            id="insufficient-balance",
        ),
    ],
)
def test_each_rule_blocks_with_its_code_and_a_reason_naming_the_numbers(
    plan: PlanFacts, ctx: RiskContext, rule: str, reason_parts: list[str]
) -> None:
    violations = check_plan(plan, ctx)

    assert [v.rule for v in violations] == [rule]
    for part in reason_parts:
        assert part in violations[0].reason


@pytest.mark.parametrize(
    ("rule", "sentence"),
    [
        ("trading_disabled", "Trading is disabled. Set TRADING_ENABLED=True to enable."),
        ("credentials_missing", "Binance API credentials not configured for production mode"),
        ("insufficient_balance", "No USDC available for trading"),
    ],
)
def test_the_seed_error_sentences_are_kept_word_for_word(rule: str, sentence: str) -> None:
    ctx = replace(CONTEXT, trading_enabled=False, available_balance=D(0))
    reasons = {v.rule: v.reason for v in check_plan(GOOD_LONG, ctx)}
    reasons.update(
        {v.rule: v.reason for v in check_plan(GOOD_LONG, replace(ctx, credentials_ok=False))}
    )
    assert reasons[rule] == sentence


def test_without_credentials_the_unreadable_balance_is_not_reported_as_empty() -> None:
    ctx = replace(CONTEXT, credentials_ok=False, available_balance=D(0))
    assert [v.rule for v in check_plan(GOOD_LONG, ctx)] == ["credentials_missing"]


def test_risk_exactly_at_one_percent_passes() -> None:
    # 0.005 × 2000 = 10 = 1% of 1000: the limit is inclusive
    assert check_plan(GOOD_LONG, CONTEXT) == []
    assert check_plan(GOOD_LONG, replace(CONTEXT, remaining_budget=D(10))) == []


def test_below_the_minimum_lot_reports_lot_size_and_notional() -> None:
    violations = check_plan(replace(GOOD_LONG, quantity=D("0.000001")), CONTEXT)

    assert [v.rule for v in violations] == ["exchange_filter", "exchange_filter"]
    assert "LOT_SIZE" in violations[0].reason
    assert "below the minimum 0.00001 BTC" in violations[0].reason
    assert "NOTIONAL" in violations[1].reason


def test_a_plan_failing_several_rules_lists_all_of_them_at_once() -> None:
    plan = replace(GOOD_LONG, stop_price=None, target_price=D(90000), quantity=D("0.00004"))
    ctx = replace(
        CONTEXT,
        paused=True,
        trading_enabled=False,
        credentials_ok=False,
        available_balance=D(0),
    )

    violations = check_plan(plan, ctx)

    assert [v.rule for v in violations] == [
        "no_stop",
        "target_wrong_side",
        "policy_paused",
        "trading_disabled",
        "credentials_missing",
        "exchange_filter",
    ]
    error = RiskRuleViolated(violations)
    assert error.violations == tuple(violations)
    for violation in violations:
        assert violation.reason in error.message


def test_risk_and_budget_rules_are_both_reported_when_both_fail() -> None:
    plan = replace(GOOD_LONG, quantity=D("0.02"))  # risk 40
    violations = check_plan(plan, replace(CONTEXT, remaining_budget=D(30)))

    assert [v.rule for v in violations] == ["risk_above_limit", "monthly_budget_exceeded"]
    assert "Risk 40 " in violations[0].reason
    assert "(30)" in violations[1].reason


def test_wrong_side_stop_and_excessive_risk_are_both_reported() -> None:
    plan = replace(GOOD_LONG, stop_price=D(110000), quantity=D("0.01"))  # risk 0.01 × 10000
    rules = [v.rule for v in check_plan(plan, CONTEXT)]
    assert rules == ["stop_wrong_side", "risk_above_limit", "monthly_budget_exceeded"]


# --- property: VALIDATE accepts what sizing produces ---


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(Side),
    capital=st.decimals(min_value=D("100"), max_value=D("1000000"), places=2),
    entry=st.decimals(min_value=D("1000"), max_value=D("200000"), places=2),
    distance_share=st.decimals(min_value=D("0.001"), max_value=D("0.5"), places=3),
)
def test_the_one_percent_size_never_breaks_the_risk_rule(
    side: Side, capital: Decimal, entry: Decimal, distance_share: Decimal
) -> None:
    stop = (entry * (1 - side.sign * distance_share)).quantize(D("0.01"))
    assume(stop != entry)
    quantity = position_size(capital, entry, stop, BTCUSDC.step_size).quantity
    plan = PlanFacts(side, entry, stop, None, quantity)
    ctx = replace(CONTEXT, capital=capital, remaining_budget=capital * 4 / 100)

    rules = {v.rule for v in check_plan(plan, ctx)}

    assert "risk_above_limit" not in rules
    assert "monthly_budget_exceeded" not in rules
    assert "stop_wrong_side" not in rules
