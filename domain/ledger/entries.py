"""Entering a position: PLAN (sized by the 1% rule unless told), VALIDATE every risk rule,
EXECUTE the entry order, and the one use case that runs all three."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID, uuid4

from domain.drawdown import month_of
from domain.errors import (
    IllegalTransition,
    InvalidInput,
    OrderRejected,
    RiskRuleViolated,
    TradingDisabled,
    Violation,
)
from domain.ledger.base import UNOBSERVED, Progress
from domain.ledger.orders import Leg, Orders
from domain.ledger.unit_of_work import Work
from domain.market import Side, SymbolRules
from domain.ports import TradingAccount
from domain.position import Position, Status
from domain.risk import PAUSED, PlanFacts, RiskContext, check_plan
from domain.sizing import Sizing, position_size


@dataclass(frozen=True)
class PlanRequest:
    """A trader's intention. Without a quantity (or quote amount) it is sized by the 1% rule."""

    symbol: str
    side: Side
    stop_price: Decimal | None
    entry_price: Decimal | None = None  # None: the exchange's current price
    target_price: Decimal | None = None
    quantity: Decimal | None = None
    quote_amount: Decimal | None = None
    margin: bool = False
    leverage: Decimal = Decimal(1)
    spendable: Decimal | None = None  # caps a 1%-rule size at what this much quote buys


@dataclass(frozen=True)
class SizePreview:
    """The size PLAN's risk rule gives an entry and a stop, shown before anything is planned."""

    symbol: str
    side: Side
    entry_price: Decimal
    stop_price: Decimal
    capital: Decimal  # the month's capital base
    sizing: Sizing


@dataclass(frozen=True)
class BalanceCheck:
    """What VALIDATE compares: the free balance against what the entry needs."""

    credentials_ok: bool
    rules: SymbolRules
    asset: str
    available: Decimal
    required: Decimal
    account: str


def violations_of(position: Position) -> list[Violation]:
    return [Violation(v["rule"], v["reason"]) for v in position.violations]


def quantity_for(
    request: PlanRequest,
    rules: SymbolRules,
    entry: Decimal,
    capital: Decimal,
    risk_percent: Decimal,
) -> Decimal:
    """The quantity asked for (or bought by the quote amount), else the 1%-rule size, capped
    by what `spendable` can pay for when given."""
    if request.quantity is not None and request.quote_amount is not None:
        raise InvalidInput("quantity", "give either quantity or amount, not both")
    if request.quantity is not None:
        if not request.quantity.is_finite() or request.quantity <= 0:
            raise InvalidInput("quantity", "must be a positive number")
        return rules.round_quantity(request.quantity)
    if request.quote_amount is not None:
        if not request.quote_amount.is_finite() or request.quote_amount <= 0:
            raise InvalidInput("amount", "must be a positive number")
        return rules.round_quantity(request.quote_amount / entry)
    if request.spendable is not None and request.stop_price is not None:
        sized = position_size(capital, entry, request.stop_price, rules.step_size, risk_percent)
        affordable = min(sized.quantity, rules.round_quantity(request.spendable / entry))
        if affordable <= 0:
            raise InvalidInput("quantity", "must be a positive number")
        return affordable
    if request.stop_price is None or request.stop_price == entry:
        return Decimal(0)  # cannot be sized; VALIDATE will say why
    return position_size(capital, entry, request.stop_price, rules.step_size, risk_percent).quantity


