"""Isolated-margin positions: a safe size for a stop (the 1% rule, margin capped at half the
capital), and opening one with its stop recorded, or only checking it (a dry run)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.drawdown import month_of
from domain.ledger.base import UNOBSERVED, Progress
from domain.ledger.entries import Entries, PlanRequest
from domain.ledger.exits import Exits
from domain.market import Side
from domain.position import Position
from domain.sizing import MarginSize, margin_size

DRY_RUN_NOTE = "dry run: nothing was sent"


@dataclass(frozen=True)
class MarginRequest:
    symbol: str
    side: Side
    entry_price: Decimal
    stop_price: Decimal
    leverage: Decimal
    risk_percent: Decimal
    capital: Decimal | None = None  # None: the policy's capital base of the month
    target_price: Decimal | None = None


@dataclass(frozen=True)
class SizedMargin:
    symbol: str  # as the exchange spells it
    size: MarginSize


@dataclass(frozen=True)
class MarginOpening:
    sized: SizedMargin
    position: Position  # a dry run's is cancelled once checked: see `violations`
    live: bool  # the exchange is the real one (else paper)


class Margin(Entries, Exits):
    def size_margin_position(self, client_id: UUID, request: MarginRequest) -> SizedMargin:
        rules = self.exchange.symbol_rules(request.symbol)
        capital = request.capital
        if capital is None:
            policy = self.policy(client_id)
            capital = policy.capital_base(month_of(self.clock.now()))
        size = margin_size(
            request.side,
            request.entry_price,
            request.stop_price,
            capital,
            request.leverage,
            request.risk_percent,
            rules,
        )
        return SizedMargin(rules.symbol, size)

    def open_margin_position(
        self,
        client_id: UUID,
        request: MarginRequest,
        dry_run: bool,
        progress: Progress = UNOBSERVED,
    ) -> MarginOpening:
        """A dry run plans and validates, then cancels, so nothing is sent and no risk stays
        reserved; otherwise PLAN → VALIDATE → EXECUTE."""
        sized = self.size_margin_position(client_id, request)
        plan = PlanRequest(
            symbol=sized.symbol,
            side=request.side,
            stop_price=request.stop_price,
            entry_price=request.entry_price,
            target_price=request.target_price,
            quantity=sized.size.quantity,
            margin=True,
            leverage=request.leverage,
        )
        if dry_run:
            planned = self.plan_position(client_id, plan)
            progress.working_on(planned.id)
            checked = self.validate_position(client_id, planned.id)
            self.cancel_position(client_id, planned.id, DRY_RUN_NOTE)
            return MarginOpening(sized, checked, self.exchange.is_live)
        self.ensure_can_trade(client_id)
        position = self.plan_validate_execute(client_id, plan, progress)
        self._ensure_executed(position)
        return MarginOpening(sized, position, self.exchange.is_live)
