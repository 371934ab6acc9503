"""The topics existing databases hold for Position and Policy events still name those events,
and new events are stored under the same topics: moving a concept of an aggregate to its own
module (a mixin whose events the aggregate redefines) must not change a stored topic."""

from __future__ import annotations

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain.policy import Policy
from domain.position import Position

RECORDED_TOPICS: dict[type, list[str]] = {
    Position: [
        f"domain.position:Position.{name}"
        for name in (
            "Planned",
            "Validated",
            "Rejected",
            "EntrySubmitted",
            "EntryFilled",
            "EntryFailed",
            "StopAdjusted",
            "ExitTriggered",
            "ExitSubmitted",
            "ExitResubmitted",
            "ExitFilled",
            "ExitFailed",
            "Closed",
            "Cancelled",
            "ExchangeStopSubmitted",
            "ExchangeStopResting",
            "ExchangeStopRefused",
            "ExchangeStopCancelled",
            "ExchangeStopFilled",
        )
    ],
    Policy: [
        f"domain.policy:Policy.{name}"
        for name in (
            "Configured",
            "Reconfigured",
            "MonthStarted",
            "RiskReserved",
            "PnlRealised",
            "CooldownStarted",
            "RiskReleased",
            "RiskLowered",
            "DrawdownAlerted",
            "TradingPaused",
            "TradingResumed",
        )
    ],
}
CASES = [(aggregate, topic) for aggregate, topics in RECORDED_TOPICS.items() for topic in topics]


@pytest.mark.parametrize(("aggregate", "topic"), CASES, ids=[t for _, t in CASES])
def test_a_recorded_topic_resolves_to_the_aggregates_event_and_is_still_written(
    aggregate: type, topic: str
) -> None:
    event_class = resolve_topic(topic)

    assert event_class is getattr(aggregate, topic.rsplit(".", 1)[1])
    assert get_topic(event_class) == topic


@pytest.mark.parametrize("aggregate", list(RECORDED_TOPICS))
def test_every_event_of_the_aggregate_has_a_recorded_topic(aggregate: type) -> None:
    """A new event class is added to the list above, so its topic is pinned from then on.
    A private base of events (`_Name`) is never recorded itself: only its subclasses are."""
    events = {
        get_topic(value)
        for name in dir(aggregate)
        if name not in ("Event", "Created")
        and not name.startswith("_")
        and isinstance(value := getattr(aggregate, name), type)
        and issubclass(value, CanMutateAggregate)
    }

    assert events == set(RECORDED_TOPICS[aggregate])
