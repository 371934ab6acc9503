"""A schemathesis check of this API's own: data the OpenAPI document allows is never refused
by request validation (a 422 listing `errors`, or a 400 `malformed_body`). Loaded by the test
suite on import, and by the `st` command line through SCHEMATHESIS_HOOKS."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response


@schemathesis.check
def request_validation_agrees_with_the_document(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    try:
        reply = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(reply, dict) and ("errors" in reply or reply.get("code") == "malformed_body"):
        raise AssertionError(f"data the document allows was refused: {response.content!r}")
    return None
