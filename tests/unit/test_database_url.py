"""ROBSON_DATABASE_URL for PostgreSQL: a server over TCP, or on this machine by its socket."""

from __future__ import annotations

import pytest

from domain.errors import ConfigurationError
from infra.bootstrap import PostgresTarget, postgres_target


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://robson:p%40ss@db.example:6432/robson?schema=tenant_a",
            PostgresTarget("robson", "db.example", "6432", "robson", "p@ss", "tenant_a"),
        ),
        (
            "postgresql://postgres@127.0.0.1/test",
            PostgresTarget("test", "127.0.0.1", "5432", "postgres", "", "public"),
        ),
        (
            "postgresql://postgres@/test?host=/var/run/postgresql&schema=bench",
            PostgresTarget("test", "/var/run/postgresql", "5432", "postgres", "", "bench"),
        ),
        (
            "postgresql:///robson?host=/run/postgresql",
            PostgresTarget("robson", "/run/postgresql", "5432", "postgres", "", "public"),
        ),
    ],
)
def test_a_database_url_names_its_server_database_and_schema(
    url: str, expected: PostgresTarget
) -> None:
    assert postgres_target(url) == expected


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must name a database"):
        postgres_target("postgresql://postgres@127.0.0.1:5432/")
