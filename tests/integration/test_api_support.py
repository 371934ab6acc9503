"""Helpers shared by the API tests (no tests here): a running app, tenants and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from infra.bootstrap import Services, build_services, migrate
from infra.clock import ManualClock
from infra.serve import background_services
from infra.settings import Settings
from tests.conftest import START, drop_schema
from tests.conftest import test_env as env_for

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass(frozen=True)
class Tenant:
    client_id: UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_tenant(services: Services, capital: str = "1000", operator: bool = False) -> Tenant:
    email = f"trader-{uuid4().hex[:10]}@example.com"
    reg = services.ledger.register_client("Trader", email, Decimal(capital), operator)
    return Tenant(reg.client_id, email, reg.token)


@contextmanager
def running(services: Services, **options: Any) -> Iterator[TestClient]:
    """The real app over `services`, lifespan and projection runner included."""
    app = create_app(services, background=background_services(services, workers=False), **options)
    with TestClient(app) as client:
        yield client


@contextmanager
def services_for(
    env: dict[str, str], clock: ManualClock, price: str | None = "100000", **overrides: str
) -> Iterator[Services]:
    """Services over the test's database with some settings changed (e.g. TRADING_ENABLED)."""
    built = build_services(Settings.from_env({**env, **overrides}), clock=clock)
    try:
        if price is not None and built.paper is not None:
            built.paper.set_price("BTCUSDC", Decimal(price))
        yield built
    finally:
        built.close()


@contextmanager
def shared_api(backend: str, home: Path) -> Iterator[tuple[Services, TestClient]]:
    """One database, services and running app for a whole module of read-mostly tests."""
    env = env_for(home, backend)
    settings = Settings.from_env(env)
    migrate(settings)
    services = build_services(settings, clock=ManualClock(START))
    try:
        assert services.paper is not None
        services.paper.set_price("BTCUSDC", Decimal("100000"))
        with running(services) as client:
            yield services, client
    finally:
        services.close()
        drop_schema(settings)


def buy(client: TestClient, tenant: Tenant, stop: str = "98000", **fields: Any) -> dict[str, Any]:
    """A successful buy-btc; returns its reply."""
    response = client.post(
        "/api/trade/buy-btc/", headers=tenant.headers, json={"stop_price": stop, **fields}
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def set_price(client: TestClient, operator: Tenant, price: str) -> None:
    """Move the shared paper market, which only the operator may do."""
    response = client.post(
        "/api/paper/price/", headers=operator.headers, json={"symbol": "BTCUSDC", "price": price}
    )
    assert response.status_code == 200, response.text
