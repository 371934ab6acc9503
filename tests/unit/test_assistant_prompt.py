"""The tenant's context (valuation, risk), the system prompt and the deterministic answers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.assistant.context import (
    TradingContext,
    context_document,
    open_position,
    pnl_document,
    risk_metrics,
    trade_records,
)
from domain.assistant.conversation import Role, Turn
from domain.assistant.keywords import Topic
from domain.assistant.prompt import (
    ROUNDS_NOTE,
    UNAVAILABLE_NOTE,
    fallback_answer,
    model_messages,
    proposal_summary,
    system_prompt,
)
from domain.formats import money
from domain.ports import Balance
from domain.read_models import PeriodPnl, PnlOverall, PositionRow, TradeRow
from tests.factories import UNIT_CLIENT_ID, UNIT_NOW, configured_policy, later, position_row

POSITION_ID = UUID("11111111-2222-3333-4444-555555555555")


def row(side: str = "LONG", entry: str = "100000", stop: str | None = "98000") -> PositionRow:
    price = None if stop is None else Decimal(stop)
    return position_row(
        position_id=POSITION_ID,
        side=side,
        entry_price=Decimal(entry),
        initial_stop=price,
        current_stop=price,
    )


def trade(pnl: str | None, minutes: int, quantity: str = "0.005") -> TradeRow:
    closed = pnl is not None
    return TradeRow(
        position_id=uuid4(),
        exit_sequence=1 if closed else 0,
        client_id=UNIT_CLIENT_ID,
        symbol="BTCUSDC",
        side="LONG",
        quantity=Decimal(quantity),
        entry_price=Decimal(100000),
        exit_price=Decimal(99000) if closed else None,
        pnl=None if pnl is None else Decimal(pnl),
        pnl_percentage=None,
        is_winner=None if pnl is None else Decimal(pnl) > 0,
        is_closed=closed,
        duration_hours=None,
        entry_time=later(minutes - 5),
        exit_time=later(minutes) if closed else None,
        fees=Decimal(0),
    )


def context(**overrides: Any) -> TradingContext:
    policy = configured_policy("1000")
    position = open_position(row(), Decimal("101000"))
    fields: dict[str, Any] = {
        "as_of": UNIT_NOW,
        "balances": (Balance("USDC", Decimal("9500")), Balance("BTC", Decimal("0.004995"))),
        "positions": (position,),
        "recent_trades": (),
        "prices": {"BTCUSDC": Decimal("101000")},
        "monthly_pnl": None,
        "risk": risk_metrics(policy, "2026-03", position.unrealised_pnl or Decimal(0)),
    }
    fields.update(overrides)
    return TradingContext(**fields)


# --- valuation ---


@pytest.mark.parametrize(
    ("side", "entry", "stop", "price", "pnl", "distance", "percent", "at_stop"),
    [
        ("LONG", "100000", "98000", "101000", "4.995", "3000", "2.97", "9.99"),
        ("LONG", "100000", "98000", "97000", "-14.985", "-1000", "-1.03", "9.99"),
        ("SHORT", "100000", "102000", "99000", "4.995", "3000", "3.03", "9.99"),
        ("LONG", "100000", "101000", "103000", "14.985", "2000", "1.94", "-4.995"),
    ],
)
def test_an_open_position_is_valued_at_the_current_price(
    side: str,
    entry: str,
    stop: str,
    price: str,
    pnl: str,
    distance: str,
    percent: str,
    at_stop: str,
) -> None:
    view = open_position(row(side, entry, stop), Decimal(price))
    assert view.unrealised_pnl == Decimal(pnl)
    assert view.distance_to_stop == Decimal(distance)
    assert view.distance_to_stop_percent is not None
    assert view.distance_to_stop_percent.quantize(Decimal("0.01")) == Decimal(percent)
    assert view.loss_at_stop == Decimal(at_stop)


def test_without_a_price_or_a_stop_nothing_is_invented() -> None:
    view = open_position(row(stop=None), None)
    assert view.unrealised_pnl is None
    assert view.distance_to_stop is None
    assert view.loss_at_stop is None


def test_risk_metrics_come_from_the_policy_the_rules_use() -> None:
    policy = configured_policy("1000")
    policy.start_month("2026-03", UNIT_NOW)
    policy.reserve_risk(uuid4(), Decimal(10), later(1))
    policy.realise(uuid4(), "2026-03", Decimal(-15), Decimal(0), later(2))

    risk = risk_metrics(policy, "2026-03", unrealised=Decimal(-10))

    assert risk.capital_base == Decimal(1000)
    assert risk.risk_per_trade == Decimal(10)
    assert risk.monthly_loss_limit == Decimal(40)
    assert risk.realised_pnl == Decimal(-15)
    assert risk.loss_percent == Decimal("2.5")
    assert risk.alert_level == Decimal(2)
    assert risk.open_risk == Decimal(10)
    assert risk.remaining_budget == Decimal(15)  # 40 - 15 realised - 10 still open
    assert risk.paused is False


def test_trade_rows_become_the_guards_trade_records() -> None:
    records = trade_records([trade("-5", 10), trade(None, 20)])
    assert [r.pnl for r in records] == [Decimal(-5), None]
    assert records[0].exit_time == later(10)
    assert records[1].exit_time is None


def test_the_context_document_has_money_as_eight_decimal_strings() -> None:
    document = context_document(context())
    assert document["balances"][0] == {
        "asset": "USDC",
        "free": "9500.00000000",
        "locked": "0.00000000",
        "total": "9500.00000000",
    }
    position = document["positions"][0]
    assert position["unrealised_pnl"] == "4.99500000"
    assert position["distance_to_stop"] == "3000.00000000"
    assert position["distance_to_stop_percent"] == "2.97"
    assert document["prices"] == {"BTCUSDC": "101000.00000000"}
    assert document["risk"]["remaining_budget"] == "40.00000000"
    assert document["as_of"] == "2026-03-10T12:00:00Z"


def test_money_is_written_as_the_api_writes_it_never_as_a_negative_zero() -> None:
    overall = PnlOverall(
        total_pnl=Decimal("-0.000000004"), total_trades=1, winners=0, losers=1, win_rate="0.0%"
    )
    document = pnl_document([], overall)
    assert document["overall"]["total_pnl"] == "0.00000000" == money(overall.total_pnl)


# --- the prompt ---


def test_the_system_prompt_carries_the_risk_rules_and_this_tenants_live_context() -> None:
    prompt = system_prompt(context())
    for rule in (
        "1.00% of the month's capital base per trade",
        "Every trade has a stop-loss",
        "4.00% of the capital base, trading pauses",
        "PLAN -> VALIDATE -> EXECUTE",
        "You can never execute a trade",
        "confirm <intent id>",
        "within 5 minutes",
    ):
        assert rule in prompt
    assert str(POSITION_ID) in prompt
    assert "USDC 9500.00000000 free" in prompt
    assert "unrealised P&L 4.99500000" in prompt
    assert "remaining loss budget 40.00000000" in prompt
    assert "Trading: ACTIVE" in prompt


def test_a_paused_policy_is_in_the_prompt_with_its_reason() -> None:
    policy = configured_policy("1000")
    policy.observe_drawdown("2026-03", Decimal(5), later(1))
    prompt = system_prompt(context(risk=risk_metrics(policy, "2026-03", Decimal(0))))
    assert "Trading: PAUSED (Monthly loss 5.00% reached the 4% limit)" in prompt


def test_model_messages_are_the_prompt_then_the_turns_in_order() -> None:
    turns = [
        Turn(Role.USER, "hi", None, None, UNIT_NOW),
        Turn(Role.ASSISTANT, "hello", None, None, later(1)),
        Turn(Role.USER, "balance?", None, None, later(2)),
    ]
    messages = model_messages("SYSTEM", turns)
    assert messages == [
        {"role": "system", "content": "SYSTEM"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "balance?"},
    ]


# --- answers without a model ---


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (Topic.BALANCE, "- USDC: 9500.00000000 (9500.00000000 free, 0.00000000 locked)"),
        (Topic.POSITIONS, f"{POSITION_ID} LONG 0.00499500 BTCUSDC"),
        (Topic.PNL, "realised P&L 0.00000000, unrealised P&L 4.99500000"),
        (Topic.RISK, "each trade may risk 1.00% = 10.00000000"),
        (Topic.PRICE, "- BTCUSDC: 101000.00000000"),
        (Topic.BUY, "I can't plan a trade without the AI model"),
        (Topic.GENERAL, "Open positions: 1."),
    ],
)
def test_the_factual_questions_have_deterministic_answers(topic: Topic, expected: str) -> None:
    answer = fallback_answer(topic, context())
    assert answer.startswith(UNAVAILABLE_NOTE)
    assert expected in answer


def test_the_monthly_pnl_answer_counts_the_months_trades() -> None:
    monthly = PeriodPnl("2026-03", Decimal(12), Decimal(12), 4, 3, 1, "75.0%", Decimal(900))
    answer = fallback_answer(Topic.PNL, context(monthly_pnl=monthly))
    assert "4 closed trade(s), 3 winner(s) and 1 loser(s), win rate 75.0%" in answer


def test_sizing_answers_with_the_computed_size_or_asks_for_the_stop() -> None:
    sizing = {
        "symbol": "BTCUSDC",
        "entry_price": "100000.00000000",
        "stop_price": "98000.00000000",
        "stop_distance": "2000.00000000",
        "risk_percent": "1.00",
        "risk_budget": "10.00000000",
        "quantity": "0.00500000",
        "risk_amount": "10.00000000",
        "notional": "500.00000000",
    }
    assert "gives 0.00500000" in fallback_answer(Topic.SIZING, context(), sizing)
    assert "I need the stop price" in fallback_answer(Topic.SIZING, context())
    out_of_rounds = fallback_answer(Topic.SIZING, context(), "bad stop", note=ROUNDS_NOTE)
    assert out_of_rounds == f"{ROUNDS_NOTE}\n\nbad stop"


def test_a_proposal_summary_says_it_is_not_executed_and_how_to_confirm() -> None:
    summary = proposal_summary(
        {
            "intent_id": str(POSITION_ID),
            "status": "awaiting_confirmation",
            "side": "LONG",
            "quantity": "0.00500000",
            "symbol": "BTCUSDC",
            "entry_price": "100000.00000000",
            "stop_price": "98000.00000000",
            "target_price": None,
            "risk_amount": "10.00000000",
            "expires_at": "2026-03-10T12:05:00Z",
        }
    )
    assert "NOT executed" in summary
    assert f'reply "confirm {POSITION_ID}" within 5 minutes' in summary
    rejected = proposal_summary(
        {"status": "rejected", "violations": [{"rule": "no_stop", "reason": "A stop is required"}]}
    )
    assert rejected.endswith("VALIDATE rejected it: A stop is required")


def test_an_unavailable_part_of_the_context_is_said_not_hidden() -> None:
    answer = fallback_answer(
        Topic.BALANCE, context(balances=(), unavailable=("balances: exchange down",))
    )
    assert "no balances" in answer
    assert "(Unavailable: balances: exchange down)" in answer


def test_times_in_documents_are_utc() -> None:
    document = context_document(context(as_of=UNIT_NOW + timedelta(hours=1)))
    assert document["as_of"] == "2026-03-10T13:00:00Z"


def test_a_resumed_month_whose_budget_is_spent_says_so_and_never_shows_a_negative_budget() -> None:
    policy = configured_policy("1000")
    policy.realise(uuid4(), "2026-03", Decimal("-51.84"), Decimal(0), later(1))
    policy.observe_drawdown("2026-03", Decimal("5.184"), later(1))
    policy.resume("risk-officer", "Reviewed", later(2))

    risk = risk_metrics(policy, "2026-03", Decimal(0))
    document = context_document(context(risk=risk))
    prompt = system_prompt(context(risk=risk))

    assert risk.remaining_budget == 0
    assert document["risk"]["remaining_budget"] == "0.00000000"
    assert document["risk"]["can_trade"] is False
    assert document["risk"]["refused_until"] == "2026-04-01"
    assert "remaining loss budget 0.00000000" in prompt
    assert "Trading: NEW ENTRIES REFUSED (This month's losses used up the 4% loss" in prompt
    assert "-11.84" not in prompt
