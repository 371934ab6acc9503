"""The trade form's preview: the quantity the 1% rule allows for an entry and a stop, shown
before anything is planned, computed by the domain's own sizing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from api.operations import Call, Operation, Reply
from api.schemas import Input, MoneyOut, Output, Price, Symbol
from api.services import Services
from domain.drawdown import month_of
from domain.errors import InvalidInput
from domain.formats import money
from domain.market import Side
from domain.sizing import position_size


class PreviewRequest(Input):
    symbol: Symbol = "BTCUSDC"
    side: Literal["LONG", "SHORT"] = "LONG"
    stop_price: Price
    entry_price: Price | None = Field(None, description="default: the current market price")

    required_because: ClassVar[dict[str, str]] = {
        "stop_price": "is required: every trade has a stop-loss"
    }


class PreviewReply(Output):
    symbol: str
    side: str
    entry_price: MoneyOut
    stop_price: MoneyOut
    quantity: MoneyOut
    risk_amount: MoneyOut
    risk_budget: MoneyOut
    capital: MoneyOut
    stop_distance: MoneyOut


def size_preview(
    services: Services,
    client_id: UUID,
    symbol: str,
    side: Side,
    stop: Decimal,
    entry: Decimal | None,
) -> dict[str, Any]:
    """The 1%-risk size at `entry` (default: the market price), against the month's capital."""
    price = entry if entry is not None else services.exchange.price(symbol)
    if (price - stop) * side.sign <= 0:
        where = "below" if side is Side.LONG else "above"
        raise InvalidInput("stop_price", f"must be {where} the entry price for a {side.value}")
    capital = services.ledger.policy(client_id).capital_base(month_of(services.clock.now()))
    sizing = position_size(capital, price, stop, services.exchange.symbol_rules(symbol).step_size)
    return {
        "symbol": symbol,
        "side": side.value,
        "entry_price": money(price),
        "stop_price": money(stop),
        "quantity": money(sizing.quantity),
        "risk_amount": money(sizing.risk_amount),
        "risk_budget": money(sizing.risk_budget),
        "capital": money(capital),
        "stop_distance": money(sizing.stop_distance),
    }


def preview(call: Call[PreviewRequest, Any]) -> Reply:
    body = call.body
    return Reply(
        size_preview(
            call.services,
            call.principal.client_id,
            body.symbol.upper(),
            Side(body.side),
            body.stop_price,
            body.entry_price,
        )
    )


OPERATIONS = [
    Operation(
        "POST",
        "/api/trade/preview/",
        preview,
        "The 1%-risk quantity for an entry and a stop, before planning anything",
        tag="trade",
        body=PreviewRequest,
        response=PreviewReply,
        errors=(400, 404, 422),
    ),
]
