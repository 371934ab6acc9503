"""Margin SHORTs on Binance (the real client against the fake server): a close repays it all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import cast
from uuid import UUID

import pytest

from api.margin_accounts import isolated_margin_accounts
from domain.ledger import Ledger, TradingConfig
from domain.market import Side
from domain.position import Position, Status
from infra.binance.exchange import BinanceExchange
from infra.bootstrap import Services
from tests.factories import long_plan, register
from tests.fakes.binance import FakeBinance, RawResponse

KEY, SECRET = "margin-api-key-0000000000", "margin-secret-0000000000"
ISOLATED_ACCOUNT = "/sapi/v1/margin/isolated/account"
SHORT = long_plan("102000", side=Side.SHORT, margin=True, leverage=Decimal(2))
ZERO = Decimal(0)
INTEREST = Decimal("0.00001")  # BTC charged on the 0.005 BTC loan


@dataclass
class Desk:
    ledger: Ledger
    fake: FakeBinance

    def tenant(self, spot: str = "0", isolated: str | None = "1000") -> UUID:
        """A tenant with 1000 USDC of capital, its keys and these USDC balances."""
        client_id, _ = register(self.ledger, capital="1000")
        self.fake.fund(KEY, SECRET, {"USDC": Decimal(spot)})
        if isolated is not None:
            self.fake.fund_isolated(KEY, "BTCUSDC", {"USDC": Decimal(isolated)})
        self.ledger.set_credentials(self.ledger.client(client_id).email, KEY, SECRET)
        return client_id

    def short(self) -> tuple[UUID, Position]:
        """Short 0.005 BTC at 100000, the collateral in the isolated account only."""
        client_id = self.tenant()
        return client_id, self.ledger.plan_validate_execute(client_id, SHORT)

    def btc(self) -> tuple[Decimal, Decimal, Decimal]:
        """The isolated account's BTC: free, borrowed, interest."""
        holding = self.fake.isolated_account(KEY, "BTCUSDC")["BTC"]
        return holding.free, holding.borrowed, holding.interest


@pytest.fixture
def desk(services: Services) -> Iterator[Desk]:
    with FakeBinance() as fake:
        fake.set_price("BTCUSDC", Decimal("100000"))
        exchange = BinanceExchange(testnet=False, base_url=fake.url, timeout_seconds=2)
        config = TradingConfig(trading_enabled=True)
        yield Desk(Ledger(services.store, exchange, services.vault, services.clock, config), fake)
        exchange.close()


@pytest.mark.parametrize("isolated", [None, "0", "200"])
def test_validation_reads_the_collateral_in_the_isolated_account_not_the_spot_wallet(
    desk: Desk, isolated: str | None
) -> None:
    client_id = desk.tenant(spot="10000", isolated=isolated)

    position = desk.ledger.plan_position(client_id, SHORT)
    validated = desk.ledger.validate_position(client_id, position.id)

    assert validated.status is Status.REJECTED
    (violation,) = validated.violations
    where = "in the BTCUSDC isolated margin account"
    if isolated == "200":  # 0.005 BTC at 100000 with 2x leverage needs 250 of collateral
        assert (
            violation["reason"] == f"Insufficient USDC {where}: the order needs 250, available 200"
        )
    else:
        assert violation["reason"] == f"No USDC available for trading {where}"
    assert desk.fake.orders_received() == []


