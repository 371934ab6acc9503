"""Closing a margin position repays its loan, and the interest repaid is part of its P&L.

Binance applies a repayment to the interest first, so whichever exit repays first pays all
of the isolated account's interest: that exit is charged with it.

A SHORT's buy-back pays its fee in the asset it buys, so buying back exactly the quantity
sold would leave the fee's share of the loan (0.1% at Binance's default rate), and the
interest, borrowed and accruing. The buy-back therefore asks for
`(quantity + interest) / (1 − fee rate)`, rounded up to the lot step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.market import ceil_to_step
from domain.ports import MarginHolding


@dataclass(frozen=True)
class Repayment:
    order_quantity: Decimal  # what the buy-back asks for: at least the quantity it closes
    interest: Decimal  # the loan interest it repays, in the borrowed asset


def buy_back(
    quantity: Decimal, loan: MarginHolding | None, fee_rate: Decimal, lot_step: Decimal
) -> Repayment:
    """The buy-back that closes `quantity` of a SHORT and repays the interest of `loan`.

    What the account owes caps it, so a position sold partly from the account's own coins
    buys back no more than it sold. Without a known loan (the exchange did not answer) the
    fee alone is grossed up.
    """
    if quantity <= 0 or not 0 <= fee_rate < 1:
        raise ValueError("a buy-back needs a positive quantity and a fee rate in [0, 1)")
    interest = Decimal(0)
    needed = quantity
    if loan is not None:
        interest = loan.interest
        needed = min(quantity + interest, loan.owed)
    gross = ceil_to_step(needed / (1 - fee_rate), lot_step)
    return Repayment(order_quantity=max(quantity, gross), interest=interest)
