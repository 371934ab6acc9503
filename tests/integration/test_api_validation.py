"""Bad input is answered 400/413/422 in the error shape, with the field and the reason, and
never reaches the 500 handler; money is parsed as Decimal, never through float."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from api.errors import EXCEPTION_HANDLERS
from infra.bootstrap import Services
from tests.integration.test_api_support import BACKENDS, Tenant, new_tenant, shared_api

BUY = "/api/trade/buy-btc/"
INTENTS = "/api/intents/"
CALCULATE = "/api/margin/position/calculate/"
PRICE = "/api/paper/price/"
OPEN = "/api/margin/position/open/"


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, TestClient]]:
    with shared_api(str(request.param), tmp_path_factory.mktemp("validation")) as pair:
        yield pair


@pytest.fixture(scope="module")
def api(shared: tuple[Services, TestClient]) -> TestClient:
    return shared[1]


@pytest.fixture(scope="module")
def tenant(shared: tuple[Services, TestClient]) -> Tenant:
    return new_tenant(shared[0])


@pytest.fixture(scope="module")
def operator(shared: tuple[Services, TestClient]) -> Tenant:
    return new_tenant(shared[0], operator=True)


CALC = {"side": "LONG", "entry_price": 100000, "stop_price": 98000}

# (path, JSON body, status, field at fault)
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    (BUY, {"stop_price": "abc"}, 422, "stop_price"),
    (BUY, {"stop_price": True}, 422, "stop_price"),
    (BUY, {"stop_price": [98000]}, 422, "stop_price"),
    (BUY, {"stop_price": None}, 422, "stop_price"),
    (BUY, {"stop_price": -98000}, 422, "stop_price"),
    (BUY, {"stop_price": 0}, 422, "stop_price"),
    (BUY, {"stop_price": "NaN"}, 422, "stop_price"),
    (BUY, {"stop_price": "Infinity"}, 422, "stop_price"),
    (BUY, {"stop_price": "-Infinity"}, 422, "stop_price"),
    (BUY, {"stop_price": 1e300}, 422, "stop_price"),
    (BUY, {"stop_price": "1e-30"}, 422, "stop_price"),
    (BUY, {"stop_price": "98000.123456789"}, 422, "stop_price"),
    (BUY, {"stop_price": 98000, "quantity": 10**40}, 422, "quantity"),
    (BUY, {"stop_price": 98000, "quantity": "0"}, 422, "quantity"),
    (BUY, {"stop_price": 98000, "amount": -1}, 422, "amount"),
    (BUY, {"stop_price": 98000, "leverage": 3}, 422, "leverage"),  # unknown field
    (BUY, {"stop_price": 98000, "quantity": 0.001, "amount": 10}, 422, "quantity"),
    (INTENTS, {"symbol": "DOGEUSDC", "stop_price": 1}, 422, "symbol"),
    (INTENTS, {"symbol": "BTC/USDC"}, 422, "symbol"),
    (INTENTS, {"symbol": "X" * 500}, 422, "symbol"),
    (INTENTS, {"side": "sideways"}, 422, "side"),
    (INTENTS, {"margin": "maybe"}, 422, "margin"),
    (INTENTS, {"leverage": 0}, 422, "leverage"),
    (CALCULATE, {**CALC, "entry_price": "1e999999"}, 422, "entry_price"),
    (CALCULATE, {**CALC, "stop_price": 100000}, 422, "stop_price"),
    (CALCULATE, {**CALC, "leverage": "3.5.1"}, 422, "leverage"),
    (CALCULATE, {**CALC, "risk_percent": 1.5}, 422, "risk_percent"),
    (CALCULATE, {"side": "LONG"}, 422, "entry_price"),
    (PRICE, {"symbol": "BTCUSDC", "price": "0.001"}, 422, "price"),
    (PRICE, {"symbol": "BTCUSDC"}, 422, "price"),
    ("/api/policy/resume/", {"note": ""}, 422, "note"),
    ("/api/policy/resume/", {"note": 5}, 422, "note"),
    ("/api/positions/00000000-0000-0000-0000-000000000000/close/", {"x": 1}, 422, "x"),
    # Booleans are JSON booleans: no 0/1 or "true" coercion.
    (INTENTS, {"margin": 0}, 422, "margin"),
    (INTENTS, {"margin": 1}, 422, "margin"),
    (INTENTS, {"margin": "true"}, 422, "margin"),
    (OPEN, {**CALC, "dry_run": "false"}, 422, "dry_run"),
    (OPEN, {**CALC, "dry_run": 0}, 422, "dry_run"),
    # Decimal strings are what the document's pattern says, and nothing else.
    (BUY, {"stop_price": "0.00"}, 422, "stop_price"),
    (BUY, {"stop_price": " 98000"}, 422, "stop_price"),
    (BUY, {"stop_price": "9.8e4"}, 422, "stop_price"),
    (BUY, {"stop_price": "098000"}, 422, "stop_price"),
    (BUY, {"stop_price": "98_000"}, 422, "stop_price"),
    (BUY, {"stop_price": 98000, "quantity": "1000000000"}, 422, "quantity"),
    (INTENTS, {"leverage": "11"}, 422, "leverage"),
    (INTENTS, {"leverage": 10.001}, 422, "leverage"),
    (CALCULATE, {**CALC, "risk_percent": "0"}, 422, "risk_percent"),
    (CALCULATE, {**CALC, "risk_percent": "1.0001"}, 422, "risk_percent"),
    (
        "/api/guard/analyze/",
        {"message": "hi", "trade": {"leverage": "125.01"}},
        422,
        "trade.leverage",
    ),
    ("/api/chat/", {"message": 5}, 422, "message"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    BAD_BODIES,
    ids=[f"{p.split('/')[2]}-{i}" for i, (p, *_) in enumerate(BAD_BODIES)],
)
def test_bad_fields_are_named_with_a_reason(
    api: TestClient,
    tenant: Tenant,
    operator: Tenant,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    caller = operator if path == PRICE else tenant  # the paper market is the operator's
    reply = api.post(path, headers=caller.headers, json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()
    assert error["success"] is False
    assert error["field"] == field
    assert error["code"] in {"invalid_input", "malformed_body"}
    assert error["error"].startswith(f"{field}: ")


RAW_BODIES: list[tuple[bytes, int, str]] = [
    (b"{", 400, "malformed_body"),
    (b'{"stop_price": 98000,}', 400, "malformed_body"),
    (b'{"stop_price": NaN}', 400, "malformed_body"),
    (b'{"stop_price": Infinity}', 400, "malformed_body"),
    (b"[1, 2]", 400, "malformed_body"),
    (b'"stop"', 400, "malformed_body"),
    (b"\xff\xfe\x00", 400, "malformed_body"),
    (b'{"stop_price": ' + b"9" * 5000 + b"}", 400, "malformed_body"),
    (b"[" * 100_000 + b"]" * 100_000, 413, "payload_too_large"),
    (b"[" * 20_000 + b"]" * 20_000, 400, "malformed_body"),
    (b'{"note": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large"),
]


@pytest.mark.parametrize(
    ("raw", "status", "code"), RAW_BODIES, ids=[str(i) for i in range(len(RAW_BODIES))]
)
def test_malformed_and_oversized_bodies(
    api: TestClient, tenant: Tenant, raw: bytes, status: int, code: str
) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    reply = api.post(BUY, headers=headers, content=raw)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code
    assert reply.json()["success"] is False


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/trade/history/?days=-1", "query.days"),
        ("/api/trade/history/?limit=1e3", "query.limit"),
        ("/api/trade/pnl/?months=999", "query.months"),
        ("/api/positions/?limit=0", "query.limit"),
        ("/api/trade/balance/?asset=US%20DC", "query.asset"),
        ("/api/audit/events/?since=-4", "query.since"),
        ("/api/audit/events/?since=9223372036854775808", "query.since"),  # past 64 bits
    ],
)
def test_bad_query_parameters(api: TestClient, tenant: Tenant, path: str, field: str) -> None:
    reply = api.get(path, headers=tenant.headers)
    assert reply.status_code == 422
    assert reply.json()["field"] == field


# A lone surrogate is not text: JSON can escape one, UTF-8 cannot encode it.
NOT_TEXT_BODIES: list[tuple[str, bytes, str]] = [
    ("/api/chat/", b'{"message": "\\ud800"}', "message"),
    ("/api/guard/analyze/", b'{"trade": {"symbol": "BTC\\udfffUSDC"}}', "trade.symbol"),
    ("/api/policy/resume/", b'{"note": "fine \\ud83d"}', "note"),
    ("/api/policy/resume/", b'{"note": "\xed\xa0\x80"}', "note"),  # surrogate as raw bytes
    (INTENTS, b'{"side": ["LONG", "\\udc00"]}', "side.1"),
    (BUY, b'{"stop_price": 98000, "\\ud800": 1}', "\\ud800"),  # a key, named escaped
]


@pytest.mark.parametrize(
    ("path", "raw", "field"), NOT_TEXT_BODIES, ids=[str(i) for i in range(len(NOT_TEXT_BODIES))]
)
def test_text_that_is_not_unicode_is_refused_naming_the_field(
    api: TestClient, tenant: Tenant, path: str, raw: bytes, field: str
) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    reply = api.post(path, headers=headers, content=raw)
    assert reply.status_code == 422, reply.text
    assert reply.json() == {
        "success": False,
        "error": f"{field}: is not valid Unicode text",
        "code": "invalid_input",
        "field": field,
        "errors": [{"field": field, "reason": "is not valid Unicode text"}],
    }


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/audit/events/?client=%ED%A0%80", "query.client"),
        ("/api/trade/balance/?asset=US%FFDC", "query.asset"),
        ("/api/positions/?limit=5&status=%C3", "query.status"),
    ],
)
def test_query_text_that_is_not_utf8_is_refused(
    api: TestClient, tenant: Tenant, path: str, field: str
) -> None:
    reply = api.get(path, headers=tenant.headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field
    assert reply.json()["error"] == f"{field}: is not valid Unicode text"


def test_unknown_query_parameters_are_ignored_even_when_not_utf8(
    api: TestClient, tenant: Tenant
) -> None:
    assert api.get("/api/positions/?cb=%FF", headers=tenant.headers).status_code == 200


def test_unknown_routes_and_methods_answer_in_the_error_shape(
    api: TestClient, tenant: Tenant
) -> None:
    missing = api.get("/api/nothing/here/", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Not Found", "code": "not_found"}
    wrong = api.delete("/api/positions/", headers=tenant.headers)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


def test_money_is_parsed_exactly_never_through_float(api: TestClient, tenant: Tenant) -> None:
    # 0.1 + 0.2 style values: as a JSON number they must arrive digit for digit.
    body = b'{"stop_price": 98000.07, "quantity": 0.00300001, "entry_price": 100000.01}'
    headers = {**tenant.headers, "Content-Type": "application/json"}
    planned = api.post(INTENTS, headers=headers, content=body)
    assert planned.status_code == 201, planned.text
    intent = planned.json()["intent"]
    assert intent["stop_price"] == "98000.07000000"
    assert intent["entry_price"] == "100000.01000000"
    # The lot step is 0.00001: the planned quantity is rounded DOWN, exactly.
    assert intent["quantity"] == "0.00300000"
    risk = Decimal("0.00300") * (Decimal("100000.01") - Decimal("98000.07"))
    assert Decimal(intent["risk_amount"]) == risk


def test_every_path_answers_without_its_trailing_slash(api: TestClient, tenant: Tenant) -> None:
    for path in ["/api/trade/status", "/api/positions", "/api/policy", "/api/trade/history"]:
        assert api.get(path, headers=tenant.headers).status_code == 200, path
    calc = api.post("/api/margin/position/calculate", headers=tenant.headers, json=CALC)
    assert calc.status_code == 200


def test_the_last_resort_handler_hides_internals() -> None:
    """An unexpected exception becomes a 500 JSON reply without the exception's text."""

    def explode(request: Request) -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app = Starlette(routes=[Route("/boom", explode)], exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.get("/boom")
    assert reply.status_code == 500
    assert reply.json() == {
        "success": False,
        "error": "Internal server error",
        "code": "internal_error",
    }
    assert "hunter2" not in reply.text


def test_a_client_that_hangs_up_mid_body_is_an_info_line_not_an_error(
    api: TestClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """The body never arrives: the app logs one plain line and sends nothing back."""
    sent: list[Message] = []
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"note": ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/policy/resume/",
        "raw_path": b"/api/policy/resume/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {tenant.token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    caplog.set_level(logging.DEBUG)
    assert api.portal is not None  # the app's own event loop, lifespan running
    api.portal.call(api.app, scope, receive, send)
    assert sent == []
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in gone] == [
        (logging.INFO, "client disconnected during POST /api/policy/resume/", None)
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 'route="/api/policy/resume/",status="499"' in api.get("/metrics").text


def test_no_bad_input_reached_the_500_handler(api: TestClient) -> None:
    """Run last in this module: the metrics saw every reply above, and none was a 500."""
    metrics = api.get("/metrics").text
    assert 'status="500"' not in metrics
    assert 'status="422"' in metrics and 'status="400"' in metrics and 'status="413"' in metrics
