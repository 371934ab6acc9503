"""Isolated margin on Binance: an account's holdings, borrowing and repaying. The testnet
has no margin API and python-binance would send these calls to production with testnet keys,
so on the testnet they are refused before anything is sent."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from domain.errors import ExchangeUnavailable, InvalidInput, MarginUnavailable
from domain.market import SymbolRules
from domain.ports import MarginHolding, TradingAccount
from infra.binance.client import BinanceClient, Call, mapping, method
from infra.binance.filters import places, plain


def refuse_on_testnet(client: BinanceClient, action: str) -> None:
    if client.testnet:
        raise MarginUnavailable(
            f"Binance testnet has no margin API; cannot {action}. python-binance would "
            "send this call to production (api.binance.com/sapi) with testnet keys. "
            "Use spot orders on testnet, or BINANCE_USE_TESTNET=False for margin."
        )


def isolated_holdings(
    client: BinanceClient, account: TradingAccount, rules: SymbolRules
) -> dict[str, MarginHolding]:
    """The base and quote asset of the symbol's isolated account (zero before it exists)."""
    symbol = rules.symbol
    credentials = client.credentials(account)
    data = client.send(
        client.slot(credentials),
        method("get_isolated_margin_account", symbols=symbol),
        Call(
            f"read the {symbol} isolated margin account",
            writes=False,
            api_key=credentials.api_key,
            urgent=True,  # a margin exit reads its loan first; /sapi weight is counted apart
        ),
    )
    # No isolated account for the symbol yet: nothing free, nothing owed.
    holdings = {a: MarginHolding(a) for a in (rules.base_asset, rules.quote_asset)}
    try:
        for pair in mapping(data)["assets"]:
            if pair["symbol"] != symbol:
                continue
            for side in (pair["baseAsset"], pair["quoteAsset"]):
                asset = str(side["asset"])
                holdings[asset] = MarginHolding(
                    asset,
                    borrowed=Decimal(str(side["borrowed"])),
                    interest=Decimal(str(side["interest"])),
                    free=Decimal(str(side["free"])),
                )
    except (KeyError, InvalidOperation, TypeError) as exc:
        raise ExchangeUnavailable(
            f"Binance sent an unreadable {symbol} isolated margin account"
        ) from exc
    return holdings


def borrow_repay(
    client: BinanceClient,
    account: TradingAccount,
    symbol: str,
    asset: str,
    amount: Decimal,
    kind: str,
) -> None:
    """`kind` BORROW or REPAY `amount` of `asset` on the symbol's isolated account."""
    verb = "borrow" if kind == "BORROW" else "repay"
    refuse_on_testnet(client, f"{verb} on isolated margin")
    credentials = client.credentials(account)
    if amount <= 0 or places(amount) > 8:
        raise InvalidInput("amount", "must be positive with at most 8 decimal places")
    call = Call(
        f"{verb} {plain(amount)} {asset} on the {symbol} isolated margin account",
        writes=True,
        api_key=credentials.api_key,
        spent_asset=asset if kind == "REPAY" else None,
    )
    client.send(
        client.slot(credentials),
        method(
            "margin_borrow_repay",
            asset=asset,
            amount=plain(amount),
            isIsolated="TRUE",
            symbol=symbol,
            type=kind,
        ),
        call,
    )
