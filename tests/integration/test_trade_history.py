"""Trade history projection: one row per exit fill, P&L net of fees, open remainders apart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.market import Side
from domain.read_models import Period
from infra.bootstrap import Services
from tests.factories import open_long, register
from tests.trade_builders import closed_trade, exit_fill, filled, save

OPENED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def caught_up(services: Services) -> None:
    services.projections.run_once()


def test_a_long_round_trip_reads_as_the_spec_says(services: Services) -> None:
    client_id, _ = register(services.ledger)
    position = closed_trade(
        services.store,
        client_id,
        OPENED,
        hours=2,
        entry="50000",
        exit_price="55000",
        quantity="0.1",
        entry_fee="5",
        exit_fee="5",
    )
    caught_up(services)

    [trade] = services.read_models.trade_history(client_id)
    assert trade.position_id == position.id
    assert (trade.side, trade.quantity) == ("LONG", Decimal("0.1"))
    assert (trade.entry_price, trade.exit_price) == (Decimal("50000"), Decimal("55000"))
    assert trade.pnl == Decimal("490")
    assert str(trade.pnl_percentage) == "9.80"
    assert trade.duration_hours == Decimal("2.0")
    assert trade.is_winner is True
    assert trade.is_closed is True
    assert trade.fees == Decimal("10")
    assert (trade.entry_time, trade.exit_time) == (OPENED, OPENED + timedelta(hours=2))


def test_a_trade_that_gains_on_price_but_loses_after_fees_is_not_a_winner(
    services: Services,
) -> None:
    client_id, _ = register(services.ledger)
    # +5 on price (0.1 × 50), −10 in fees.
    closed_trade(services.store, client_id, OPENED, exit_price="50050", entry_fee="5", exit_fee="5")
    caught_up(services)

    [trade] = services.read_models.trade_history(client_id)
    assert trade.pnl == Decimal("-5")
    assert trade.is_winner is False
    summary = services.read_models.trade_summary(client_id)
    assert (summary.winners, summary.losers, summary.win_rate) == (0, 1, "0.0%")
    assert summary.total_pnl == Decimal("-5")


def test_a_short_wins_when_the_price_falls(services: Services) -> None:
    client_id, _ = register(services.ledger)
    closed_trade(
        services.store,
        client_id,
        OPENED,
        hours=4.5,
        side=Side.SHORT,
        exit_price="48000",
        entry_fee="5",
        exit_fee="5",
    )
    caught_up(services)

    [trade] = services.read_models.trade_history(client_id)
    assert (trade.side, trade.pnl, str(trade.pnl_percentage)) == ("SHORT", Decimal(190), "3.80")
    assert trade.duration_hours == Decimal("4.5")
    assert trade.is_winner is True


def test_each_partial_exit_is_its_own_row_and_the_rest_stays_open(services: Services) -> None:
    client_id, _ = register(services.ledger)
    position = filled(client_id, OPENED, entry="50000", quantity="0.1", entry_fee="10")
    exit_fill(position, "51000", OPENED + timedelta(hours=1), fee="2", quantity="0.04")
    save(services.store, position)
    caught_up(services)

    closed, still_open = services.read_models.trade_history(client_id)
    # 0.04 × 1000 on price − 4 of the entry fee (pro rata) − 2 exit fee.
    assert (closed.exit_sequence, closed.quantity, closed.pnl) == (1, Decimal("0.04"), Decimal(34))
    assert closed.fees == Decimal(6)
    assert (still_open.exit_sequence, still_open.is_closed) == (0, False)
    assert still_open.quantity == Decimal("0.06")
    assert still_open.fees == Decimal(6)  # the entry fee not charged to an exit yet
    assert (still_open.pnl, still_open.exit_price, still_open.is_winner) == (None, None, None)
    summary = services.read_models.trade_summary(client_id)
    assert (summary.total_trades, summary.closed_trades, summary.open_trades) == (2, 1, 1)
    assert summary.total_pnl == Decimal(34)

    exit_fill(position, "52000", OPENED + timedelta(hours=3), fee="3")
    save(services.store, position)
    caught_up(services)

    last, first = services.read_models.trade_history(client_id)
    assert [last.exit_sequence, first.exit_sequence] == [2, 1]  # most recent exit first
    # The closing exit carries the rest of the entry fee: 0.06 × 2000 − 6 − 3.
    assert (last.quantity, last.pnl, last.duration_hours) == (
        Decimal("0.06"),
        Decimal(111),
        Decimal(3),
    )
    assert services.read_models.trade_summary(client_id).total_pnl == Decimal(145)
    assert services.read_models.trade_summary(client_id).open_trades == 0


def test_each_row_keeps_the_trade_as_the_history_reply_lists_it(services: Services) -> None:
    client_id, _ = register(services.ledger)
    position = filled(client_id, OPENED, entry="50000", quantity="0.1", entry_fee="10")
    exit_fill(position, "51000", OPENED + timedelta(minutes=90), fee="2", quantity="0.04")
    save(services.store, position)
    caught_up(services)

    closed, still_open = services.read_models.trade_page(client_id, None, 10)
    assert json.loads(closed[1]) == {
        "id": str(position.id),
        "exit_sequence": 1,
        "symbol": "BTCUSDC",
        "side": "BUY",
        "position_side": "LONG",
        "quantity": "0.04000000",
        "entry_price": "50000.00000000",
        "exit_price": "51000.00000000",
        "pnl": "34.00000000",
        "pnl_percentage": "1.70",
        "is_winner": True,
        "is_closed": True,
        "duration_hours": 1.5,
        "fees": "6.00000000",
        "entry_time": "2026-11-02T10:00:00Z",
        "exit_time": "2026-11-02T11:30:00Z",
    }
    assert json.loads(still_open[1]) | {"id": None} == {
        "id": None,
        "exit_sequence": 0,
        "symbol": "BTCUSDC",
        "side": "BUY",
        "position_side": "LONG",
        "quantity": "0.06000000",
        "entry_price": "50000.00000000",
        "exit_price": None,
        "pnl": None,
        "pnl_percentage": None,
        "is_winner": None,
        "is_closed": False,
        "duration_hours": None,
        "fees": "6.00000000",
        "entry_time": "2026-11-02T10:00:00Z",
        "exit_time": None,
    }


def test_rows_match_the_ledgers_own_pnl_on_the_paper_exchange(services: Services) -> None:
    assert services.paper is not None
    client_id, _ = register(services.ledger)
    position = open_long(services.ledger, client_id, stop="98000")
    services.paper.set_price("BTCUSDC", Decimal("104000"))
    closed = services.ledger.close_position(client_id, position.id)
    caught_up(services)

    [trade] = services.read_models.trade_history(client_id)
    assert trade.pnl == closed.realised_pnl
    assert trade.quantity == Decimal("0.00499")  # whole lot steps; the dust is not a trade
    assert services.read_models.trade_summary(client_id).open_trades == 0


def test_history_since_a_time_keeps_open_trades_and_drops_older_exits(
    services: Services,
) -> None:
    client_id, _ = register(services.ledger)
    closed_trade(services.store, client_id, OPENED - timedelta(days=40))
    recent = closed_trade(services.store, client_id, OPENED - timedelta(days=3))
    still_open = filled(client_id, OPENED - timedelta(days=60))
    save(services.store, still_open)
    caught_up(services)

    since = OPENED - timedelta(days=30)
    found = services.read_models.trade_history(client_id, since, 100)
    assert {(t.position_id, t.is_closed) for t in found} == {
        (recent.id, True),
        (still_open.id, False),
    }
    assert len(services.read_models.trade_history(client_id, None, 1)) == 1
    summary = services.read_models.trade_summary(client_id, since)
    assert (summary.total_trades, summary.closed_trades, summary.open_trades) == (2, 1, 1)


def test_open_trades_count_in_the_summary_but_never_in_pnl(services: Services) -> None:
    client_id, _ = register(services.ledger)
    save(services.store, filled(client_id, OPENED, entry_fee="5"))
    caught_up(services)

    summary = services.read_models.trade_summary(client_id)
    assert (summary.total_trades, summary.open_trades, summary.closed_trades) == (1, 1, 0)
    assert (summary.total_pnl, summary.win_rate) == (Decimal(0), "0.0%")
    periods, overall = services.read_models.pnl_by_period(client_id, Period.MONTHLY, 12)
    assert (periods, overall.total_trades, overall.total_pnl) == ([], 0, Decimal(0))