def test_the_buy_back_repays_the_loan_its_fee_and_the_interest(
    desk: Desk, services: Services
) -> None:
    client_id, position = desk.short()
    assert desk.btc() == (ZERO, Decimal("0.005"), ZERO)
    desk.fake.accrue_interest(KEY, "BTCUSDC", "BTC", INTEREST)
    desk.fake.set_price("BTCUSDC", Decimal("90000"))

    closed = desk.ledger.close_position(client_id, position.id)

    buys = [
        r.params
        for r in desk.fake.orders_received(order_type="MARKET")
        if r.params["side"] == "BUY"
    ]
    assert [b["quantity"] for b in buys] == ["0.00502"]  # 0.00501 / 0.999, rounded up
    assert buys[0]["sideEffectType"] == "AUTO_REPAY"
    free, borrowed, interest = desk.btc()
    assert (borrowed, interest) == (ZERO, ZERO)
    assert free == Decimal("0.00000498")  # less than a lot step over: the trader's own
    assert closed.status is Status.CLOSED
    # 50 gained − 0.5 entry fee − 0.4518 exit fee (0.00000502 BTC) − 0.9 interest
    assert closed.realised_pnl == Decimal("48.1482")
    (filled,) = [
        e for e in services.store.events.get(position.id) if type(e).__name__ == "ExitFilled"
    ]
    assert isinstance(filled, Position.ExitFilled)
    assert (filled.quantity, filled.interest_quote) == (Decimal("0.005"), Decimal("0.9"))


def test_without_an_answer_about_the_loan_the_stop_still_goes_out_and_repays_the_fee(
    desk: Desk,
) -> None:
    client_id, position = desk.short()
    desk.fake.accrue_interest(KEY, "BTCUSDC", "BTC", INTEREST)
    desk.fake.inject(RawResponse(502, "Bad Gateway"), path=ISOLATED_ACCOUNT)

    closed = desk.ledger.close_position(client_id, position.id)

    assert closed.status is Status.CLOSED
    free, borrowed, interest = desk.btc()
    # 0.00501 bought, 0.00500499 received: the interest is repaid first, so 0.00000501 of
    # the loan stays owed. Without the fee's gross-up it would be 0.00001501.
    assert (free, borrowed, interest) == (ZERO, Decimal("0.00000501"), ZERO)


def test_a_margin_long_close_repays_the_quote_loan_and_charges_its_interest(
    desk: Desk, services: Services
) -> None:
    client_id = desk.tenant(isolated="300")
    long = long_plan("98000", margin=True, leverage=Decimal(2))
    position = desk.ledger.plan_validate_execute(client_id, long)  # 0.005 BTC for 500 USDC
    usdc = desk.fake.isolated_account(KEY, "BTCUSDC")["USDC"]
    assert (usdc.free, usdc.borrowed) == (ZERO, Decimal(200))
    desk.fake.accrue_interest(KEY, "BTCUSDC", "USDC", Decimal("0.05"))
    desk.fake.set_price("BTCUSDC", Decimal("110000"))

    closed = desk.ledger.close_position(client_id, position.id)

    usdc = desk.fake.isolated_account(KEY, "BTCUSDC")["USDC"]
    assert (usdc.borrowed, usdc.interest) == (ZERO, ZERO)
    assert closed.status is Status.CLOSED
    # 0.00499 sold (0.000005 BTC went to the entry fee): +49.9 on price, − 0.5 entry fee,
    # − 0.5489 exit fee, − 0.05 interest
    assert closed.realised_pnl == Decimal("48.8011")
    (filled,) = [
        e for e in services.store.events.get(position.id) if isinstance(e, Position.ExitFilled)
    ]
    assert filled.interest_quote == Decimal("0.05")


def test_the_balance_lists_the_isolated_account_of_an_open_margin_position(
    desk: Desk, services: Services
) -> None:
    client_id, _ = desk.short()
    desk.fake.accrue_interest(KEY, "BTCUSDC", "BTC", INTEREST)
    services.projections.run_once()
    on_binance = SimpleNamespace(paper=None, read_models=services.read_models, ledger=desk.ledger)

    (account,) = isolated_margin_accounts(cast(Services, on_binance), client_id)

    assert account["symbol"] == "BTCUSDC"
    btc = {a["asset"]: a for a in account["assets"]}["BTC"]
    assert (btc["borrowed"], btc["interest"]) == ("0.00500000", "0.00001000")
