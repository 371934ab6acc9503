"""The reply documents of the busiest reads, trade history and P&L by period, built where
the data is.

Each trade is stored already formatted (the trades projection's `document` column), so a
history reply only joins those documents around its summary. On PostgreSQL one statement
returns the whole JSON document, the summary and the P&L periods formatted by the database's
processes (which run beside this one), and the statement is awaited on the event loop
(`StatementReads`, which the composition root gives), so a request pays neither a thread hop
nor per-row Python work. On SQLite the read models are queried in a worker thread and the
rest is formatted here. Both give the same bytes; `tests/integration/test_documents.py`
compares them on the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from starlette.concurrency import run_in_threadpool

from domain.formats import Document, money
from domain.read_models import Period, PeriodPnl, PnlOverall, TradeSummary
from projections.database import PostgresKwargs, ProjectionDatabase
from projections.past import TenantReads
from projections.pnl import PNL_PERIODS
from projections.trade_history import TRADES, summarise

POOL_SIZE = 2  # connections for each statement; reads waiting for one are sent together
ACQUIRE_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_MS = 10_000
APPLICATION_NAME = "robson-documents"


class Documents(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def trade_history(self, client_id: UUID, since: datetime, limit: int) -> bytes:
        """`{"trades": [...], "summary": {...}}`: the trades closed since `since` or still
        open, most recent first (at most `limit`), summarised over all of them."""
        ...

    async def pnl(self, client_id: UUID, period: Period, limit: int) -> bytes:
        """`{"period_type", "periods": [...], "overall": {...}}`: the last `limit` periods
        with running totals from the first period on."""
        ...


class StatementReads(Protocol):
    """Named prepared statements over connections of their own, awaited on the event loop."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def first_value(self, name: str, params: Sequence[str | None]) -> bytes | None:
        """The first column of the statement's first row, as the server's text."""
        ...


class OpenReads(Protocol):
    """Makes `StatementReads` for connection arguments and statements (`$1`-style)."""

    def __call__(
        self,
        kwargs: PostgresKwargs,
        statements: Mapping[str, str],
        *,
        size: int,
        acquire_timeout: float,
    ) -> StatementReads: ...


# --- formatted here ---


