"""The spec's trading endpoints: status, balance, buy and sell (history and P&L by period are
in `api.trade_history`)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from api.intents import CallProgress
from api.margin_accounts import isolated_margin_accounts
from api.operations import Call, Operation, Reply
from api.schemas import (
    Amount,
    Empty,
    Input,
    MoneyOut,
    NoQuery,
    Output,
    Price,
    Quantity,
    Query,
)
from api.services import Services
from domain.formats import iso, maybe_money, money
from domain.ledger.spot import BuyOrder
from domain.market import Side
from domain.position import Position
from domain.sale import Holding

SYMBOL = "BTCUSDC"
FIRST_TRADE = "🎉 Historic first production trade executed!"
FILLED = ("open", "closing", "closed")


# --- request and reply models ---


class BuyBtc(Input):
    required_because: ClassVar[dict[str, str]] = {
        "stop_price": "is required: every order needs a stop-loss price (the 1% risk rule)"
    }
    amount: Amount | None = Field(None, description="USDC to spend")
    quantity: Quantity | None = Field(None, description="BTC to buy")
    stop_price: Price = Field(description="the stop-loss; every order must have one")
    target_price: Price | None = None


class SellBtc(Input):
    quantity: Quantity | None = Field(None, description="BTC to sell; default: all that is open")


class BalanceQuery(Query):
    asset: str | None = Field(None, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")


class StatusReply(Output):
    trading_enabled: bool
    environment: Literal["production", "testnet", "paper"]
    has_credentials: bool
    can_trade: bool
    reason: str | None  # why a new entry would be refused now
    until: str | None  # when that lifts: YYYY-MM-DD (UTC), "after a review", or on a release
    paused: bool
    user: str
    timestamp: str


class Trade(Output):
    id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: MoneyOut
    price: MoneyOut
    fee: MoneyOut
    binance_order_id: str | None
    timestamp: str | None


class TradeReply(Output):
    success: bool
    message: str
    environment: str
    position_id: str
    trade: Trade


class SellReply(Output):
    success: bool
    message: str
    environment: str
    quantity: MoneyOut = Field(description="BTC sold")
    pending_quantity: MoneyOut = Field(description="BTC sent, not yet confirmed (202)")
    unsold_quantity: MoneyOut = Field(description="BTC refused after earlier parts sold (202)")
    trades: list[Trade]


# --- helpers ---


def _environment(services: Services) -> str:
    return services.settings.environment


def _first_filled(services: Services, client_id: UUID) -> bool:
    rows = services.read_models.positions(client_id, None, 500)
    return not any(r.status in FILLED for r in rows)


def _trade(
    position: Position, event: Position.EntryFilled | Position.ExitFilled, side: str
) -> dict[str, str | None]:
    return {
        "id": str(position.id),
        "symbol": position.symbol,
        "side": side,
        "quantity": money(event.quantity),
        "price": money(event.price),
        "total_cost" if side == "BUY" else "total": money(event.quantity * event.price),
        "fee": money(event.fees_quote),
        "binance_order_id": event.exchange_order_id,
        "timestamp": iso(event.timestamp),
    }


# --- handlers ---


def trade_status(call: Call[Empty, NoQuery]) -> Reply:
    services, who = call.services, call.principal
    keys_ok = who.has_credentials or not services.ledger.live
    gate = services.ledger.entry_gate(who.client_id, credentials_ok=keys_ok)
    return Reply(
        {
            "trading_enabled": services.ledger.config.trading_enabled,
            "environment": _environment(call.services),
            "has_credentials": who.has_credentials,
            "can_trade": gate.allowed,
            "reason": gate.reason,
            "until": gate.until,
            "paused": gate.paused,
            "user": who.email,
            "timestamp": iso(services.clock.now()),
        }
    )


def balance(call: Call[Empty, BalanceQuery]) -> Reply:
    balances = call.services.ledger.balances(call.principal.client_id)
    asset = call.query.asset.upper() if call.query.asset else None
    if asset is not None:
        found = balances.get(asset)
        free, locked = (found.free, found.locked) if found else (Decimal(0), Decimal(0))
        data: dict[str, str] | list[dict[str, str]] = {
            "asset": asset,
            "free": money(free),
            "locked": money(locked),
        }
    else:
        data = [
            {"asset": b.asset, "free": money(b.free), "locked": money(b.locked)}
            for b in sorted(balances.values(), key=lambda b: b.asset)
            if b.total != 0
        ]
    isolated = isolated_margin_accounts(call.services, call.principal.client_id)
    return Reply(
        {
            "success": True,
            "environment": _environment(call.services),
            "data": data,
            "isolated_margin": isolated,
        }
    )


def buy_btc(call: Call[BuyBtc, NoQuery]) -> Reply:
    body = call.body
    first = _environment(call.services) == "production" and _first_filled(
        call.services, call.principal.client_id
    )
    bought = call.services.ledger.buy(
        call.principal.client_id,
        BuyOrder(
            symbol=SYMBOL,
            quote_asset="USDC",
            stop_price=body.stop_price,
            target_price=body.target_price,
            quantity=body.quantity,
            quote_amount=body.amount,
        ),
        CallProgress(call),
    )
    position = bought.position
    if bought.fill is None:  # sent, not yet confirmed: reconciliation will settle it
        return Reply(
            {
                "success": True,
                "message": "Order sent; the exchange has not confirmed the fill yet",
                "environment": _environment(call.services),
                "position_id": str(position.id),
            },
            202,
        )
    trade = _trade(position, bought.fill, "BUY")
    trade["stop_price"] = maybe_money(position.stop_price)
    trade["target_price"] = maybe_money(position.target_price)
    return Reply(
        {
            "success": True,
            "message": FIRST_TRADE if first else f"Bought {trade['quantity']} BTC",
            "environment": _environment(call.services),
            "position_id": str(position.id),
            "trade": trade,
        }
    )


def sell_btc(call: Call[SellBtc, NoQuery]) -> Reply:
    """Sell from the tenant's open LONG BTC positions, oldest first, whole or not at all; a
    part refused after others executed is reported as not sold (202), never as failed."""
    client_id = call.principal.client_id
    holdings = [
        Holding(
            r.position_id, r.symbol, Side(r.side), r.open_quantity, r.planned_at, r.current_stop
        )
        for r in call.services.read_models.positions(client_id, "open", 500)
    ]
    sale = call.services.ledger.sell(
        client_id, SYMBOL, call.body.quantity, holdings, CallProgress(call)
    )
    trades: list[dict[str, str | None]] = []
    for sold in sale.trades:
        trade = _trade(sold.position, sold.fill, "SELL")
        trade["pnl"] = money(sold.fill.realised_pnl)
        trade["position_status"] = sold.position.status.value
        trades.append(trade)
    message = f"Sold {money(sale.quantity)} BTC"
    if sale.pending:
        message += f"; {money(sale.pending)} BTC sent, not yet confirmed by the exchange"
    if sale.unsold:
        message += f"; {money(sale.unsold)} BTC was not sold: {sale.reason}"
    return Reply(
        {
            "success": True,
            "message": message,
            "environment": _environment(call.services),
            "quantity": money(sale.quantity),
            "pending_quantity": money(sale.pending),
            "unsold_quantity": money(sale.unsold),
            "trades": trades,
        },
        202 if sale.pending or sale.unsold else 200,
    )


OPERATIONS = [
    Operation(
        "GET",
        "/api/trade/status/",
        trade_status,
        "Trading configuration for the caller: enabled, environment, credentials",
        tag="trade",
        response=StatusReply,
    ),
    Operation(
        "GET",
        "/api/trade/balance/",
        balance,
        "Spot balance of one asset, or every non-zero one; and each isolated margin account",
        tag="trade",
        query=BalanceQuery,
        errors=(400, 503),
    ),
    Operation(
        "POST",
        "/api/trade/buy-btc/",
        buy_btc,
        "Market-buy BTC with a mandatory stop (PLAN -> VALIDATE -> EXECUTE)",
        tag="trade",
        body=BuyBtc,
        response=TradeReply,
        errors=(202, 400, 403, 422, 503),
        command=True,
        idempotent=True,
    ),
    Operation(
        "POST",
        "/api/trade/sell-btc/",
        sell_btc,
        "Market-sell BTC from open LONG positions, oldest first",
        tag="trade",
        body=SellBtc,
        response=SellReply,
        errors=(202, 400, 403, 422, 503),
        command=True,
        idempotent=True,
    ),
]
