"""Events recorded before a field was added still decode and replay to the same state."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from domain.position import Position, Status
from infra.bootstrap import Services
from tests.factories import exit_fully_or_partly, opened_position


def test_exit_events_without_the_buy_back_fields_replay_as_plain_exits(
    services: Services,
) -> None:
    position = opened_position(quantity="0.1", fees={"USDC": Decimal(5)})
    exit_fully_or_partly(position, "55000", {"USDC": Decimal("5.5")})
    mapper = services.store.mapper
    older = []
    for event in position.collect_events():
        stored = mapper.to_stored_event(event)
        state = json.loads(stored.state)
        for added in ("order_quantity", "interest", "interest_quote"):
            state.pop(added, None)
        older.append(replace(stored, state=json.dumps(state).encode()))

    decoded: list[Any] = [mapper.to_domain_event(stored) for stored in older]
    replayed = None
    for event in decoded:
        replayed = event.mutate(replayed)

    submitted = next(e for e in decoded if isinstance(e, Position.ExitSubmitted))
    filled = next(e for e in decoded if isinstance(e, Position.ExitFilled))
    assert (submitted.order_quantity, submitted.interest) == (None, Decimal(0))
    assert filled.interest_quote == Decimal(0)
    assert isinstance(replayed, Position)
    assert replayed.status is Status.CLOSED
    assert replayed.exit_order_quantity == Decimal("0.1")
    assert replayed.realised_pnl == position.realised_pnl == Decimal("489.5")
