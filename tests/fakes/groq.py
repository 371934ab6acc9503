"""A fake Groq server on 127.0.0.1 that the real `groq.Groq` client talks to over HTTP.

It speaks the OpenAI-compatible `POST /openai/v1/chat/completions` and
`GET /openai/v1/models`, checks the bearer key like Groq, records every request, and
answers from a queue of scripted replies (text, tool calls, Groq's error bodies, a delay
past the client's timeout), then from an optional responder for multi-turn round trips.
Every success body passes the client's strict response validation.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.loopback import LoopbackFake, LoopbackServer, TrackedHandler

CHAT_PATH = "/openai/v1/chat/completions"
MODELS_PATH = "/openai/v1/models"
DEFAULT_API_KEY = "gsk_fake_0123456789abcdef"
DEFAULT_MODELS = ("openai/gpt-oss-20b", "openai/gpt-oss-120b")
CREATED = 1_700_000_000

JsonObject = dict[str, Any]


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Text:
    """An assistant message with plain content."""

    content: str
    model: str | None = None  # None = echo the requested model
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call; a `str` argument is sent verbatim, so it may be malformed JSON."""

    name: str
    arguments: str | Mapping[str, Any]
    id: str | None = None  # None = "call_<n>"


@dataclass(frozen=True)
class ToolCalls:
    """An assistant message asking for one or several tools (finish_reason "tool_calls")."""

    calls: tuple[ScriptedCall, ...]
    content: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error with a JSON (or raw text) body, sent instead of a completion."""

    status: int
    body: JsonObject | str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decommissioned:
    """Groq's answer for a retired model; names the requested model unless one is given."""

    status: int = 400
    model: str | None = None


@dataclass(frozen=True)
class Delay:
    """Answer `then` only after `seconds` (longer than the client's timeout) or at stop()."""

    seconds: float
    then: Reply = Text("too late")


Reply = Text | ToolCalls | Error | Decommissioned | Delay
Responder = Callable[[JsonObject], Reply]


def text(content: str, model: str | None = None) -> Text:
    return Text(content, model)


def tool_calls(*calls: ScriptedCall, content: str | None = None) -> ToolCalls:
    return ToolCalls(tuple(calls), content)


def call(name: str, arguments: str | Mapping[str, Any], id: str | None = None) -> ScriptedCall:
    return ScriptedCall(name, arguments, id)


def groq_error(message: str, type_: str, code: str | None) -> JsonObject:
    return {"error": {"message": message, "type": type_, "code": code}}


def unauthorized(message: str = "Invalid API Key") -> Error:
    return Error(401, groq_error(message, "invalid_request_error", "invalid_api_key"))


def rate_limited(retry_after: int = 7, retry_after_ms: int | None = None) -> Error:
    """429 with `retry-after` seconds; `retry_after_ms` lets a retrying client wait briefly."""
    headers = {"retry-after": str(retry_after)}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    message = (
        "Rate limit reached for model in organization `org_fake` on tokens per minute "
        f"(TPM): Limit 8000, Used 7900, Requested 500. Please try again in {retry_after}s."
    )
    return Error(429, groq_error(message, "tokens", "rate_limit_exceeded"), headers)


def server_error(status: int = 500, retry_after_ms: int | None = None) -> Error:
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return Error(
        status, groq_error("Internal Server Error", "internal_server_error", None), headers
    )


def bad_request(message: str = "'messages' : must contain at least 1 item") -> Error:
    return Error(400, groq_error(message, "invalid_request_error", None))


def decommissioned(status: int = 400, model: str | None = None) -> Decommissioned:
    return Decommissioned(status, model)


def delay(seconds: float, then: Reply | None = None) -> Delay:
    return Delay(seconds, Text("too late") if then is None else then)


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; `body` is the parsed JSON (None when absent or invalid)."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: JsonObject | None
    status: int

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- server


