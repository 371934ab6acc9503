"""Isolated margin on the paper exchange: one account per symbol beside the spot wallet.

A margin entry moves only its collateral (the order's value / its leverage) from the spot
wallet into the symbol's account and borrows the rest there, as Binance's MARGIN_BUY does once
the collateral is transferred. An exit's AUTO_REPAY repays the loan from the proceeds; once
nothing is owed, what is left goes back to the spot wallet. Paper loans charge no interest.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.errors import InsufficientBalance
from domain.market import OrderSide, SymbolRules, ceil_to_step
from domain.ports import MarginEffect, OrderRequest

if TYPE_CHECKING:
    from infra.paper_accounts import PaperAccount

TAKER_FEE = Decimal("0.001")
MAX_LEVERAGE = Decimal(10)
ZERO = Decimal(0)
CENT_DUST = Decimal("0.00000001")  # collateral is rounded up to this: never below required


def isolated_free(account: PaperAccount, symbol: str) -> dict[str, Decimal]:
    """The symbol's isolated holdings (accounts restored from older snapshots have none)."""
    accounts: dict[str, dict[str, Decimal]] = account.__dict__.setdefault("isolated", {})
    return accounts.setdefault(symbol, {})


def isolated_debt(account: PaperAccount, symbol: str) -> dict[str, Decimal]:
    accounts: dict[str, dict[str, Decimal]] = account.__dict__.setdefault("isolated_borrowed", {})
    return accounts.setdefault(symbol, {})


def trade_legs(
    side: OrderSide, rules: SymbolRules, quantity: Decimal, price: Decimal
) -> tuple[str, Decimal, str, Decimal, dict[str, Decimal]]:
    """(asset spent, amount, asset received, amount net of the fee, the fee) of one fill."""
    base, quote = rules.base_asset, rules.quote_asset
    notional = quantity * price
    if side is OrderSide.BUY:
        fee = quantity * TAKER_FEE
        return quote, notional, base, quantity - fee, {base: fee}
    fee = notional * TAKER_FEE
    return base, quantity, quote, notional - fee, {quote: fee}


def isolated_fill(
    account: PaperAccount,
    order: OrderRequest,
    rules: SymbolRules,
    quantity: Decimal,
    price: Decimal,
    now: datetime,
) -> dict[str, Decimal]:
    """Fill a margin order in the symbol's isolated account; returns the fee."""
    symbol, quote = rules.symbol, rules.quote_asset
    held = dict(isolated_free(account, symbol))
    owed = isolated_debt(account, symbol)
    spent, paid, got, received, fee = trade_legs(order.side, rules, quantity, price)
    transfer: dict[str, Decimal] = {}
    if order.margin is MarginEffect.MARGIN_BUY:
        collateral = ceil_to_step(quantity * price / (order.leverage or Decimal(1)), CENT_DUST)
        _collateral_from_spot(account, quote, collateral, symbol)
        transfer[quote] = collateral
    else:  # an exit: what the isolated account lacks comes from the spot wallet
        short = paid - held.get(spent, ZERO)
        if short > 0:
            account._require(spent, short, ZERO)
            transfer[spent] = short
    for asset, amount in transfer.items():
        held[asset] = held.get(asset, ZERO) + amount
    changes = {spent: -paid, got: received}
    borrowed: dict[str, Decimal] = {}
    shortfall = paid - held.get(spent, ZERO)
    if shortfall > 0:  # only a MARGIN_BUY gets here: it borrows what the account lacks
        borrowed[spent] = shortfall
        changes[spent] += shortfall
    if order.margin is MarginEffect.AUTO_REPAY:
        repay = min(received, owed.get(got, ZERO))
        if repay > 0:
            changes[got] -= repay
            borrowed[got] = -repay
    _check_leverage(held, owed, borrowed, rules, price)
    _emit(account, symbol, order.client_order_id, held, owed, transfer, changes, borrowed, now)
    return fee


