"""The ledger's use cases, grouped by what they do; `Ledger` is the one object the
composition root builds, so callers write `ledger.<use case>`."""

from __future__ import annotations

from domain.ledger.base import TradingConfig
from domain.ledger.entries import PlanRequest
from domain.ledger.margin import Margin
from domain.ledger.policy import Policies
from domain.ledger.reconciliation import EVIDENCE_WINDOW, RECONCILE_GRACE, Reconciliation
from domain.ledger.spot import Spot
from domain.ledger.tenants import Registration, Tenants, new_token

__all__ = [
    "EVIDENCE_WINDOW",
    "RECONCILE_GRACE",
    "Ledger",
    "PlanRequest",
    "Registration",
    "TradingConfig",
    "new_token",
]


class Ledger(Tenants, Policies, Spot, Margin, Reconciliation):
    """Tenants, risk policy, entries, exits, spot and margin trades, and reconciliation."""
