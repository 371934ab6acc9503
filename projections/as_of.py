"""Time travel: the read models as one tenant's events up to an instant left them.

The tenant's aggregates (its positions, by the positions table, and its policy) are read by
originator id, which the event store indexes; their events up to the instant are folded by
the live projections' own handlers into memory, written to a temporary SQLite database, and
read by the usual queries, so a past answer is computed exactly as a present one."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.identity import policy_id_for
from projections.catalog import all_projections
from projections.database import ProjectionDatabase
from projections.positions import POSITIONS
from projections.projection import MemoryRows
from projections.sql_read_models import SqlReadModels
from projections.tables import Codec, Dialect, quote


def tenant_events(live: SqlReadModels, client_id: UUID, as_of: datetime) -> list[Any]:
    """The tenant's events recorded at or before `as_of`, oldest first (only its own)."""
    database = live.database
    codec = Codec(POSITIONS, database.dialect)
    with database.session() as session:
        found = session.execute(
            f"SELECT {quote('position_id')} FROM {database.qualified(POSITIONS.name)} "
            f"WHERE {quote('client_id')} = %s",
            (codec.param("client_id", client_id),),
        )
    ids = [policy_id_for(client_id), *(UUID(str(pid)) for (pid,) in found)]
    events: list[Any] = []
    for aggregate_id in ids:
        stored: list[Any] = list(live.store.events.get(aggregate_id))
        events.extend(e for e in stored if e.timestamp <= as_of)
    events.sort(key=lambda e: e.timestamp)  # stable: each aggregate's own order is kept
    return events


@contextmanager
def read_models_as_of(
    live: SqlReadModels, client_id: UUID, as_of: datetime
) -> Iterator[SqlReadModels]:
    """Read models holding only the tenant's state at `as_of`, gone when the block ends."""
    projections = all_projections()
    memory = {p.name: MemoryRows(p.tables) for p in projections}
    for position, event in enumerate(tenant_events(live, client_id, as_of), start=1):
        for projection in projections:
            projection.apply(event, position, memory[projection.name])
    with tempfile.TemporaryDirectory(prefix="robson-as-of-") as folder:
        database = ProjectionDatabase(
            Dialect.SQLITE, sqlite_path=Path(folder) / "as_of.sqlite3", pool_size=1, durable=False
        )
        try:
            with database.transaction() as tx:
                for projection in projections:
                    for table in projection.tables:
                        database.create_table(tx, table, table.name)
                        database.create_indexes(tx, table, table.name)
                        codec = Codec(table, database.dialect)
                        rows = (codec.params(row) for row in memory[projection.name].rows(table))
                        tx.copy_in(database.qualified(table.name), table.column_names, rows)
            yield SqlReadModels(database, live.store, projections)
        finally:
            database.close()
