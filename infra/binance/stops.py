"""The insurance stop on Binance: a STOP_LOSS_LIMIT order resting on spot (POST /api/v3/order,
moved with POST /api/v3/order/cancelReplace) or on isolated margin (POST /sapi/v1/margin/order
with AUTO_REPAY, moved by a cancel then a new order: margin has no cancelReplace)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import InvalidOperation
from typing import Any

from domain.errors import InvalidInput, MarginUnavailable, OrderOutcomeUnknown, OrderRejected
from domain.market import OrderSide
from domain.ports import OrderResult, StopOrderRequest, TradingAccount
from infra.binance.client import BinanceClient, Call, NoSuchOrder, mapping, method
from infra.binance.filters import SymbolInfo, plain
from infra.binance.margin import refuse_on_testnet
from infra.binance.orders import order_result

_UNREADABLE = (KeyError, InvalidOperation, TypeError, ValueError, ZeroDivisionError)


class StopOrders:
    """Mixed into `BinanceExchange`: resting, replacing and cancelling stop-limit orders."""

    _client: BinanceClient
    _symbol_info: Callable[..., SymbolInfo]  # (symbol, *, urgent)
    find_order: Callable[..., OrderResult | None]

    def place_stop(self, account: TradingAccount, order: StopOrderRequest) -> OrderResult:
        params, call = self._stop_params(account, order)
        credentials = self._client.credentials(account)
        if order.margin is not None:
            params.update(isIsolated="TRUE", sideEffectType=order.margin.value)
            send = method("create_margin_order", **params)
        else:
            send = method("create_order", **params)
        try:
            data = self._client.send(self._client.slot(credentials), send, call)
        except OrderRejected as exc:
            if "duplicate order" not in exc.message.lower():
                raise
            # rest-api.md "New order": the client order id is in use by an open order: ours.
            existing = self.find_order(
                account, order.symbol, order.client_order_id, margin=order.margin is not None
            )
            if existing is None:  # it rests, but a look-up does not show it yet
                raise OrderOutcomeUnknown(f"{call.what}: in use, not visible yet") from exc
            return existing
        return _read(data, call)

    def replace_stop(
        self, account: TradingAccount, old_client_order_id: str, order: StopOrderRequest
    ) -> OrderResult | None:
        if order.margin is not None:
            if self.cancel_order(account, order.symbol, old_client_order_id, True) is None:
                return None
            cancelled = self.find_order(account, order.symbol, old_client_order_id, margin=True)
            if cancelled is not None and cancelled.executed_quantity > 0:
                return None  # it filled in part before the cancel: record that first
            return self.place_stop(account, order)
        params, call = self._stop_params(account, order)
        credentials = self._client.credentials(account)
        # rest-api.md "Cancel an Existing Order and Send a New Order (TRADE)": STOP_ON_FAILURE
        # places nothing when the cancel fails (the old order filled or is gone).
        params.update(
            cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId=old_client_order_id
        )
        try:
            data = self._client.send(
                self._client.slot(credentials), method("cancel_replace_order", **params), call
            )
        except NoSuchOrder:
            return None
        try:
            return _read(mapping(data)["newOrderResponse"], call)
        except _UNREADABLE as exc:
            raise OrderOutcomeUnknown(f"Binance answered {call.what} unreadably") from exc

    def cancel_order(
        self, account: TradingAccount, symbol: str, client_order_id: str, margin: bool
    ) -> OrderResult | None:
        if margin:
            refuse_on_testnet(self._client, "cancel an isolated margin order")
        credentials = self._client.credentials(account)
        call = Call(
            f"cancel order {client_order_id} on {symbol}",
            writes=True,
            api_key=credentials.api_key,
        )
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        if margin:
            send = method("cancel_margin_order", isIsolated="TRUE", **params)
        else:
            send = method("cancel_order", **params)
        try:
            data = self._client.send(self._client.slot(credentials), send, call)
        except NoSuchOrder:
            return None  # errors.md -2011 "Unknown order sent.": it is no longer open
        result = _read(data, call)
        if result.executed_quantity > 0:  # the fills' fees come with a look-up
            return self.find_order(account, symbol, client_order_id, margin=margin) or result
        return result

    def _stop_params(
        self, account: TradingAccount, order: StopOrderRequest
    ) -> tuple[dict[str, str], Call]:
        if order.margin is not None:
            refuse_on_testnet(self._client, "rest an isolated margin stop order")
        credentials = self._client.credentials(account)
        info = self._symbol_info(order.symbol, urgent=True)  # protection goes first
        rules = info.rules
        if order.margin is not None and not rules.margin_allowed:
            raise MarginUnavailable(f"Binance does not offer margin trading on {order.symbol}")
        quantity = rules.round_quantity(order.quantity)
        problems = rules.order_problems(quantity, order.limit_price)
        if problems:
            raise InvalidInput("quantity", "; ".join(problems))
        params = {
            "symbol": order.symbol,
            "side": order.side.value,
            # rest-api.md "New order (TRADE)": STOP_LOSS_LIMIT needs timeInForce, quantity,
            # price and stopPrice.
            "type": "STOP_LOSS_LIMIT",
            "timeInForce": "GTC",
            "quantity": plain(quantity),
            "price": plain(order.limit_price),
            "stopPrice": plain(order.stop_price),
            "newClientOrderId": order.client_order_id,
            "newOrderRespType": "FULL",
        }
        spent = rules.quote_asset if order.side is OrderSide.BUY else rules.base_asset
        call = Call(
            f"rest a {order.side.value} stop of {plain(quantity)} {rules.base_asset} at "
            f"{plain(order.stop_price)} (limit {plain(order.limit_price)}) on {order.symbol} "
            f"(client order id {order.client_order_id})",
            writes=True,
            api_key=credentials.api_key,
            spent_asset=spent,
        )
        return params, call


def _read(data: Any, call: Call) -> OrderResult:
    try:
        return order_result(mapping(data), fees=None)
    except _UNREADABLE as exc:
        raise OrderOutcomeUnknown(
            f"Binance accepted {call.what} but its answer was unreadable; look it up"
        ) from exc
