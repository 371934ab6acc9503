"""A tenant's risk policy: its capital and limits, the month's drawdown, resuming a pause."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.drawdown import month_of
from domain.ledger.base import LedgerBase
from domain.ledger.unit_of_work import Work
from domain.policy import Policy
from domain.risk import EntryGate


class Policies(LedgerBase):
    def configure_policy(
        self,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal = Decimal(1),
        drawdown_limit_percent: Decimal = Decimal(4),
    ) -> Policy:
        return self.work.run(
            self._configure, client_id, capital, risk_percent, drawdown_limit_percent
        )

    def _configure(
        self,
        work: Work,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal,
        drawdown_limit_percent: Decimal,
    ) -> Policy:
        policy = work.policy(client_id)
        policy.reconfigure(capital, risk_percent, drawdown_limit_percent, self.clock.now())
        work.save(policy)
        return policy

    def observe_drawdown(self, client_id: UUID, month: str, loss_pct: Decimal) -> Policy:
        """Record alerts and the pause the month's loss has reached (idempotent)."""
        return self.work.run(self._observe_drawdown, client_id, month, loss_pct)

    def _observe_drawdown(
        self, work: Work, client_id: UUID, month: str, loss_pct: Decimal
    ) -> Policy:
        policy = work.policy(client_id)
        policy.observe_drawdown(month, loss_pct, self.clock.now())
        work.save(policy)
        return policy

    def entry_gate(self, client_id: UUID, credentials_ok: bool = True) -> EntryGate:
        """Whether the tenant may take a new entry now, as VALIDATE would decide it, and why not."""
        return self.policy(client_id).entry_gate(
            month_of(self.clock.now()),
            trading_enabled=self.config.trading_enabled,
            credentials_ok=credentials_ok,
        )

    def resume_trading(self, client_id: UUID, by: str, note: str) -> Policy:
        return self.work.run(self._resume, client_id, by, note)

    def _resume(self, work: Work, client_id: UUID, by: str, note: str) -> Policy:
        policy = work.policy(client_id)
        policy.resume(by, note, self.clock.now())
        work.save(policy)
        return policy