def isolated_loan(
    account: PaperAccount,
    asset: str,
    amount: Decimal,
    rules: SymbolRules,
    price: Decimal,
    now: datetime,
) -> None:
    """A loan outside an order: the collateral the 10x cap needs comes from the spot wallet."""
    symbol, quote = rules.symbol, rules.quote_asset
    held = dict(isolated_free(account, symbol))
    owed = isolated_debt(account, symbol)
    debt = _value(owed, rules, price) + _value({asset: amount}, rules, price)
    equity = _value(held, rules, price) - _value(owed, rules, price)
    needed = debt / (MAX_LEVERAGE - 1) - equity
    transfer: dict[str, Decimal] = {}
    if needed > 0:
        needed = ceil_to_step(needed, CENT_DUST)
        _collateral_from_spot(account, quote, needed, symbol)
        transfer[quote] = needed
        held[quote] = held.get(quote, ZERO) + needed
    changes = {asset: amount}
    _check_leverage(held, owed, {asset: amount}, rules, price)
    _emit(account, symbol, "", held, owed, transfer, changes, {asset: amount}, now)


def isolated_repayment(
    account: PaperAccount, asset: str, amount: Decimal, rules: SymbolRules, now: datetime
) -> None:
    symbol = rules.symbol
    held = dict(isolated_free(account, symbol))
    owed = isolated_debt(account, symbol)
    transfer: dict[str, Decimal] = {}
    short = amount - held.get(asset, ZERO)
    if short > 0:
        account._require(asset, short, ZERO)
        transfer[asset] = short
        held[asset] = held.get(asset, ZERO) + short
    _emit(account, symbol, "", held, owed, transfer, {asset: -amount}, {asset: -amount}, now)


def _collateral_from_spot(account: PaperAccount, quote: str, amount: Decimal, symbol: str) -> None:
    free = account.free.get(quote, ZERO)
    if amount > free:
        raise InsufficientBalance(
            quote,
            f"Insufficient margin: the {symbol} isolated account needs {amount:.2f} {quote} "
            f"of collateral, the spot wallet has {free:.2f} {quote}",
        )


def _emit(
    account: PaperAccount,
    symbol: str,
    client_order_id: str,
    held: dict[str, Decimal],
    owed: dict[str, Decimal],
    transfer: dict[str, Decimal],
    changes: dict[str, Decimal],
    borrowed: dict[str, Decimal],
    now: datetime,
) -> None:
    """Record the change; once nothing is owed, sweep what is left back to the spot wallet."""
    debt_after = {a: owed.get(a, ZERO) + borrowed.get(a, ZERO) for a in {*owed, *borrowed}}
    if all(v <= 0 for v in debt_after.values()):
        for asset in {*held, *changes}:
            left = held.get(asset, ZERO) + changes.get(asset, ZERO)
            if left:
                transfer[asset] = transfer.get(asset, ZERO) - left
    account.trigger_event(
        account.IsolatedChanged,
        timestamp=now,
        symbol=symbol,
        client_order_id=client_order_id,
        transfer={a: v for a, v in transfer.items() if v},
        changes={a: v for a, v in changes.items() if v},
        borrowed_changes={a: v for a, v in borrowed.items() if v},
    )


def _value(amounts: dict[str, Decimal], rules: SymbolRules, price: Decimal) -> Decimal:
    """In the quote asset, at the price."""
    return sum((v * price if a == rules.base_asset else v for a, v in amounts.items()), Decimal(0))


def _check_leverage(
    held: dict[str, Decimal],
    owed: dict[str, Decimal],
    new_borrowing: dict[str, Decimal],
    rules: SymbolRules,
    price: Decimal,
) -> None:
    """A new loan may bring the debt to at most (10 − 1) × the account's net collateral.
    Repayments are never refused, so an exit cannot be blocked by a price that moved."""
    if not any(v > 0 for v in new_borrowing.values()):
        return
    total = {a: owed.get(a, ZERO) + new_borrowing.get(a, ZERO) for a in {*owed, *new_borrowing}}
    debt = _value(total, rules, price)
    equity = _value(held, rules, price) - _value(owed, rules, price)
    if debt > equity * (MAX_LEVERAGE - 1):
        raise InsufficientBalance(
            rules.quote_asset,
            f"Insufficient margin: borrowing {debt:.2f} {rules.quote_asset} needs at least "
            f"{debt / (MAX_LEVERAGE - 1):.2f} {rules.quote_asset} of collateral",
        )
