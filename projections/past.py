"""Read models answered from rows in memory (a tenant's past, see projections/as_of.py) as
`SqlReadModels` answers from its tables: the same filters and order, and every row returned
as a table would return it (written and read back through the SQLite codec)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, Protocol
from uuid import UUID

from domain.read_models import Period, PeriodPnl, PnlOverall, PositionRow, TradeRow, TradeSummary
from projections.drawdown import DRAWDOWN_MONTHS, POLICIES, PRICES, TenantDrawdown, tenant_drawdown
from projections.pnl import PNL_PERIODS, periods_with_cumulative
from projections.positions import OPEN_STATUSES, POSITIONS, position_row
from projections.tables import Codec, Dialect, Key, Kind, Row, Table
from projections.trade_history import TRADES, summarise, trade_row_of

DOCUMENT = TRADES.column_names.index("document")
TRADE_VALUES = itemgetter(*(f.name for f in fields(TradeRow)))  # the table's leading columns


class TenantReads(Protocol):
    """What the tenant-scoped reads ask, of the live tables or of a tenant's past."""

    def positions(
        self, client_id: UUID, status: str | None = None, limit: int = 500
    ) -> list[PositionRow]: ...

    def trade_page(
        self, client_id: UUID, since: datetime | None, limit: int
    ) -> list[tuple[TradeRow, str]]: ...

    def trade_summary(self, client_id: UUID, since: datetime | None = None) -> TradeSummary: ...

    def pnl_by_period(
        self, client_id: UUID, period: Period, limit: int = 12
    ) -> tuple[list[PeriodPnl], PnlOverall]: ...

    def tenant_drawdowns(
        self,
        month: str,
        prices: Mapping[str, Decimal] | None = None,
        client_id: UUID | None = None,
    ) -> list[TenantDrawdown]: ...

    def policy_row(self, client_id: UUID) -> Row | None: ...


# The values a SQLite column hands back unchanged: written as text or an integer, and read
# back as the same value of the same type.
_KEPT: dict[Kind, type] = {
    Kind.UUID: UUID,
    Kind.TEXT: str,
    Kind.MONEY: Decimal,
    Kind.INT: int,
    Kind.BOOL: bool,
}


class AsStored:
    """A row as a SQLite table of `table` would return it once written: what the codec's
    round trip gives, without it for values it hands back unchanged (and a time in UTC)."""

    def __init__(self, table: Table) -> None:
        self.codec = Codec(table, Dialect.SQLITE)
        self.names = table.column_names
        self.kinds = tuple(c.kind for c in table.columns)
        self.derived = tuple((c.name, c.derived) for c in table.columns if c.derived)

    def __call__(self, row: Row) -> tuple[Any, ...]:
        if self.derived:
            row = row | {name: derive(row) for name, derive in self.derived}
        values = []
        for name, kind in zip(self.names, self.kinds, strict=True):
            value = row[name]
            if value is None or type(value) is _KEPT.get(kind):
                values.append(value)
            elif kind is Kind.TIME and type(value) is datetime and value.tzinfo is not None:
                values.append(value.astimezone(UTC))  # time_text, then fromisoformat
            else:  # anything else: the codec's own round trip
                return self.codec.values(self.codec.params(row))
        return tuple(values)


