"""Each handler's `Call[Body, Query]` names the models its operation parses, so mypy checks
the handler against what it is actually given (`Empty` and `NoQuery` when it reads none)."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import pytest

from api.app import OPERATIONS
from api.operations import Operation


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.operation_id)
def test_a_handler_is_typed_with_the_models_its_operation_parses(operation: Operation) -> None:
    body, query = get_args(get_type_hints(operation.handler)["call"])
    assert body in (operation.body, Any), f"body: {body} for {operation.body}"
    assert query in (operation.query, Any), f"query: {query} for {operation.query}"
