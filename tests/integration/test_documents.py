"""The trade history and P&L documents PostgreSQL builds are the ones Python builds from the
read models: each formatting rule value by value, whole documents over the same rows, and
the raw HTTP replies byte for byte over the same events."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from api.app import create_app
from api.documents import (
    APPLICATION_NAME,
    ReadModelDocuments,
    sql_money,
    sql_win_rate,
)
from domain.formats import money
from domain.market import Side
from domain.read_models import Period
from infra.bootstrap import Services
from infra.documents import PostgresDocuments
from projections.pnl import PNL_PERIODS
from projections.tables import Codec, Dialect
from projections.trade_history import TRADES, win_rate
from tests.factories import register
from tests.trade_builders import closed_trade, exit_fill, filled, save

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)
T = TypeVar("T")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=12
)
per_example = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def in_sql(services: Services, expression: str, values: Sequence[Any], kind: str) -> list[Any]:
    """`expression` (over `v`) applied by PostgreSQL to each value, in order."""
    escaped = expression.replace("%", "%%")  # the documents' SQL takes no psycopg parameters
    with services.read_models.database.session() as s:
        rows = s.execute(
            f"SELECT {escaped} FROM unnest(%s::{kind}[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
            [list(values)],
        )
    return [r[0] for r in rows]


# --- value by value ---


@per_example
@given(values=st.lists(amounts, min_size=1, max_size=50))
def test_money_is_formatted_alike(services: Services, values: list[Decimal]) -> None:
    assert in_sql(services, sql_money("v"), values, "numeric") == [money(v) for v in values]


def test_money_ties_go_to_the_even_digit_and_zero_has_no_sign(services: Services) -> None:
    values = [Decimal(v) for v in ("0.000000125", "-0.000000125", "0.000000135", "-5E-9")]
    expected = ["0.00000012", "-0.00000012", "0.00000014", "0.00000000"]
    assert [money(v) for v in values] == expected
    assert in_sql(services, sql_money("v"), values, "numeric") == expected


@per_example
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1))
def test_win_rates_are_formatted_alike(services: Services, pairs: list[tuple[int, int]]) -> None:
    pairs = [(min(w, t), t) for w, t in pairs] + [(0, 0), (1, 8), (1, 3), (2, 3), (5, 5)]
    winners, trades = [w for w, _ in pairs], [t for _, t in pairs]
    with services.read_models.database.session() as s:
        rows = s.execute(
            f"SELECT {sql_win_rate('w', 't').replace('%', '%%')} "
            "FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS x(w, t, n) ORDER BY n",
            [winners, trades],
        )
    found = [r[0] for r in rows]
    assert found == [win_rate(w, t) for w, t in pairs]


# --- whole documents ---


def trade_rows(client_id: UUID, count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(count):
        closed = rng.random() < 0.85
        entry_time = NOW - timedelta(seconds=rng.randrange(400 * 86400))
        entry_time += timedelta(microseconds=rng.choice([0, 0, 123000, 999999]))
        exit_time = entry_time + timedelta(minutes=rng.randrange(1, 5000)) if closed else None
        quantity = Decimal(rng.randrange(1, 10**6)) / 10**8
        entry = Decimal(rng.randrange(6 * 10**9, 11 * 10**9)) / 10**5
        exit_price = entry + Decimal(rng.randrange(-300000, 300000)) / 100 if closed else None
        fees = entry * quantity / 1000  # up to 16 places: ties on the eighth happen
        pnl = (exit_price - entry) * quantity - fees if exit_price is not None else None
        row = {
            "position_id": uuid4(),
            "exit_sequence": 1 if closed else 0,
            "client_id": client_id,
            "symbol": "BTCUSDC",
            "side": rng.choice(["LONG", "SHORT"]),
            "quantity": quantity,
            "entry_price": entry,
            "exit_price": exit_price,
            "pnl": pnl,
            "pnl_percentage": None
            if pnl is None
            else (pnl * 100 / entry).quantize(Decimal("0.01")),
            "is_winner": None if pnl is None else pnl > 0,
            "is_closed": closed,
            "duration_hours": None if not closed else Decimal(rng.randrange(0, 9000)) / 100,
            "entry_time": entry_time,
            "exit_time": exit_time,
            "fees": fees,
            "activity_time": exit_time or entry_time,
        }
        if n == 0:  # a tiny loss: -0.00 % in Python's arithmetic
            row.update(pnl=Decimal("-0.00000001"), pnl_percentage=Decimal("-0.00"), is_winner=False)
        rows.append(Codec(TRADES, Dialect.POSTGRES).params(row))  # with its document
    return rows


def period_rows(client_id: UUID, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for kind, keys in [
        (Period.DAILY, [f"2026-{m:02d}-{d:02d}" for m in range(1, 12) for d in (1, 15)]),
        (Period.WEEKLY, [f"2026-W{w:02d}" for w in range(1, 48, 3)]),
        (Period.MONTHLY, [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01", "2026-02"]),
        (Period.YEARLY, ["2025", "2026"]),
    ]:
        for key in keys:
            trades = rng.randrange(1, 30)
            winners = rng.randrange(0, trades + 1)
            pnl = Decimal(rng.randrange(-(10**12), 10**12)) / 10**10
            volume = Decimal(rng.randrange(1, 10**14)) / 10**9
            row = (client_id, kind.value, key, pnl, trades, winners, trades - winners, volume)
            rows.append(row)
    return rows


def both(services: Services, read: Callable[[Any], Awaitable[T]]) -> tuple[T, T]:
    """What `read` gets from the PostgreSQL documents and from the read-model ones."""

    async def run() -> tuple[T, T]:
        built = PostgresDocuments(services.read_models.database, pool_size=1)
        await built.open()
        try:
            return await read(built), await read(ReadModelDocuments(services.read_models))
        finally:
            await built.close()

    # In a loop of its own thread: asyncio.run here would drop the main thread's current
    # loop (python-binance sets one up) unclosed.
    with start_blocking_portal() as portal:
        return portal.call(run)


def test_trade_history_documents_are_the_same(services: Services) -> None:
    rng = random.Random(11)
    busy, quiet, idle = uuid4(), uuid4(), uuid4()
    database = services.read_models.database
    with database.transaction() as tx:
        rows = trade_rows(busy, 300, rng) + trade_rows(quiet, 3, rng)
        tx.copy_in(database.qualified(TRADES.name), TRADES.column_names, rows)
    asks = [
        (client, NOW - timedelta(days=days), limit)
        for client in (busy, quiet, idle)
        for days, limit in [(30, 100), (365, 5), (3650, 1000), (1, 1)]
    ]

    async def read(documents: Any) -> list[Any]:
        return [json.loads(await documents.trade_history(*ask)) for ask in asks]

    built, formatted = both(services, read)
    assert built == formatted
    year = built[asks.index((busy, NOW - timedelta(days=365), 5))]
    assert len(year["trades"]) == 5
    assert year["summary"]["total_trades"] > 5  # a full page: summed over the whole window
    assert len(built[asks.index((quiet, NOW - timedelta(days=3650), 1000))]["trades"]) == 3
    assert built[8] == {
        "trades": [],
        "summary": {
            "total_trades": 0,
            "closed_trades": 0,
            "open_trades": 0,
            "total_pnl": "0.00000000",
            "winners": 0,
            "losers": 0,
            "win_rate": "0.0%",
        },
    }


def test_pnl_documents_are_the_same(services: Services) -> None:
    rng = random.Random(5)
    client, idle = uuid4(), uuid4()
    database = services.read_models.database
    with database.transaction() as tx:
        tx.copy_in(
            database.qualified(PNL_PERIODS.name), PNL_PERIODS.column_names, period_rows(client, rng)
        )
    asks = [(c, p, limit) for c in (client, idle) for p in Period for limit in (1, 12, 400)]

    async def read(documents: Any) -> list[Any]:
        return [json.loads(await documents.pnl(*ask)) for ask in asks]

    built, formatted = both(services, read)
    assert built == formatted
    monthly = built[asks.index((client, Period.MONTHLY, 12))]
    assert [p["period"] for p in monthly["periods"]][-1] == "2026-02"
    assert len(monthly["periods"]) == 12
    assert built[-1]["overall"]["total_trades"] == 0


def test_history_and_pnl_documents_are_built_over_connections_of_their_own(
    services: Services,
) -> None:
    """A server process that has built a P&L document builds history ones far slower."""
    database = services.read_models.database
    client_id = uuid4()

    async def read(documents: Any) -> list[tuple[str, str]]:
        if not isinstance(documents, PostgresDocuments):
            return []
        for _ in range(2):
            await documents.trade_history(client_id, NOW - timedelta(days=30), 100)
            await documents.pnl(client_id, Period.MONTHLY, 12)
        with database.session() as s:
            rows = s.execute(
                "SELECT query FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s",
                [APPLICATION_NAME, f"%{database.schema}%"],
            )
        return sorted(
            ("pnl" if PNL_PERIODS.name in query else "history", query) for (query,) in rows
        )

    lasts, _ = both(services, read)
    assert [kind for kind, _ in lasts] == ["history", "pnl"]  # one connection each


# --- whole replies, byte for byte ---


def test_history_and_pnl_replies_are_the_same_bytes_from_either_path(
    services: Services,
) -> None:
    """The raw bodies of GET /api/trade/history/ and /api/trade/pnl/ are byte-identical
    whether PostgreSQL builds them or Python formats them from the read models, over the
    same events: fees to the ninth place (ties on the eighth both ways), a loss that rounds
    to zero, a short, a partial exit with its open rest, several days, months and years."""
    client_id, token = register(services.ledger)
    tenant = {"Authorization": f"Bearer {token}"}
    jan, mar = datetime(2025, 1, 6, 8, tzinfo=UTC), datetime(2026, 3, 31, 23, tzinfo=UTC)
    oct_ = datetime(2026, 10, 30, 21, 15, 30, 123000, tzinfo=UTC)
    for opened, side, entry, exit_price, quantity, entry_fee, exit_fee in [
        (jan, Side.LONG, "50000", "55000", "0.1", "5", "5"),
        (jan + timedelta(days=1), Side.LONG, "50000", "50001", "0.1", "0.000000075", "0"),
        (jan + timedelta(days=40), Side.LONG, "50000", "50001", "0.1", "0.000000085", "0"),
        (mar, Side.SHORT, "60000", "60500", "0.05", "1.23456789", "0.987654321"),
        (mar + timedelta(hours=2), Side.SHORT, "61000", "60000", "0.01", "0.3", "0.3"),
        (oct_, Side.LONG, "50000", "50000", "0.1", "0.000000004", "0"),
        (oct_ + timedelta(days=1), Side.LONG, "70000", "70333.33", "0.0333", "0.7", "0.1"),
    ]:
        closed_trade(
            services.store, client_id, opened, 3.25, side, entry, exit_price, quantity,
            entry_fee, exit_fee,
        )  # fmt: skip
    partly = filled(client_id, oct_, Side.LONG, "40000", "0.3", "0.333333333")
    exit_fill(partly, "41000", oct_ + timedelta(minutes=90), "0.1111111115", "0.1")
    save(services.store, partly)
    services.projections.run_once()
    asks = [f"/api/trade/history/?days={d}&limit={n}" for d, n in [(3650, 1000), (30, 2), (7, 100)]]
    asks += [
        f"/api/trade/pnl/?period={p}&months={m}"
        for p in ("daily", "weekly", "monthly", "yearly")
        for m in (1, 12, 120)
    ]

    def replies(built: Services) -> list[bytes]:
        with TestClient(create_app(built)) as client:
            found = [client.get(ask, headers=tenant) for ask in asks]
        assert {r.status_code for r in found} == {200}
        return [r.content for r in found]

    assert isinstance(services.documents, PostgresDocuments)
    built = replies(services)
    formatted = replies(replace(services, documents=ReadModelDocuments(services.read_models)))

    for ask, sql, python in zip(asks, built, formatted, strict=True):
        assert sql == python, ask
    everything = json.loads(built[0])
    assert len(everything["trades"]) == 9
    assert everything["summary"]["open_trades"] == 1
    pnls = {t["pnl"] for t in everything["trades"]}
    assert {"0.09999992", "0.00000000"} <= pnls  # a tie kept even; a tiny loss, unsigned
    assert json.loads(built[asks.index("/api/trade/pnl/?period=yearly&months=120")])["periods"]
