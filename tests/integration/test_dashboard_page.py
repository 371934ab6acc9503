"""The dashboard page and the trade form's size preview, over the real app (SQLite and
PostgreSQL): the page is served by the app under a self-only policy, says so when its assets
were not built, and the preview sizes by the 1% rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api import dashboard
from infra.bootstrap import Services
from tests.integration.test_api_support import Tenant


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A static folder holding every asset the page needs (as `make install` leaves it)."""
    for name in dashboard.REQUIRED_ASSETS:
        (tmp_path / name).write_text("/* built */", "utf-8")
    monkeypatch.setattr(dashboard, "STATIC", tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", ["/", "/dashboard", "/dashboard/"])
def test_the_page_is_served_under_a_self_only_policy(
    api: TestClient, built: Path, path: str
) -> None:
    page = api.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy
    assert 'src="/static/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_without_built_assets_the_page_says_so_and_the_api_still_answers(
    api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alice: Tenant
) -> None:
    monkeypatch.setattr(dashboard, "STATIC", tmp_path / "never-built")
    page = api.get("/")
    assert page.status_code == 503
    assert "Dashboard assets are missing" in page.text
    assert "make install" in page.text
    assert api.get("/api/trade/status/", headers=alice.headers).status_code == 200


def test_the_page_needs_no_token_and_holds_none(api: TestClient, built: Path) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert "rbs_" not in page.text


def test_the_preview_sizes_by_the_one_percent_rule_at_the_market_price(
    api: TestClient, alice: Tenant
) -> None:
    reply = api.post("/api/trade/preview/", headers=alice.headers, json={"stop_price": "98000"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "symbol": "BTCUSDC",
        "side": "LONG",
        "entry_price": "100000.00000000",
        "stop_price": "98000.00000000",
        "quantity": "0.00500000",
        "risk_amount": "10.00000000",
        "risk_budget": "10.00000000",
        "capital": "1000.00000000",
        "stop_distance": "2000.00000000",
    }


def test_the_preview_of_a_short_rounds_down_to_the_lot_step(api: TestClient, alice: Tenant) -> None:
    reply = api.post(
        "/api/trade/preview/",
        headers=alice.headers,
        json={"side": "SHORT", "entry_price": "100000", "stop_price": "103000"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["quantity"] == "0.00333000"
    assert reply.json()["risk_amount"] == "9.99000000"


def test_the_preview_refuses_a_missing_or_misplaced_stop(api: TestClient, alice: Tenant) -> None:
    missing = api.post("/api/trade/preview/", headers=alice.headers, json={})
    assert missing.status_code == 422
    assert missing.json()["field"] == "stop_price"
    assert "stop-loss" in missing.json()["error"]
    wrong_side = api.post(
        "/api/trade/preview/", headers=alice.headers, json={"stop_price": "101000"}
    )
    assert wrong_side.status_code == 422
    assert wrong_side.json()["field"] == "stop_price"
    assert "below the entry price" in wrong_side.json()["error"]


def test_the_preview_records_nothing(services: Services, api: TestClient, alice: Tenant) -> None:
    before = services.store.recorder.max_notification_id()
    reply = api.post("/api/trade/preview/", headers=alice.headers, json={"stop_price": "98000"})
    assert reply.status_code == 200
    assert services.store.recorder.max_notification_id() == before
