"""The monthly drawdown rule acting on the log: alerts at 2% and 3%, the pause at the limit.

It reads the drawdown projection, values open positions at the exchange's price (one call
per symbol), and asks the ledger to record what the loss has newly reached. It decides only
on an up-to-date view, and only from what the log already records (alerts, pauses), so a
replay or a restart records nothing new unless the loss reaches something new; a resumed
tenant is not paused again for the same month by the same loss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.drawdown import ALERT_LEVELS, month_of
from domain.ledger import Ledger
from projections.drawdown import TenantDrawdown
from projections.positions import in_shard
from projections.sql_read_models import SqlReadModels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """One call the rule made: the loss it saw and what that newly reached."""

    client_id: UUID
    month: str
    loss_percent: Decimal
    alerts: tuple[Decimal, ...]
    pause: bool


def newly_reached(tenant: TenantDrawdown) -> tuple[tuple[Decimal, ...], bool]:
    """Alert levels above the highest one recorded, and whether the pause is due."""
    row = tenant.row
    recorded = row.alert_level if row.alert_level is not None else Decimal(0)
    alerts = tuple(level for level in ALERT_LEVELS if recorded < level <= row.loss_percent)
    pause = (
        row.loss_percent >= tenant.limit_percent and not row.paused and not tenant.pause_recorded
    )
    return alerts, pause


class DrawdownRule:
    def __init__(
        self,
        ledger: Ledger,
        read_models: SqlReadModels,
        price_of: Callable[[str], Decimal],
        *,
        catch_up_timeout: float = 5.0,
        shard: tuple[int, int] | None = None,
        catch_up: Callable[[], object] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.ledger = ledger
        self.read_models = read_models
        self.price_of = price_of
        self.catch_up_timeout = catch_up_timeout
        self.shard = shard  # (i, n): only tenants whose client id % n == i, as the workers
        # Where no runner follows the log in this process: e.g. `ProjectionRunner.run_once`.
        self.catch_up = catch_up
        self.dry_run = dry_run  # observe and return what is due; record nothing

    def run_once(self) -> list[Observation]:
        """Check every tenant for the current month; returns the observations recorded (in a
        dry run, those that would be)."""
        head = self.read_models.log_position()
        if self.catch_up is not None:
            self.catch_up()
        if not self.read_models.wait_for(head, self.catch_up_timeout):
            log.warning("drawdown rule skipped: projections are behind event %s", head)
            return []
        month = month_of(self.ledger.clock.now())
        symbols = sorted({p.symbol for p in self.read_models.open_positions(shard=self.shard)})
        prices = {symbol: self.price_of(symbol) for symbol in symbols}
        observations = []
        for tenant in self.read_models.tenant_drawdowns(month, prices):
            if not in_shard(tenant.row.client_id, self.shard):
                continue
            alerts, pause = newly_reached(tenant)
            if not alerts and not pause:
                continue
            row = tenant.row
            if not self.dry_run:
                self.ledger.observe_drawdown(row.client_id, month, row.loss_percent)
            observations.append(Observation(row.client_id, month, row.loss_percent, alerts, pause))
        return observations
