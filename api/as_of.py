"""`?as_of=<ISO instant>`: a read answered as it would have been then, from the caller's
own events up to that instant (see projections/as_of.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from api.operations import AnyCall, Call
from api.schemas import Query
from domain.errors import InvalidInput
from projections.past import TenantReads

AS_OF = Field(
    None,
    description=(
        "An ISO 8601 instant with its offset, e.g. 2026-11-02T09:00:00Z: the reply as it "
        "would have been then, from the caller's events up to it (not in the future)"
    ),
)


def _iso_text(value: object) -> str:
    """Only ISO 8601 text, as the document says: pydantic would also read a bare number as
    epoch seconds."""
    if (isinstance(value, str) and not value[:4].isdigit()) or not isinstance(value, str):
        raise ValueError("must be an ISO 8601 instant with its offset")
    if len(value) < 10 or value[4] != "-":
        raise ValueError("must be an ISO 8601 instant with its offset")
    return value


class AsOfQuery(Query):
    as_of: Annotated[AwareDatetime, BeforeValidator(_iso_text)] | None = AS_OF


def past_instant(call: Call[BaseModel, AsOfQuery]) -> datetime | None:
    """The query's `as_of`; one still to come is refused on `query.as_of`, as a malformed
    one is (422)."""
    as_of = call.query.as_of
    if as_of is None:
        return None
    try:
        instant = as_of.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidInput("query.as_of", "is out of range") from None
    if instant > call.services.clock.now():
        raise InvalidInput("query.as_of", "must not be in the future")
    return instant


@contextmanager
def read_models_for(call: AnyCall, as_of: datetime | None) -> Iterator[TenantReads]:
    """The live read models, or the caller's own as of `as_of`."""
    if as_of is None:
        yield call.services.read_models
        return
    yield call.services.read_models.as_of(call.principal.client_id, as_of)
