"""The HTTP tests' usual cast: the app running over the test's services, a tenant with a
capital of 1000 and an operator (who may set paper prices). A module needing another cast
defines its own fixture of the same name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from infra.bootstrap import Services
from tests.integration.test_api_support import Tenant, new_tenant, running


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with running(services) as client:
        yield client


@pytest.fixture
def alice(services: Services) -> Tenant:
    return new_tenant(services, capital="1000")


@pytest.fixture
def operator(services: Services) -> Tenant:
    return new_tenant(services, operator=True)
