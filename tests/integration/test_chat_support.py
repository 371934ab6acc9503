"""Helpers shared by the chat tests (no tests here): the assistant on the fake Groq server
through the real groq client, and chat calls over HTTP. The fixtures are imported by the chat
test modules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from domain.assistant.chat import Assistant
from infra.bootstrap import Services
from infra.groq_model import GroqChatModel
from tests.fakes.groq import FakeGroq, JsonObject
from tests.integration.test_api_support import Tenant, running

KEY = "gsk_live_SECRET_chat_0123456789abcdefABCDEF"
MODEL = "openai/gpt-oss-20b"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def groq() -> Iterator[FakeGroq]:
    with FakeGroq(api_key=KEY) as server:
        yield server


@pytest.fixture
def api(services: Services, groq: FakeGroq) -> Iterator[TestClient]:
    """The app, its assistant on the fake Groq."""
    use_fake_groq(services, groq)
    with running(services) as client:
        yield client


def use_fake_groq(services: Services, groq: FakeGroq, timeout: float = 1.0) -> GroqChatModel:
    """Point `services.assistant` at the fake: the real client, no retries, a short timeout."""
    model = GroqChatModel(KEY, base_url=groq.base_url, timeout_seconds=timeout, max_retries=0)
    services.assistant = Assistant(services.ledger, services.read_models, model, services.store)
    return model


def chat(
    client: TestClient, tenant: Tenant, message: str, conversation_id: str | None = None
) -> dict[str, Any]:
    """A chat turn that must succeed; returns the reply body."""
    body: dict[str, Any] = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    response = client.post("/api/chat/", headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def tool_results(body: JsonObject) -> dict[str, Any]:
    """tool_call_id -> the parsed content of each tool message in one request body."""
    return {
        m["tool_call_id"]: json.loads(m["content"])
        for m in body["messages"]
        if m.get("role") == "tool"
    }


def open_position_ids(services: Services, tenant: Tenant) -> list[UUID]:
    return [r.position_id for r in services.read_models.positions(tenant.client_id, "open")]


def caught_up(services: Services) -> None:
    """Wait until the read models include every event logged so far (no sleeping)."""
    last = services.store.recorder.max_notification_id() or 0
    assert services.read_models.wait_for(last, timeout=10)
