"""Pure pieces of the read side: period keys, trade arithmetic, the rebuild's event decoder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.market import Side
from domain.paper_market import PaperMarket
from domain.policy import Policy
from domain.store import EventStore
from projections.catalog import all_projections
from projections.events import FastDecoder
from projections.pnl import period_keys
from projections.tables import Codec, Dialect
from projections.trade_history import (
    TRADES,
    duration_hours,
    history_entry,
    pnl_percentage,
    win_rate,
)
from tests.factories import UNIT_CLIENT_ID, exit_fully_or_partly, later, opened_position


@pytest.mark.parametrize(
    ("moment", "keys"),
    [
        (datetime(2026, 11, 30, 23, 59, tzinfo=UTC), ("2026-11-30", "2026-W49", "2026-11", "2026")),
        (datetime(2026, 12, 31, 12, tzinfo=UTC), ("2026-12-31", "2026-W53", "2026-12", "2026")),
        (datetime(2027, 1, 1, 0, tzinfo=UTC), ("2027-01-01", "2026-W53", "2027-01", "2027")),
        (datetime(2027, 1, 4, 0, tzinfo=UTC), ("2027-01-04", "2027-W01", "2027-01", "2027")),
        (datetime(2029, 12, 31, 8, tzinfo=UTC), ("2029-12-31", "2030-W01", "2029-12", "2029")),
    ],
)
def test_periods_are_utc_days_iso_weeks_months_and_years(
    moment: datetime, keys: tuple[str, str, str, str]
) -> None:
    assert period_keys(moment) == keys
    iso_year, week, _ = moment.isocalendar()
    assert keys[1] == f"{iso_year}-W{week:02d}"


def test_periods_follow_utc_not_the_writers_zone() -> None:
    new_years_eve_in_new_york = datetime(2026, 12, 31, 20, tzinfo=timezone(timedelta(hours=-5)))
    assert period_keys(new_years_eve_in_new_york) == ("2027-01-01", "2026-W53", "2027-01", "2027")


@pytest.mark.parametrize(
    ("pnl", "entry", "quantity", "expected"),
    [
        ("490", "50000", "0.1", "9.80"),
        ("-5", "50000", "0.1", "-0.10"),
        ("0.15", "98500", "0.0003", "0.51"),
        ("1", "3", "1", "33.33"),
    ],
)
def test_pnl_percentage_is_pnl_over_notional_to_two_places(
    pnl: str, entry: str, quantity: str, expected: str
) -> None:
    assert str(pnl_percentage(Decimal(pnl), Decimal(entry), Decimal(quantity))) == expected


def test_duration_is_exact_hours() -> None:
    start = datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert duration_hours(start, start + timedelta(hours=2)) == Decimal("2.0")
    assert duration_hours(start, start + timedelta(hours=4, minutes=30)) == Decimal("4.5")
    assert duration_hours(start, start + timedelta(days=3)) == Decimal(72)


@pytest.mark.parametrize(
    ("winners", "trades", "rate"),
    [(6, 10, "60.0%"), (3, 4, "75.0%"), (1, 3, "33.3%"), (0, 0, "0.0%")],
)
def test_win_rate_reads_like_the_spec(winners: int, trades: int, rate: str) -> None:
    assert win_rate(winners, trades) == rate


def test_sqlite_rows_store_exact_decimal_text_and_read_back_the_same_values() -> None:
    codec = Codec(TRADES, Dialect.SQLITE)
    row = {name: None for name in TRADES.column_names} | {
        "position_id": uuid4(),
        "exit_sequence": 1,
        "client_id": uuid4(),
        "symbol": "BTCUSDC",
        "side": "LONG",
        "quantity": Decimal("0.00499000"),
        "entry_price": Decimal("98500.00"),
        "is_closed": True,
        "entry_time": datetime(2026, 11, 2, 9, tzinfo=UTC),
        "fees": Decimal("0.1000000000"),
        "activity_time": datetime(2026, 11, 2, 9, 0, 0, 1, tzinfo=UTC),
    }
    stored = codec.params(row)
    assert "0.00499000" in stored and 1 in stored  # text for money, integers for booleans
    assert codec.row(stored) == row | {"document": history_entry(row)}  # derived when written
    assert [str(v) for v in codec.row(stored).values() if isinstance(v, Decimal)] == [
        "0.00499000",
        "98500.00",
        "0.1000000000",
    ]


def every_kind_of_event() -> Iterator[object]:
    position = opened_position(side=Side.LONG, fees={"BTC": Decimal("0.0001")})
    position.adjust_stop(Decimal("49500"), 1, later(5))
    exit_fully_or_partly(position, "51000", {"USDC": Decimal("2")}, quantity="0.05")
    exit_fully_or_partly(position, "52000", {"USDC": Decimal("3")}, minute=20)
    policy = Policy.configure(UNIT_CLIENT_ID, Decimal(1000), later(0))
    policy.start_month("2026-03", later(1))
    policy.realise(position.id, "2026-03", Decimal("-25.5"), Decimal(0), later(2))
    policy.observe_drawdown("2026-03", Decimal("4.2"), later(3))
    policy.resume("ops", "reviewed", later(4))
    policy.reconfigure(Decimal(2000), Decimal("0.5"), Decimal(3), later(5))
    market = PaperMarket._create(
        PaperMarket.Opened, id=uuid4(), timestamp=later(0), symbol="BTCUSDC", price=Decimal(1)
    )
    market.set_price(Decimal("50000.01"), later(1))
    yield from position.collect_events()
    yield from policy.collect_events()
    yield from market.collect_events()


def test_the_rebuild_decoder_reads_what_each_projection_declares_as_the_mapper_does() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    reads: dict[str, set[str]] = {}
    for projection in all_projections():
        for topic, fields in projection.reads.items():
            reads.setdefault(topic, set()).update(fields)
    decode = FastDecoder(store, reads)
    checked = set()
    for event in every_kind_of_event():
        stored = store.mapper.to_stored_event(event)  # type: ignore[arg-type]
        topic = get_topic(type(event))
        if topic not in reads:
            continue
        full = vars(store.mapper.to_domain_event(stored))
        fast = decode(topic, stored.originator_id, stored.state)
        assert type(fast) is type(event)
        assert vars(fast) == {name: full[name] for name in reads[topic]}
        checked.add(topic)
    assert len(checked) >= 18  # every handled event type of the fixture above


def test_paper_prices_keep_the_topics_they_were_first_stored_under() -> None:
    """Logs written before the paper market moved into the domain still match its handlers."""
    assert get_topic(PaperMarket) == "infra.paper_accounts:PaperMarket"
    assert get_topic(PaperMarket.Opened) == "infra.paper_accounts:PaperMarket.Opened"
    assert get_topic(PaperMarket.PriceSet) == "infra.paper_accounts:PaperMarket.PriceSet"
