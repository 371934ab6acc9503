"""The worker's exit senders: a bounded thread pool, so a gap that crosses many stops sends
their exits side by side instead of one exchange round trip after another.

At most one exit per position is in flight here; the ledger's unit of work still guards the
one-exit-per-position rule across workers. The pool runs only the ledger call: what it
answers is applied to the index by the worker's own thread (`harvest`). The exits sent for
one price share each tenant's account (`TenantAccounts`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from domain.ports import TradingAccount

DEFAULT_CONCURRENCY = 32

T = TypeVar("T")


@dataclass(frozen=True)
class Sent(Generic[T]):
    """One exit's answer: what the send returned, or what it raised."""

    position_id: UUID
    result: T | None
    error: Exception | None


class ExitPool(Generic[T]):
    """Sends on up to `concurrency` threads, created on first use and ended by `close()`."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError("exit concurrency must be at least 1")
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._flying: dict[UUID, Future[Sent[T]]] = {}

    def __contains__(self, position_id: object) -> bool:
        with self._lock:
            return position_id in self._flying

    def __len__(self) -> int:
        """Exits submitted whose answer has not been harvested yet."""
        with self._lock:
            return len(self._flying)

    def submit(self, position_id: UUID, send: Callable[[], T]) -> bool:
        """Start `send` unless this position's exit is already in flight (then False)."""
        with self._lock:
            if position_id in self._flying:
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.concurrency, "robson-exit")
            self._flying[position_id] = self._executor.submit(_run, position_id, send)
            return True

    def harvest(self, wait: bool) -> list[Sent[T]]:
        """The answers ready (all of them, once each has come, when `wait`), in any order."""
        with self._lock:
            flying = list(self._flying.items())
        answers: list[Sent[T]] = []
        for position_id, future in flying:
            if not wait and not future.done():
                continue
            with self._lock:
                self._flying.pop(position_id, None)
            answers.append(future.result())  # raises only what `_run` lets through (a crash)
        return answers

    def close(self) -> None:
        """Let the exits already sent answer, then end the threads (a later submit restarts)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


class TenantAccounts:
    """Each tenant's trading account (its keys, decrypted), resolved by the first of its
    exits and shared by the others sent for the same price: one read of the tenant and one
    decryption instead of one per position. Held only in memory, by the exits of that
    price; the next price's exits read the tenant again, so rotated keys serve them."""

    def __init__(self, resolve: Callable[[UUID], TradingAccount]) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._tenants: dict[UUID, threading.Lock] = {}
        self._accounts: dict[UUID, TradingAccount] = {}

    def __call__(self, client_id: UUID) -> TradingAccount:
        with self._lock:
            account = self._accounts.get(client_id)
            if account is not None:
                return account
            tenant = self._tenants.setdefault(client_id, threading.Lock())
        with tenant:  # one read per tenant, while its other exits wait for it
            with self._lock:
                account = self._accounts.get(client_id)
            if account is None:
                account = self._resolve(client_id)  # a failure is not kept: each exit asks
                with self._lock:
                    self._accounts[client_id] = account
        return account


def _run(position_id: UUID, send: Callable[[], T]) -> Sent[T]:
    try:
        return Sent(position_id, send(), None)
    except Exception as error:  # handed to the worker's thread, which decides what it means
        return Sent(position_id, None, error)
