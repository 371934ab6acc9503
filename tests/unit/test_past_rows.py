"""Rows of a tenant's past held in memory: folds never change the rows they start from, and
a row is handed back exactly as a SQLite table would have returned it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.position import Position
from projections.as_of import positions_unseen
from projections.catalog import all_projections
from projections.drawdown import POLICIES
from projections.past import AsStored
from projections.positions import POSITIONS
from projections.projection import LayeredRows
from projections.tables import Codec, Dialect, Row, Table
from projections.trade_history import TRADES

AT = datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)


def position(**changes: Any) -> Row:
    row: Row = {
        "position_id": uuid4(),
        "client_id": uuid4(),
        "symbol": "BTCUSDC",
        "side": "LONG",
        "status": "open",
        "quantity": Decimal("0.00500000"),
        "open_quantity": Decimal("0.005"),
        "held_quantity": Decimal("5E-3"),
        "entry_price": Decimal("100000"),
        "initial_stop": Decimal("98000.0"),
        "current_stop": None,
        "target_price": None,
        "realised_pnl": Decimal("-0E-8"),
        "fees": Decimal("0.1"),
        "entry_fees_remaining": Decimal(0),
        "exits": 0,
        "orders_in_flight": "",
        "margin": False,
        "planned_at": AT,
        "opened_at": AT.astimezone(timezone(timedelta(hours=2))),  # shown in UTC once stored
        "closed_at": None,
        "updated_at": AT.replace(microsecond=0),
        "updated_notification_id": 7,
    }
    return row | changes


def trade() -> Row:
    return {
        "position_id": uuid4(),
        "exit_sequence": 1,
        "client_id": uuid4(),
        "symbol": "BTCUSDC",
        "side": "LONG",
        "quantity": Decimal("0.005"),
        "entry_price": Decimal("100000"),
        "exit_price": Decimal("99500.00"),
        "pnl": Decimal("-2.5"),
        "pnl_percentage": Decimal("-0.50"),
        "is_winner": False,
        "is_closed": True,
        "duration_hours": Decimal("1.00"),
        "entry_time": AT,
        "exit_time": AT + timedelta(hours=1),
        "fees": Decimal("0"),
        "activity_time": AT + timedelta(hours=1),
    }


def policy() -> Row:
    return {
        "policy_id": uuid4(),
        "client_id": uuid4(),
        "capital": Decimal("1000"),
        "risk_percent": Decimal("1.0"),
        "drawdown_limit_percent": Decimal(4),
        "paused": True,
        "paused_month": "2026-11",
        "pause_reason": "4% reached",
        "updated_at": AT,
    }


@pytest.mark.parametrize(
    ("table", "row"),
    [
        pytest.param(POSITIONS, position(), id="position"),
        pytest.param(POSITIONS, position(exits=True, quantity=5), id="unusual-types"),
        pytest.param(TRADES, trade(), id="trade-with-its-document"),
        pytest.param(POLICIES, policy(), id="policy"),
    ],
)
def test_a_row_is_handed_back_as_the_codecs_round_trip_gives_it(table: Table, row: Row) -> None:
    codec = Codec(table, Dialect.SQLITE)
    expected = codec.values(codec.params(row))

    found = AsStored(table)(row)

    assert found == expected
    assert [type(v) for v in found] == [type(v) for v in expected]
    assert [str(v) for v in found] == [str(v) for v in expected]  # Decimal('1.0') stays 1.0


def test_a_fold_over_layered_rows_leaves_its_base_unchanged() -> None:
    kept = position()
    base = {POSITIONS.name: {(kept["position_id"],): kept}}
    copy = dict(kept)

    rows = LayeredRows(base)
    row = rows.get(POSITIONS, (kept["position_id"],))
    assert row is not None
    row["status"] = "closed"
    added = position()
    rows.put(POSITIONS, added)
    rows.delete(POSITIONS, (kept["position_id"],))

    assert kept == copy
    assert list(base[POSITIONS.name].values()) == [kept]
    assert list(rows.merged(POSITIONS.name).values()) == [added]


def test_every_position_event_a_past_read_folds_moves_the_positions_row() -> None:
    """What lets a past read find a tenant's changed positions by their rows."""
    topics = {topic for projection in all_projections() for topic in projection.topics}
    position = get_topic(Position) + "."

    assert any(topic.startswith(position) for topic in topics)
    assert positions_unseen(topics) == []
    assert positions_unseen([*topics, position + "Unknown"]) == [position + "Unknown"]
