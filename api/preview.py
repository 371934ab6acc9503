"""The trade form's preview: the quantity the tenant's risk percent (1% unless it set less)
allows for an entry and a stop, shown before anything is planned (`Ledger.preview_size`, the
domain's own sizing)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.operations import Call, Operation, Reply
from api.schemas import Input, MoneyOut, NoQuery, Output, Price, Symbol
from domain.formats import money
from domain.market import Side


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


def preview(call: Call[PreviewRequest, NoQuery]) -> Reply:
    body = call.body
    size = call.services.ledger.preview_size(
        call.principal.client_id,
        body.symbol.upper(),
        Side(body.side),
        body.stop_price,
        body.entry_price,
    )
    return Reply(
        {
            "symbol": size.symbol,
            "side": size.side.value,
            "entry_price": money(size.entry_price),
            "stop_price": money(size.stop_price),
            "quantity": money(size.sizing.quantity),
            "risk_amount": money(size.sizing.risk_amount),
            "risk_budget": money(size.sizing.risk_budget),
            "capital": money(size.capital),
            "stop_distance": money(size.sizing.stop_distance),
        }
    )


OPERATIONS = [
    Operation(
        "POST",
        "/api/trade/preview/",
        preview,
        "The quantity the tenant's risk percent allows for an entry and a stop, before planning",
        tag="trade",
        body=PreviewRequest,
        response=PreviewReply,
        errors=(400, 404, 422),
    ),
]