class Entries(Orders):
    def ensure_can_trade(self, client_id: UUID) -> TradingAccount:
        """The spec's two refusals, before anything is recorded: trading off, keys missing."""
        if not self.config.trading_enabled:
            raise TradingDisabled()
        return self.trading_account(client_id)  # CredentialsMissing on a live exchange

    # --- PLAN ---

    def preview_size(
        self, client_id: UUID, symbol: str, side: Side, stop: Decimal, entry: Decimal | None
    ) -> SizePreview:
        """The size PLAN would give at `entry` (default: the market price): the tenant's
        risk percent of the month's capital base; nothing is recorded."""
        price = entry if entry is not None else self.exchange.price(symbol)
        if (price - stop) * side.sign <= 0:
            where = "below" if side is Side.LONG else "above"
            raise InvalidInput("stop_price", f"must be {where} the entry price for a {side.value}")
        policy = self.policy(client_id)
        capital = policy.capital_base(month_of(self.clock.now()))
        step = self.exchange.symbol_rules(symbol).step_size
        sizing = position_size(capital, price, stop, step, policy.risk_percent)
        return SizePreview(symbol, side, price, stop, capital, sizing)

    def plan_position(self, client_id: UUID, request: PlanRequest) -> Position:
        self.policy(client_id, cached=True)  # an unknown client is refused first
        rules = self.exchange.symbol_rules(request.symbol)
        entry = request.entry_price or self.exchange.price(request.symbol)
        return self.work.cached_first().run(self._plan, client_id, request, rules, entry)

    def _plan(
        self,
        work: Work,
        client_id: UUID,
        request: PlanRequest,
        rules: SymbolRules,
        entry: Decimal,
    ) -> Position:
        policy = work.policy(client_id)  # sizes the position: checked unchanged
        capital = policy.capital_base(month_of(self.clock.now()))
        position = Position.plan(
            position_id=uuid4(),
            client_id=client_id,
            rules=rules,
            side=request.side,
            entry_price=entry,
            stop_price=request.stop_price,
            target_price=request.target_price,
            quantity=quantity_for(request, rules, entry, capital, policy.risk_percent),
            capital_base=capital,
            now=self.clock.now(),
            margin=request.margin or request.side is Side.SHORT,
            leverage=request.leverage,
        )
        work.save(position, unchanged=[policy])
        return position

    # --- VALIDATE ---

    def validate_position(self, client_id: UUID, position_id: UUID) -> Position:
        """Check every risk rule; a pass reserves the position's risk in the month's budget."""
        position = self.position(client_id, position_id, cached=True)  # never back to PLANNED
        if position.status is not Status.PLANNED:
            raise IllegalTransition(f"Cannot validate a position that is {position.status.value}")
        credentials = None
        if self.exchange.is_live:
            credentials = self.credentials_for(self.client(client_id))
        credentials_ok = credentials is not None or not self.exchange.is_live
        rules = self.exchange.symbol_rules(position.symbol)
        asset = position.quote_asset  # spot buys spend it; margin posts it as collateral
        where = f"the {position.symbol} isolated margin account" if position.margin else ""
        available = Decimal(0)
        if credentials_ok:
            account = TradingAccount(client_id, credentials)
            if position.margin:
                available = self.exchange.isolated_margin(account, position.symbol)[asset].free
            else:
                balances = self.exchange.balances(account)
                available = balances[asset].free if asset in balances else Decimal(0)
        required = position.quantity * position.entry_price / position.leverage
        check = BalanceCheck(credentials_ok, rules, asset, available, required, where)
        return self.work.cached_first().run(self._validate, client_id, position_id, check)

    def _validate(
        self, work: Work, client_id: UUID, position_id: UUID, check: BalanceCheck
    ) -> Position:
        now = self.clock.now()
        pos = work.position(client_id, position_id)
        policy = work.policy(client_id)
        month = month_of(now)
        policy.start_month(month, now)
        context = RiskContext(
            capital=pos.capital_base,
            max_risk_percent=policy.risk_percent,
            entry=policy.entry_gate(month, excluding=pos.id, now=now),
            trading_enabled=self.config.trading_enabled,
            credentials_ok=check.credentials_ok,
            rules=check.rules,
            balance_asset=check.asset,
            available_balance=check.available,
            required_balance=check.required,
            balance_account=check.account,
        )
        violations = check_plan(
            PlanFacts(pos.side, pos.entry_price, pos.stop_price, pos.target_price, pos.quantity),
            context,
        )
        pos.validate(violations, now)
        if not violations:
            policy.reserve_risk(pos.id, pos.risk_amount, now)
        work.save(pos, policy)
        return pos

    # --- EXECUTE ---

    def execute_position(self, client_id: UUID, position_id: UUID) -> Position:
        """Send the entry order of a VALIDATED position; its id is recorded before sending."""
        if not self.config.trading_enabled:
            raise TradingDisabled()
        account = self.trading_account(client_id)
        position, order_id = self.work.cached_first().run(self._submit, client_id, position_id)
        return self._send(Leg.ENTRY, account, position, order_id)

    def _submit(self, work: Work, client_id: UUID, position_id: UUID) -> tuple[Position, str]:
        pos = work.position(client_id, position_id)
        read = []
        if pos.status is Status.VALIDATED:
            # A pause recorded after VALIDATE still stops the entry, up to the save.
            policy = work.policy(client_id)
            if policy.paused:
                raise RiskRuleViolated([PAUSED])
            read.append(policy)
        order_id = pos.submit_entry(self.clock.now())
        work.save(pos, unchanged=read)
        return pos, order_id

    # --- all three ---

    def plan_validate_execute(
        self, client_id: UUID, request: PlanRequest, progress: Progress = UNOBSERVED
    ) -> Position:
        """PLAN → VALIDATE → EXECUTE in one call, never a shortcut; a rejection raises with
        every reason. The position comes back whatever the exchange did with its order."""
        planned = self.plan_position(client_id, request)
        progress.working_on(planned.id)
        validated = self.validate_position(client_id, planned.id)
        if validated.status is Status.REJECTED:
            raise RiskRuleViolated(violations_of(validated))
        position = self.execute_position(client_id, planned.id)
        progress.order_sent(Leg.ENTRY.value)
        return position

    def _ensure_executed(self, position: Position) -> None:
        """An entry the exchange refused comes back CANCELLED: a trade reply says so."""
        if position.status is Status.CANCELLED:
            raise OrderRejected(position.note or "The order was not executed")