def encode(document: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def summary_document(summary: TradeSummary) -> Document:
    return {
        "total_trades": summary.total_trades,
        "closed_trades": summary.closed_trades,
        "open_trades": summary.open_trades,
        "total_pnl": money(summary.total_pnl),
        "winners": summary.winners,
        "losers": summary.losers,
        "win_rate": summary.win_rate,
    }


def history_reply(trades: Sequence[str], summary: TradeSummary) -> bytes:
    """`{"trades": [...], "summary": {...}}` around the trades' stored documents."""
    listed = ",".join(trades).encode()
    return b'{"trades":[' + listed + b'],"summary":' + encode(summary_document(summary)) + b"}"


def pnl_document(period: Period, periods: Sequence[PeriodPnl], overall: PnlOverall) -> Document:
    return {
        "period_type": period.value,
        "periods": [
            {
                "period": p.period,
                "pnl": money(p.pnl),
                "cumulative_pnl": money(p.cumulative_pnl),
                "trades": p.trades,
                "winners": p.winners,
                "losers": p.losers,
                "win_rate": p.win_rate,
                "volume": money(p.volume),
            }
            for p in periods
        ],
        "overall": {
            "total_pnl": money(overall.total_pnl),
            "total_trades": overall.total_trades,
            "winners": overall.winners,
            "losers": overall.losers,
            "win_rate": overall.win_rate,
        },
    }


class ReadModelDocuments:
    """The documents from the read models (blocking: run in a worker thread)."""

    def __init__(self, read_models: TenantReads) -> None:
        self.read_models = read_models

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def trade_history(self, client_id: UUID, since: datetime, limit: int) -> bytes:
        return await run_in_threadpool(self.trade_history_now, client_id, since, limit)

    async def pnl(self, client_id: UUID, period: Period, limit: int) -> bytes:
        return await run_in_threadpool(self.pnl_now, client_id, period, limit)

    def trade_history_now(self, client_id: UUID, since: datetime, limit: int) -> bytes:
        page = self.read_models.trade_page(client_id, since, limit)
        rows = [row for row, _ in page]
        # A page shorter than the limit is every trade of the window: summarise it here
        # rather than read the same rows a second time.
        if len(rows) < limit:
            summary = summarise(rows)
        else:
            summary = self.read_models.trade_summary(client_id, since)
        return history_reply([document for _, document in page], summary)

    def pnl_now(self, client_id: UUID, period: Period, limit: int) -> bytes:
        periods, overall = self.read_models.pnl_by_period(client_id, period, limit)
        return encode(pnl_document(period, periods, overall))


# --- formatted by PostgreSQL ---


def sql_fixed(value: str, places: int) -> str:
    """`f"{value:.{places}f}"` in SQL: ties round to even, as Decimal's format does (round()
    alone sends them away from zero); PostgreSQL has no negative zero to print."""
    scaled = f"({value} * 1{'0' * places})"
    return (
        f"(CASE WHEN abs({scaled} % 1) = 0.5 AND trunc({scaled}) % 2 = 0 "
        f"THEN trunc({value}, {places}) ELSE round({value}, {places}) END)::text"
    )


def sql_money(value: str) -> str:
    return sql_fixed(value, 8)


def sql_win_rate(winners: str, trades: str) -> str:
    """`win_rate()` in SQL: '60.0%', ties away from zero; '0.0%' before the first trade."""
    return (
        f"CASE WHEN {trades} = 0 THEN '0.0%' "
        f"ELSE round({winners} * 100.0 / {trades}, 1)::text || '%' END"
    )


def history_sql(trades: str) -> str:
    # The window is two short index ranges, read once for the page and the summary: a plan
    # for `open OR closed since` (generic, as these statements are) walks every trade the
    # tenant ever had, which for a busy tenant cost more than the whole reply.
    order = '"activity_time" DESC, "position_id", "exit_sequence"'
    needed = f'{order.replace(" DESC", "")}, "is_closed", "is_winner", "pnl", "document"'
    return f"""
WITH in_window AS MATERIALIZED (
    SELECT {needed} FROM {trades}
    WHERE "client_id" = $1::uuid AND "is_closed" AND "exit_time" >= $2::timestamptz
    UNION ALL
    SELECT {needed} FROM {trades} WHERE "client_id" = $1::uuid AND NOT "is_closed"
), page AS (
    SELECT * FROM in_window ORDER BY {order} LIMIT $3::bigint
), totals AS (
    SELECT count(*) AS trades,
           count(*) FILTER (WHERE "is_closed") AS closed,
           coalesce(sum("pnl") FILTER (WHERE "is_closed"), 0) AS pnl,
           count(*) FILTER (WHERE "is_closed" AND "is_winner") AS winners
    FROM in_window
)
SELECT '{{"trades":[' || coalesce((
    SELECT string_agg("document", ',' ORDER BY {order}) FROM page
), '') || '],"summary":' || (SELECT row_to_json(summary) FROM (SELECT
    trades AS total_trades,
    closed AS closed_trades,
    trades - closed AS open_trades,
    {sql_money("pnl")} AS total_pnl,
    winners AS winners,
    closed - winners AS losers,
    {sql_win_rate("winners", "closed")} AS win_rate
) AS summary)::text || '}}' FROM totals"""


def pnl_sql(periods: str) -> str:
    # Joined as text, like the history: json_build_object and json_agg would write
    # `"key" : value` and `, ` between elements, not the compact JSON Python writes.
    return f"""
WITH kept AS (
    SELECT *, sum("pnl") OVER (ORDER BY "period") AS cumulative,
           row_number() OVER (ORDER BY "period" DESC) AS from_end
    FROM {periods} WHERE "client_id" = $1::uuid AND "period_type" = $2::text
)
SELECT '{{"period_type":' || to_json($2::text)::text || ',"periods":[' || coalesce((
    SELECT string_agg(row_to_json(doc)::text, ',' ORDER BY kept."period")
    FROM kept, LATERAL (SELECT
        "period" AS period,
        {sql_money('"pnl"')} AS pnl,
        {sql_money("cumulative")} AS cumulative_pnl,
        "trades" AS trades,
        "winners" AS winners,
        "losers" AS losers,
        {sql_win_rate('"winners"', '"trades"')} AS win_rate,
        {sql_money('"volume"')} AS volume
    ) AS doc
    WHERE from_end <= $3::bigint
), '') || '],"overall":' || (SELECT row_to_json(overall) FROM (SELECT
    {sql_money('coalesce(sum("pnl"), 0)')} AS total_pnl,
    coalesce(sum("trades"), 0) AS total_trades,
    coalesce(sum("winners"), 0) AS winners,
    coalesce(sum("losers"), 0) AS losers,
    {sql_win_rate('coalesce(sum("winners"), 0)', 'coalesce(sum("trades"), 0)')} AS win_rate
    FROM kept
) AS overall)::text || '}}'"""


class DatabaseDocuments:
    """The documents as PostgreSQL builds them, read through `StatementReads`.

    These statements read one tenant's index ranges whatever the parameters, so their
    connections keep one generic plan per statement: planning each execution anew cost the
    database more than running it.

    Each statement has connections of its own: a server process that has once built a P&L
    document built every later history document at about 1.7 times the cost (PostgreSQL 15:
    the same plan and buffers, but 35 to 78 minor page faults a statement instead of about 4,
    as the C library handed memory back and faulted it in again).
    """

    def __init__(
        self, database: ProjectionDatabase, open_reads: OpenReads, pool_size: int = POOL_SIZE
    ) -> None:
        kwargs = database.postgres_kwargs()
        kwargs["options"] = (
            f"{kwargs.get('options', '')} -c plan_cache_mode=force_generic_plan"
            f" -c statement_timeout={STATEMENT_TIMEOUT_MS}"
        )
        kwargs["application_name"] = APPLICATION_NAME
        statements = {
            "history": history_sql(database.qualified(TRADES.name)),
            "pnl": pnl_sql(database.qualified(PNL_PERIODS.name)),
        }
        self.reads = {
            name: open_reads(
                kwargs, {name: sql}, size=pool_size, acquire_timeout=ACQUIRE_TIMEOUT_SECONDS
            )
            for name, sql in statements.items()
        }

    async def open(self) -> None:
        for reads in self.reads.values():
            await reads.open()

    async def close(self) -> None:
        for reads in self.reads.values():
            await reads.close()

    async def trade_history(self, client_id: UUID, since: datetime, limit: int) -> bytes:
        return await self._document("history", str(client_id), since.isoformat(), str(limit))

    async def pnl(self, client_id: UUID, period: Period, limit: int) -> bytes:
        return await self._document("pnl", str(client_id), period.value, str(limit))

    async def _document(self, statement: str, *params: str) -> bytes:
        found = await self.reads[statement].first_value(statement, params)
        assert found is not None  # one aggregate row, always
        return found
