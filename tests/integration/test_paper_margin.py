"""Isolated margin on the paper exchange: borrowing up to 10x leverage, and repaying."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import InsufficientBalance, InvalidInput
from domain.market import OrderSide, Side
from domain.ports import MarginEffect, OrderRequest, TradingAccount
from domain.position import Status
from infra.bootstrap import Services
from tests.factories import long_plan, register


def test_borrowing_is_capped_at_ten_times_leverage_and_repaid_in_full(services: Services) -> None:
    paper = services.paper
    assert paper is not None
    account = TradingAccount(uuid4())  # 10000 USDC of collateral
    paper.borrow(account, "BTCUSDC", "USDC", Decimal(90000))  # 9x borrowed: 10x exposure
    assert paper.borrowed(account.client_id) == {"USDC": Decimal(90000)}
    with pytest.raises(InsufficientBalance, match="Insufficient margin"):
        paper.borrow(account, "BTCUSDC", "USDC", Decimal(1))

    paper.repay(account, "BTCUSDC", "USDC", Decimal(90000))
    assert paper.borrowed(account.client_id) == {}
    assert paper.balances(account)["USDC"].free == Decimal(10000)
    with pytest.raises(InvalidInput, match="owed"):
        paper.repay(account, "BTCUSDC", "USDC", Decimal(1))


def test_a_margin_sell_borrows_the_base_asset_and_the_buy_back_repays_it(
    services: Services,
) -> None:
    paper = services.paper
    assert paper is not None
    account = TradingAccount(uuid4())
    short = OrderRequest(
        "BTCUSDC", OrderSide.SELL, "S1-1", quantity=Decimal("0.1"), margin=MarginEffect.MARGIN_BUY
    )
    paper.place_order(account, short)
    assert paper.borrowed(account.client_id) == {"BTC": Decimal("0.1")}

    cover = OrderRequest(
        "BTCUSDC", OrderSide.BUY, "S1-2", quantity=Decimal("0.1"), margin=MarginEffect.AUTO_REPAY
    )
    paper.place_order(account, cover)
    # The buy-back's fee was taken in BTC, so 0.0001 BTC of the loan is still owed: the
    # ledger's buy-back is grossed up for it (below).
    assert paper.borrowed(account.client_id) == {"BTC": Decimal("0.0001")}


def test_a_margin_order_beyond_ten_times_the_collateral_is_refused(services: Services) -> None:
    paper = services.paper
    assert paper is not None
    account = TradingAccount(uuid4())
    too_big = OrderRequest(
        "BTCUSDC", OrderSide.SELL, "S2-1", quantity=Decimal("1.1"), margin=MarginEffect.MARGIN_BUY
    )  # 110000 USDC of BTC borrowed against 10000
    with pytest.raises(InsufficientBalance, match="Insufficient margin"):
        paper.place_order(account, too_big)
    assert paper.borrowed(account.client_id) == {}


def test_closing_a_margin_short_through_the_ledger_repays_the_whole_loan(
    services: Services,
) -> None:
    paper = services.paper
    assert paper is not None
    client_id, _ = register(services.ledger, capital="1000")
    short = long_plan("102000", side=Side.SHORT, margin=True, leverage=Decimal(2))
    position = services.ledger.plan_validate_execute(client_id, short)
    assert paper.borrowed(client_id) == {"BTC": Decimal("0.005")}

    closed = services.ledger.close_position(client_id, position.id)

    assert closed.status is Status.CLOSED
    assert paper.borrowed(client_id) == {}
    # 0.005 / 0.999 rounded up to the lot step: 0.00501 bought, 0.00000501 BTC of fee
    assert paper.balances(TradingAccount(client_id))["BTC"].free == Decimal("0.00000499")
    # 10 USDC of loss would be the stop; here only the two fees (0.5 + 0.501) are lost
    assert closed.realised_pnl == Decimal("-1.00100000")


def test_a_margin_buy_moves_only_its_collateral_and_borrows_the_rest(services: Services) -> None:
    paper = services.paper
    assert paper is not None
    account = TradingAccount(uuid4())  # 10000 USDC in the spot wallet
    entry = OrderRequest(
        "BTCUSDC",
        OrderSide.BUY,
        "L1-1",
        quantity=Decimal("0.0985"),
        margin=MarginEffect.MARGIN_BUY,
        leverage=Decimal(3),
    )

    paper.place_order(account, entry)

    # 9850 USDC of BTC at 3x: 3283.33333334 of collateral (rounded up), 6566.66666666 lent
    assert paper.balances(account)["USDC"].free == Decimal("6716.66666666")
    assert paper.borrowed(account.client_id) == {"USDC": Decimal("6566.66666666")}
    (holdings,) = paper.isolated_accounts(account.client_id).values()
    assert holdings["USDC"].free == 0
    assert holdings["BTC"].free == Decimal("0.0984015")  # 0.0985 less the 0.1% fee
