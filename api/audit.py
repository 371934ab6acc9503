"""Audit export: the caller's own events as NDJSON, streamed page by page, secrets redacted."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field
from starlette.responses import StreamingResponse

from api.operations import Call, Operation
from api.schemas import BIGINT_MAX, Empty, Query
from domain.errors import Forbidden
from projections.audit import ExportFilter, to_ndjson

NDJSON = "application/x-ndjson"


class AuditQuery(Query):
    client: str | None = Field(
        None, min_length=3, max_length=320, description="operator only: another client's email"
    )
    since: int | None = Field(None, ge=0, le=BIGINT_MAX, description="notification id (exclusive)")


def audit_events(call: Call[Empty, AuditQuery]) -> StreamingResponse:
    who = call.principal
    client_id = who.client_id
    wanted = call.query.client
    if wanted is not None and wanted.strip().lower() != who.email:
        if not who.is_operator:
            raise Forbidden("Only the operator may export another client's events")
        client_id = call.services.ledger.client_by_email(wanted).id  # 404 when unknown
    selection = ExportFilter(client_id=client_id, since_id=call.query.since)
    records = call.services.read_models.audit_events(selection)

    def lines() -> Iterator[str]:
        for record in records:
            yield to_ndjson(record)

    return StreamingResponse(lines(), media_type=NDJSON)


OPERATIONS = [
    Operation(
        "GET",
        "/api/audit/events/",
        audit_events,
        "The caller's events as NDJSON (an operator may name another client)",
        tag="audit",
        query=AuditQuery,
        media_type=NDJSON,
        errors=(403, 404),
    ),
]
