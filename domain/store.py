"""The event store application: every aggregate of the ledger lives in one log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

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

    def load(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate, or None when it does not exist (or is of another kind)."""
        try:
            found: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None


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
