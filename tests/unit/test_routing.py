"""The indexed router answers every request exactly as Starlette's own router does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route, Router
from starlette.testclient import TestClient

from api.routing import IndexedRouter, candidates


def named(name: str) -> Callable[[Request], PlainTextResponse]:
    def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


# Orders that matter: a pattern before an exact path it also matches, the same path twice
# with different methods, paths with and without their trailing slash.
ROUTES: list[BaseRoute] = [
    Route("/api/positions/{position_id}/", named("position"), methods=["GET"]),
    Route("/api/positions/open/", named("open positions"), methods=["GET"]),
    Route("/api/trade/history/", named("history"), methods=["GET"]),
    Route("/api/trade/history", named("history bare"), methods=["GET"]),
    Route("/api/trade/buy-btc/", named("buy"), methods=["POST"]),
    Route("/api/trade/buy-btc/", named("buy again"), methods=["POST", "PUT"]),
    Route("/api/trade/{kind}/", named("any trade"), methods=["DELETE"]),
    Route("/api/policy/", named("policy"), methods=["GET"]),
    Route("/healthz", named("health"), methods=["GET"]),
]
REQUESTS = [
    (method, path)
    for method in ["GET", "POST", "PUT", "DELETE"]
    for path in [
        "/api/positions/open/",
        "/api/positions/abc/",
        "/api/positions/open",
        "/api/trade/history/",
        "/api/trade/history",
        "/api/trade/buy-btc/",
        "/api/trade/buy-btc",
        "/api/policy",
        "/api/policy/",
        "/healthz",
        "/healthz/",
        "/nowhere",
    ]
]


def client(router: Router) -> TestClient:
    app = Starlette()
    app.router = router
    return TestClient(app, follow_redirects=False)


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_every_request_gets_starlettes_answer(method: str, path: str) -> None:
    with client(Router(ROUTES)) as plain, client(IndexedRouter(ROUTES)) as indexed:
        expected = plain.request(method, path)
        found = indexed.request(method, path)
    assert (found.status_code, found.text) == (expected.status_code, expected.text)
    assert found.headers.get("location") == expected.headers.get("location")
    assert found.headers.get("allow") == expected.headers.get("allow")


def test_an_exact_path_keeps_the_patterns_that_match_it_in_order() -> None:
    by_path = candidates(ROUTES)
    assert [r.path for r in by_path["/api/positions/open/"] if isinstance(r, Route)] == [
        "/api/positions/{position_id}/",
        "/api/positions/open/",
    ]
    assert len(by_path["/api/trade/buy-btc/"]) == 3  # both exact routes and the pattern
    assert [r.path for r in by_path["/healthz"] if isinstance(r, Route)] == ["/healthz"]
    assert "/api/positions/{position_id}/" not in by_path


def test_under_a_root_path_it_routes_as_starlette_does() -> None:
    routes: list[BaseRoute] = [Route("/api/trade/history/", named("history"))]
    for router in (Router(routes), IndexedRouter(routes)):
        app = Starlette()
        app.router = router
        with TestClient(app, root_path="/api") as mounted:
            assert mounted.get("/api/trade/history/").status_code == 404
            assert mounted.get("/api/api/trade/history/").text == "history {}"
