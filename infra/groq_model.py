"""The `ChatModel` port on Groq's OpenAI-compatible API, through the official `groq` client.

Every failure leaves as `ModelUnavailable` with a kind the chat use case can act on, and a
reason that is safe to show: the API key is never part of it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, cast

import groq
import httpx

from domain.assistant.ports import ModelReply, ModelUnavailable, ToolCall, UnavailableKind

if TYPE_CHECKING:
    from types import TracebackType

    from groq.types.chat import (
        ChatCompletion,
        ChatCompletionMessageParam,
        ChatCompletionToolParam,
    )

DEFAULT_MODEL = "openai/gpt-oss-20b"
DEFAULT_BASE_URL = "https://api.groq.com"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_RETRIES = 2
_GROQ_KEY = re.compile(r"gsk_[A-Za-z0-9_\-]+")
_DETAIL_LIMIT = 300


class GroqChatModel:
    """Groq chat completions with tool calling; remembers the last failure for /chat/status."""

    provider = "Groq"

    def __init__(
        self,
        api_key: str | None,
        *,
        model: str = DEFAULT_MODEL,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        base_url: str | None = None,
    ) -> None:
        if not model.strip():
            raise ValueError("model must not be blank")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.model = model
        self.max_tokens = max_tokens
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key.strip() if api_key and api_key.strip() else None
        # Explicit key and base URL: the client must not fall back to GROQ_* variables itself.
        self._client = (
            groq.Groq(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=timeout_seconds,
                max_retries=max_retries,
            )
            if self._api_key
            else None
        )
        self.last_error: str | None = None
        self.last_error_kind: UnavailableKind | None = None

    def __repr__(self) -> str:
        return f"GroqChatModel(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def available(self) -> bool:
        """Configured, and the last call (if any) succeeded."""
        return self.configured and self.last_error is None

    def complete(
        self, messages: list[dict[str, object]], tools: list[dict[str, object]]
    ) -> ModelReply:
        if self._client is None:
            raise self._failed(
                ModelUnavailable(
                    "The AI assistant is not configured: GROQ_API_KEY is not set.", "no_api_key"
                )
            )
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                tools=cast("list[ChatCompletionToolParam]", tools) if tools else groq.omit,
                max_completion_tokens=self.max_tokens,
            )
        except groq.GroqError as exc:
            # `from None`: the groq exception holds the request, Authorization header included.
            raise self._failed(self._translate(exc)) from None
        reply = self._reply(completion)
        self.last_error = None
        self.last_error_kind = None
        return reply

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> GroqChatModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ---- translation

    def _reply(self, completion: ChatCompletion) -> ModelReply:
        if not completion.choices:
            raise self._failed(ModelUnavailable("Groq returned no answer.", "server_error"))
        message = completion.choices[0].message
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in message.tool_calls or ()
        )
        return ModelReply(content=message.content, tool_calls=calls, model=completion.model)

    def _translate(self, exc: groq.GroqError) -> ModelUnavailable:
        if isinstance(exc, groq.APITimeoutError):
            return ModelUnavailable(
                f"Groq did not answer within {self.timeout_seconds:g} s.", "timeout"
            )
        if isinstance(exc, groq.APIConnectionError):
            return ModelUnavailable(f"Could not connect to Groq at {self.base_url}.", "connection")
        if isinstance(exc, groq.APIStatusError):
            return self._translate_status(exc)
        if isinstance(exc, groq.APIResponseValidationError):
            return ModelUnavailable("Groq sent a response that could not be read.", "server_error")
        return ModelUnavailable(f"Groq call failed ({type(exc).__name__}).", "server_error")

    def _translate_status(self, exc: groq.APIStatusError) -> ModelUnavailable:
        status = exc.status_code
        code, detail = _error_code_and_message(exc.body)
        if code == "model_decommissioned":
            return ModelUnavailable(
                f"The model {self.model!r} has been decommissioned by Groq; set ROBSON_AI_MODEL "
                f"to a current model such as {DEFAULT_MODEL!r}.",
                "decommissioned",
            )
        if status in (401, 403):
            return ModelUnavailable(
                f"Groq rejected the API key (HTTP {status}); check GROQ_API_KEY.", "auth"
            )
        if status == 429:
            wait = _retry_after(exc.response.headers)
            hint = f" Retry in {wait} s." if wait is not None else ""
            return ModelUnavailable(
                f"Groq rate limit reached (HTTP 429).{hint}",
                "rate_limited",
                retry_after_seconds=wait,
            )
        if status >= 500:
            return ModelUnavailable(f"Groq server error (HTTP {status}).", "server_error")
        suffix = f": {self._redact(detail)[:_DETAIL_LIMIT]}" if detail else "."
        return ModelUnavailable(f"Groq rejected the request (HTTP {status}){suffix}", "bad_request")

    def _failed(self, error: ModelUnavailable) -> ModelUnavailable:
        safe = ModelUnavailable(
            self._redact(error.reason), error.kind, retry_after_seconds=error.retry_after_seconds
        )
        self.last_error = safe.reason
        self.last_error_kind = safe.kind
        return safe

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _GROQ_KEY.sub("gsk_***", text)


def _error_code_and_message(body: object) -> tuple[str | None, str | None]:
    """Groq's error body is {"error": {"message", "type", "code"}}; anything else is opaque."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, body if isinstance(body, str) and body else None
    code = error.get("code")
    message = error.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def _retry_after(headers: httpx.Headers) -> Decimal | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after`, as Groq sends them."""
    for name, scale in (("retry-after-ms", Decimal("0.001")), ("retry-after", Decimal(1))):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = Decimal(value.strip()) * scale
        except InvalidOperation:
            continue
        if seconds.is_finite() and seconds >= 0:
            return seconds
    return None
