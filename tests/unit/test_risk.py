"""VALIDATE: each risk rule of DESIGN.md blocks a plan with its code and a readable reason."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import RiskRuleViolated
from domain.market import BTCUSDC, Side
from domain.risk import (
    AFTER_REVIEW,
    WHEN_RISK_IS_RELEASED,
    EntryGate,
    PlanFacts,
    RiskContext,
    check_plan,
    entry_gate,
    next_month_start,
)
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
MARCH = "2026-03"


def gate(
    realised: str = "0",
    open_risk: str = "0",
    paused: bool = False,
    trading_enabled: bool = True,
    credentials_ok: bool = True,
) -> EntryGate:
    """The entry gate of March for capital 1000 and the 4% limit (a budget of 40)."""
    return entry_gate(
        MARCH,
        D(1000),
        D(4),
        D(realised),
        D(open_risk),
        paused=paused,
        trading_enabled=trading_enabled,
        credentials_ok=credentials_ok,
    )


CONTEXT = RiskContext(
    capital=D(1000),
    max_risk_percent=D(1),
    entry=gate(),
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
            replace(CONTEXT, entry=gate(paused=True)),
            "policy_paused",
            ["paused", "monthly drawdown", "review"],
            id="policy-paused",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, entry=gate(open_risk="31.5")),
            "monthly_budget_exceeded",
            ["Risk 10 ", "remaining loss budget", "(8.5)"],
            id="month-budget-left-8.5",
        ),
        pytest.param(
            GOOD_LONG,
            replace(CONTEXT, entry=gate(realised="-45")),
            "monthly_budget_exceeded",
            ["losses used up the 4% loss budget", "new entries wait until 2026-04-01 (UTC)"],
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
    assert check_plan(GOOD_LONG, replace(CONTEXT, entry=gate(open_risk="30"))) == []


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
        entry=gate(paused=True),
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
    violations = check_plan(plan, replace(CONTEXT, entry=gate(open_risk="10")))

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
    ctx = replace(
        CONTEXT, capital=capital, entry=entry_gate(MARCH, capital, D(4), D(0), D(0), paused=False)
    )

    rules = {v.rule for v in check_plan(plan, ctx)}

    assert "risk_above_limit" not in rules
    assert "monthly_budget_exceeded" not in rules
    assert "stop_wrong_side" not in rules


# --- the entry gate: one answer for the status, the policy reply and VALIDATE ---


def test_an_open_month_with_budget_left_lets_a_new_entry_in() -> None:
    assert gate(realised="-15", open_risk="10") == EntryGate(None, None, None, D(15))
    assert gate().allowed


def test_a_pause_refuses_new_entries_until_a_review() -> None:
    paused = gate(paused=True)
    assert (paused.allowed, paused.rule, paused.until) == (False, "policy_paused", AFTER_REVIEW)
    assert "review" in (paused.reason or "")


def test_a_month_whose_losses_used_up_the_budget_refuses_until_the_next_month_begins() -> None:
    resumed = gate(realised="-51.84")  # resumed after a review: no pause, no budget

    assert (resumed.allowed, resumed.rule) == (False, "monthly_budget_exceeded")
    assert resumed.until == "2026-04-01"
    assert resumed.reason == (
        "This month's losses used up the 4% loss budget; new entries wait until 2026-04-01 (UTC)"
    )
    assert resumed.remaining_budget == 0  # never negative


def test_a_budget_held_by_open_risk_is_refused_until_that_risk_is_released() -> None:
    held = gate(realised="-25", open_risk="20")
    assert (held.allowed, held.until, held.remaining_budget) == (
        False,
        WHEN_RISK_IS_RELEASED,
        D(0),
    )


def test_trading_off_and_missing_keys_come_first_and_a_pause_still_shows() -> None:
    off = gate(paused=True, trading_enabled=False)
    assert (off.rule, off.until, off.paused) == ("trading_disabled", None, True)
    no_keys = gate(realised="-40", credentials_ok=False)
    assert no_keys.rule == "credentials_missing"


@pytest.mark.parametrize(
    ("month", "first_day"),
    [("2026-11", "2026-12-01"), ("2026-12", "2027-01-01"), ("2027-01", "2027-02-01")],
)
def test_the_budget_is_renewed_on_the_first_day_of_the_next_month(
    month: str, first_day: str
) -> None:
    assert next_month_start(month) == first_day


def test_validate_refuses_an_exhausted_month_with_the_gates_own_reason() -> None:
    exhausted = gate(realised="-40")
    violations = check_plan(GOOD_LONG, replace(CONTEXT, entry=exhausted))
    assert [(v.rule, v.reason) for v in violations] == [
        ("monthly_budget_exceeded", exhausted.reason)
    ]


def test_a_stop_too_low_for_any_exitable_size_is_refused_at_once() -> None:
    """A stop so low that selling the lot maximum cannot reach the NOTIONAL minimum: refused
    with a reason, in one pass (this once looped for ever, holding a core per request)."""
    plan = PlanFacts(Side.LONG, Decimal(100000), Decimal("0.00000002"), None, Decimal("0.0001"))

    (violation,) = [v for v in check_plan(plan, CONTEXT) if v.rule == "exit_unsellable"]

    assert "no quantity the exchange accepts could be sold at that stop" in violation.reason
