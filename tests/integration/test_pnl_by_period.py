"""P&L by period: realised by exit time, per tenant, with running totals and win rates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from domain.market import Side
from domain.read_models import Period
from infra.bootstrap import Services
from tests.factories import register
from tests.trade_builders import closed_trade, filled, save


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# (opened, side, exit price, fee each way) of 0.1 BTC entered at 50000, closed 2 hours later.
THREE_MONTHS = [
    (at(2026, 11, 3), Side.LONG, "55000", "5"),  # +490
    (at(2026, 11, 20), Side.LONG, "50050", "5"),  # −5: up on price, down after fees
    (at(2026, 12, 7), Side.SHORT, "48000", "5"),  # +190
    (at(2027, 1, 5), Side.LONG, "49000", "5"),  # −110
    (at(2027, 1, 18), Side.LONG, "50400", "0"),  # +40
]


def three_months_of_trades(services: Services, client_id: UUID) -> None:
    """The trades above, and one position still open in January."""
    for opened, side, exit_price, fee in THREE_MONTHS:
        closed_trade(
            services.store,
            client_id,
            opened,
            side=side,
            exit_price=exit_price,
            entry_fee=fee,
            exit_fee=fee,
        )
    save(services.store, filled(client_id, at(2027, 1, 20)))
    services.projections.run_once()


def test_monthly_pnl_runs_a_cumulative_total_and_a_win_rate(services: Services) -> None:
    client_id, _ = register(services.ledger)
    three_months_of_trades(services, client_id)

    periods, overall = services.read_models.pnl_by_period(client_id, Period.MONTHLY, 12)

    assert [p.period for p in periods] == ["2026-11", "2026-12", "2027-01"]
    assert [p.pnl for p in periods] == [485, 190, -70]
    assert [p.cumulative_pnl for p in periods] == [485, 675, 605]
    assert [(p.trades, p.winners, p.losers) for p in periods] == [(2, 1, 1), (1, 1, 0), (2, 1, 1)]
    assert [p.win_rate for p in periods] == ["50.0%", "100.0%", "50.0%"]
    # Quote volume of both legs of every exit: (entry + exit) × quantity.
    assert periods[1].volume == (Decimal(50000) + Decimal(48000)) * Decimal("0.1")
    assert overall.total_pnl == Decimal(605)
    assert (overall.total_trades, overall.winners, overall.losers) == (5, 3, 2)
    assert overall.win_rate == "60.0%"


def test_a_limit_keeps_the_latest_periods_with_totals_from_the_beginning(
    services: Services,
) -> None:
    client_id, _ = register(services.ledger)
    three_months_of_trades(services, client_id)

    periods, overall = services.read_models.pnl_by_period(client_id, Period.MONTHLY, 2)

    assert [(p.period, p.cumulative_pnl) for p in periods] == [
        ("2026-12", Decimal(675)),
        ("2027-01", Decimal(605)),
    ]
    assert overall.total_trades == 5


def test_open_trades_are_in_the_summary_not_in_pnl(services: Services) -> None:
    client_id, _ = register(services.ledger)
    three_months_of_trades(services, client_id)

    summary = services.read_models.trade_summary(client_id)
    _, overall = services.read_models.pnl_by_period(client_id, Period.YEARLY, 10)
    assert (summary.total_trades, summary.closed_trades, summary.open_trades) == (6, 5, 1)
    assert summary.total_pnl == overall.total_pnl == Decimal(605)


def test_pnl_is_realised_in_the_period_of_the_exit(services: Services) -> None:
    client_id, _ = register(services.ledger)
    # Opened on 30 November, closed two hours into December.
    closed_trade(services.store, client_id, at(2026, 11, 30, 23), hours=2)
    services.projections.run_once()

    monthly, _ = services.read_models.pnl_by_period(client_id, Period.MONTHLY, 12)
    daily, _ = services.read_models.pnl_by_period(client_id, Period.DAILY, 12)
    assert [(p.period, p.pnl) for p in monthly] == [("2026-12", Decimal(500))]
    assert [p.period for p in daily] == ["2026-12-01"]


def test_weeks_are_iso_weeks_across_the_year_boundary(services: Services) -> None:
    client_id, _ = register(services.ledger)
    # Thursday 31 December 2026 and Friday 1 January 2027 are both in ISO week 53 of 2026;
    # Monday 4 January 2027 starts 2027-W01.
    for day in (at(2026, 12, 31, 8), at(2027, 1, 1, 8), at(2027, 1, 4, 8)):
        closed_trade(services.store, client_id, day)
    services.projections.run_once()

    weekly, _ = services.read_models.pnl_by_period(client_id, Period.WEEKLY, 10)
    yearly, _ = services.read_models.pnl_by_period(client_id, Period.YEARLY, 10)
    assert [(p.period, p.trades) for p in weekly] == [("2026-W53", 2), ("2027-W01", 1)]
    assert [(p.period, p.trades) for p in yearly] == [("2026", 1), ("2027", 2)]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.DAILY, ["2026-11-03", "2026-11-20", "2026-12-07", "2027-01-05", "2027-01-18"]),
        (Period.WEEKLY, ["2026-W45", "2026-W47", "2026-W50", "2027-W01", "2027-W03"]),
        (Period.YEARLY, ["2026", "2027"]),
    ],
)
def test_every_period_type_has_its_own_keys(
    services: Services, period: Period, expected: list[str]
) -> None:
    client_id, _ = register(services.ledger)
    three_months_of_trades(services, client_id)

    periods, overall = services.read_models.pnl_by_period(client_id, period, 100)
    assert [p.period for p in periods] == expected
    assert periods[-1].cumulative_pnl == overall.total_pnl == Decimal(605)
