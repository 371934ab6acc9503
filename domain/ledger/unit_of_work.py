"""A command's load → decide → save, run again on fresh states when another writer saved
first, so no use case spells out its own retry loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.client import Client
from domain.errors import ClientNotFound, PositionNotFound
from domain.identity import client_id_for, policy_id_for
from domain.policy import Policy
from domain.position import Position
from domain.store import EventStore, cached_then_fresh, retry_on_conflict

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


def load_client(store: EventStore, client_id: UUID) -> Client:
    client = store.load(client_id, Client)
    if client is None:
        raise ClientNotFound(f"Client {client_id} not found")
    return client


def load_client_by_email(store: EventStore, email: str) -> Client:
    client = store.load(client_id_for(email), Client)
    if client is None:
        raise ClientNotFound(f"No client with email {email.strip().lower()}")
    return client


def load_policy(store: EventStore, client_id: UUID, cached: bool) -> Policy:
    policy = store.load(policy_id_for(client_id), Policy, cached=cached)
    if policy is None:
        raise ClientNotFound(f"Client {client_id} not found")
    return policy


def load_position(store: EventStore, client_id: UUID, position_id: UUID, cached: bool) -> Position:
    """The tenant's own position; another tenant's looks as absent as a missing one."""
    position = store.load(position_id, Position, cached=cached)
    if position is None or position.client_id != client_id:
        raise PositionNotFound(f"Position {position_id} not found")
    return position


class Work:
    """One attempt of a command: what it loads (from this process's states when `cached`,
    or an aggregate the caller already holds) and what it saves."""

    def __init__(self, store: EventStore, cached: bool, held: Iterable[Aggregate] = ()) -> None:
        self.store = store
        self.cached = cached
        self._held = {aggregate.id: aggregate for aggregate in held}

    def _held_or(self, aggregate_id: UUID, kind: type[A], load: Callable[[], A]) -> A:
        held = self._held.pop(aggregate_id, None)
        return held if isinstance(held, kind) else load()

    def client(self, client_id: UUID) -> Client:
        return self._held_or(client_id, Client, lambda: load_client(self.store, client_id))

    def client_by_email(self, email: str) -> Client:
        return load_client_by_email(self.store, email)

    def policy(self, client_id: UUID) -> Policy:
        return self._held_or(
            policy_id_for(client_id),
            Policy,
            lambda: load_policy(self.store, client_id, self.cached),
        )

    def position(self, client_id: UUID, position_id: UUID) -> Position:
        return self._held_or(
            position_id,
            Position,
            lambda: load_position(self.store, client_id, position_id, self.cached),
        )

    def save(self, *aggregates: Aggregate, unchanged: Iterable[Aggregate] = ()) -> None:
        """`unchanged`: aggregates read but not saved; the save conflicts if they moved on."""
        self.store.save(*aggregates, unchanged=unchanged)


class UnitOfWork:
    """Runs a decision `decide(work, ...)` that loads through `work` and saves through it.

    `fresh()` reads the store on every attempt; `cached_first()` tries the states this
    process holds, and on a conflict or a domain error (a stale state fails a check) runs
    again on fresh ones. `holding(...)` serves aggregates already loaded to the first
    attempt only. The decision must touch nothing but the store (never the exchange)."""

    def __init__(
        self, store: EventStore, cached_first: bool = False, held: tuple[Aggregate, ...] = ()
    ) -> None:
        self.store = store
        self._cached_first = cached_first
        self._held = held

    def fresh(self) -> UnitOfWork:
        return UnitOfWork(self.store, False, self._held)

    def cached_first(self) -> UnitOfWork:
        return UnitOfWork(self.store, True, self._held)

    def holding(self, *aggregates: Aggregate) -> UnitOfWork:
        return UnitOfWork(self.store, self._cached_first, aggregates)

    def run(
        self, decide: Callable[Concatenate[Work, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        attempts = iter([self._held])  # only the first attempt is served what is held

        def attempt(cached: bool) -> T:
            return decide(Work(self.store, cached, next(attempts, ())), *args, **kwargs)

        if self._cached_first:
            return cached_then_fresh(attempt)
        return retry_on_conflict(lambda: attempt(False))
