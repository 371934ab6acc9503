"""Shared request and response vocabulary: money as exact decimals in, 8-decimal strings out."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

DECIMAL_STRING = r"^[0-9]{1,12}(\.[0-9]{1,8})?$"


def _number_or_decimal_string(value: Any) -> Any:
    """JSON numbers arrive as Decimal (the body is parsed with parse_float=Decimal) or int."""
    if isinstance(value, bool | float):
        raise ValueError("must be a JSON number or a decimal string")
    return value


def _schema(maximum: int, description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": maximum},
                {"type": "string", "pattern": DECIMAL_STRING},
            ],
            "description": description,
        }
    )


# Upper bounds keep arithmetic finite; nothing real comes near them.
PRICE_MAX = 10**12
QUANTITY_MAX = 10**9
Price = Annotated[
    Decimal,
    BeforeValidator(_number_or_decimal_string),
    Field(gt=0, lt=PRICE_MAX, allow_inf_nan=False, decimal_places=8),
    _schema(PRICE_MAX, "price in the quote asset (> 0, at most 8 decimals)"),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_number_or_decimal_string),
    Field(gt=0, lt=QUANTITY_MAX, allow_inf_nan=False, decimal_places=8),
    _schema(QUANTITY_MAX, "quantity in the base asset (> 0, at most 8 decimals)"),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_number_or_decimal_string),
    Field(gt=0, lt=PRICE_MAX, allow_inf_nan=False, decimal_places=8),
    _schema(PRICE_MAX, "amount in the quote asset (> 0, at most 8 decimals)"),
]
MoneyOut = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{8}$", examples=["98500.00000000"])]
Symbol = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")]
Note = Annotated[str, Field(min_length=1, max_length=2000)]


class Input(BaseModel):
    """Request bodies and queries: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(BaseModel):
    """Query strings: unknown parameters are ignored (caches and proxies add some)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Empty(Input):
    """No body (or `{}`)."""


class NoQuery(Query):
    pass


class Output(BaseModel):
    """Response documentation; extra keys are allowed so replies may grow."""

    model_config = ConfigDict(extra="allow")


class ErrorReply(Output):
    success: bool = False
    error: str
    code: str
    field: str | None = None
    violations: list[dict[str, str]] | None = None
    position_id: str | None = None
