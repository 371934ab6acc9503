"""Shared fixtures: every contract test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from infra.bootstrap import Services, build_services, migrate, postgres_target
from infra.clock import ManualClock
from infra.settings import Settings

# PostgreSQL tests never skip: an unreachable server fails them (CI starts one).
POSTGRES_URL = os.environ.get(
    "ROBSON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_KEY = "Xw2m4X7u0bO3Yg9a6mJ3F3tZ1rG6H8c9vQ2sL5kN1pE="
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_env(home: Path, backend: str) -> dict[str, str]:
    env = {"ROBSON_HOME": str(home), "RBS_CREDENTIAL_ENCRYPTION_KEY": TEST_KEY}
    if backend == "postgres":
        env["ROBSON_DATABASE_URL"] = f"{POSTGRES_URL}?schema=t_{uuid4().hex[:16]}"
    return env


def connect(settings: Settings, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection of a test's own to the settings' PostgreSQL database."""
    assert settings.database_url is not None
    target = postgres_target(settings.database_url)
    return psycopg.connect(
        dbname=target.dbname,
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        autocommit=autocommit,
    )


def drop_schema(settings: Settings) -> None:
    if not settings.is_postgres:
        return
    assert settings.database_url is not None
    schema = postgres_target(settings.database_url).schema
    with connect(settings) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(tmp_path: Path, backend: str) -> Iterator[dict[str, str]]:
    environment = test_env(tmp_path, backend)
    settings = Settings.from_env(environment)
    migrate(settings)
    yield environment
    drop_schema(settings)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def services(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    assert built.paper is not None
    built.paper.set_price("BTCUSDC", Decimal("100000"))
    yield built
    built.close()
