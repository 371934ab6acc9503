"""The jobs a tick runs on positions: trailing stops, stop-loss and take-profit exits, and
reconciliation of orders whose outcome is unknown.

Each calls one ledger use case per position; exits go out side by side on the worker's
pool (`workers.exit_pool`), and what they answer is applied by the tick's thread. The
ledger records an exit's client order id before sending it, and its optimistic concurrency
lets only one worker close a position; a lost race is normal and quiet. A failure backs
that one position off; nothing stops the loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    IllegalTransition,
    OrderOutcomeUnknown,
    RateLimited,
)
from domain.ledger import Ledger
from domain.position import ExitReason, Position, Status
from workers.exit_pool import DEFAULT_CONCURRENCY, ExitPool, TenantAccounts
from workers.index import Exit, PositionIndex, Watched
from workers.jobs import Action, Job, Outcome, Report, describe
from workers.metrics import WorkerMetrics
from workers.watchlist import InFlight, Watchlist

log = logging.getLogger("robson.worker")
# How often an order still unsettled after its grace is asked about again.
RECONCILE_EVERY = timedelta(seconds=10)

MAX_BACKOFF = timedelta(seconds=60)


@dataclass
class _Backoff:
    failures: int
    retry_at: datetime


class PositionJobs:
    """The per-position work of a tick over the worker's index and watchlist; each failing
    position waits one poll, doubling per consecutive failure, before it is tried again."""

    def __init__(
        self,
        ledger: Ledger,
        index: PositionIndex,
        watchlist: Watchlist,
        metrics: WorkerMetrics,
        report: Report,
        *,
        poll_seconds: float,
        dry_run: bool,
        reconcile_grace: timedelta,
        exit_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.ledger = ledger
        self.exchange = ledger.exchange
        self.clock = ledger.clock
        self.index = index
        self.watchlist = watchlist
        self.metrics = metrics
        self.report = report
        self.poll_seconds = poll_seconds
        self.dry_run = dry_run
        self.reconcile_grace = reconcile_grace
        self._backoff: dict[UUID, _Backoff] = {}
        self._insure_due: dict[str, datetime] = {}  # the next look, per symbol
        self.pool: ExitPool[Position] = ExitPool(exit_concurrency)
        self._exiting: dict[UUID, tuple[Exit, Decimal]] = {}  # touched by the tick's thread only

    # --- trailing ---

    def trail(self, symbol: str, price: Decimal) -> list[Action]:
        if self.index.rules(symbol) is None:
            try:
                self.index.set_rules(self.exchange.symbol_rules(symbol))
            except Exception as error:  # a stop must be rounded as the exchange wants
                self.metrics.add("errors")
                log.warning("no symbol rules for %s: %s", symbol, describe(error))
                return []
        actions: list[Action] = []
        for trail in self.index.trailing_due(symbol, price):
            p = trail.position
            if self.exiting(p.position_id) or self._backing_off(p.position_id):
                continue
            base = _base(Job.TRAILING, p, price)
            moving: dict[str, Any] = {
                "from_stop": p.stop,
                "to_stop": trail.new_stop,
                "span_step": trail.span_step,
            }
            if self.dry_run:
                self.index.tighten(p.position_id, trail.new_stop)
                actions.append(self.done(Action(outcome=Outcome.DRY_RUN, **base, **moving)))
                continue
            try:
                moved = self.ledger.adjust_stop(
                    p.client_id, p.position_id, trail.new_stop, trail.span_step
                )
            except (ConcurrencyConflict, IllegalTransition) as lost:
                actions.append(self._lost(base, p, lost))
                continue
            except Exception as error:
                actions.append(self._failed(base, p, error))
                continue
            self._backoff.pop(p.position_id, None)
            if moved:
                self.metrics.add("stops_adjusted")
                self.index.tighten(p.position_id, trail.new_stop)
                actions.append(self.done(Action(outcome=Outcome.DONE, **base, **moving)))
            else:  # already moved by another worker, or no longer open: ask the aggregate
                self._reload(p)
                actions.append(self.done(Action(outcome=Outcome.UNCHANGED, **base, **moving)))
        return actions

    # --- stop-loss and take-profit ---

    def exits(self, symbol: str, price: Decimal, seen: float) -> list[Action]:
        """Send the exits `price` triggers on the pool, one in flight per position; `seen`
        (monotonic seconds) is when the price was read. Their outcomes come from
        `settle_exits`; a dry run answers at once."""
        actions: list[Action] = []
        accounts = TenantAccounts(self.ledger.trading_account)  # read once for this price
        for due in self.index.exits_due(symbol, price):
            p = due.position
            if p.position_id in self.pool or self._backing_off(p.position_id):
                continue
            if self.dry_run:
                self.index.remove(p.position_id)
                base = _base(Job.STOPS, p, price)
                actions.append(
                    self.done(Action(outcome=Outcome.DRY_RUN, reason=due.reason, **base))
                )
                continue
            self._exiting[p.position_id] = (due, price)
            self.metrics.waiting(1)
            send = partial(self._send_exit, due, price, seen, accounts)
            self.pool.submit(p.position_id, send)
        return actions

    # --- the insurance stop ---

    def insure(self, symbol: str) -> list[Action]:
        """Once per interval per symbol (first at start-up): ask the exchange about every
        tenant's insurance stops (a fill becomes the exit), move those that lag, and protect
        the positions with the most at risk within the exchange's stop-order limit. A tick
        between two looks returns at once: the tick stays flat in the number of positions."""
        config = self.ledger.config
        if self.dry_run or not config.exchange_stops:
            return []
        now = self.clock.now()
        due = self._insure_due.get(symbol)
        if due is not None and now < due:
            return []
        self._insure_due[symbol] = now + config.exchange_stop_interval
        tenants: dict[UUID, list[Watched]] = {}
        for watched in self.index:
            if watched.symbol == symbol and not self._backing_off(watched.position_id):
                tenants.setdefault(watched.client_id, []).append(watched)
        actions: list[Action] = []
        for client_id, watched_list in tenants.items():
            try:
                positions = self.ledger.insure_positions(
                    client_id, [w.position_id for w in watched_list]
                )
            except (ConcurrencyConflict, IllegalTransition) as lost:
                actions.append(
                    self._lost(_base(Job.STOPS, watched_list[0], None), watched_list[0], lost)
                )
                continue
            except Exception as error:
                first = watched_list[0]
                actions.append(self._failed(_base(Job.STOPS, first, None), first, error))
                continue
            for watched, position in zip(watched_list, positions, strict=True):
                if position.status is Status.OPEN:
                    continue
                self.watchlist.note(position)  # the insurance stop filled: that was the exit
                self.metrics.add("stop_losses")
                actions.append(
                    self.done(
                        Action(
                            outcome=Outcome.DONE,
                            reason=ExitReason.STOP_LOSS_AT_EXCHANGE,
                            status=position.status.value,
                            **_base(Job.STOPS, watched, None),
                        )
                    )
                )
        return actions

    def exiting(self, position_id: UUID) -> bool:
        """Its exit is on its way: nothing else may act on the position meanwhile."""
        return position_id in self._exiting

    def _send_exit(
        self, due: Exit, price: Decimal, seen: float, accounts: TenantAccounts
    ) -> Position:
        """On a pool thread: only the ledger call and the metrics, never the index."""
        p = due.position
        sent = False
        try:
            closed = self.ledger.close_position(
                p.client_id,
                p.position_id,
                due.reason,
                trigger_price=price,
                account=accounts(p.client_id),
            )
            sent = True
            return closed
        except OrderOutcomeUnknown:
            sent = True
            raise
        finally:
            self.metrics.waiting(-1)
            if sent:
                self.metrics.add("exits_sent")
                self.metrics.exit_answered(time.monotonic() - seen)

    def settle_exits(self, wait: bool = True) -> list[Action]:
        """Apply the exits' answers to the index (all of them, once in, when `wait`)."""
        actions: list[Action] = []
        for answer in self.pool.harvest(wait):
            due, price = self._exiting.pop(answer.position_id)
            actions.append(self._settle_exit(due, price, answer.result, answer.error))
        return actions

    def _settle_exit(
        self, due: Exit, price: Decimal, closed: Position | None, error: Exception | None
    ) -> Action:
        p = due.position
        base = _base(Job.STOPS, p, price)
        if isinstance(error, ConcurrencyConflict | IllegalTransition):
            return self._lost(base, p, error)
        if isinstance(error, OrderOutcomeUnknown):
            self.metrics.add("exits_pending")
            log.warning("exit of %s sent, outcome unknown: %s", p.position_id, error.message)
            self._reload(p)
            return self.done(
                Action(outcome=Outcome.PENDING, reason=due.reason, detail=error.message, **base)
            )
        if error is not None or closed is None:
            failure = error or RuntimeError("the exit answered nothing")
            self._reload(p)
            return self._failed(base, p, failure, due.reason)
        self._backoff.pop(p.position_id, None)
        self.watchlist.note(closed)
        self.metrics.add("stop_losses" if due.reason is ExitReason.STOP_LOSS else "take_profits")
        outcome = Outcome.PENDING if closed.order_in_flight else Outcome.DONE
        if outcome is Outcome.PENDING:
            self.metrics.add("exits_pending")
        return self.done(
            Action(outcome=outcome, reason=due.reason, status=closed.status.value, **base)
        )

    # --- reconciliation ---

    def reconcile(self) -> list[Action]:
        actions: list[Action] = []
        now = self.clock.now()
        for flight in list(self.watchlist.in_flight.values()):
            if flight.retry_at is not None and flight.retry_at > now:
                continue
            if self.exiting(flight.position_id):  # its sender is still waiting for the answer
                continue
            base: dict[str, Any] = {
                "job": Job.RECONCILE,
                "position_id": flight.position_id,
                "client_id": flight.client_id,
                "symbol": flight.symbol,
            }
            if self.dry_run:
                if now - flight.since >= self.reconcile_grace:
                    actions.append(self.done(Action(outcome=Outcome.DRY_RUN, **base)))
                continue
            try:
                current = self.ledger.position(flight.client_id, flight.position_id)
                if current.order_in_flight is None:  # settled meanwhile, by its own sender
                    self.watchlist.note(current)
                    continue
                if now - current.modified_on < self.reconcile_grace:
                    self._wait_for(flight, current, now)  # its sender may still be waiting
                    continue
                position = self.ledger.reconcile(flight.position_id, self.reconcile_grace)
            except Exception as error:
                self.metrics.add("errors")
                flight.retry_at = now + self._delay(flight.position_id, error)
                log.warning("reconcile %s failed: %s", flight.position_id, describe(error))
                actions.append(
                    self.done(Action(outcome=Outcome.ERROR, detail=describe(error), **base))
                )
                continue
            if position is None:
                self.watchlist.in_flight.pop(flight.position_id, None)
                continue
            if position.order_in_flight is not None:
                self._wait_for(flight, position, now)
                continue
            self._backoff.pop(flight.position_id, None)
            self.watchlist.note(position)
            self.metrics.add("reconciled")
            actions.append(
                self.done(Action(outcome=Outcome.DONE, status=position.status.value, **base))
            )
        return actions

    def _wait_for(self, flight: InFlight, position: Position, now: datetime) -> None:
        """Still in flight: inside its grace period, or the exchange has not settled it (asked
        again every few seconds, not every tick: each round of evidence costs request weight)."""
        flight.since = position.modified_on
        poll = timedelta(seconds=self.poll_seconds)
        flight.retry_at = max(
            now + max(poll, RECONCILE_EVERY), position.modified_on + self.reconcile_grace
        )

    # --- outcomes ---

    def done(self, action: Action) -> Action:
        self.report(action)
        return action

    def _lost(self, base: dict[str, Any], p: Watched, lost: DomainError) -> Action:
        self.metrics.add("lost_races")
        log.info("position %s changed under us (%s); leaving it", p.position_id, lost.message)
        self._reload(p)
        return self.done(Action(outcome=Outcome.LOST_RACE, detail=lost.message, **base))

    def _failed(
        self,
        base: dict[str, Any],
        p: Watched,
        error: Exception,
        reason: ExitReason | None = None,
    ) -> Action:
        self.metrics.add("errors")
        self._delay(p.position_id, error)
        if isinstance(error, DomainError):
            log.warning("%s %s failed: %s", base["job"].value, p.position_id, error.message)
        else:
            log.error("%s %s failed", base["job"].value, p.position_id, exc_info=error)
        return self.done(
            Action(outcome=Outcome.ERROR, reason=reason, detail=describe(error), **base)
        )

    def _delay(self, position_id: UUID, error: Exception) -> timedelta:
        """One poll, doubling per consecutive failure up to a minute (or what a 429 asks)."""
        backoff = self._backoff.get(position_id)
        failures = 1 if backoff is None else backoff.failures + 1
        delay = min(MAX_BACKOFF, timedelta(seconds=self.poll_seconds * 2 ** (failures - 1)))
        if isinstance(error, RateLimited):
            delay = max(delay, timedelta(seconds=float(error.retry_after_seconds)))
        self._backoff[position_id] = _Backoff(failures, self.clock.now() + delay)
        return delay

    def _backing_off(self, position_id: UUID) -> bool:
        backoff = self._backoff.get(position_id)
        return backoff is not None and backoff.retry_at > self.clock.now()

    def _reload(self, p: Watched) -> None:
        """After a surprise, take the aggregate's word for where the position stands."""
        try:
            self.watchlist.note(self.ledger.position(p.client_id, p.position_id))
        except Exception as error:
            log.warning("could not reload position %s: %s", p.position_id, describe(error))


def _base(job: Job, p: Watched, price: Decimal | None) -> dict[str, Any]:
    return {
        "job": job,
        "position_id": p.position_id,
        "client_id": p.client_id,
        "symbol": p.symbol,
        "price": price,
    }
