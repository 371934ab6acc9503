"""A real `robson serve` over a disposable PostgreSQL, and the requests a client makes while
the database is away: shared by the outage test and its benchmark."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx

from tests.conftest import TEST_KEY
from tests.e2e.disposable_postgres import DisposablePostgres
from tests.e2e.serving import Served, new_client, robson_serve

STARTUP_SECONDS = 60  # a disposable PostgreSQL cluster: a slower start
# Every kind of request: the probes, reads of each read path, and a command.
ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET", "/readyz"),
    ("GET", "/api/positions/"),
    ("GET", "/api/trade/history/"),
    ("GET", "/api/trade/pnl/"),
    ("GET", "/api/policy/"),
    ("GET", "/api/trade/status/"),
    ("GET", "/api/trade/balance/"),
    ("POST", "/api/trade/buy-btc/"),
)
BUY = {"stop_price": "98000", "amount": "10"}


def environment(home: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBSON_", "RBS_"))}
    env.update(
        ROBSON_HOME=home,
        ROBSON_DATABASE_URL=database_url,
        RBS_CREDENTIAL_ENCRYPTION_KEY=TEST_KEY,
        ROBSON_EXCHANGE="paper",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    env.pop("TRADING_ENABLED", None)
    return env


def serve(env: dict[str, str], *flags: str) -> AbstractContextManager[Served]:
    """`robson serve` on a free port until the block ends (killed if still running)."""
    return robson_serve(env, *flags, seconds=STARTUP_SECONDS)


@contextmanager
def cluster() -> Iterator[DisposablePostgres]:
    postgres = DisposablePostgres().init()
    try:
        yield postgres
    finally:
        postgres.destroy()


def tenant(env: dict[str, str], email: str, *, operator: bool = False) -> dict[str, str]:
    """A new client's auth header (an operator's may set paper prices)."""
    flags = ("--operator",) if operator else ()
    return new_client(env, email, *flags).headers


def call(http: httpx.Client, method: str, path: str, auth: dict[str, str]) -> httpx.Response:
    body = BUY if method == "POST" else None
    return http.request(method, path, headers=auth, json=body)
