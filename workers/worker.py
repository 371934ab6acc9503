"""The stop worker's loop: every poll, one price per symbol, then exits (sent side by side
on the worker's exit pool), trailing and reconciliation (`workers.position_jobs`), the
proposal sweep and, every few seconds, the drawdown check (`workers.drawdown_check`).

Each tick asks the index which positions the price concerns (O(log n + k)); nothing one
position or one exchange call does can stop the loop, and `stop()` lets a tick finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from domain.ledger import RECONCILE_GRACE, Ledger
from domain.ports import Exchange
from projections.drawdown_rule import DrawdownRule
from projections.sql_read_models import SqlReadModels
from workers.drawdown_check import DrawdownCheck
from workers.exit_pool import DEFAULT_CONCURRENCY
from workers.index import PositionIndex
from workers.jobs import ALL_JOBS, Action, Job, Report, describe, log_action
from workers.metrics import WorkerMetrics
from workers.position_jobs import PositionJobs
from workers.proposal_sweep import AbandonedProposals, ProposalSweep
from workers.watchlist import OpenPositions, Shard, Watchlist

log = logging.getLogger("robson.worker")


class _Settings(Protocol):
    @property
    def poll_seconds(self) -> Decimal: ...
    @property
    def exit_concurrency(self) -> int: ...


class _Runner(Protocol):
    @property
    def running(self) -> bool: ...

    def run_once(self) -> int: ...


class _Assistant(Protocol):
    @property
    def proposals(self) -> AbandonedProposals: ...


class WorkerServices(Protocol):
    """What a worker takes from the composition root's services."""

    @property
    def ledger(self) -> Ledger: ...
    @property
    def read_models(self) -> SqlReadModels: ...
    @property
    def exchange(self) -> Exchange: ...
    @property
    def projections(self) -> _Runner: ...
    @property
    def settings(self) -> _Settings: ...
    @property
    def assistant(self) -> _Assistant: ...


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
        drawdown: DrawdownCheck | None = None,
        exit_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """`catch_up` runs before each refresh (e.g. bring the projections up to date);
        with `proposals`, reconciliation also expires chat proposals left unconfirmed; with
        `drawdown`, the drawdown job checks the month's loss, open positions included."""
        self.ledger = ledger
        self.exchange = ledger.exchange
        self.clock = ledger.clock
        self.jobs = frozenset(jobs)
        self.poll_seconds = float(poll_seconds)
        self.dry_run = dry_run
        self.catch_up = catch_up
        self.metrics = metrics or WorkerMetrics()
        self.sweep = None if proposals is None else ProposalSweep(proposals)
        self.drawdown = drawdown
        self.index = PositionIndex(ledger.config.fee_buffer)
        self.watchlist = Watchlist(positions, self.index, shard, full_refresh_every)
        self.positions = PositionJobs(
            ledger,
            self.index,
            self.watchlist,
            self.metrics,
            report,
            poll_seconds=self.poll_seconds,
            dry_run=dry_run,
            reconcile_grace=reconcile_grace,
            exit_concurrency=exit_concurrency,
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_services(
        cls,
        services: WorkerServices,
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

        rule = DrawdownRule(
            services.ledger,
            services.read_models,
            services.exchange.price,
            shard=shard,
            catch_up=catch_up,
            dry_run=dry_run,
        )
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
            drawdown=DrawdownCheck(rule),
            exit_concurrency=services.settings.exit_concurrency,
        )

    # --- running ---

    def run(self) -> None:
        """Reconcile what a previous run left in flight, then tick every poll until stop()."""
        self.startup()
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                self.tick()
                self._stopping.wait(max(0.0, self.poll_seconds - (time.monotonic() - started)))
        finally:
            self.close()

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
        self.close()

    def close(self) -> None:
        """End the exit pool's threads once the exits already sent have answered."""
        self.positions.pool.close()

    def prometheus(self) -> str:
        """The worker's metrics for /metrics (exits sent, waiting, and their latency)."""
        return self.metrics.prometheus()

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
            return self.positions.reconcile()
        except Exception:
            log.exception("start-up reconciliation failed")
            self.metrics.add("errors")
            return []

    def tick(self) -> list[Action]:
        """Refresh, then per symbol one price and its exits, sent on the exit pool; then the
        trailing steps, reconciliation and the drawdown check while they are on their way.
        Never raises: failures are logged and counted."""
        started = time.perf_counter()
        actions: list[Action] = []
        try:
            self._refresh()
            watching = bool(self.jobs & {Job.TRAILING, Job.STOPS})
            prices: list[tuple[str, Decimal]] = []
            for symbol in self.index.symbols() if watching else ():
                price = self._price(symbol)
                if price is None:
                    continue
                prices.append((symbol, price))
                if Job.STOPS in self.jobs:  # exits first: nothing else in the tick waits on them
                    actions += self.positions.exits(symbol, price, time.monotonic())
            for symbol, price in prices if Job.TRAILING in self.jobs else ():
                actions += self.positions.trail(symbol, price)
            for symbol, _ in prices if Job.STOPS in self.jobs else ():
                actions += self.positions.insure(symbol)
            if Job.RECONCILE in self.jobs:
                actions += self.positions.reconcile()
                if self.sweep is not None:
                    now, shard = self.clock.now(), self.watchlist.shard
                    swept = self.sweep(now, shard, self.metrics, self.dry_run)
                    actions += [self.positions.done(action) for action in swept]
            if Job.DRAWDOWN in self.jobs and self.drawdown is not None:
                checked = self.drawdown(self.clock.now(), self.metrics)
                actions += [self.positions.done(action) for action in checked]
        except Exception:  # the loop must outlive anything one tick meets
            log.exception("worker tick failed")
            self.metrics.add("errors")
        actions += self._settle_exits()
        self.metrics.add("ticks")
        self.metrics.positions_watched = len(self.index)
        self.metrics.last_tick_ms = (time.perf_counter() - started) * 1000
        return actions

    def _settle_exits(self) -> list[Action]:
        """The tick ends once its exits have answered, so the next one sees their outcome."""
        try:
            return self.positions.settle_exits(wait=True)
        except Exception:
            log.exception("settling the exits failed")
            self.metrics.add("errors")
            return []

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
