"""P&L by period: realised P&L per tenant by exit time, daily, weekly (ISO), monthly, yearly.

Every exit fill is one trade in the period its fill happened (UTC). Open quantity never
counts. Cumulative P&L is summed at query time, in period order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from domain.position import Position
from domain.read_models import Period, PeriodPnl, PnlOverall
from projections.projection import On, Projection, Rows
from projections.tables import Column, Kind, Table
from projections.trade_history import win_rate

PNL_POSITIONS = Table(  # the owner and entry price of each live position
    name="robson_pnl_positions",
    columns=(
        Column("position_id", Kind.UUID),
        Column("client_id", Kind.UUID),
        Column("entry_price", Kind.MONEY, nullable=True),
    ),
    key=("position_id",),
)

PNL_PERIODS = Table(
    name="robson_pnl_periods",
    columns=(
        Column("client_id", Kind.UUID),
        Column("period_type", Kind.TEXT),
        Column("period", Kind.TEXT),
        Column("pnl", Kind.MONEY),
        Column("trades", Kind.INT),
        Column("winners", Kind.INT),
        Column("losers", Kind.INT),
        Column("volume", Kind.MONEY),
    ),
    key=("client_id", "period_type", "period"),
)

ZERO = Decimal(0)


PERIOD_TYPES = tuple(p.value for p in Period)  # daily, weekly, monthly, yearly


def period_keys(moment: datetime) -> tuple[str, str, str, str]:
    """The UTC day, ISO week, month and year: '2026-11-30', '2026-W48', '2026-11', '2026'.

    An ISO week belongs to the ISO year of its Thursday: 2026-12-31 is in '2026-W53' and
    2027-01-01 too; 2029-12-31 is in '2030-W01'.
    """
    utc = moment.astimezone(UTC)
    day = utc.date().isoformat()
    year, week, _ = utc.isocalendar()
    return day, f"{year:04d}-W{week:02d}", day[:7], day[:4]


class PnlProjection(Projection):
    name = "pnl"
    tables = (PNL_POSITIONS, PNL_PERIODS)

    def handlers(self) -> Mapping[type, On]:
        return {
            Position.Planned: On(self._planned, ("client_id",)),
            Position.EntryFilled: On(self._entry_filled, ("price",)),
            Position.ExitFilled: On(
                self._exit_filled, ("timestamp", "price", "quantity", "realised_pnl")
            ),
            Position.Closed: On(self._finished),
            Position.Cancelled: On(self._finished),
            Position.EntryFailed: On(self._finished),
            Position.Rejected: On(self._finished),
        }

    def _planned(self, e: Position.Planned, nid: int, rows: Rows) -> None:
        rows.put(
            PNL_POSITIONS,
            {"position_id": e.originator_id, "client_id": e.client_id, "entry_price": None},
        )

    def _entry_filled(self, e: Position.EntryFilled, nid: int, rows: Rows) -> None:
        position = rows.get(PNL_POSITIONS, (e.originator_id,))
        if position is not None:
            position["entry_price"] = e.price

    def _exit_filled(self, e: Position.ExitFilled, nid: int, rows: Rows) -> None:
        position = rows.get(PNL_POSITIONS, (e.originator_id,))
        if position is None or position["entry_price"] is None:
            return
        volume = (position["entry_price"] + e.price) * e.quantity
        won = e.realised_pnl > 0
        client_id = position["client_id"]
        for period_type, period in zip(PERIOD_TYPES, period_keys(e.timestamp), strict=True):
            key = (client_id, period_type, period)
            row = rows.get(PNL_PERIODS, key)
            if row is None:
                row = dict(zip(PNL_PERIODS.key, key, strict=True))
                row.update(pnl=ZERO, trades=0, winners=0, losers=0, volume=ZERO)
                rows.put(PNL_PERIODS, row)
            row["pnl"] += e.realised_pnl
            row["trades"] += 1
            row["winners"] += 1 if won else 0
            row["losers"] += 0 if won else 1
            row["volume"] += volume

    def _finished(self, e: Position.Event, nid: int, rows: Rows) -> None:
        rows.delete(PNL_POSITIONS, (e.originator_id,))


def periods_with_cumulative(
    rows: Sequence[tuple[str, Decimal, int, int, int, Decimal]], limit: int
) -> tuple[list[PeriodPnl], PnlOverall]:
    """Rows in period order → the last `limit` periods with running totals, and the overall."""
    cumulative = ZERO
    periods: list[PeriodPnl] = []
    winners = losers = trades = 0
    for period, pnl, count, won, lost, volume in rows:
        cumulative += pnl
        trades += count
        winners += won
        losers += lost
        periods.append(
            PeriodPnl(
                period=period,
                pnl=pnl,
                cumulative_pnl=cumulative,
                trades=count,
                winners=won,
                losers=lost,
                win_rate=win_rate(won, count),
                volume=volume,
            )
        )
    overall = PnlOverall(
        total_pnl=cumulative,
        total_trades=trades,
        winners=winners,
        losers=losers,
        win_rate=win_rate(winners, trades),
    )
    return (periods[-limit:] if limit > 0 else []), overall
