"""The OpenAPI document: valid 3.1, every route listed, and a schemathesis run against the
real app (both backends) that finds no server error and no reply outside the document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import Case, CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route
from starlette.testclient import TestClient

from api.app import OPERATIONS
from api.openapi import openapi_path
from infra.bootstrap import Services
from tests.integration.test_api_support import BACKENDS, Tenant, new_tenant, shared_api

POSITIVE_CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
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


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


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
def test_schemathesis_finds_no_server_error(
    api: TestClient, operator: Tenant, document: dict[str, Any], mode: GenerationMode
) -> None:
    """Every operation, fixed seed, bounded examples; the operator's token reaches them all."""
    schema = schemathesis.openapi.from_dict(document)
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
            sent = case.as_transport_kwargs(base_url="http://testserver")
            reply = api.request(
                sent["method"],
                sent["url"],
                headers=sent.get("headers"),
                params=sent.get("params"),
                content=sent.get("data"),
                json=sent.get("json"),
            )
            assert reply.status_code < 500, f"{reply.status_code}: {reply.text}"
            checks: list[CheckFunction] = [not_a_server_error]
            if mode is GenerationMode.POSITIVE:
                checks = POSITIVE_CHECKS
            case.validate_response(reply, checks=checks)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
        except Exception as failure:  # collect them all: one report for every operation
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
