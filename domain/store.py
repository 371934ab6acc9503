"""The event store application: every aggregate of the ledger lives in one log."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from enum import Enum
from threading import Lock
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording

from domain.errors import ConcurrencyConflict, DomainError
from domain.transcodings import DOMAIN_TRANSCODINGS, enum_transcoding

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

CONFLICT_ATTEMPTS = 8
CACHED_AGGREGATES = 10_000


class EventStore(Application[UUID]):
    """Configured from the environment by the composition root (PERSISTENCE_MODULE etc.).

    It keeps the newest state of each aggregate it has loaded or saved, so a load reads only
    the events recorded since (by any process), and a command may start from that state
    without reading at all when it saves the aggregate (see `load`)."""

    name = "robson"

    def __init__(
        self, env: Mapping[str, str] | None = None, stored_enums: Iterable[type[Enum]] = ()
    ) -> None:
        """`stored_enums`: the enums other parts of the domain record in their events (the
        chat's), stored by value like the ledger's own."""
        self._stored_enums = (*DOMAIN_TRANSCODINGS, *stored_enums)
        super().__init__(env)
        self.latest = LatestStates(CACHED_AGGREGATES)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for enum_type in self._stored_enums:
            transcoder.register(enum_transcoding(enum_type))

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        unchanged: Iterable[Aggregate] = (),
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """The library's save, with our aggregates' events collected directly (its runtime
        Protocol checks cost more than the rest of collecting).

        `unchanged`: aggregates the command read but does not save; the save fails as a
        conflict (`IntegrityError`) if any of them has moved on since it was loaded."""
        read = {aggregate.id: aggregate.version for aggregate in unchanged}
        if read:
            if not getattr(self.recorder, "checks_unchanged", False):
                raise TypeError(f"{type(self.recorder).__name__} cannot check unchanged reads")
            kwargs["unchanged"] = read
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        aggregates: list[Aggregate] = []
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
                aggregates.append(obj)
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        for aggregate in aggregates:
            self.latest.keep(aggregate)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings

    def load(self, aggregate_id: UUID, kind: type[A], *, cached: bool = False) -> A | None:
        """The aggregate, or None when it does not exist (or is of another kind).

        `cached=True` returns the newest state this process has seen without asking the
        database. Only a command that saves the aggregate, or names it `unchanged` in its
        save, may ask for it: if another process has moved it on since, the save conflicts
        and the command's retry loads afresh (see `cached_then_fresh`)."""
        known = self.latest.get(aggregate_id)
        found: Aggregate
        if known is not None and cached:
            found = deepcopy(known)
        elif known is not None:
            found = replayed(deepcopy(known), self.events.get(aggregate_id, gt=known.version))
            if found.version > known.version:
                self.latest.keep(found)
        else:
            try:
                found = self.repository.get(aggregate_id, projector_func=replayed)
            except AggregateNotFoundError:
                return None
            self.latest.keep(found)
        return found if isinstance(found, kind) else None


def replayed(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event runtime Protocol check (an `assert
    isinstance` that costs more than applying the event). The store's events are typed
    without `mutate` there, so this is where they are taken as ours, unchecked."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LatestStates:
    """The newest state seen of each recently used aggregate, least recently used dropped.

    What it holds is a private copy, never handed out and never changed, so readers copy it
    without a lock; a state older than the one held is ignored."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._states: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            state = self._states.get(aggregate_id)
            if state is not None:
                self._states.move_to_end(aggregate_id)
            return state

    def keep(self, aggregate: Aggregate) -> None:
        state = deepcopy(aggregate)
        with self._lock:
            held = self._states.get(aggregate.id)
            if held is not None and held.version >= state.version:
                return
            self._states[aggregate.id] = state
            self._states.move_to_end(aggregate.id)
            if len(self._states) > self._size:
                self._states.popitem(last=False)


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


def cached_then_fresh(command: Callable[[bool], T]) -> T:
    """Run a load → decide → save command first on the states this process holds (it loads
    with `cached=` its argument), and if that attempt fails, on states read afresh, with
    conflicts retried.

    A stale state fails either the save (another writer moved the aggregate on) or one of the
    command's own checks, so the command must save or raise on every path: a stale state
    must never be returned as the answer."""
    try:
        return command(True)
    except (IntegrityError, DomainError):
        return retry_on_conflict(lambda: command(False))
