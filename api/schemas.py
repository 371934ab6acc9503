"""Shared request and response vocabulary: money as exact decimals in, 8-decimal strings out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from domain.assistant.conversation import MAX_MESSAGE_CHARS


def _repeat(chars: str, low: int, high: int) -> str:
    """`chars` repeated low..high times, in the shortest spelling."""
    if high == 0:
        return ""
    if low == high:
        return chars if low == 1 else f"{chars}{{{low}}}"
    return f"{chars}{{{low},{high}}}"


def _digit(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _positive_fraction(places: int) -> str:
    """x in 0.x with at most `places` decimals, not all zero: a branch per leading zero count."""
    return "|".join(
        "0" * zeros + "[1-9]" + _repeat("[0-9]", 0, places - 1 - zeros) for zeros in range(places)
    )


def _whole_numbers(top: int) -> list[str]:
    """Branches matching the integers 1..top, without leading zeros."""
    text = str(top)
    if set(text) == {"9"}:
        return ["[1-9]" + _repeat("[0-9]", 0, len(text) - 1)]
    branches = ["[1-9]" + _repeat("[0-9]", 0, len(text) - 2)] if len(text) > 1 else []
    for i, digit in enumerate(text):
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            rest = _repeat("[0-9]", len(text) - i - 1, len(text) - i - 1)
            branches.append(text[:i] + _digit(lowest, int(digit) - 1) + rest)
    return [*branches, text]


@dataclass(frozen=True)
class ExactDecimal:
    """A decimal as a JSON number or a plain decimal string, in a range, with at most `places`
    decimals. The server accepts exactly what the OpenAPI document describes: the string's
    pattern is checked too, so "1e2", " 1" or "0001" are refused as the document says."""

    high: int
    places: int
    description: str
    inclusive: bool = False  # `high` itself is allowed
    from_one: bool = False  # the range starts at 1 (inclusive), else just above 0

    @property
    def pattern(self) -> str:
        fraction = f"(\\.{_repeat('[0-9]', 1, self.places)})?"
        branches = (
            [f"({'|'.join(_whole_numbers(self.high - 1))}){fraction}"] if self.high > 1 else []
        )
        if not self.from_one:
            branches.append(f"0\\.({_positive_fraction(self.places)})")
        if self.inclusive:
            branches.append(f"{self.high}(\\.{_repeat('0', 1, self.places)})?")
        return "^(" + "|".join(branches) + ")$"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        pattern = re.compile(self.pattern)
        reason = f"must be a JSON number or a plain decimal string: {self.description}"

        def number_or_plain_string(value: object) -> object:
            """JSON numbers arrive as Decimal (parse_float=Decimal) or int, never float."""
            if isinstance(value, bool | float):
                raise ValueError(reason)
            if isinstance(value, str) and not pattern.fullmatch(value):
                raise ValueError(reason)
            return value

        one, top = Decimal(1), Decimal(self.high)
        decimal = core_schema.decimal_schema(
            allow_inf_nan=False,
            decimal_places=self.places,
            ge=one if self.from_one else None,
            gt=None if self.from_one else Decimal(0),
            le=top if self.inclusive else None,
            lt=None if self.inclusive else top,
        )
        return core_schema.no_info_before_validator_function(number_or_plain_string, decimal)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        number: JsonSchemaValue = {"type": "number", "multipleOf": 10.0**-self.places}
        number.update({"minimum": 1} if self.from_one else {"exclusiveMinimum": 0})
        number["maximum" if self.inclusive else "exclusiveMaximum"] = self.high
        return {
            "anyOf": [number, {"type": "string", "pattern": self.pattern}],
            "description": self.description,
        }


# Upper bounds keep arithmetic finite; nothing real comes near them.
PRICE_MAX = 10**12
QUANTITY_MAX = 10**9
Price = Annotated[
    Decimal, ExactDecimal(PRICE_MAX, 8, "price in the quote asset (> 0, at most 8 decimals)")
]
Quantity = Annotated[
    Decimal, ExactDecimal(QUANTITY_MAX, 8, "quantity in the base asset (> 0, at most 8 decimals)")
]
Amount = Annotated[
    Decimal, ExactDecimal(PRICE_MAX, 8, "amount in the quote asset (> 0, at most 8 decimals)")
]
MoneyOut = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{8}$", examples=["98500.00000000"])]
Symbol = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")]
Note = Annotated[str, Field(min_length=1, max_length=2000)]


def _not_only(blank: Callable[[str], bool]) -> str:
    """A pattern, alike in Python's and ECMA-262's regex, for text with a non-blank character."""
    codes = [code for code in range(0x10000) if blank(chr(code))]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    spelled = "".join(
        f"\\u{low:04x}" + (f"-\\u{high:04x}" if high > low else "") for low, high in ranges
    )
    return f"[^{spelled}]"


# A chat or guard message: the domain answers a missing, null, blank or overlong one with a
# 400 ("message is required"), so the model lets those through, while the document says what
# is accepted: a string with a non-blank character, 1 to 4,000 characters.
Message = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_MESSAGE_CHARS,
            "pattern": _not_only(str.isspace),  # str.strip()'s blanks, not a dialect's \s
        }
    ),
    Field(json_schema_extra=lambda schema: schema.pop("default", None)),  # null is refused
]
BIGINT_MAX = 2**63 - 1  # notification ids and counts are 64-bit in both databases


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
    outcome: str | None = None  # "unknown": the order may have executed; see the position
