"""Closing a margin SHORT repays its loan: the buy-back is grossed up for the fee and interest.

A buy-back pays its fee in the asset it buys, so buying back exactly the quantity sold
leaves the fee's share of the loan (0.1% on Binance's default rate) and the interest
borrowed, and interest keeps accruing on it. The closing buy therefore asks for
`(quantity + interest share) / (1 − fee rate)`, rounded up to the lot step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from domain.market import ceil_to_step
from domain.ports import MarginHolding

ASSET_PRECISION = Decimal("1E-8")  # exchanges keep asset amounts to 8 decimal places


@dataclass(frozen=True)
class Repayment:
    order_quantity: Decimal  # what the buy-back asks for: at least the quantity it closes
    interest: Decimal  # the loan interest this buy-back repays, in the borrowed asset


def buy_back(
    quantity: Decimal, loan: MarginHolding | None, fee_rate: Decimal, lot_step: Decimal
) -> Repayment:
    """The buy-back that closes `quantity` of a SHORT and repays its share of `loan`.

    Its share of the interest is in proportion to the quantity it closes; with several
    positions on one isolated account, each repays its own part. What the account owes
    caps it, so a position sold partly from the account's own coins buys back no more.
    Without a known loan (the exchange did not answer) the fee alone is grossed up.
    """
    if quantity <= 0 or not 0 <= fee_rate < 1:
        raise ValueError("a buy-back needs a positive quantity and a fee rate in [0, 1)")
    interest = Decimal(0)
    needed = quantity
    if loan is not None:
        interest = loan.interest
        if quantity < loan.borrowed:
            interest = (loan.interest * quantity / loan.borrowed).quantize(
                ASSET_PRECISION, rounding=ROUND_UP
            )
        needed = min(quantity + interest, loan.owed)
    gross = ceil_to_step(needed / (1 - fee_rate), lot_step)
    return Repayment(order_quantity=max(quantity, gross), interest=interest)
