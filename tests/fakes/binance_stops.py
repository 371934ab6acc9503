"""The fake Binance's STOP_LOSS_LIMIT orders (spot and isolated margin): resting, triggering
when the price is set at or through the stop, cancelling and cancel-replacing.

Each behaviour cites github.com/binance/binance-spot-api-docs (file, section) beside it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.binance import FakeBinance, FakeSymbol, _Account, _Reply

# filters.md "MAX_NUM_ALGO_ORDERS": "Algo" orders are STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT
# and TAKE_PROFIT_LIMIT orders.
ALGO_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})


def new_stop(
    fake: FakeBinance, account: _Account, spec: FakeSymbol, params: dict[str, str], *, margin: bool
) -> _Reply:
    """Rest a STOP_LOSS_LIMIT order, holding what it would sell (or pay) until it ends."""
    from tests.fakes import binance as b

    side = params["side"]
    # rest-api.md "New order (TRADE)": STOP_LOSS_LIMIT requires timeInForce, quantity, price,
    # stopPrice (or trailingDelta, which this fake does not offer).
    for name in ("timeInForce", "quantity", "price", "stopPrice"):
        b._required(params, name)
    if params["timeInForce"] not in ("GTC", "IOC", "FOK"):
        raise b._Reject(-1115, "Invalid timeInForce.")
    quantity = b._decimal_param(params, "quantity")
    limit = b._decimal_param(params, "price")
    stop = b._decimal_param(params, "stopPrice")
    fake._check_price_filter(spec, stop)
    fake._check_lot(spec, quantity)
    # filters.md "NOTIONAL": a non-MARKET order's notional is price * quantity.
    if quantity * limit < spec.min_notional:
        raise b._Reject(-1013, f"Filter failure: {spec.notional_filter}")
    client_order_id = params.get("newClientOrderId") or f"fake{next(fake._ids)}"
    # rest-api.md "New order (TRADE)": newClientOrderId is "A unique id among open orders".
    if any(
        o["clientOrderId"] == client_order_id
        and o["isIsolated"] is margin
        and o["status"] in b._OPEN_STATUSES
        for o in account.orders
    ):
        raise b._Reject(-2010, "Duplicate order sent.")
    algo = [
        o
        for o in account.orders
        if o["symbol"] == spec.symbol
        and o["isIsolated"] is margin
        and o["type"] in ALGO_TYPES
        and o["status"] in b._OPEN_STATUSES
    ]
    # filters.md "MAX_NUM_ALGO_ORDERS"; errors.md "Filter failure: MAX_NUM_ALGO_ORDERS".
    if len(algo) >= spec.max_algo_orders:
        raise b._Reject(-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
    price = fake._prices[spec.symbol]
    # rest-api.md "New order", "Trigger order price rules against market price": a STOP_LOSS
    # SELL's price is below the market, a BUY's above; errors.md "Order would trigger
    # immediately." (-2010) otherwise.
    if (side == "SELL" and price <= stop) or (side == "BUY" and price >= stop):
        raise b._Reject(-2010, "Order would trigger immediately.")
    wallet = fake._wallet(account, spec, params, margin=margin)
    held_asset = spec.base_asset if side == "SELL" else spec.quote_asset
    held = quantity if side == "SELL" else quantity * limit
    if wallet[held_asset].free < held:
        raise b._Reject(-2010, "Account has insufficient balance for requested action.")
    _hold(account, wallet, held_asset, held, margin=margin)
    now = fake.server_time_ms()
    order: dict[str, Any] = {
        "symbol": spec.symbol,
        "orderId": next(fake._ids),
        "orderListId": -1,
        "clientOrderId": client_order_id,
        "transactTime": now,
        "price": b._fmt(limit),
        "origQty": b._fmt(quantity),
        "executedQty": b._fmt(Decimal(0)),
        "origQuoteOrderQty": b._fmt(Decimal(0)),
        "cummulativeQuoteQty": b._fmt(Decimal(0)),
        "status": "NEW",
        "timeInForce": params["timeInForce"],
        "type": "STOP_LOSS_LIMIT",
        "side": side,
        "stopPrice": b._fmt(stop),
        "workingTime": -1,  # rest-api.md: -1 until a conditional order is triggered
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "isIsolated": margin,
        "fills": [],
        "_held": (held_asset, held),
        "_effect": params.get("sideEffectType", "NO_SIDE_EFFECT") if margin else None,
    }
    account.orders.append(order)
    return b._json_reply(200, _answer(order, margin=margin))


def _hold(
    account: _Account, wallet: dict[str, Any], asset: str, amount: Decimal, *, margin: bool
) -> None:
    """Move `amount` from free to locked (account endpoint: `locked`)."""
    if margin:
        wallet[asset].free -= amount
        wallet[asset].locked += amount
    else:
        account.balances[asset] = account.balances.get(asset, Decimal(0)) - amount
        account.locked[asset] = account.locked.get(asset, Decimal(0)) + amount


def _release(fake: FakeBinance, account: _Account, order: dict[str, Any]) -> None:
    asset, amount = order.pop("_held", (None, Decimal(0)))
    if asset is None:
        return
    if order["isIsolated"]:
        holding = account.isolated[order["symbol"]][asset]
        holding.free += amount
        holding.locked -= amount
    else:
        account.balances[asset] = account.balances.get(asset, Decimal(0)) + amount
        account.locked[asset] -= amount


def _answer(order: dict[str, Any], *, margin: bool) -> dict[str, Any]:
    body = {k: v for k, v in order.items() if not k.startswith("_")}
    if not margin:
        body.pop("isIsolated", None)
    return body


def trigger_stops(fake: FakeBinance, symbol: str) -> None:
    """The price moved: trigger every stop it reaches, fill what its limit allows.

    faqs/trailing-stop-faq.md "What kind of price changes will trigger": a STOP_LOSS_LIMIT
    SELL triggers when the market price <= its stop price (a BUY when >=). Triggered, it works
    as a LIMIT order at its `price` (rest-api.md "New order", STOP_LOSS_LIMIT): it fills when
    the market is at or better than the limit, and otherwise waits on the book.
    """
    price = fake._prices[symbol]
    for account in fake._accounts.values():
        for order in account.orders:
            if order["symbol"] != symbol or order["type"] != "STOP_LOSS_LIMIT":
                continue
            if order["status"] != "NEW":
                continue
            stop = Decimal(order["stopPrice"])
            limit = Decimal(order["price"])
            sell = order["side"] == "SELL"
            if not order.get("_triggered"):
                if (sell and price > stop) or (not sell and price < stop):
                    continue
                order["_triggered"] = True
                order["workingTime"] = fake.server_time_ms()
            if (sell and price < limit) or (not sell and price > limit):
                continue  # gapped beyond the limit: it rests as a limit order
            _fill(fake, account, order, price)


def _fill(fake: FakeBinance, account: _Account, order: dict[str, Any], price: Decimal) -> None:
    from tests.fakes import binance as b

    spec = fake._symbols[order["symbol"]]
    margin = bool(order["isIsolated"])
    quantity = Decimal(order["origQty"])
    _release(fake, account, order)
    params = {"side": order["side"], "quantity": order["origQty"]}
    if margin and order.get("_effect"):
        params["sideEffectType"] = order["_effect"]
        params["isIsolated"] = "TRUE"
    wallet = fake._wallet(account, spec, params, margin=margin)
    fills = [(price, quantity)]
    fees, _ = fake._settle(spec, order["side"], fills, wallet, params, margin=margin)
    if not margin:
        account.balances.update({asset: held.free for asset, held in wallet.items()})
    now = fake.server_time_ms()
    trades = []
    for (fill_price, fill_qty), (fee_asset, fee) in zip(fills, fees, strict=True):
        trades.append(
            {
                "symbol": spec.symbol,
                "id": next(fake._ids),
                "orderId": order["orderId"],
                "price": fill_price,
                "qty": fill_qty,
                "commission": fee,
                "commissionAsset": fee_asset,
                "time": now,
                "isBuyer": order["side"] == "BUY",
                "isIsolated": margin,
            }
        )
    account.trades.extend(trades)
    order.update(
        status="FILLED",
        executedQty=b._fmt(quantity),
        cummulativeQuoteQty=b._fmt(price * quantity),
        transactTime=now,
        fills=[
            {
                "price": b._fmt(t["price"]),
                "qty": b._fmt(t["qty"]),
                "commission": b._fmt(t["commission"]),
                "commissionAsset": t["commissionAsset"],
                "tradeId": t["id"],
            }
            for t in trades
        ],
    )


def _open_order(account: _Account, params: dict[str, str], *, margin: bool) -> dict[str, Any]:
    from tests.fakes import binance as b

    wanted_id = params.get("orderId")
    wanted_client = params.get("origClientOrderId")
    for order in reversed(account.orders):
        if (
            order["symbol"] == params.get("symbol")
            and order["isIsolated"] is margin
            and order["status"] in b._OPEN_STATUSES
            and (str(order["orderId"]) == wanted_id or order["clientOrderId"] == wanted_client)
        ):
            found: dict[str, Any] = order
            return found
    # errors.md "Messages for -1010 ERROR_MSG_RECEIVED, -2010 NEW_ORDER_REJECTED, -2011
    # CANCEL_REJECTED": "Unknown order sent." - the order could not be found (or is not open).
    raise b._Reject(-2011, "Unknown order sent.")


def cancel(fake: FakeBinance, account: _Account, params: dict[str, str], *, margin: bool) -> _Reply:
    """rest-api.md "Cancel order (TRADE)": DELETE /api/v3/order (margin: /sapi/v1/margin/order,
    isIsolated=TRUE); answers the order with status CANCELED and its origClientOrderId."""
    from tests.fakes import binance as b

    fake._symbol(params)
    if "orderId" not in params and "origClientOrderId" not in params:
        raise b._Reject(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    if margin and params.get("isIsolated", "FALSE").upper() != "TRUE":
        raise b._Reject(-2011, "Unknown order sent.")
    order = _open_order(account, params, margin=margin)
    return b._json_reply(200, _cancelled(fake, account, order, params, margin=margin))


def _cancelled(
    fake: FakeBinance,
    account: _Account,
    order: dict[str, Any],
    params: dict[str, str],
    *,
    margin: bool,
) -> dict[str, Any]:
    _release(fake, account, order)
    order["status"] = "CANCELED"
    body = _answer(order, margin=margin)
    body.pop("fills", None)
    body.pop("workingTime", None)
    body["transactTime"] = fake.server_time_ms()
    body["origClientOrderId"] = order["clientOrderId"]
    body["clientOrderId"] = params.get("newClientOrderId") or f"cancel{next(fake._ids)}"
    return body


def cancel_replace(fake: FakeBinance, account: _Account, params: dict[str, str]) -> _Reply:
    """rest-api.md "Cancel an Existing Order and Send a New Order (TRADE)", with
    cancelReplaceMode STOP_ON_FAILURE: a failed cancel answers -2022 and attempts nothing;
    a cancel that succeeds with a new order that fails answers 409 (-2021)."""
    from tests.fakes import binance as b

    mode = b._required(params, "cancelReplaceMode")
    if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
        raise b._Reject(
            -1102, "Param 'cancelReplaceMode' must be STOP_ON_FAILURE or ALLOW_FAILURE."
        )
    if mode != "STOP_ON_FAILURE":
        raise b._Reject(-1116, "FakeBinance cancel-replaces with STOP_ON_FAILURE only.")
    spec = fake._symbol(params)
    lookup = {
        "symbol": spec.symbol,
        "orderId": params.get("cancelOrderId", ""),
        "origClientOrderId": params.get("cancelOrigClientOrderId", ""),
    }
    try:
        order = _open_order(account, lookup, margin=False)
    except b._Reject as failed:
        body = {
            "code": -2022,
            "msg": "Order cancel-replace failed.",
            "data": {
                "cancelResult": "FAILURE",
                "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": {"code": failed.code, "msg": failed.msg},
                "newOrderResponse": None,
            },
        }
        return b._json_reply(400, body)
    cancelled = _cancelled(fake, account, order, {}, margin=False)
    new_params = {k: v for k, v in params.items() if not k.startswith("cancel")}
    try:
        reply = fake._new_order(account, new_params, margin=False)
    except b._Reject as failed:
        body = {
            "code": -2021,
            "msg": "Order cancel-replace partially failed.",
            "data": {
                "cancelResult": "SUCCESS",
                "newOrderResult": "FAILURE",
                "cancelResponse": cancelled,
                "newOrderResponse": {"code": failed.code, "msg": failed.msg},
            },
        }
        return b._json_reply(409, body)
    return b._json_reply(
        200,
        {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": cancelled,
            "newOrderResponse": json.loads(reply.body),
        },
    )
