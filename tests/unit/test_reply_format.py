"""Every reply writes money as 8-decimal strings (ties to even) and times in UTC with `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from domain.formats import cents, iso, maybe_money, money


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("98500", "98500.00000000"),
        ("0.000000125", "0.00000012"),  # a tie goes to the even digit
        ("0.000000135", "0.00000014"),
        ("-0.000000125", "-0.00000012"),
        ("-5E-9", "0.00000000"),  # no negative zero
        ("-0.0000000001", "0.00000000"),
        ("1E+3", "1000.00000000"),
        ("999999999999.999999995", "1000000000000.00000000"),
    ],
)
def test_money_has_eight_decimals_and_ties_go_to_even(value: str, text: str) -> None:
    assert money(Decimal(value)) == text


def test_money_rounds_the_same_whatever_the_threads_decimal_context() -> None:
    with localcontext() as context:
        context.rounding = ROUND_HALF_UP
        context.prec = 6
        assert money(Decimal("0.000000125")) == "0.00000012"
        assert money(Decimal("123456789.123456789")) == "123456789.12345679"
        assert cents(Decimal("0.125")) == "0.12"


def test_an_absent_amount_stays_absent() -> None:
    assert maybe_money(None) is None
    assert maybe_money(Decimal("1.5")) == "1.50000000"


def test_percentages_have_two_decimals_and_no_negative_zero() -> None:
    assert [cents(Decimal(v)) for v in ("9.8", "-0.001", "0.125")] == ["9.80", "0.00", "0.12"]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 12, 21, 12, tzinfo=UTC), "2025-12-21T12:00:00Z"),
        (datetime(2025, 12, 21, 14, tzinfo=timezone(timedelta(hours=2))), "2025-12-21T12:00:00Z"),
        (datetime(2025, 12, 21, 12, 0, 0, 123000), "2025-12-21T12:00:00.123000Z"),  # naive: UTC
        (None, None),
    ],
)
def test_times_are_written_in_utc_ending_in_z(moment: datetime | None, text: str | None) -> None:
    assert iso(moment) == text
