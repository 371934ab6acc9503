"""The worker's view of the open positions, kept in step with the positions projection.

The projection lags the log a little, so a row may predate the worker's own last write
about a position (a stop it just moved, an exit it just sent). What the worker learnt from
the aggregate it wrote is kept until the projection reports something newer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable
from uuid import UUID

from domain.market import Side
from domain.position import Position, Status
from domain.read_models import PositionRow
from workers.index import PositionIndex, Watched

Shard = tuple[int, int]  # (i, n): tenants whose client id's integer % n == i
FINISHED = frozenset({Status.CLOSED.value, Status.CANCELLED.value, Status.REJECTED.value})


class OpenPositions(Protocol):
    """The part of `ReadModels` a worker needs."""

    def open_positions(
        self, symbol: str | None = None, shard: Shard | None = None
    ) -> list[PositionRow]: ...


@runtime_checkable
class ChangedPositions(Protocol):
    """Rows of every status changed after a notification id: an incremental refresh."""

    def positions_changed_since(
        self, notification_id: int, shard: Shard | None = None
    ) -> list[PositionRow]: ...


@dataclass
class InFlight:
    """A position with an order whose outcome is not recorded yet: for reconciliation."""

    position_id: UUID
    client_id: UUID
    symbol: str
    since: datetime  # when the projection (or the worker) last saw it change
    entering: bool = False  # an entry order (the position is not open yet)
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Hold:
    """Rows up to notification `through` predate the worker's own write; `terminal`: all do."""

    through: int
    terminal: bool


def watched_from_row(row: PositionRow) -> Watched:
    return Watched(
        position_id=row.position_id,
        client_id=row.client_id,
        symbol=row.symbol,
        side=Side(row.side),
        entry=row.entry_price,
        initial_stop=row.initial_stop,
        stop=row.current_stop,
        target=row.target_price,
    )


def watched_from_position(position: Position) -> Watched:
    entry: Decimal = position.average_entry_price or position.entry_price
    return Watched(
        position_id=position.id,
        client_id=position.client_id,
        symbol=position.symbol,
        side=position.side,
        entry=entry,
        initial_stop=position.initial_stop,
        stop=position.stop_price,
        target=position.target_price,
    )


class Watchlist:
    """Open positions (in the index) and positions with an order in flight (for reconcile)."""

    def __init__(
        self,
        source: OpenPositions,
        index: PositionIndex,
        shard: Shard | None = None,
        full_refresh_every: timedelta | None = None,
    ) -> None:
        """Incremental refreshes when `source` offers them, with a full one every
        `full_refresh_every` (default 60 s); without them, every refresh is full."""
        self.source = source
        self.index = index
        self.shard = shard
        self.in_flight: dict[UUID, InFlight] = {}
        self.incremental = isinstance(source, ChangedPositions)
        if full_refresh_every is None:
            full_refresh_every = timedelta(seconds=60 if self.incremental else 0)
        self.full_refresh_every = full_refresh_every.total_seconds()
        self._cursor = 0  # the newest notification id seen in a row
        self._holds: dict[UUID, _Hold] = {}
        self._last_full: float | None = None

    def refresh(self, full: bool = False) -> None:
        """Bring the index up to date: with the changes since the last refresh, or in full."""
        now = time.monotonic()
        due = self._last_full is None or now - self._last_full >= self.full_refresh_every
        if full or due or not isinstance(self.source, ChangedPositions):
            self._replace(self.source.open_positions(shard=self.shard))
            self._last_full = now
            return
        rows = self.source.positions_changed_since(self._cursor, shard=self.shard)
        for row in sorted(rows, key=lambda r: r.updated_notification_id):
            self._cursor = max(self._cursor, row.updated_notification_id)
            if not self._held(row):
                self._place(row)

    def note(self, position: Position) -> None:
        """What the worker's own write (or a fresh load) says; stale rows will not undo it."""
        if position.order_in_flight is not None:
            self.index.remove(position.id)
            entering = position.status is Status.ENTERING
            self._flying(
                InFlight(
                    position.id, position.client_id, position.symbol, position.modified_on, entering
                )
            )
        elif position.status is Status.OPEN:
            self.in_flight.pop(position.id, None)
            self.index.upsert(watched_from_position(position))
        else:
            self.index.remove(position.id)
            self.in_flight.pop(position.id, None)
        terminal = position.status.value in FINISHED
        self._holds[position.id] = _Hold(self._cursor, terminal)

    # --- rows ---

    def _held(self, row: PositionRow) -> bool:
        hold = self._holds.get(row.position_id)
        if hold is None:
            return False
        if row.status in FINISHED or (
            not hold.terminal and row.updated_notification_id > hold.through
        ):
            del self._holds[row.position_id]
            return False
        return True

    def _place(self, row: PositionRow) -> None:
        if row.orders_in_flight:
            self.index.remove(row.position_id)
            self._flying(_in_flight(row))
        elif row.status == Status.OPEN.value:
            self.in_flight.pop(row.position_id, None)
            self.index.upsert(watched_from_row(row))
        else:
            self.index.remove(row.position_id)
            self.in_flight.pop(row.position_id, None)

    def _flying(self, flight: InFlight) -> None:
        """Track it; a position already tracked since the same change keeps its schedule."""
        known = self.in_flight.get(flight.position_id)
        if known is None or known.since != flight.since:
            self.in_flight[flight.position_id] = flight

    def _replace(self, rows: list[PositionRow]) -> None:
        """A full refresh: exactly the open rows, except what the worker knows to be newer."""
        watched: list[Watched] = []
        flying: dict[UUID, InFlight] = {}
        for row in rows:
            self._cursor = max(self._cursor, row.updated_notification_id)
            pid = row.position_id
            if self._held(row):
                kept = self.index.get(pid)
                if kept is not None:
                    watched.append(kept)
                if pid in self.in_flight:
                    flying[pid] = self.in_flight[pid]
            elif row.orders_in_flight:
                known = self.in_flight.get(pid)
                same = known is not None and known.since == row.updated_at
                flying[pid] = known if same and known is not None else _in_flight(row)
            elif row.status == Status.OPEN.value:
                watched.append(watched_from_row(row))
        listed = {row.position_id for row in rows}
        for pid in [pid for pid in self._holds if pid not in listed]:
            del self._holds[pid]
        self.index.replace_all(watched)
        self.in_flight = flying


def _in_flight(row: PositionRow) -> InFlight:
    entering = row.status == Status.ENTERING.value
    return InFlight(row.position_id, row.client_id, row.symbol, row.updated_at, entering)