class PastReadModels:
    """`TenantReads` over tables held in memory, each a mapping of key to row."""

    def __init__(self, tables: Mapping[str, Mapping[Key, Row]]) -> None:
        self.tables = tables
        self._as_stored: dict[Table, AsStored] = {}
        self._tenant_rows: dict[tuple[str, UUID | None], list[Row]] = {}

    def _stored(self, table: Table, rows: Iterable[Row]) -> list[tuple[Any, ...]]:
        """Rows as the table returns them, in its column order (derived columns included)."""
        stored = self._as_stored.get(table)
        if stored is None:
            stored = self._as_stored[table] = AsStored(table)
        return [stored(row) for row in rows]

    def _rows(self, table: Table, rows: Iterable[Row]) -> list[Row]:
        names = table.column_names
        return [dict(zip(names, values, strict=True)) for values in self._stored(table, rows)]

    def _of(self, table: Table, client_id: UUID | None) -> list[Row]:
        """The tenant's rows of `table` (every row: None), in no order; a new list."""
        key = (table.name, client_id)
        found = self._tenant_rows.get(key)
        if found is None:
            rows = self.tables[table.name].values()
            wanted = None if client_id is None else client_id.int
            found = [r for r in rows if wanted is None or r["client_id"].int == wanted]
            self._tenant_rows[key] = found
        return list(found)

    # --- positions ---

    def positions(
        self, client_id: UUID, status: str | None = None, limit: int = 500
    ) -> list[PositionRow]:
        """ORDER BY planned_at DESC, position_id (a UUID's order is its text's)."""
        rows = [
            r for r in self._of(POSITIONS, client_id) if status is None or r["status"] == status
        ]
        rows.sort(key=lambda r: r["position_id"].int)
        rows.sort(key=lambda r: r["planned_at"], reverse=True)  # stable: ties keep the id order
        return [position_row(r) for r in self._rows(POSITIONS, rows[:limit])]

    # --- trades and P&L ---

    def trade_page(
        self, client_id: UUID, since: datetime | None, limit: int
    ) -> list[tuple[TradeRow, str]]:
        """Most recent first: ORDER BY activity_time DESC, position_id, exit_sequence."""
        rows = self._window(client_id, since)
        rows.sort(key=lambda r: (r["position_id"].int, r["exit_sequence"]))
        rows.sort(key=lambda r: r["activity_time"], reverse=True)
        return [(trade_row_of(v), v[DOCUMENT]) for v in self._stored(TRADES, rows[:limit])]

    def trade_summary(self, client_id: UUID, since: datetime | None = None) -> TradeSummary:
        # What a summary reads (closed, winner, P&L) is stored exactly as it is held.
        window = self._window(client_id, since)
        return summarise([TradeRow(*TRADE_VALUES(row)) for row in window])

    def _window(self, client_id: UUID, since: datetime | None) -> list[Row]:
        """The trades closed since `since`, and those still open (every one: None)."""
        rows = self._of(TRADES, client_id)
        if since is None:
            return rows
        return [r for r in rows if not r["is_closed"] or r["exit_time"] >= since]

    def pnl_by_period(
        self, client_id: UUID, period: Period, limit: int = 12
    ) -> tuple[list[PeriodPnl], PnlOverall]:
        rows = [r for r in self._of(PNL_PERIODS, client_id) if r["period_type"] == period.value]
        rows.sort(key=lambda r: r["period"])
        return periods_with_cumulative(
            [
                (r["period"], r["pnl"], r["trades"], r["winners"], r["losers"], r["volume"])
                for r in self._rows(PNL_PERIODS, rows)
            ],
            limit,
        )

    # --- drawdown and policy ---

    def tenant_drawdowns(
        self,
        month: str,
        prices: Mapping[str, Decimal] | None = None,
        client_id: UUID | None = None,
    ) -> list[TenantDrawdown]:
        policies = self._rows(POLICIES, self._of(POLICIES, client_id))
        if not policies:
            return []
        in_month = [r for r in self._of(DRAWDOWN_MONTHS, client_id) if r["month"] == month]
        months = {r["client_id"]: r for r in self._rows(DRAWDOWN_MONTHS, in_month)}
        held = [r for r in self._of(POSITIONS, client_id) if r["status"] in OPEN_STATUSES]
        open_by_client: dict[UUID, list[Row]] = {}
        for row in self._rows(POSITIONS, held):
            open_by_client.setdefault(row["client_id"], []).append(row)
        if prices is None:
            prices = self.last_prices()
        return [
            tenant_drawdown(
                policy,
                month,
                months.get(policy["client_id"]),
                open_by_client.get(policy["client_id"], []),
                prices,
            )
            for policy in sorted(policies, key=lambda p: str(p["client_id"]))
        ]

    def last_prices(self) -> dict[str, Decimal]:
        return {r["symbol"]: r["price"] for r in self._rows(PRICES, self._of(PRICES, None))}

    def policy_row(self, client_id: UUID) -> Row | None:
        found = self._rows(POLICIES, self._of(POLICIES, client_id))
        return found[0] if found else None
