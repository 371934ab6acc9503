"""The spec's trading reports: the trades of a window with their P&L, and realised P&L by
period; both read only projections, now or as of a past instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.as_of import AsOfQuery, past_instant, read_models_for
from api.documents import ReadModelDocuments
from api.operations import Call, Operation
from api.schemas import Empty, MoneyOut, Output
from domain.read_models import Period


class HistoryQuery(AsOfQuery):
    days: int = Field(30, ge=1, le=3650)
    limit: int = Field(100, ge=1, le=1000)


class PnlQuery(AsOfQuery):
    period: Literal["daily", "weekly", "monthly", "yearly"] = "monthly"
    months: int = Field(12, ge=1, le=120)


class HistoryRow(Output):
    id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: MoneyOut
    entry_price: MoneyOut
    exit_price: MoneyOut | None
    pnl: MoneyOut | None
    pnl_percentage: str | None
    is_winner: bool | None
    is_closed: bool
    duration_hours: float | None


class HistorySummary(Output):
    total_trades: int
    closed_trades: int
    open_trades: int
    total_pnl: MoneyOut
    winners: int
    losers: int
    win_rate: str


class HistoryReply(Output):
    trades: list[HistoryRow]
    summary: HistorySummary


class PeriodRow(Output):
    period: str
    pnl: MoneyOut
    cumulative_pnl: MoneyOut
    trades: int
    winners: int
    losers: int
    win_rate: str
    volume: MoneyOut


class PnlOverallReply(Output):
    total_pnl: MoneyOut
    total_trades: int
    winners: int
    losers: int
    win_rate: str


class PnlReply(Output):
    period_type: Literal["daily", "weekly", "monthly", "yearly"]
    periods: list[PeriodRow]
    overall: PnlOverallReply


# --- handlers ---


async def trade_history(call: Call[Empty, HistoryQuery]) -> Response:
    as_of = past_instant(call)
    since = (as_of or call.services.clock.now()) - timedelta(days=call.query.days)
    client_id, limit = call.principal.client_id, call.query.limit
    if as_of is None:
        body = await call.documents.trade_history(client_id, since, limit)
    else:
        body = await run_in_threadpool(
            _past, call, as_of, lambda past: past.trade_history_now(client_id, since, limit)
        )
    return Response(body, media_type="application/json")


PERIODS_PER_MONTH = {"daily": 31, "weekly": 5, "monthly": 1}


async def trade_pnl(call: Call[Empty, PnlQuery]) -> Response:
    """`months` bounds the window; it is turned into a number of periods of the asked kind."""
    period, months = call.query.period, call.query.months
    limit = months * PERIODS_PER_MONTH[period] if period != "yearly" else -(-months // 12)
    client_id, kind = call.principal.client_id, Period(period)
    as_of = past_instant(call)
    if as_of is None:
        body = await call.documents.pnl(client_id, kind, limit)
    else:
        body = await run_in_threadpool(
            _past, call, as_of, lambda past: past.pnl_now(client_id, kind, limit)
        )
    return Response(body, media_type="application/json")


def _past(
    call: Call[Empty, HistoryQuery] | Call[Empty, PnlQuery],
    as_of: datetime,
    document: Callable[[ReadModelDocuments], bytes],
) -> bytes:
    """A history or P&L document built from the caller's read models as of `as_of`."""
    with read_models_for(call, as_of) as read_models:
        return document(ReadModelDocuments(read_models))


OPERATIONS = [
    Operation(
        "GET",
        "/api/trade/history/",
        trade_history,
        "Trades of the last `days` with P&L and a summary",
        tag="trade",
        query=HistoryQuery,
        response=HistoryReply,
    ),
    Operation(
        "GET",
        "/api/trade/pnl/",
        trade_pnl,
        "Realised P&L by day, ISO week, month or year",
        tag="trade",
        query=PnlQuery,
        response=PnlReply,
    ),
]
