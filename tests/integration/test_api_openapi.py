"""The OpenAPI document: valid 3.1, every route listed, and a schemathesis run with all its
checks against the real app served over HTTP (both backends): no server error, no reply
outside the document, no data the document allows refused by validation, nor the reverse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from jsonschema_rs import Draft202012Validator
from openapi_spec_validator import validate
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from starlette.routing import Route
from starlette.testclient import TestClient

import tests.integration.schemathesis_hooks  # noqa: F401  (registers the API's own check)
from api.app import OPERATIONS, create_app
from api.openapi import openapi_path
from infra.bootstrap import Services
from tests.integration.test_api_support import BACKENDS, Tenant, new_tenant, shared_api

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, TestClient]]:
    with shared_api(str(request.param), tmp_path_factory.mktemp("openapi")) as pair:
        yield pair


@pytest.fixture(scope="module")
def api(shared: tuple[Services, TestClient]) -> TestClient:
    return shared[1]


@pytest.fixture(scope="module")
def operator(shared: tuple[Services, TestClient]) -> Tenant:
    return new_tenant(shared[0], capital="5000", operator=True)


@pytest.fixture(scope="module")
def document(api: TestClient) -> dict[str, Any]:
    reply = api.get("/openapi.json")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture(scope="module")
def served(shared: tuple[Services, TestClient]) -> Iterator[str]:
    """The same services behind uvicorn on a free port, so the checks that send requests of
    their own (no token, another method) reach the app over real HTTP."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(shared[0]), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="openapi-server", daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)  # wait for the socket, or for a failed start
        assert thread.is_alive(), "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("ChatRequest", {"message": None}),
        ("ChatRequest", {}),
        ("GuardRequest", {"message": "   "}),
        ("PlanIntent", {"margin": 0}),
        ("MarginOpen", {"side": "LONG", "entry_price": 1, "stop_price": 1, "dry_run": "true"}),
        ("BuyBtc", {"stop_price": "0"}),
        ("MarginCalculation", {"side": "LONG", "entry_price": "1", "stop_price": "0.000000001"}),
    ],
)
def test_the_document_refuses_what_the_server_refuses(
    document: dict[str, Any], model: str, body: dict[str, Any]
) -> None:
    """Bodies the server answers 4xx (see test_api_validation) are invalid in the document too."""
    schema = {**document["components"]["schemas"][model], "components": document["components"]}
    assert not Draft202012Validator(schema).is_valid(body)


def test_every_route_is_in_the_document(api: TestClient, document: dict[str, Any]) -> None:
    listed = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for operation in OPERATIONS:
        assert (openapi_path(operation.path), operation.method.lower()) in listed
    assert len(listed) == len(OPERATIONS)
    app_routes = {
        (openapi_path(route.path), method.lower())
        for route in api.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.include_in_schema
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert app_routes == listed


def test_the_docs_page_lists_every_operation_without_any_cdn(
    api: TestClient, document: dict[str, Any]
) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for path in document["paths"]:
        assert f"<code>{path}</code>" in page.text
    assert "http://" not in page.text and "https://" not in page.text


# Hypothesis warns when the global `random` state changes while it draws a case; here that
# is psycopg_pool jittering a new connection's lifetime in its own thread, not the strategy.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_nothing_with_all_its_checks(
    served: str, operator: Tenant, document: dict[str, Any], mode: GenerationMode
) -> None:
    """Every operation, fixed seed, bounded examples, every check schemathesis has (plus the
    API's own); the operator's token reaches every operation."""
    schema = schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_path(CONFIG))
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES[mode],
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode, headers=operator.headers))
        def exercise(case: Case[Any]) -> None:
            case.call_and_validate(base_url=served, headers=operator.headers)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
        except Exception as failure:  # collect them all: one report for every operation
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
