"""Intent detection (English and Portuguese) and the explicit "confirm <id>" message."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.assistant.keywords import (
    Intent,
    Topic,
    classify,
    detect_intent,
    parse_cancellation,
    parse_confirmation,
)

ID = UUID("8a693456-4fa3-42d5-8696-2e39169bab55")


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("Buy 0.01 BTC with a stop at 98000", Intent.BUY),
        ("I want to go long on bitcoin", Intent.BUY),
        ("Compra BTC com stop em 95000", Intent.BUY),
        ("quero comprar bitcoin", Intent.BUY),
        ("Sell my BTC", Intent.SELL),
        ("short ETH here", Intent.SELL),
        ("Vender tudo agora", Intent.SELL),
        ("close my position please", Intent.SELL),
        ("What is my current BTC position?", Intent.POSITIONS),
        ("Quais são minhas posições abertas?", Intent.POSITIONS),
        ("What's my balance?", Intent.BALANCE),
        ("Qual o meu saldo?", Intent.BALANCE),
        ("How much profit did I make this month?", Intent.BALANCE),
        ("Quanto lucrei este mês?", Intent.BALANCE),
        ("What is my drawdown?", Intent.RISK),
        ("Estou em pausa? Qual o meu risco?", Intent.RISK),
        ("What position size for entry 100000 stop 98000?", Intent.RISK),
        ("Qual o tamanho da posição com stop em 98000?", Intent.RISK),
        ("Analyze the BTC market", Intent.ANALYZE),
        ("Qual a tendência do preço do bitcoin?", Intent.ANALYZE),
        ("Hello Robson!", Intent.GENERAL),
        ("Olá, tudo bem?", Intent.GENERAL),
        ("How long is a month?", Intent.GENERAL),
        ("what is the short term outlook", Intent.ANALYZE),
    ],
)
def test_intents_are_detected_by_keywords_in_english_and_portuguese(
    message: str, intent: Intent
) -> None:
    assert detect_intent(message) is intent


@pytest.mark.parametrize(
    ("message", "topic"),
    [
        ("How much profit did I make?", Topic.PNL),
        ("show my balances", Topic.BALANCE),
        ("position size please", Topic.SIZING),
        ("what is the btc price", Topic.PRICE),
    ],
)
def test_the_finer_topic_picks_the_fallback_answer(message: str, topic: Topic) -> None:
    assert classify(message).topic is topic


@pytest.mark.parametrize(
    "message",
    [
        f"confirm {ID}",
        f"Confirm {ID}.",
        f"CONFIRM {str(ID).upper()}",
        f"yes, confirm {ID}",
        f"confirmo {ID}",
        f"Sim, confirmar a operação {ID}",
        f"confirm trade {ID}!",
        f"confirm: {ID}",
    ],
)
def test_an_explicit_confirmation_names_the_intent(message: str) -> None:
    assert parse_confirmation(message) == ID


@pytest.mark.parametrize(
    "message",
    [
        f"don't confirm {ID}",
        f"should I confirm {ID}?",
        f"what is {ID}",
        "confirm",
        "confirm 12345",
        f"confirm {ID} and also buy more",
        f"nao confirmo {ID}",
    ],
)
def test_anything_but_a_bare_confirmation_confirms_nothing(message: str) -> None:
    assert parse_confirmation(message) is None


@pytest.mark.parametrize(
    "message",
    [f"cancel {ID}", f"Cancel the trade {ID}.", f"no, cancel {ID}", f"cancelar proposta {ID}"],
)
def test_an_explicit_cancellation_names_the_intent_and_confirms_nothing(message: str) -> None:
    assert parse_cancellation(message) == ID
    assert parse_confirmation(message) is None


@pytest.mark.parametrize(
    "message",
    [f"don't cancel {ID}", f"should I cancel {ID}?", f"confirm {ID}", f"cancel {ID} and buy"],
)
def test_anything_but_a_bare_cancellation_cancels_nothing(message: str) -> None:
    assert parse_cancellation(message) is None
