"""The stop worker: every poll, one price per symbol, then trailing, exits and reconciliation.

Each tick asks the index which positions the price concerns (O(log n + k)) and calls one
ledger use case for each. The ledger records an exit's client order id before sending it,
and its optimistic concurrency lets only one worker close a position; a lost race is normal
and quiet. Nothing one position or one exchange call does can stop the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    IllegalTransition,
    OrderOutcomeUnknown,
    RateLimited,
)
from domain.ledger import RECONCILE_GRACE, Ledger
from domain.position import ExitReason, Position
from workers.index import PositionIndex, Watched
from workers.jobs import ALL_JOBS, Action, Job, Outcome, Report, describe, log_action
from workers.metrics import WorkerMetrics
from workers.proposal_sweep import AbandonedProposals, ProposalSweep
from workers.watchlist import InFlight, OpenPositions, Shard, Watchlist

if TYPE_CHECKING:
    from infra.bootstrap import Services

log = logging.getLogger("robson.worker")

MAX_BACKOFF = timedelta(seconds=60)


@dataclass
class _Backoff:
    failures: int
    retry_at: datetime


class Worker:
    """Owns its index; `tick()` runs one pass, `start()`/`stop()` run it in a thread."""

    def __init__(
        self,
        ledger: Ledger,
        positions: OpenPositions,
        *,
        jobs: Iterable[Job] = ALL_JOBS,
        shard: Shard | None = None,
        poll_seconds: Decimal | float = 1,
        dry_run: bool = False,
        reconcile_grace: timedelta = RECONCILE_GRACE,
        full_refresh_every: timedelta | None = None,
        catch_up: Callable[[], object] | None = None,
        report: Report = log_action,
        metrics: WorkerMetrics | None = None,
        proposals: AbandonedProposals | None = None,
    ) -> None:
        """`catch_up` runs before each refresh (e.g. bring the projections up to date);
        with `proposals`, reconciliation also expires chat proposals left unconfirmed."""
        self.ledger = ledger
        self.exchange = ledger.exchange
        self.clock = ledger.clock
        self.jobs = frozenset(jobs)
        self.poll_seconds = float(poll_seconds)
        self.dry_run = dry_run
        self.reconcile_grace = reconcile_grace
        self.catch_up = catch_up
        self.report = report
        self.metrics = metrics or WorkerMetrics()
        self.sweep = None if proposals is None else ProposalSweep(proposals)
        self.index = PositionIndex(ledger.config.fee_buffer)
        self.watchlist = Watchlist(positions, self.index, shard, full_refresh_every)
        self._backoff: dict[UUID, _Backoff] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_services(
        cls,
        services: Services,
        *,
        jobs: Iterable[Job] = ALL_JOBS,
        shard: Shard | None = None,
        dry_run: bool = False,
        reconcile_grace: timedelta = RECONCILE_GRACE,
        report: Report = log_action,
    ) -> Worker:
        """Wired to the services' read models; while no projection runner follows the log
        in this process, each tick first brings the projections up to date itself."""
        runner = services.projections

        def catch_up() -> None:
            if not runner.running:
                runner.run_once()

        return cls(
            services.ledger,
            services.read_models,
            jobs=jobs,
            shard=shard,
            poll_seconds=services.settings.poll_seconds,
            dry_run=dry_run,
            reconcile_grace=reconcile_grace,
            catch_up=catch_up,
            report=report,
            proposals=services.assistant.proposals,
        )

    # --- running ---

    def run(self) -> None:
        """Reconcile what a previous run left in flight, then tick every poll until stop()."""
        self.startup()
        while not self._stopping.is_set():
            started = time.monotonic()
            self.tick()
            self._stopping.wait(max(0.0, self.poll_seconds - (time.monotonic() - started)))

    def run_once(self) -> list[Action]:
        """One-shot: the start-up reconciliation, then one tick."""
        return self.startup() + self.tick()

    def start(self) -> None:
        """Run in a background thread (what `robson serve` does)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="robson-worker", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Finish the current tick, then return from `run()` (safe in a signal handler)."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- one pass ---

    def startup(self) -> list[Action]:
        """Load the open positions and settle what a previous run left in flight."""
        self._refresh()
        if Job.RECONCILE not in self.jobs:
            return []
        try:
            return self._reconcile()
        except Exception:
            log.exception("start-up reconciliation failed")
            self.metrics.add("errors")
            return []

    def tick(self) -> list[Action]:
        """Refresh, then per symbol one price, the trailing step and the exit check; then
        reconciliation. Never raises: failures are logged and counted."""
        started = time.perf_counter()
        actions: list[Action] = []
        try:
            self._refresh()
            watching = bool(self.jobs & {Job.TRAILING, Job.STOPS})
            for symbol in self.index.symbols() if watching else ():
                price = self._price(symbol)
                if price is None:
                    continue
                if Job.TRAILING in self.jobs:
                    actions += self._trail(symbol, price)
                if Job.STOPS in self.jobs:
                    actions += self._exits(symbol, price)
            if Job.RECONCILE in self.jobs:
                actions += self._reconcile()
                if self.sweep is not None:
                    now, shard = self.clock.now(), self.watchlist.shard
                    swept = self.sweep(now, shard, self.metrics, self.dry_run)
                    actions += [self._done(action) for action in swept]
        except Exception:  # the loop must outlive anything one tick meets
            log.exception("worker tick failed")
            self.metrics.add("errors")
        self.metrics.add("ticks")
        self.metrics.positions_watched = len(self.index)
        self.metrics.last_tick_ms = (time.perf_counter() - started) * 1000
        return actions

    def _refresh(self) -> None:
        try:
            if self.catch_up is not None:
                self.catch_up()
            self.watchlist.refresh()
        except Exception as error:  # keep working on what is already known
            self.metrics.add("errors")
            log.warning("could not refresh the open positions: %s", describe(error))

    def _price(self, symbol: str) -> Decimal | None:
        try:
            price = self.exchange.price(symbol)
        except Exception as error:
            self.metrics.add("errors")
            log.warning("no price for %s this tick: %s", symbol, describe(error))
            return None
        self.metrics.add("prices_fetched")
        return price

    # --- trailing ---

    def _trail(self, symbol: str, price: Decimal) -> list[Action]:
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
            if self._backing_off(p.position_id):
                continue
            base = _base(Job.TRAILING, p, price)
            moving: dict[str, Any] = {
                "from_stop": p.stop,
                "to_stop": trail.new_stop,
                "span_step": trail.span_step,
            }
            if self.dry_run:
                self.index.tighten(p.position_id, trail.new_stop)
                actions.append(self._done(Action(outcome=Outcome.DRY_RUN, **base, **moving)))
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
                actions.append(self._done(Action(outcome=Outcome.DONE, **base, **moving)))
            else:  # already moved by another worker, or no longer open: ask the aggregate
                self._reload(p)
                actions.append(self._done(Action(outcome=Outcome.UNCHANGED, **base, **moving)))
        return actions

    # --- stop-loss and take-profit ---

    def _exits(self, symbol: str, price: Decimal) -> list[Action]:
        actions: list[Action] = []
        for due in self.index.exits_due(symbol, price):
            p = due.position
            if self._backing_off(p.position_id):
                continue
            base = _base(Job.STOPS, p, price)
            if self.dry_run:
                self.index.remove(p.position_id)
                actions.append(
                    self._done(Action(outcome=Outcome.DRY_RUN, reason=due.reason, **base))
                )
                continue
            try:
                closed = self.ledger.close_position(
                    p.client_id, p.position_id, due.reason, trigger_price=price
                )
            except (ConcurrencyConflict, IllegalTransition) as lost:
                actions.append(self._lost(base, p, lost))
                continue
            except OrderOutcomeUnknown as unknown:
                self.metrics.add("exits_pending")
                log.warning("exit of %s sent, outcome unknown: %s", p.position_id, unknown.message)
                self._reload(p)
                actions.append(
                    self._done(
                        Action(
                            outcome=Outcome.PENDING,
                            reason=due.reason,
                            detail=unknown.message,
                            **base,
                        )
                    )
                )
                continue
            except Exception as error:
                self._reload(p)
                actions.append(self._failed(base, p, error, due.reason))
                continue
            self._backoff.pop(p.position_id, None)
            self.watchlist.note(closed)
            self.metrics.add(
                "stop_losses" if due.reason is ExitReason.STOP_LOSS else "take_profits"
            )
            outcome = Outcome.PENDING if closed.order_in_flight else Outcome.DONE
            if outcome is Outcome.PENDING:
                self.metrics.add("exits_pending")
            actions.append(
                self._done(
                    Action(outcome=outcome, reason=due.reason, status=closed.status.value, **base)
                )
            )
        return actions

    # --- reconciliation ---

    def _reconcile(self) -> list[Action]:
        actions: list[Action] = []
        now = self.clock.now()
        for flight in list(self.watchlist.in_flight.values()):
            if flight.retry_at is not None and flight.retry_at > now:
                continue
            base: dict[str, Any] = {
                "job": Job.RECONCILE,
                "position_id": flight.position_id,
                "client_id": flight.client_id,
                "symbol": flight.symbol,
            }
            if self.dry_run:
                if now - flight.since >= self.reconcile_grace:
                    actions.append(self._done(Action(outcome=Outcome.DRY_RUN, **base)))
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
                    self._done(Action(outcome=Outcome.ERROR, detail=describe(error), **base))
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
                self._done(Action(outcome=Outcome.DONE, status=position.status.value, **base))
            )
        return actions

    def _wait_for(self, flight: InFlight, position: Position, now: datetime) -> None:
        """Still in flight: inside its grace period, or the exchange has not settled it."""
        flight.since = position.modified_on
        poll = timedelta(seconds=self.poll_seconds)
        flight.retry_at = max(now + poll, position.modified_on + self.reconcile_grace)

    # --- outcomes ---

    def _done(self, action: Action) -> Action:
        self.report(action)
        return action

    def _lost(self, base: dict[str, Any], p: Watched, lost: DomainError) -> Action:
        self.metrics.add("lost_races")
        log.info("position %s changed under us (%s); leaving it", p.position_id, lost.message)
        self._reload(p)
        return self._done(Action(outcome=Outcome.LOST_RACE, detail=lost.message, **base))

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
        return self._done(
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


def _base(job: Job, p: Watched, price: Decimal) -> dict[str, Any]:
    return {
        "job": job,
        "position_id": p.position_id,
        "client_id": p.client_id,
        "symbol": p.symbol,
        "price": price,
    }
