"""A margin SHORT's buy-back repays its loan: grossed up for the fee and the interest."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.ports import MarginHolding
from domain.repayment import Repayment, buy_back

D = Decimal
STEP = D("0.00001")
FEE = D("0.001")


def test_without_a_loan_read_the_fee_alone_is_grossed_up_to_the_next_lot_step() -> None:
    # 0.1 / 0.999 = 0.1001001…: 0.10011 bought, 0.00010011 BTC fee, 0.10000989 BTC received.
    assert buy_back(D("0.1"), None, FEE, STEP) == Repayment(D("0.10011"), D(0))


def test_the_interest_owed_is_bought_too_so_nothing_stays_borrowed() -> None:
    loan = MarginHolding("BTC", borrowed=D("0.1"), interest=D("0.00002"))

    cover = buy_back(D("0.1"), loan, FEE, STEP)

    assert cover == Repayment(D("0.10013"), D("0.00002"))
    assert cover.order_quantity * (1 - FEE) >= loan.owed


def test_the_first_buy_back_on_a_shared_account_repays_all_of_its_interest() -> None:
    # Three positions of 0.1: the exchange takes the interest out of the first repayment.
    loan = MarginHolding("BTC", borrowed=D("0.3"), interest=D("0.0003"))

    cover = buy_back(D("0.1"), loan, FEE, STEP)

    assert cover.interest == D("0.0003")
    assert cover.order_quantity == D("0.10041")  # 0.1003 / 0.999, rounded up


def test_what_the_account_owes_caps_the_repayment_but_never_the_quantity_closed() -> None:
    # Half of the 0.1 sold came from the account's own coins: only 0.05 was borrowed.
    loan = MarginHolding("BTC", borrowed=D("0.05"), interest=D(0))

    assert buy_back(D("0.1"), loan, FEE, STEP) == Repayment(D("0.1"), D(0))


def test_nothing_borrowed_but_interest_left_repays_all_of_that_interest() -> None:
    loan = MarginHolding("BTC", borrowed=D(0), interest=D("0.00003"))

    # 0.1 bought receives 0.0999 BTC after the fee: far more than the 0.00003 owed.
    assert buy_back(D("0.1"), loan, FEE, STEP) == Repayment(D("0.1"), D("0.00003"))


def test_fees_paid_in_another_asset_need_no_gross_up() -> None:
    loan = MarginHolding("BTC", borrowed=D("0.1"))

    assert buy_back(D("0.1"), loan, D(0), STEP) == Repayment(D("0.1"), D(0))


@pytest.mark.parametrize(("quantity", "fee"), [(D(0), FEE), (D("0.1"), D(1)), (D("0.1"), D(-1))])
def test_a_buy_back_needs_a_positive_quantity_and_a_fee_rate_below_one(
    quantity: Decimal, fee: Decimal
) -> None:
    with pytest.raises(ValueError, match="positive quantity"):
        buy_back(quantity, None, fee, STEP)
