"""Aggregates as their events up to an instant left them: the reads of the past (`as_of`).

An aggregate's recorded events never change, so they are decoded once and kept, with copies
of the aggregate after every `CHECKPOINT_EVENTS` of them. Each read first reads the events
recorded since (usually none), so one recorded late, even with an earlier timestamp, is in
the next answer: what is kept is the log, never an answer."""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.store import EventStore

CHECKPOINT_EVENTS = 200
KEPT_EVENTS = 100_000  # over every aggregate kept; the least recently read go first


@dataclass
class _History:
    events: list[Any] = field(default_factory=list)
    latest: list[datetime] = field(default_factory=list)  # latest timestamp of events[: i + 1]
    checkpoints: list[Any] = field(default_factory=lambda: [None])  # after i * N events
    lock: threading.Lock = field(default_factory=threading.Lock)


class PastStates:
    """Thread-safe; the aggregates it returns are the caller's own copies."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._histories: OrderedDict[UUID, _History] = OrderedDict()
        self._lock = threading.Lock()

    def at(self, aggregate_id: UUID, as_of: datetime) -> Any:
        """The aggregate as its events up to the first one after `as_of` left it (None
        before its first event)."""
        history = self._history(aggregate_id)
        with history.lock:
            events = history.events
            since = events[-1].originator_version if events else None
            event: Any
            for event in self.store.events.get(aggregate_id, gt=since):
                latest = history.latest
                latest.append(max(latest[-1], event.timestamp) if latest else event.timestamp)
                events.append(event)
            while len(history.checkpoints) * CHECKPOINT_EVENTS <= len(events):
                start = (len(history.checkpoints) - 1) * CHECKPOINT_EVENTS
                state = _fold(history.checkpoints[-1], events[start : start + CHECKPOINT_EVENTS])
                history.checkpoints.append(state)
            upto = bisect_right(history.latest, as_of)
            checkpoint = upto // CHECKPOINT_EVENTS
            base = history.checkpoints[checkpoint]
        self._forget_beyond(KEPT_EVENTS)
        return _fold(base, events[checkpoint * CHECKPOINT_EVENTS : upto])

    def _history(self, aggregate_id: UUID) -> _History:
        with self._lock:
            history = self._histories.get(aggregate_id)
            if history is None:
                history = self._histories[aggregate_id] = _History()
            self._histories.move_to_end(aggregate_id)
            return history

    def _forget_beyond(self, kept: int) -> None:
        with self._lock:
            total = sum(len(h.events) for h in self._histories.values())
            while total > kept and len(self._histories) > 1:
                _, history = self._histories.popitem(last=False)
                total -= len(history.events)


def _fold(state: Any, events: list[Any]) -> Any:
    """A copy of `state` with `events` applied (a kept state is never changed)."""
    folded = deepcopy(state)
    for event in events:
        folded = event.mutate(folded)
    return folded