class FakeGroq(LoopbackFake):
    """Groq's chat-completions API, scripted, on 127.0.0.1:<free port>."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        models: Iterable[str] = DEFAULT_MODELS,
        responder: Responder | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self.responder = responder
        super().__init__(_Handler, poll_interval=0.05)
        self._replies: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting and inspection

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies for the next chat completions, in order; the responder comes after."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_bodies(self) -> list[JsonObject]:
        """Bodies of every chat-completions request, including the rejected ones."""
        return [r.body for r in self.requests if r.path == CHAT_PATH and r.body is not None]

    @property
    def last_body(self) -> JsonObject:
        bodies = self.chat_bodies
        if not bodies:
            raise AssertionError("FakeGroq received no chat completion request")
        return bodies[-1]

    # ---- request handling (handler threads)

    def _handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> _Answer:
        body: JsonObject | None = None
        invalid_json = False
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                invalid_json = True
            else:
                body = parsed if isinstance(parsed, dict) else None
                invalid_json = body is None
        answer = self._answer(method, path, headers, body, invalid_json)
        with self._lock:
            self._requests.append(RecordedRequest(method, path, headers, body, answer.status))
        return answer

    def _answer(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: JsonObject | None,
        invalid_json: bool,
    ) -> _Answer:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self._render(unauthorized(), body)
        if method == "GET" and path == MODELS_PATH:
            return _json(200, self._models_list())
        if method != "POST" or path != CHAT_PATH:
            return _json(
                404,
                groq_error(f"Unknown request URL: {method} {path}", "invalid_request_error", None),
            )
        if invalid_json or body is None:
            return self._render(bad_request("request body must be a JSON object"), body)
        problem = _invalid_chat_request(body)
        if problem:
            return self._render(bad_request(problem), body)
        return self._render(self._next_reply(body), body)

    def _next_reply(self, body: JsonObject) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            responder = self.responder
        if responder is None:
            return Error(500, groq_error("FakeGroq: no scripted reply left", "fake_error", None))
        try:
            return responder(body)
        except Exception as exc:  # a broken responder must show up in the test, not hang it
            return Error(500, groq_error(f"FakeGroq responder failed: {exc!r}", "fake_error", None))

    def _render(self, reply: Reply, body: JsonObject | None) -> _Answer:
        requested = body.get("model") if body else None
        model = requested if isinstance(requested, str) else DEFAULT_MODELS[0]
        if isinstance(reply, Delay):
            self._stopping.wait(reply.seconds)
            return self._render(reply.then, body)
        if isinstance(reply, Error):
            if isinstance(reply.body, str):
                return _Answer(reply.status, reply.body.encode(), reply.headers)
            return _json(reply.status, reply.body, reply.headers)
        if isinstance(reply, Decommissioned):
            retired = reply.model or model
            notice = (
                f"The model `{retired}` has been decommissioned and is no longer supported. "
                "Please refer to https://console.groq.com/docs/deprecations for a "
                "recommendation on which model to use instead."
            )
            return _json(
                reply.status, groq_error(notice, "invalid_request_error", "model_decommissioned")
            )
        if isinstance(reply, Text):
            message: JsonObject = {"role": "assistant", "content": reply.content}
            return _json(200, self._completion(reply.model or model, message, reply.finish_reason))
        calls = [
            {
                "id": c.id or f"call_{next(self._ids)}",
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.arguments
                    if isinstance(c.arguments, str)
                    else json.dumps(dict(c.arguments)),
                },
            }
            for c in reply.calls
        ]
        message = {"role": "assistant", "content": reply.content, "tool_calls": calls}
        return _json(200, self._completion(reply.model or model, message, "tool_calls"))

    def _completion(self, model: str, message: JsonObject, finish_reason: str) -> JsonObject:
        n = next(self._ids)
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "x_groq": {"id": f"req_fake_{n}"},
        }

    def _models_list(self) -> JsonObject:
        return {
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "created": CREATED,
                    "owned_by": "OpenAI",
                    "active": True,
                    "context_window": 131072,
                }
                for model in self.models
            ],
        }


def _invalid_chat_request(body: JsonObject) -> str | None:
    """The checks Groq makes before any model runs, so adapter bugs surface as 400s."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' : property 'model' is missing"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' : must contain at least 1 item"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
            "tool",
        ):
            return f"'messages.{i}' : discriminator property 'role' has invalid value"
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not tools):
        return "'tools' : must contain at least 1 item"
    return None


def _json(status: int, payload: JsonObject, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), {**(headers or {})})


class _Server(LoopbackServer):
    fake: FakeGroq


class _Handler(TrackedHandler):
    server: _Server

    def serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        path = self.path.split("?", 1)[0]
        found = self.server.fake._handle(method, path, headers, raw)
        self.answer(found.status, "application/json", found.body, found.headers)
