"""The event store application: every aggregate of the ledger lives in one log."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording

from domain.errors import ConcurrencyConflict
from domain.transcodings import DOMAIN_TRANSCODINGS, enum_transcoding

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

CONFLICT_ATTEMPTS = 8


class EventStore(Application[UUID]):
    """Configured from the environment by the composition root (PERSISTENCE_MODULE etc.)."""

    name = "robson"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for enum_type in DOMAIN_TRANSCODINGS:
            transcoder.register(enum_transcoding(enum_type))

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """The library's save, with our aggregates' events collected directly (its runtime
        Protocol checks cost more than the rest of collecting)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings

    def load(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate, or None when it does not exist (or is of another kind)."""
        try:
            found: object = self.repository.get(aggregate_id, projector_func=_replay)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event runtime Protocol check (an `assert
    isinstance` that costs more than applying the event)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def retry_on_conflict(command: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Re-run a whole load → decide → save command when another writer saved first.

    The command must have no side effects outside the event store (never an exchange call).
    """
    for _ in range(attempts):
        try:
            return command()
        except IntegrityError:
            continue
    raise ConcurrencyConflict("The record kept changing under concurrent writers; try again")


class FirstThenFresh(Generic[A]):
    """An aggregate already loaded serves a command's first attempt; retries load afresh."""

    def __init__(self, loaded: A, load: Callable[[], A]) -> None:
        self._loaded: A | None = loaded
        self._load = load

    def get(self) -> A:
        if self._loaded is not None:
            loaded, self._loaded = self._loaded, None
            return loaded
        return self._load()
