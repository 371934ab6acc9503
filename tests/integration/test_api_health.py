"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from starlette.testclient import TestClient

from api.app import create_app
from infra.bootstrap import Services
from infra.clock import ManualClock
from tests.integration.test_api_support import buy, new_tenant, running


def test_health_and_readiness_with_the_projections_running(services: Services) -> None:
    with running(services) as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        ready = api.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready" and body["database"] == "ok"
        assert {p["name"] for p in body["projections"]} == {
            "positions",
            "trades",
            "pnl",
            "drawdown",
        }


def test_not_ready_while_the_projections_fall_behind(
    services: Services, clock: ManualClock
) -> None:
    new_tenant(services)
    clock.advance(timedelta(minutes=2))
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("101000"))
    with TestClient(create_app(services)) as api:  # no projection runner in this process
        reply = api.get("/readyz")
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "not ready"
        assert any("behind" in problem for problem in body["problems"])
        assert api.get("/healthz").status_code == 200  # alive all the same


def test_metrics_count_requests_by_route_orders_and_projection_lag(services: Services) -> None:
    tenant = new_tenant(services)
    with running(services) as api:
        position_id = buy(api, tenant)["position_id"]
        api.get(f"/api/positions/{position_id}/", headers=tenant.headers)
        api.get("/api/positions/00000000-0000-0000-0000-000000000000/", headers=tenant.headers)
        reply = api.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    # Requests are labelled by route template, never by the id in the path.
    assert 'route="/api/positions/{id:uuid}/",status="200"} 1' in text
    assert 'route="/api/positions/{id:uuid}/",status="404"} 1' in text
    assert position_id not in text
    assert re.search(
        r'robson_http_request_duration_seconds_bucket\{method="POST",'
        r'route="/api/trade/buy-btc/",le="\+Inf"\} 1',
        text,
    )
    assert 'robson_orders_sent_total{kind="entry"} 1' in text
    assert re.search(r'robson_projection_lag_events\{projection="positions"\} \d', text)
    assert "# TYPE robson_http_request_duration_seconds histogram" in text
