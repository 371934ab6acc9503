"""`ReadModels` over the projection tables: what the API, the workers and the rules query."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from domain.position import Status
from domain.read_models import (
    DrawdownRow,
    Period,
    PeriodPnl,
    PnlOverall,
    PositionRow,
    ProjectionStatus,
    TradeRow,
    TradeSummary,
)
from domain.store import EventStore
from projections.as_of import TimeTravel
from projections.audit import AuditRecord, ExportFilter, export_events
from projections.catalog import all_projections, select_projections
from projections.database import ProjectionDatabase
from projections.drawdown import DRAWDOWN_MONTHS, POLICIES, PRICES, TenantDrawdown, tenant_drawdown
from projections.events import events_table
from projections.past import PastReadModels
from projections.pnl import PNL_PERIODS, periods_with_cumulative
from projections.positions import (
    OPEN_STATUSES,
    POSITIONS,
    WATCHED_STATUSES,
    in_shard,
    position_row,
)
from projections.projection import Projection
from projections.rebuild import RebuildReport, rebuild
from projections.tables import Codec, Dialect, Record, Row, Table, quote
from projections.trade_history import TRADES, summarise, trade_row_of

DOCUMENT = TRADES.column_names.index("document")

WAIT_POLL_SECONDS = 0.01


class SqlReadModels:
    """Reads only projection tables (never aggregates); tenant-scoped by `client_id`."""

    def __init__(
        self,
        database: ProjectionDatabase,
        store: EventStore,
        projections: Sequence[Projection] | None = None,
    ) -> None:
        self.database = database
        self.store = store
        projections = projections if projections is not None else all_projections()
        self.names = tuple(p.name for p in projections)
        self._codecs: dict[str, Codec] = {}
        self._time_travel: TimeTravel | None = None
        self._time_travel_lock = threading.Lock()

    def close(self) -> None:
        self.database.close()

    def as_of(self, client_id: UUID, as_of: datetime) -> PastReadModels:
        """The tenant's read models as its events up to `as_of` left them."""
        with self._time_travel_lock:
            if self._time_travel is None:
                self._time_travel = TimeTravel(self.database, self.store, all_projections())
            time_travel = self._time_travel
        return time_travel.read_models(client_id, as_of)

    def forget_past(self) -> None:
        """Drop the events `as_of` keeps (the next past read of a tenant reads them again)."""
        with self._time_travel_lock:
            if self._time_travel is not None:
                self._time_travel.forget()

    # --- helpers ---

    def _codec(self, table: Table) -> Codec:
        codec = self._codecs.get(table.name)
        if codec is None:
            codec = self._codecs[table.name] = Codec(table, self.database.dialect)
        return codec

    def _select(
        self, table: Table, where: str, params: Sequence[object], tail: str = ""
    ) -> list[Row]:
        codec = self._codec(table)
        return [codec.row(r) for r in self._select_raw(table, where, params, tail)]

    def _select_raw(
        self, table: Table, where: str, params: Sequence[object], tail: str
    ) -> list[Record]:
        cols = ", ".join(quote(c) for c in table.column_names)
        with self.database.session() as s:
            return s.execute(
                f"SELECT {cols} FROM {self.database.qualified(table.name)} WHERE {where} {tail}",
                params,
            )

    def _p(self, table: Table, column: str, value: object) -> object:
        return self._codec(table).param(column, value)

    # --- trades and P&L ---

    def trade_history(
        self, client_id: UUID, since: datetime | None = None, limit: int = 100
    ) -> list[TradeRow]:
        """Most recent first: closed trades by exit time, open remainders by entry time."""
        return [row for row, _ in self.trade_page(client_id, since, limit)]

    def trade_page(
        self, client_id: UUID, since: datetime | None, limit: int
    ) -> list[tuple[TradeRow, str]]:
        """`trade_history`, each trade with its document for the history reply."""
        found = self._trades_in_window(client_id, since, limit)
        return [(trade_row_of(values), values[DOCUMENT]) for values in found]

    def trade_summary(self, client_id: UUID, since: datetime | None = None) -> TradeSummary:
        return summarise([trade_row_of(v) for v in self._trades_in_window(client_id, since)])

    def _trades_in_window(
        self, client_id: UUID, since: datetime | None, limit: int | None = None
    ) -> list[Record]:
        """The tenant's trades closed since `since` or still open (every one: None), in the
        table's column order; with a `limit`, that many of them, most recent first."""
        codec = self._codec(TRADES)
        cols = ", ".join(quote(c) for c in TRADES.column_names)
        select = f'SELECT {cols} FROM {self.database.qualified(TRADES.name)} WHERE "client_id" = %s'
        client = codec.param("client_id", client_id)
        if since is None:
            statement, params = select, [client]
        else:
            # Two short index ranges, materialised so that no plan trades them for the
            # ORDER BY's index: a plan for `open OR closed since` walks every trade the
            # tenant ever had.
            statement = (
                f'WITH in_window AS MATERIALIZED ({select} AND "is_closed" = %s AND '
                f'"exit_time" >= %s UNION ALL {select} AND "is_closed" = %s) '
                "SELECT * FROM in_window"
            )
            closed, still_open = codec.param("is_closed", True), codec.param("is_closed", False)
            params = [client, closed, codec.param("exit_time", since), client, still_open]
        if limit is not None:
            statement += ' ORDER BY "activity_time" DESC, "position_id", "exit_sequence" LIMIT %s'
            params.append(limit)
        with self.database.session() as s:
            return [codec.values(r) for r in s.execute(statement, params)]

    def pnl_by_period(
        self, client_id: UUID, period: Period, limit: int = 12
    ) -> tuple[list[PeriodPnl], PnlOverall]:
        rows = self._select(
            PNL_PERIODS,
            '"client_id" = %s AND "period_type" = %s',
            [self._p(PNL_PERIODS, "client_id", client_id), period.value],
            'ORDER BY "period"',
        )
        return periods_with_cumulative(
            [
                (r["period"], r["pnl"], r["trades"], r["winners"], r["losers"], r["volume"])
                for r in rows
            ],
            limit,
        )

    # --- drawdown ---

    def drawdown(
        self, client_id: UUID, month: str, prices: Mapping[str, Decimal] | None = None
    ) -> DrawdownRow | None:
        """The month's drawdown now: open positions at `prices` (default: last paper prices)."""
        found = self.tenant_drawdowns(month, prices, client_id)
        return found[0].row if found else None

    def tenant_drawdowns(
        self,
        month: str,
        prices: Mapping[str, Decimal] | None = None,
        client_id: UUID | None = None,
    ) -> list[TenantDrawdown]:
        """Every tenant's (or one tenant's) drawdown for `month`, with its limit and history."""
        where, params = "1 = 1", []
        if client_id is not None:
            where, params = '"client_id" = %s', [self._p(POLICIES, "client_id", client_id)]
        policies = self._select(POLICIES, where, params)
        if not policies:
            return []
        months = {
            r["client_id"]: r
            for r in self._select(DRAWDOWN_MONTHS, f'{where} AND "month" = %s', [*params, month])
        }
        open_by_client: dict[UUID, list[Row]] = {}
        one = ' AND "client_id" = %s' if client_id is not None else ""
        open_where = '"status" IN (%s, %s)' + one
        for row in self._select(POSITIONS, open_where, [*OPEN_STATUSES, *params]):
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

    def policy_row(self, client_id: UUID) -> Row | None:
        """The tenant's row of the drawdown projection's policy table."""
        found = self._select(
            POLICIES, '"client_id" = %s', [self._p(POLICIES, "client_id", client_id)]
        )
        return found[0] if found else None

    def last_prices(self) -> dict[str, Decimal]:
        return {r["symbol"]: r["price"] for r in self._select(PRICES, "1 = 1", [])}

    # --- positions ---

    def positions(
        self, client_id: UUID, status: str | None = None, limit: int = 500
    ) -> list[PositionRow]:
        where = '"client_id" = %s' + (' AND "status" = %s' if status else "")
        params: list[object] = [self._p(POSITIONS, "client_id", client_id)]
        if status:
            params.append(status)
        tail = 'ORDER BY "planned_at" DESC, "position_id" LIMIT %s'
        return [position_row(r) for r in self._select(POSITIONS, where, [*params, limit], tail)]

    def position(self, client_id: UUID, position_id: UUID) -> PositionRow | None:
        rows = self._select(
            POSITIONS,
            '"position_id" = %s AND "client_id" = %s',
            [
                self._p(POSITIONS, "position_id", position_id),
                self._p(POSITIONS, "client_id", client_id),
            ],
        )
        return position_row(rows[0]) if rows else None

    def open_positions(
        self, symbol: str | None = None, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """What the workers watch, for every tenant: open and closing positions, and those
        whose entry order is in flight (reconciliation settles them)."""
        where = '"status" IN (%s, %s, %s)' + (' AND "symbol" = %s' if symbol else "")
        params = [*WATCHED_STATUSES, *([symbol] if symbol else [])]
        rows = self._select(POSITIONS, where, params, 'ORDER BY "planned_at", "position_id"')
        return [position_row(r) for r in rows if in_shard(r["client_id"], shard)]

    def validated_before(
        self, moment: datetime, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """Every tenant's positions validated and left unexecuted since before `moment`,
        oldest first: risk reserved for a trade nobody has sent."""
        rows = self._select(
            POSITIONS,
            '"status" = %s AND "updated_at" < %s',
            [Status.VALIDATED.value, self._p(POSITIONS, "updated_at", moment)],
            'ORDER BY "updated_at", "position_id"',
        )
        return [position_row(r) for r in rows if in_shard(r["client_id"], shard)]

    def positions_changed_since(
        self, notification_id: int, shard: tuple[int, int] | None = None
    ) -> list[PositionRow]:
        """Positions of every status changed after `notification_id`, oldest change first:
        a worker's incremental refresh."""
        rows = self._select(
            POSITIONS,
            '"updated_notification_id" > %s',
            [notification_id],
            'ORDER BY "updated_notification_id"',
        )
        return [position_row(r) for r in rows if in_shard(r["client_id"], shard)]

    # --- operation ---

    def log_position(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def rebuild(self, names: Sequence[str]) -> RebuildReport:
        """Fold the whole log into fresh tables of the named projections, then swap them in;
        queries keep answering meanwhile."""
        return rebuild(self.database, self.store, select_projections(names))

    def audit_events(self, selection: ExportFilter) -> Iterator[AuditRecord]:
        """The log's events as the audit export shows them, streamed page by page."""
        return export_events(self.store, selection)

    def status(self) -> list[ProjectionStatus]:
        """Position, and lag in events and in event time (seconds), per projection."""
        positions = self.database.positions(self.names)
        head = self.log_position()
        times: dict[int, datetime | None] = {}
        statuses = []
        for name in self.names:
            position = positions[name]
            lag_events = self._events_after(position) if position < head else 0
            lag = Decimal(0)
            if lag_events:
                newest = self._event_time(head, times)
                applied = self._event_time(position, times)
                if newest is not None and applied is not None and newest > applied:
                    lag = _seconds(newest - applied)
            statuses.append(ProjectionStatus(name, position, lag_events, lag))
        return statuses

    def _events_after(self, position: int) -> int:
        table = self.database.qualified(events_table(self.store))
        column = "rowid" if self.database.dialect is Dialect.SQLITE else "notification_id"
        with self.database.session() as s:
            rows = s.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} > %s", (position,))
        return int(rows[0][0])

    def _event_time(self, position: int, cache: dict[int, datetime | None]) -> datetime | None:
        """Time of the event at `position` (or the first one after it)."""
        if position not in cache:
            found = self.store.recorder.select_notifications(start=position, limit=1)
            moment = None
            if found:
                moment = getattr(self.store.mapper.to_domain_event(found[0]), "timestamp", None)
            cache[position] = moment
        return cache[position]

    def wait_for(self, notification_id: int, timeout: float = 5.0) -> bool:
        """Block until every projection has applied `notification_id` (read-your-writes)."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            if min(self.database.positions(self.names).values()) >= notification_id:
                return True
            if time.monotonic() >= deadline:
                return False
            pause.wait(WAIT_POLL_SECONDS)


def _seconds(elapsed: timedelta) -> Decimal:
    micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
    return (Decimal(micros) / Decimal(1_000_000)).quantize(Decimal("0.001"))
