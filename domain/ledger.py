"""The ledger's use cases: each loads aggregates, calls the domain, saves, returns.

Clients, tokens and credentials, the risk policy, and PLAN → VALIDATE; execution, exits and
reconciliation come from `OrderDesk`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.client import Client, mask_key
from domain.drawdown import month_of
from domain.errors import (
    AlreadyExists,
    ClientNotFound,
    IllegalTransition,
    InvalidInput,
    RiskRuleViolated,
    Unauthorized,
    Violation,
)
from domain.identity import client_id_for
from domain.market import Side, SymbolRules
from domain.order_desk import RECONCILE_GRACE, OrderDesk, TradingConfig
from domain.policy import Policy
from domain.ports import (
    TradingAccount,
)
from domain.position import Position, Status
from domain.risk import PlanFacts, RiskContext, check_plan
from domain.sizing import position_size
from domain.store import cached_then_fresh, retry_on_conflict

__all__ = ["RECONCILE_GRACE", "Ledger", "PlanRequest", "Registration", "TradingConfig", "new_token"]


@dataclass(frozen=True)
class Registration:
    client_id: UUID
    token: str


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


def new_token(client_id: UUID) -> tuple[str, str]:
    """A bearer token naming its client, so a lookup needs no index; returns (id, token)."""
    token_id = secrets.token_hex(4)
    return token_id, f"rbs_{client_id.hex}_{token_id}_{secrets.token_urlsafe(32)}"


class Ledger(OrderDesk):
    # --- clients and tokens ---

    def register_client(
        self, name: str, email: str, capital: Decimal, is_operator: bool = False
    ) -> Registration:
        now = self.clock.now()
        client = Client.register(name, email, is_operator, now)
        policy = Policy.configure(client.id, capital, now)
        token_id, token = new_token(client.id)
        client.issue_token(token_id, token, now)
        try:
            self.store.save(client, policy)
        except IntegrityError:
            raise AlreadyExists(f"A client with email {client.email} already exists") from None
        return Registration(client.id, token)

    def client_by_email(self, email: str) -> Client:
        client = self.store.load(client_id_for(email), Client)
        if client is None:
            raise ClientNotFound(f"No client with email {email.strip().lower()}")
        return client

    def issue_token(self, email: str) -> str:
        def command() -> str:
            client = self.client_by_email(email)
            token_id, token = new_token(client.id)
            client.issue_token(token_id, token, self.clock.now())
            self.store.save(client)
            return token

        return retry_on_conflict(command)

    def revoke_token(self, client_id: UUID, token_id: str) -> None:
        def command() -> None:
            client = self.client(client_id)
            client.revoke_token(token_id, self.clock.now())
            self.store.save(client)

        retry_on_conflict(command)

    def authenticate(self, token: str) -> Client:
        """The active client a bearer token belongs to; every failure looks the same."""
        parts = token.split("_")
        if len(parts) < 4 or parts[0] != "rbs":
            raise Unauthorized("Invalid or missing token")
        try:
            client_id = UUID(hex=parts[1])
        except ValueError:
            raise Unauthorized("Invalid or missing token") from None
        client = self.store.load(client_id, Client)
        if client is None or not client.accepts(token):
            raise Unauthorized("Invalid or missing token")
        return client

    def set_active(self, email: str, active: bool) -> None:
        def command() -> None:
            client = self.client_by_email(email)
            now = self.clock.now()
            if active:
                client.activate(now)
            else:
                client.deactivate(now)
            self.store.save(client)

        retry_on_conflict(command)

    def set_credentials(self, email: str, api_key: str, secret_key: str) -> str:
        """Store the tenant's exchange keys encrypted; returns the masked key."""
        api_key, secret_key = api_key.strip(), secret_key.strip()
        if not api_key:
            raise InvalidInput("api_key", "is required")
        if not secret_key:
            raise InvalidInput("secret_key", "is required")
        api_ct, secret_ct = self.cipher.encrypt(api_key), self.cipher.encrypt(secret_key)
        masked = mask_key(api_key)

        def command() -> None:
            client = self.client_by_email(email)
            client.set_credentials(api_ct, secret_ct, masked, self.clock.now())
            self.store.save(client)

        retry_on_conflict(command)
        return masked

    def clear_credentials(self, email: str) -> None:
        def command() -> None:
            client = self.client_by_email(email)
            client.clear_credentials(self.clock.now())
            self.store.save(client)

        retry_on_conflict(command)

    # --- policy ---

    def configure_policy(
        self,
        client_id: UUID,
        capital: Decimal,
        risk_percent: Decimal = Decimal(1),
        drawdown_limit_percent: Decimal = Decimal(4),
    ) -> Policy:
        def command() -> Policy:
            policy = self.policy(client_id)
            policy.reconfigure(capital, risk_percent, drawdown_limit_percent, self.clock.now())
            self.store.save(policy)
            return policy

        return retry_on_conflict(command)

    def observe_drawdown(self, client_id: UUID, month: str, loss_pct: Decimal) -> Policy:
        """Record alerts and the pause the month's loss has reached (idempotent)."""

        def command() -> Policy:
            policy = self.policy(client_id)
            policy.observe_drawdown(month, loss_pct, self.clock.now())
            self.store.save(policy)
            return policy

        return retry_on_conflict(command)

    def resume_trading(self, client_id: UUID, by: str, note: str) -> Policy:
        def command() -> Policy:
            policy = self.policy(client_id)
            policy.resume(by, note, self.clock.now())
            self.store.save(policy)
            return policy

        return retry_on_conflict(command)

    # --- PLAN ---

    def plan_position(self, client_id: UUID, request: PlanRequest) -> Position:
        self.policy(client_id, cached=True)  # an unknown client is refused first
        rules = self.exchange.symbol_rules(request.symbol)
        entry = request.entry_price or self.exchange.price(request.symbol)

        def command(cached: bool) -> Position:
            policy = self.policy(client_id, cached)  # sizes the position: checked unchanged
            month = month_of(self.clock.now())
            capital = policy.capital_base(month)
            quantity = self._quantity(request, rules, entry, capital, policy.risk_percent)
            position = Position.plan(
                position_id=uuid4(),
                client_id=client_id,
                rules=rules,
                side=request.side,
                entry_price=entry,
                stop_price=request.stop_price,
                target_price=request.target_price,
                quantity=quantity,
                capital_base=capital,
                now=self.clock.now(),
                margin=request.margin or request.side is Side.SHORT,
                leverage=request.leverage,
            )
            self.store.save(position, unchanged=[policy])
            return position

        return cached_then_fresh(command)

    def _quantity(
        self,
        request: PlanRequest,
        rules: SymbolRules,
        entry: Decimal,
        capital: Decimal,
        risk_percent: Decimal,
    ) -> Decimal:
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
        if request.stop_price is None or request.stop_price == entry:
            return Decimal(0)  # cannot be sized; VALIDATE will say why
        return position_size(
            capital, entry, request.stop_price, rules.step_size, risk_percent
        ).quantity

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

        def command(cached: bool) -> Position:
            now = self.clock.now()
            pos = self.position(client_id, position_id, cached)
            policy = self.policy(client_id, cached)
            month = month_of(now)
            policy.start_month(month, now)
            context = RiskContext(
                capital=pos.capital_base,
                max_risk_percent=policy.risk_percent,
                paused=policy.paused,
                remaining_budget=policy.remaining_budget(month, excluding=pos.id),
                trading_enabled=self.config.trading_enabled,
                credentials_ok=credentials_ok,
                rules=rules,
                balance_asset=asset,
                available_balance=available,
                required_balance=required,
                balance_account=where,
            )
            violations = check_plan(
                PlanFacts(
                    pos.side, pos.entry_price, pos.stop_price, pos.target_price, pos.quantity
                ),
                context,
            )
            pos.validate(violations, now)
            if not violations:
                policy.reserve_risk(pos.id, pos.risk_amount, now)
            self.store.save(pos, policy)
            return pos

        return cached_then_fresh(command)

    def open_position(self, client_id: UUID, request: PlanRequest) -> Position:
        """PLAN → VALIDATE → EXECUTE in one call; a rejection raises with every reason."""
        planned = self.plan_position(client_id, request)
        validated = self.validate_position(client_id, planned.id)
        if validated.status is Status.REJECTED:
            raise RiskRuleViolated(_violations(validated))
        return self.execute_position(client_id, planned.id)


def _violations(position: Position) -> list[Violation]:
    return [Violation(v["rule"], v["reason"]) for v in position.violations]
