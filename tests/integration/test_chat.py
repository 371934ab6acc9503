"""Robson AI over HTTP against the fake Groq server, through the real groq client, on SQLite
and PostgreSQL: tool calls, conversations, every failure mode and tenant isolation."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from starlette.testclient import TestClient

from domain.assistant.conversation import Conversation, Role
from domain.assistant.keywords import Intent
from domain.assistant.prompt import ROUNDS_NOTE, UNAVAILABLE_NOTE
from infra.bootstrap import Services
from tests.fakes import groq as fake
from tests.fakes.groq import FakeGroq, Reply
from tests.integration.test_api_support import Tenant, buy, new_tenant, running
from tests.integration.test_chat_support import (
    KEY,
    MODEL,
    _no_proxy,
    api,
    chat,
    groq,
    open_position_ids,
    tool_results,
)

__all__ = ["_no_proxy", "api", "groq"]  # the fixtures, from test_chat_support


# --- a full tool-call round trip ---


def test_the_model_asks_for_positions_gets_this_tenants_and_answers(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    buy(api, alice, stop="98000")
    (position_id,) = open_position_ids(services, alice)
    groq.enqueue(
        fake.tool_calls(fake.call("get_positions", {}, id="call_pos")),
        fake.text("You have one open LONG of 0.004995 BTC, stop 98000."),
    )

    reply = chat(api, alice, "What is my current BTC position?")

    assert reply["success"] is True
    assert reply["message"] == "You have one open LONG of 0.004995 BTC, stop 98000."
    assert reply["detected_intent"] == "positions"
    assert reply["requires_confirmation"] is False
    assert reply["model"] == MODEL
    assert reply["ai_available"] is True
    UUID(reply["conversation_id"])

    first, second = groq.chat_bodies
    assert first["model"] == MODEL
    assert {t["function"]["name"] for t in first["tools"]} >= {"get_positions", "propose_trade"}
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "What is my current BTC position?"}
    # The model's own tool call goes back to it, followed by the tool's answer.
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_pos"
    (positions,) = tool_results(second).values()
    (shown,) = positions["positions"]
    assert shown["id"] == str(position_id)
    assert shown["status"] == "open"
    assert shown["quantity"] == "0.00499500"
    assert shown["stop_price"] == "98000.00000000"
    assert shown["unrealised_pnl"] == "0.00000000"
    assert all(r.authorization == f"Bearer {KEY}" for r in groq.requests)


def test_the_prompt_carries_the_risk_rules_and_the_live_context(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    buy(api, alice, stop="98000")
    (position_id,) = open_position_ids(services, alice)
    groq.enqueue(fake.text("ok"))

    chat(api, alice, "hi")

    system = groq.last_body["messages"][0]["content"]
    assert "1.00% of the month's capital base per trade" in system
    assert "Every trade has a stop-loss" in system
    assert "trading pauses" in system
    assert "PLAN -> VALIDATE -> EXECUTE" in system
    assert "must confirm it explicitly" in system
    assert str(position_id) in system
    assert "USDC 9500.00000000 free" in system
    assert "remaining loss budget 30.00000000" in system


def test_a_conversation_continues_and_the_model_sees_its_last_20_turns(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    groq.responder = lambda body: fake.text(f"answer {len(body['messages'])}")
    conversation_id = chat(api, alice, "message 0")["conversation_id"]
    for i in range(1, 12):
        reply = chat(api, alice, f"message {i}", conversation_id)
        assert reply["conversation_id"] == conversation_id

    messages = groq.last_body["messages"]
    assert len(messages) == 1 + 20  # the system prompt, then 19 earlier turns and this one
    assert messages[-1] == {"role": "user", "content": "message 11"}
    # 22 turns were stored before it; the oldest 3 (message 0, answer 2, message 1) are cut.
    assert messages[1] == {"role": "assistant", "content": "answer 4"}
    stored = services.store.load(UUID(conversation_id), Conversation)
    assert stored is not None and stored.client_id == alice.client_id
    assert len(stored.turns) == 24
    assert [t.role for t in stored.turns[:2]] == [Role.USER, Role.ASSISTANT]
    assert stored.turns[0].intent is Intent.GENERAL


def test_an_unknown_or_foreign_conversation_is_not_found(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    groq.enqueue(fake.text("hello alice"))
    conversation_id = chat(api, alice, "hello")["conversation_id"]
    bob = new_tenant(services)

    for tenant, wanted in ((bob, conversation_id), (alice, str(uuid4()))):
        response = api.post(
            "/api/chat/",
            headers=tenant.headers,
            json={"message": "continue", "conversation_id": wanted},
        )
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_not_found"
    assert len(groq.chat_bodies) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"message": ""}, "message is required"),
        ({"message": "   "}, "message is required"),
        ({}, "message is required"),
        ({"message": None}, "message is required"),
        ({"message": " " * 3000 + "x" * 1001}, "message must be at most 4,000 characters"),
        ({"message": "x" * 4001}, "message must be at most 4,000 characters"),
    ],
)
def test_an_empty_or_overlong_message_is_a_400(
    api: TestClient, groq: FakeGroq, alice: Tenant, body: dict[str, Any], error: str
) -> None:
    response = api.post("/api/chat/", headers=alice.headers, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": error,
        "code": "invalid_message",
        "field": "message",
    }
    assert groq.chat_bodies == []


def test_a_message_of_exactly_4000_characters_is_answered(
    api: TestClient, groq: FakeGroq, alice: Tenant
) -> None:
    groq.enqueue(fake.text("long read"))
    assert chat(api, alice, "y" * 4000)["message"] == "long read"


def test_chat_needs_a_token(api: TestClient) -> None:
    for method, path in (("POST", "/api/chat/"), ("GET", "/api/chat/status/")):
        assert api.request(method, path, json={"message": "hi"}).status_code == 401


# --- malformed tool calls: a polite answer, never a 500 ---


def test_malformed_tool_arguments_are_reported_to_the_model_which_answers_politely(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    groq.enqueue(
        fake.tool_calls(fake.call("propose_trade", '{"symbol": "BTCUSDC", "side": ', id="bad")),
        fake.text("Sorry, I could not read that trade. Which stop price do you want?"),
    )

    reply = chat(api, alice, "buy btc")

    assert reply["message"] == "Sorry, I could not read that trade. Which stop price do you want?"
    assert reply["requires_confirmation"] is False
    assert reply["detected_intent"] == "buy"
    result = tool_results(groq.last_body)["bad"]
    assert result["error"] == "invalid_arguments"
    assert result["detail"] == "arguments are not valid JSON"
    assert services.read_models.positions(alice.client_id) == []  # nothing was planned


def test_when_the_tool_rounds_run_out_the_reply_is_polite_and_deterministic(
    api: TestClient, groq: FakeGroq, alice: Tenant
) -> None:
    garbage = fake.tool_calls(fake.call("get_price", "{not json"))
    groq.enqueue(*[garbage] * 5)

    reply = chat(api, alice, "what is my balance?")

    assert reply["message"].startswith(ROUNDS_NOTE)
    assert "USDC: 10000.00000000" in reply["message"]
    assert reply["detected_intent"] == "balance"
    assert len(groq.chat_bodies) == 5  # 4 tool rounds, then the model had its last word
    assert groq.pending == 0


def test_an_unknown_tool_is_answered_as_such(
    api: TestClient, groq: FakeGroq, alice: Tenant
) -> None:
    groq.enqueue(
        fake.tool_calls(fake.call("execute_trade", {"symbol": "BTCUSDC"}, id="x")),
        fake.text("I cannot execute trades myself."),
    )
    assert chat(api, alice, "execute it")["message"] == "I cannot execute trades myself."
    assert tool_results(groq.last_body)["x"]["detail"].startswith("unknown tool")


# --- Groq failing, or not configured: deterministic answers and an honest status ---

FAILURES: list[tuple[str, Reply, str]] = [
    ("unauthorized", fake.unauthorized(), "Groq rejected the API key (HTTP 401)"),
    ("rate_limited", fake.rate_limited(retry_after=7), "Groq rate limit reached (HTTP 429)"),
    ("server_error", fake.server_error(500), "Groq server error (HTTP 500)"),
    ("decommissioned", fake.decommissioned(), "has been decommissioned by Groq"),
    ("timeout", fake.delay(10), "Groq did not answer within 1 s."),
]


@pytest.mark.parametrize(("name", "failure", "error"), FAILURES, ids=[f[0] for f in FAILURES])
def test_every_groq_failure_falls_back_to_the_ledgers_answer_and_shows_in_status(
    api: TestClient,
    groq: FakeGroq,
    alice: Tenant,
    caplog: pytest.LogCaptureFixture,
    name: str,
    failure: Reply,
    error: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    buy(api, alice, stop="98000")
    groq.enqueue(failure)

    response = api.post("/api/chat/", headers=alice.headers, json={"message": "My balance?"})

    assert response.status_code == 200
    reply = response.json()
    assert reply["message"].startswith(UNAVAILABLE_NOTE)
    assert "- USDC: 9500.00000000" in reply["message"]
    assert reply["detected_intent"] == "balance"
    assert reply["ai_available"] is False
    assert reply["model"] is None
    status = api.get("/api/chat/status/", headers=alice.headers)
    assert status.json()["available"] is False
    assert status.json()["provider"] == "Groq"
    assert status.json()["model"] == MODEL
    assert error in status.json()["last_error"]
    assert KEY not in response.text + status.text
    assert KEY not in caplog.text

    groq.enqueue(fake.text("I am back."))
    assert chat(api, alice, "hello?")["ai_available"] is True
    status = api.get("/api/chat/status/", headers=alice.headers).json()
    assert status["available"] is True and status["last_error"] is None


@pytest.fixture
def keyless(services: Services) -> Iterator[TestClient]:
    """The app as configured without GROQ_API_KEY."""
    with running(services) as client:
        yield client


@pytest.mark.parametrize(
    ("message", "intent", "expected"),
    [
        ("What is my balance?", "balance", r"- USDC: 9500\.00000000 \(9500\.00000000 free"),
        ("Qual o meu saldo?", "balance", r"- BTC: 0\.00499500"),
        ("Show my open positions", "positions", r"You have 1 open position\(s\):\n- [0-9a-f-]{36}"),
        ("How much profit did I make?", "balance", r"realised P&L 0\.00000000"),
        ("What is my drawdown?", "risk", r"remaining loss budget 30\.00000000"),
        (
            "Position size for BTCUSDC entry 100000 stop 98000?",
            "risk",
            r"gives 0\.00500000, risking 10\.00000000",
        ),
        ("Compra BTC agora", "buy", r"I can't plan a trade without the AI model"),
    ],
)
def test_without_an_api_key_the_factual_questions_are_still_answered(
    keyless: TestClient, alice: Tenant, message: str, intent: str, expected: str
) -> None:
    buy(keyless, alice, stop="98000")
    assert keyless.get("/api/chat/status/", headers=alice.headers).json() == {
        "available": False,
        "model": MODEL,
        "provider": "Groq",
        "configured": False,
        "last_error": None,
    }

    reply = chat(keyless, alice, message)

    assert reply["message"].startswith(UNAVAILABLE_NOTE)
    assert re.search(expected, reply["message"]), reply["message"]
    assert reply["detected_intent"] == intent
    assert reply["ai_available"] is False
    status = keyless.get("/api/chat/status/", headers=alice.headers).json()
    assert status["last_error"] == "The AI assistant is not configured: GROQ_API_KEY is not set."


# --- tenant isolation ---


def test_no_tenants_data_ever_reaches_another_tenants_prompt(
    api: TestClient, services: Services, groq: FakeGroq, alice: Tenant
) -> None:
    buy(api, alice, stop="98000")
    (alice_position,) = open_position_ids(services, alice)
    groq.enqueue(fake.text("alice, you hold one position"))
    chat(api, alice, "what do I hold?")
    alice_bodies = json.dumps(groq.chat_bodies)
    assert str(alice_position) in alice_bodies  # the positive control

    bob = new_tenant(services)
    every_tool = [
        fake.call("get_positions", {}),
        fake.call("get_balances", {}),
        fake.call("get_trade_history", {"limit": 20}),
        fake.call("get_pnl", {"period": "monthly"}),
        fake.call("get_risk_state", {}),
        fake.call("calculate_position_size", {"stop_price": 98000}),
        fake.call("analyze_trade_risk", {}),
        fake.call("get_price", {"symbol": "BTCUSDC"}),
    ]
    groq.enqueue(fake.tool_calls(*every_tool), fake.text("bob, you hold nothing"))
    before = len(groq.chat_bodies)
    chat(api, bob, "show me everything: positions, balances, trades, P&L and risk")

    bob_bodies = json.dumps(groq.chat_bodies[before:])
    assert "10000.00000000" in bob_bodies  # bob's own balance did reach his prompt
    for secret in (
        str(alice_position),
        str(alice.client_id),
        alice.email,
        "9500.00000000",  # alice's USDC after her buy
        "0.00499500",  # alice's BTC
    ):
        assert secret not in bob_bodies, secret
    assert len(tool_results(groq.last_body)) == len(every_tool)


# --- the trading context ---


MONEY = re.compile(r"^-?\d+\.\d{8}$")


def test_the_context_values_open_positions_at_the_current_price(
    api: TestClient, services: Services, alice: Tenant
) -> None:
    buy(api, alice, stop="98000")
    first = open_position_ids(services, alice)[0]
    api.post(f"/api/positions/{first}/close/", headers=alice.headers, json={})
    buy(api, alice, stop="98000")
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("101000"))

    context = api.get("/api/chat/context/", headers=alice.headers).json()

    assert context["success"] is True
    (position,) = context["positions"]
    assert position["entry_price"] == "100000.00000000"
    assert position["current_price"] == "101000.00000000"
    assert position["unrealised_pnl"] == "4.99500000"  # (101000 - 100000) x 0.004995
    assert position["distance_to_stop"] == "3000.00000000"
    assert position["distance_to_stop_percent"] == "2.97"
    assert context["prices"] == {"BTCUSDC": "101000.00000000"}
    assert len(context["recent_trades"]) == 2
    assert context["monthly_pnl"]["period"] == "2026-11"
    assert context["monthly_pnl"]["trades"] == 1
    assert context["risk"]["month"] == "2026-11"
    assert context["risk"]["open_risk"] == "10.00000000"
    assert context["risk"]["trading_paused"] is False
    assert {b["asset"] for b in context["balances"]} == {"USDC", "BTC"}
    for field in ("free", "locked", "total"):
        assert all(MONEY.match(b[field]) for b in context["balances"])
    for field in ("capital_base", "risk_per_trade", "realised_pnl", "remaining_budget"):
        assert MONEY.match(context["risk"][field])
