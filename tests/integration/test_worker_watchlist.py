"""The worker's watchlist over a read model that lags: full and incremental refreshes, and
the worker's own writes never undone by a row that predates them. In memory, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from domain.market import Side
from domain.position import ExitReason, Position
from domain.read_models import PositionRow
from tests.factories import UNIT_CLIENT_ID, UNIT_NOW, later, opened_position, planned_position
from workers.index import PositionIndex
from workers.watchlist import ChangedPositions, Shard, Watchlist

D = Decimal


def row_of(position: Position, nid: int, **changes: object) -> PositionRow:
    row = PositionRow(
        position_id=position.id,
        client_id=position.client_id,
        symbol=position.symbol,
        side=position.side.value,
        status=position.status.value,
        quantity=position.quantity,
        open_quantity=position.open_quantity,
        entry_price=position.average_entry_price or position.entry_price,
        initial_stop=position.initial_stop,
        current_stop=position.stop_price,
        target_price=position.target_price,
        realised_pnl=position.realised_pnl,
        orders_in_flight=(position.order_in_flight,) if position.order_in_flight else (),
        margin=position.margin,
        planned_at=UNIT_NOW,
        updated_at=position.modified_on,
        updated_notification_id=nid,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


class Rows:
    """A read model with only the open-positions query (every refresh is a full one)."""

    def __init__(self) -> None:
        self.rows: dict[UUID, PositionRow] = {}
        self.full_reads = 0

    def put(self, row: PositionRow) -> None:
        self.rows[row.position_id] = row

    def open_positions(
        self, symbol: str | None = None, shard: Shard | None = None
    ) -> list[PositionRow]:
        self.full_reads += 1
        return [r for r in self.rows.values() if r.status in ("entering", "open", "closing")]


class ChangedRows(Rows):
    """... and the incremental query the worker prefers."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def positions_changed_since(
        self, notification_id: int, shard: Shard | None = None
    ) -> list[PositionRow]:
        self.asked.append(notification_id)
        return [r for r in self.rows.values() if r.updated_notification_id > notification_id]


def test_a_full_refresh_sorts_rows_into_watched_and_in_flight() -> None:
    source = Rows()
    watchlist = Watchlist(source, PositionIndex())
    assert not watchlist.incremental
    open_ = opened_position()
    closing = opened_position()
    closing.trigger_exit(ExitReason.MANUAL, D(50000), later(5))
    closing.submit_exit(later(6))
    source.put(row_of(open_, 10))
    source.put(row_of(closing, 11))

    watchlist.refresh()

    assert [p.position_id for p in watchlist.index] == [open_.id]
    assert list(watchlist.in_flight) == [closing.id]
    del source.rows[open_.id]
    watchlist.refresh()
    assert len(watchlist.index) == 0 and source.full_reads == 2


def test_an_incremental_refresh_asks_only_for_what_changed() -> None:
    source = ChangedRows()
    assert isinstance(source, ChangedPositions)
    watchlist = Watchlist(source, PositionIndex(), full_refresh_every=timedelta(hours=1))
    position = opened_position()
    source.put(row_of(position, 10))
    watchlist.refresh()  # the first refresh is a full one
    watchlist.refresh()
    assert source.asked == [10] and source.full_reads == 1

    source.put(row_of(position, 12, current_stop=D(50000)))
    watchlist.refresh()
    assert watchlist.index.get(position.id) is not None
    assert watchlist.index.get(position.id).stop == D(50000)  # type: ignore[union-attr]

    source.put(row_of(position, 15, status="closed"))
    watchlist.refresh()
    assert position.id not in watchlist.index
    assert source.asked == [10, 10, 12]


def test_an_entry_in_flight_is_tracked_by_incremental_and_full_refreshes_alike() -> None:
    source = ChangedRows()
    watchlist = Watchlist(source, PositionIndex(), full_refresh_every=timedelta(hours=1))
    watchlist.refresh()
    entering = planned_position()
    entering.validate([], later(1))
    entering.submit_entry(later(2))
    source.put(row_of(entering, 20))
    watchlist.refresh()
    assert watchlist.in_flight[entering.id].entering
    watchlist.refresh(full=True)
    assert list(watchlist.in_flight) == [entering.id]
    assert watchlist.in_flight[entering.id].entering
    assert entering.id not in watchlist.index  # nothing to trail or stop before the fill


def test_a_row_older_than_the_workers_own_exit_does_not_bring_the_position_back() -> None:
    source = Rows()
    watchlist = Watchlist(source, PositionIndex())
    position = opened_position()
    source.put(row_of(position, 10))
    watchlist.refresh()

    position.trigger_exit(ExitReason.STOP_LOSS, D(49000), later(5))
    position.submit_exit(later(6))
    watchlist.note(position)  # what the worker's own close returned: in flight
    watchlist.refresh()  # the projection has not seen it yet
    assert position.id not in watchlist.index
    assert list(watchlist.in_flight) == [position.id]

    source.put(row_of(position, 11))  # the projection catches up: closing
    watchlist.refresh()
    assert list(watchlist.in_flight) == [position.id]


def test_a_closed_position_stays_gone_until_the_projection_agrees() -> None:
    source = ChangedRows()
    watchlist = Watchlist(source, PositionIndex(), full_refresh_every=timedelta(hours=1))
    position = opened_position()
    stale = row_of(position, 10)
    source.put(stale)
    watchlist.refresh()
    position.trigger_exit(ExitReason.STOP_LOSS, D(49000), later(5))
    order_id = position.submit_exit(later(6))
    position.record_exit_fill(order_id, "x", D(49000), position.exit_order_quantity, {}, later(7))
    watchlist.note(position)
    assert position.id not in watchlist.index

    source.put(replace(stale, updated_notification_id=11))  # a newer, unrelated change
    watchlist.refresh()
    assert position.id not in watchlist.index  # closed is final
    source.put(row_of(position, 14))
    watchlist.refresh()
    assert position.id not in watchlist.index and not watchlist.in_flight


def test_a_stale_row_never_loosens_a_stop_the_worker_has_moved() -> None:
    source = Rows()
    watchlist = Watchlist(source, PositionIndex())
    position = opened_position(side=Side.LONG, entry="50000", stop="49000")
    source.put(row_of(position, 10))
    watchlist.refresh()
    watchlist.index.tighten(position.id, D(51000))
    watchlist.refresh()
    found = watchlist.index.get(position.id)
    assert found is not None and found.stop == D(51000)
    assert found.client_id == UNIT_CLIENT_ID
