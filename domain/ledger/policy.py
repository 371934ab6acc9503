"""A tenant's risk policy: its capital and limits, the month's drawdown, resuming a pause."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.drawdown import month_of
from domain.errors import ClientNotFound
from domain.identity import policy_id_for
from domain.ledger.base import LedgerBase
from domain.ledger.unit_of_work import Work
from domain.policy import Policy
from domain.protections import Protections, ProtectionSettings
from domain.risk import EntryGate


class Policies(LedgerBase):
    def configure_policy(
        self,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal = Decimal(1),
        drawdown_limit_percent: Decimal = Decimal(4),
        protection: ProtectionSettings | None = None,
    ) -> Policy:
        """Record the tenant's settings; protections not given stay as they are."""
        return self.work.run(
            self._configure, client_id, capital, risk_percent, drawdown_limit_percent, protection
        )

    def _configure(
        self,
        work: Work,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal,
        drawdown_limit_percent: Decimal,
        protection: ProtectionSettings | None,
    ) -> Policy:
        policy = work.policy(client_id)
        now = self.clock.now()
        policy.reconfigure(capital, risk_percent, drawdown_limit_percent, now, protection)
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

    def entry_gate(
        self, client_id: UUID, credentials_ok: bool = True, as_of: datetime | None = None
    ) -> EntryGate:
        """Whether the tenant may take a new entry now (or could at `as_of`), as VALIDATE
        would decide it, and why not."""
        return self.policy_state(client_id, credentials_ok, as_of)[0]

    def protections(self, client_id: UUID, as_of: datetime | None = None) -> Protections:
        """The tenant's protections and what they judge now (or at `as_of`)."""
        return self.policy_state(client_id, as_of=as_of)[1]

    def policy_state(
        self, client_id: UUID, credentials_ok: bool = True, as_of: datetime | None = None
    ) -> tuple[EntryGate, Protections]:
        """`entry_gate` and `protections` from one reading of the policy."""
        now = as_of or self.clock.now()
        policy = self.policy_at(client_id, as_of)
        gate = policy.entry_gate(
            month_of(now),
            trading_enabled=self.config.trading_enabled,
            credentials_ok=credentials_ok,
            now=now,
        )
        protections = Protections(
            policy.protection, policy.protection_state(month_of(now), None, now)
        )
        return gate, protections

    def policy_at(self, client_id: UUID, as_of: datetime | None) -> Policy:
        """The policy as its events up to `as_of` left it (the latest one without it)."""
        if as_of is None:
            return self.policy(client_id)
        folded = self.past.at(policy_id_for(client_id), as_of)
        if not isinstance(folded, Policy):
            raise ClientNotFound(f"Client {client_id} had no policy yet")
        return folded

    def resume_trading(self, client_id: UUID, by: str, note: str) -> Policy:
        return self.work.run(self._resume, client_id, by, note)

    def _resume(self, work: Work, client_id: UUID, by: str, note: str) -> Policy:
        policy = work.policy(client_id)
        policy.resume(by, note, self.clock.now())
        work.save(policy)
        return policy
