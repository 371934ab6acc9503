"""GroqChatModel against the fake Groq server, through the real groq client over HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal

import groq
import pytest
from groq.types.chat import ChatCompletionMessageParam

from domain.assistant.ports import ModelReply, ModelUnavailable, ToolCall
from infra.groq_model import GroqChatModel
from tests.fakes import groq as fake
from tests.fakes.groq import FakeGroq, JsonObject, Reply

KEY = "gsk_live_SECRET_0123456789abcdefABCDEF"
HELLO: list[dict[str, object]] = [
    {"role": "system", "content": "You are Robson, a risk-first trading assistant."},
    {"role": "user", "content": "What is my BTC position?"},
]
PRICE_TOOL: dict[str, object] = {
    "type": "function",
    "function": {
        "name": "get_price",
        "description": "Current price of a symbol",
        "parameters": {
            "type": "object",
            "properties": {"symbol": {"type": "string"}},
            "required": ["symbol"],
        },
    },
}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every request on 127.0.0.1 even if the environment names a proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[FakeGroq]:
    with FakeGroq(api_key=KEY) as running:
        yield running


def chat_model(server: FakeGroq, **options: object) -> GroqChatModel:
    settings: dict[str, object] = {"timeout_seconds": 2.0, "max_retries": 0, **options}
    return GroqChatModel(KEY, base_url=server.base_url, **settings)  # type: ignore[arg-type]


def failure(model: GroqChatModel) -> ModelUnavailable:
    with pytest.raises(ModelUnavailable) as raised:
        model.complete(HELLO, [])
    return raised.value


# --------------------------------------------------------------------------- replies


def test_a_text_reply_comes_back_with_the_model_that_answered(server: FakeGroq) -> None:
    server.enqueue(fake.text("You have no open BTC position."))

    with chat_model(server) as model:
        reply = model.complete(HELLO, [])

    assert reply == ModelReply("You have no open BTC position.", (), "openai/gpt-oss-20b")
    assert model.available and model.last_error is None


def test_the_request_carries_model_token_limit_messages_and_key(server: FakeGroq) -> None:
    server.enqueue(fake.text("ok"))

    with chat_model(server, model="openai/gpt-oss-120b", max_tokens=512) as model:
        model.complete(HELLO, [])

    (request,) = server.requests
    assert request.authorization == f"Bearer {KEY}"
    assert request.body == {
        "model": "openai/gpt-oss-120b",
        "messages": HELLO,
        "max_completion_tokens": 512,  # Groq deprecated max_tokens in favour of this
    }


def test_defaults_are_the_current_small_model_and_4096_tokens(server: FakeGroq) -> None:
    server.enqueue(fake.text("ok"))

    with GroqChatModel(KEY, base_url=server.base_url, max_retries=0) as model:
        model.complete(HELLO, [])

    assert server.last_body["model"] == "openai/gpt-oss-20b"
    assert server.last_body["max_completion_tokens"] == 4096


def test_tools_are_sent_as_given(server: FakeGroq) -> None:
    server.enqueue(fake.text("ok"))

    with chat_model(server) as model:
        model.complete(HELLO, [PRICE_TOOL])

    assert server.last_body["tools"] == [PRICE_TOOL]


def test_tool_calls_keep_their_raw_arguments_even_when_malformed(server: FakeGroq) -> None:
    server.enqueue(
        fake.tool_calls(
            fake.call("get_price", {"symbol": "BTCUSDC"}, id="call_a"),
            fake.call("get_balance", '{"asset": "USDC"', id="call_b"),  # truncated JSON
            fake.call("get_positions", "not json at all", id="call_c"),
        )
    )

    with chat_model(server) as model:
        reply = model.complete(HELLO, [PRICE_TOOL])

    assert reply.content is None
    assert reply.tool_calls == (
        ToolCall("call_a", "get_price", '{"symbol": "BTCUSDC"}'),
        ToolCall("call_b", "get_balance", '{"asset": "USDC"'),
        ToolCall("call_c", "get_positions", "not json at all"),
    )


def test_a_tool_round_trip_sends_the_tool_result_back_to_the_model(server: FakeGroq) -> None:
    def responder(body: JsonObject) -> Reply:
        last = body["messages"][-1]
        if last["role"] == "tool":
            price = json.loads(last["content"])["price"]
            return fake.text(f"BTC trades at {price} USDC.")
        return fake.tool_calls(fake.call("get_price", {"symbol": "BTCUSDC"}, id="call_1"))

    server.responder = responder
    messages = list(HELLO)

    with chat_model(server) as model:
        first = model.complete(messages, [PRICE_TOOL])
        (tool_call,) = first.tool_calls
        messages += [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": tool_call.id,
                        "type": "function",
                        "function": {"name": tool_call.name, "arguments": tool_call.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tool_call.id, "content": '{"price": "98500.00"}'},
        ]
        second = model.complete(messages, [PRICE_TOOL])

    assert second.content == "BTC trades at 98500.00 USDC."
    sent = server.chat_bodies[1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_1"
    assert sent[-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"price": "98500.00"}',
    }


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (fake.unauthorized(), "auth"),
        (fake.Error(403, fake.groq_error("Forbidden", "permission_denied", None)), "auth"),
        (fake.rate_limited(retry_after=7), "rate_limited"),
        (fake.server_error(500), "server_error"),
        (fake.server_error(503), "server_error"),
        (fake.decommissioned(status=400), "decommissioned"),
        (fake.decommissioned(status=404), "decommissioned"),
        (fake.bad_request("'messages.0.content' : value must be a string"), "bad_request"),
        (fake.Error(502, "<html>Bad Gateway</html>"), "server_error"),
    ],
)
def test_every_error_answer_becomes_model_unavailable_of_the_right_kind(
    server: FakeGroq, reply: Reply, kind: str
) -> None:
    server.enqueue(reply)

    with chat_model(server) as model:
        error = failure(model)

    assert error.kind == kind
    assert error.code == "model_unavailable"
    assert model.last_error == error.reason
    assert model.last_error_kind == kind
    assert not model.available
    assert len(server.requests) == 1  # max_retries=0: exactly one attempt


def test_a_wrong_key_is_an_auth_failure(server: FakeGroq) -> None:
    with GroqChatModel("gsk_wrong_key", base_url=server.base_url, max_retries=0) as model:
        error = failure(model)

    assert error.kind == "auth"
    assert server.requests[0].status == 401


def test_rate_limit_reports_how_long_to_wait(server: FakeGroq) -> None:
    server.enqueue(fake.rate_limited(retry_after=7))

    with chat_model(server) as model:
        error = failure(model)

    assert error.retry_after_seconds == Decimal(7)
    assert "7 s" in error.reason


def test_decommissioned_model_names_the_model_and_a_replacement(server: FakeGroq) -> None:
    server.enqueue(fake.decommissioned())

    with chat_model(server, model="llama3-8b-8192") as model:
        error = failure(model)

    assert "llama3-8b-8192" in error.reason
    assert "openai/gpt-oss-20b" in error.reason
    assert "ROBSON_AI_MODEL" in error.reason


def test_an_answer_slower_than_the_timeout_is_a_timeout(server: FakeGroq) -> None:
    server.enqueue(fake.delay(30))

    with chat_model(server, timeout_seconds=0.3) as model:
        error = failure(model)

    assert error.kind == "timeout"
    assert "0.3 s" in error.reason


def test_nobody_listening_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens once the probe closes

    with GroqChatModel(KEY, base_url=f"http://127.0.0.1:{closed_port}", max_retries=0) as model:
        error = failure(model)

    assert error.kind == "connection"


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_without_a_key_nothing_is_sent_and_the_kind_is_no_api_key(
    server: FakeGroq, missing: str | None
) -> None:
    with GroqChatModel(missing, base_url=server.base_url) as model:
        error = failure(model)

    assert error.kind == "no_api_key"
    assert "GROQ_API_KEY" in error.reason
    assert not model.configured and not model.available
    assert server.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        fake.unauthorized(f"Invalid API Key: {KEY}"),
        fake.bad_request(f"key {KEY} is not allowed to use tools"),
        fake.Error(400, f"plain text echoing {KEY}"),
        fake.bad_request(f"unknown key {KEY[:20]}..."),  # a truncated echo
        fake.rate_limited(),
        fake.server_error(),
        fake.decommissioned(),
    ],
)
def test_the_api_key_never_appears_in_an_error(server: FakeGroq, reply: Reply) -> None:
    server.enqueue(reply)

    with chat_model(server) as model:
        error = failure(model)

    assert error.__cause__ is None and error.__suppress_context__
    for text in (str(error), error.reason, repr(error), model.last_error or "", repr(model)):
        assert KEY not in text
        assert "SECRET" not in text


def test_the_reason_of_a_bad_request_keeps_groqs_explanation(server: FakeGroq) -> None:
    server.enqueue(fake.bad_request("'messages.0.content' : value must be a string"))

    with chat_model(server) as model:
        error = failure(model)

    assert "HTTP 400" in error.reason
    assert "'messages.0.content' : value must be a string" in error.reason


# --------------------------------------------------------------------------- retries and state


def test_retries_are_bounded_by_max_retries(server: FakeGroq) -> None:
    server.enqueue(*[fake.server_error(retry_after_ms=10)] * 3, fake.text("late"))

    with chat_model(server, max_retries=1) as model:
        error = failure(model)

    assert error.kind == "server_error"
    assert len(server.requests) == 2
    assert server.pending == 2


def test_a_retry_can_recover_from_a_rate_limit(server: FakeGroq) -> None:
    server.enqueue(fake.rate_limited(retry_after=1, retry_after_ms=10), fake.text("ok"))

    with chat_model(server, max_retries=1) as model:
        reply = model.complete(HELLO, [])

    assert reply.content == "ok"
    assert len(server.requests) == 2


def test_a_success_clears_the_last_error(server: FakeGroq) -> None:
    server.enqueue(fake.server_error(), fake.text("back"))

    with chat_model(server) as model:
        failure(model)
        assert not model.available
        model.complete(HELLO, [])

    assert model.available
    assert model.last_error is None and model.last_error_kind is None


# --------------------------------------------------------------------------- the fake itself


def test_the_fakes_answers_pass_the_clients_strict_validation(server: FakeGroq) -> None:
    server.enqueue(
        fake.text("hello"), fake.tool_calls(fake.call("get_price", {"symbol": "BTCUSDC"}))
    )
    client = groq.Groq(
        api_key=KEY,
        base_url=server.base_url,
        max_retries=0,
        timeout=2.0,
        _strict_response_validation=True,
    )

    user: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with client:
        text = client.chat.completions.create(model="openai/gpt-oss-20b", messages=user)
        calls = client.chat.completions.create(model="openai/gpt-oss-20b", messages=user)
        models = client.models.list()

    assert text.choices[0].message.content == "hello"
    assert calls.choices[0].finish_reason == "tool_calls"
    assert [m.id for m in models.data] == ["openai/gpt-oss-20b", "openai/gpt-oss-120b"]


def test_the_fake_rejects_requests_groq_would_reject(server: FakeGroq) -> None:
    client = groq.Groq(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=2.0)
    with client, pytest.raises(groq.BadRequestError) as raised:
        client.chat.completions.create(model="openai/gpt-oss-20b", messages=[])

    assert raised.value.body == {
        "error": {
            "message": "'messages' : must contain at least 1 item",
            "type": "invalid_request_error",
            "code": None,
        }
    }
    assert server.pending == 0 and len(server.requests) == 1
