"""The ledger's use cases: each loads aggregates, calls the domain, saves, returns.

Orders reach an exchange only from here, and only for a VALIDATED position whose order id
was recorded first; a result that is not definite is reconciled, never re-sent blindly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.client import Client, mask_key
from domain.drawdown import loss_percent, month_of
from domain.errors import (
    AlreadyExists,
    ClientNotFound,
    CredentialsMissing,
    DomainError,
    ExchangeUnavailable,
    IllegalTransition,
    InsufficientBalance,
    InvalidInput,
    OrderOutcomeUnknown,
    OrderRejected,
    PositionNotFound,
    RiskRuleViolated,
    TradingDisabled,
    Unauthorized,
    Violation,
)
from domain.identity import client_id_for, policy_id_for
from domain.market import Side, SymbolRules
from domain.policy import Policy
from domain.ports import (
    ApiCredentials,
    Cipher,
    Clock,
    Exchange,
    MarginEffect,
    OrderRequest,
    OrderResult,
    OrderStatus,
    TradingAccount,
)
from domain.position import ExitReason, Position, Status
from domain.risk import PAUSED, PlanFacts, RiskContext, check_plan
from domain.sizing import position_size
from domain.store import EventStore, FirstThenFresh, retry_on_conflict

# How long an order may be in flight before reconciliation treats its sender as gone.
RECONCILE_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class TradingConfig:
    trading_enabled: bool
    operator_credentials: ApiCredentials | None = None
    fee_buffer: Decimal = Decimal(0)


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


class Ledger:
    def __init__(
        self,
        store: EventStore,
        exchange: Exchange,
        cipher: Cipher,
        clock: Clock,
        config: TradingConfig,
    ) -> None:
        self.store = store
        self.exchange = exchange
        self.cipher = cipher
        self.clock = clock
        self.config = config

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

    def client(self, client_id: UUID) -> Client:
        client = self.store.load(client_id, Client)
        if client is None:
            raise ClientNotFound(f"Client {client_id} not found")
        return client

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

    def credentials_for(self, client: Client) -> ApiCredentials | None:
        """The tenant's own keys; the operator's environment keys serve only the operator."""
        if client.api_key_ciphertext is not None and client.secret_key_ciphertext is not None:
            return ApiCredentials(
                self.cipher.decrypt(client.api_key_ciphertext),
                self.cipher.decrypt(client.secret_key_ciphertext),
            )
        if client.is_operator:
            return self.config.operator_credentials
        return None

    def trading_account(self, client_id: UUID) -> TradingAccount:
        """Whose keys act for the tenant; the paper exchange needs none (no load at all)."""
        if not self.exchange.is_live:
            return TradingAccount(client_id)
        return self.account_for(self.client(client_id))

    def account_for(self, client: Client) -> TradingAccount:
        credentials = self.credentials_for(client)
        if self.exchange.is_live and credentials is None:
            raise CredentialsMissing()
        return TradingAccount(client.id, credentials)

    # --- policy ---

    def policy(self, client_id: UUID) -> Policy:
        policy = self.store.load(policy_id_for(client_id), Policy)
        if policy is None:
            raise ClientNotFound(f"Client {client_id} not found")
        return policy

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
        policy = self.policy(client_id)  # a client always has a policy
        rules = self.exchange.symbol_rules(request.symbol)
        entry = request.entry_price or self.exchange.price(request.symbol)
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
        self.store.save(position)
        return position

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
        position = self.position(client_id, position_id)
        if position.status is not Status.PLANNED:
            raise IllegalTransition(f"Cannot validate a position that is {position.status.value}")
        credentials = None
        if self.exchange.is_live:
            credentials = self.credentials_for(self.client(client_id))
        credentials_ok = credentials is not None or not self.exchange.is_live
        rules = self.exchange.symbol_rules(position.symbol)
        asset = position.quote_asset  # spot buys spend it; margin posts it as collateral
        available = Decimal(0)
        if credentials_ok:
            balances = self.exchange.balances(TradingAccount(client_id, credentials))
            available = balances[asset].free if asset in balances else Decimal(0)
        required = position.quantity * position.entry_price / position.leverage
        positions = FirstThenFresh(position, lambda: self.position(client_id, position_id))

        def command() -> Position:
            now = self.clock.now()
            pos = positions.get()
            policy = self.policy(client_id)
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

        return retry_on_conflict(command)

    # --- EXECUTE ---

    def execute_position(self, client_id: UUID, position_id: UUID) -> Position:
        """Send the entry order of a VALIDATED position; its id is recorded before sending."""
        if not self.config.trading_enabled:
            raise TradingDisabled()
        account = self.trading_account(client_id)

        def submit() -> tuple[Position, str]:
            pos = self.position(client_id, position_id)
            if pos.status is Status.VALIDATED and self.policy(client_id).paused:
                # A pause recorded after VALIDATE still stops the entry.
                raise RiskRuleViolated([PAUSED])
            order_id = pos.submit_entry(self.clock.now())
            self.store.save(pos)
            return pos, order_id

        position, order_id = retry_on_conflict(submit)
        request = OrderRequest(
            symbol=position.symbol,
            side=position.side.entry_order_side,
            client_order_id=order_id,
            quantity=position.quantity,
            margin=MarginEffect.MARGIN_BUY if position.margin else None,
        )
        try:
            result = self.exchange.place_order(account, request)
        except (OrderRejected, InsufficientBalance) as refused:
            self._entry_failed(client_id, position_id, order_id, refused.message)
            raise
        except OrderOutcomeUnknown:
            # Ask once straight away; if still unknown, reconciliation settles it later.
            found = self._find(account, position.symbol, order_id)
            if found is None:
                raise
            result = found
        return self._settle_entry(client_id, position_id, order_id, result, position)

    def open_position(self, client_id: UUID, request: PlanRequest) -> Position:
        """PLAN → VALIDATE → EXECUTE in one call; a rejection raises with every reason."""
        planned = self.plan_position(client_id, request)
        validated = self.validate_position(client_id, planned.id)
        if validated.status is Status.REJECTED:
            raise RiskRuleViolated(_violations(validated))
        return self.execute_position(client_id, planned.id)

    def _settle_entry(
        self,
        client_id: UUID,
        position_id: UUID,
        order_id: str,
        result: OrderResult,
        loaded: Position | None = None,
    ) -> Position:
        if result.status is OrderStatus.PENDING:
            return self.position(client_id, position_id)
        if result.executed_quantity <= 0:
            return self._entry_failed(client_id, position_id, order_id, "Order was not executed")
        positions = FirstThenFresh(
            loaded or self.position(client_id, position_id),
            lambda: self.position(client_id, position_id),
        )
        fee_prices = self._fee_prices(positions, result)

        def command() -> Position:
            pos = positions.get()
            if pos.status is not Status.ENTERING:
                return pos  # already settled by another process: idempotent
            pos.record_entry_fill(
                order_id,
                result.exchange_order_id,
                result.average_price,
                result.executed_quantity,
                result.fees,
                result.executed_at,
                fee_prices,
            )
            self.store.save(pos)
            return pos

        return retry_on_conflict(command)

    def _entry_failed(
        self, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        def command() -> Position:
            now = self.clock.now()
            pos = self.position(client_id, position_id)
            if pos.status is not Status.ENTERING:
                return pos
            policy = self.policy(client_id)
            pos.record_entry_failure(order_id, reason, now)
            policy.release_risk(pos.id, now)
            self.store.save(pos, policy)
            return pos

        return retry_on_conflict(command)

    # --- exits ---

    def close_position(
        self,
        client_id: UUID,
        position_id: UUID,
        reason: ExitReason = ExitReason.MANUAL,
        trigger_price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Position:
        """Exit all (or part) of an open position. Protective exits ignore a paused policy."""
        account = self.trading_account(client_id)
        if reason is ExitReason.MANUAL and not self.config.trading_enabled:
            raise TradingDisabled()
        current = self.position(client_id, position_id)
        price = trigger_price or self.exchange.price(current.symbol)
        positions = FirstThenFresh(current, lambda: self.position(client_id, position_id))

        def trigger() -> tuple[Position, str]:
            pos = positions.get()
            pos.trigger_exit(reason, price, self.clock.now(), quantity)
            order_id = pos.submit_exit(self.clock.now())
            self.store.save(pos)
            return pos, order_id

        position, order_id = retry_on_conflict(trigger)
        return self._send_exit(account, position, order_id)

    def _send_exit(self, account: TradingAccount, position: Position, order_id: str) -> Position:
        request = OrderRequest(
            symbol=position.symbol,
            side=position.side.exit_order_side,
            client_order_id=order_id,
            quantity=position.exit_quantity,
            margin=MarginEffect.AUTO_REPAY if position.margin else None,
        )
        try:
            result = self.exchange.place_order(account, request)
        except (OrderRejected, InsufficientBalance) as refused:
            self._exit_failed(position.client_id, position.id, order_id, refused.message)
            raise
        except OrderOutcomeUnknown:
            found = self._find(account, position.symbol, order_id)
            if found is None:
                raise
            result = found
        return self._settle_exit(position.client_id, position.id, order_id, result, position)

    def _settle_exit(
        self,
        client_id: UUID,
        position_id: UUID,
        order_id: str,
        result: OrderResult,
        loaded: Position | None = None,
    ) -> Position:
        if result.status is OrderStatus.PENDING:
            return self.position(client_id, position_id)
        if result.executed_quantity <= 0:
            return self._exit_failed(client_id, position_id, order_id, "Order was not executed")
        positions = FirstThenFresh(
            loaded or self.position(client_id, position_id),
            lambda: self.position(client_id, position_id),
        )
        fee_prices = self._fee_prices(positions, result)

        def command() -> Position:
            pos = positions.get()
            if pos.exit_order_id != order_id:
                return pos  # already settled: idempotent
            policy = self.policy(client_id)
            pos.record_exit_fill(
                order_id,
                result.exchange_order_id,
                result.average_price,
                result.executed_quantity,
                result.fees,
                result.executed_at,
                fee_prices,
            )
            fill_pnl = pos.exits[-1]["pnl"]
            month = month_of(result.executed_at)
            still_open = pos.open_risk if pos.status is not Status.CLOSED else Decimal(0)
            now = self.clock.now()
            policy.realise(pos.id, month, fill_pnl, still_open, now)
            policy.observe_drawdown(
                month,
                loss_percent(policy.capital_base(month), policy.realised_pnl(month), Decimal(0)),
                now,
            )
            self.store.save(pos, policy)
            return pos

        return retry_on_conflict(command)

    def _fee_prices(
        self, positions: FirstThenFresh[Position], result: OrderResult
    ) -> dict[str, Decimal]:
        """Quote prices of fee assets other than the pair's own (e.g. BNB), when known."""
        position = positions.peek()
        prices: dict[str, Decimal] = {}
        for asset in result.fees:
            if asset in (position.base_asset, position.quote_asset):
                continue
            try:
                prices[asset] = self.exchange.price(f"{asset}{position.quote_asset}")
            except DomainError:
                continue  # kept unvalued in the event's raw fees
        return prices

    def _exit_failed(
        self, client_id: UUID, position_id: UUID, order_id: str, reason: str
    ) -> Position:
        def command() -> Position:
            pos = self.position(client_id, position_id)
            if pos.exit_order_id != order_id:
                return pos
            pos.record_exit_failure(order_id, reason, self.clock.now())
            self.store.save(pos)
            return pos

        return retry_on_conflict(command)

    def adjust_stop(self, client_id: UUID, position_id: UUID, new_stop: Decimal, span: int) -> bool:
        def command() -> bool:
            pos = self.position(client_id, position_id)
            if pos.status is not Status.OPEN:
                return False
            moved = pos.adjust_stop(new_stop, span, self.clock.now())
            if moved:
                self.store.save(pos)
            return moved

        return retry_on_conflict(command)

    def cancel_position(self, client_id: UUID, position_id: UUID, reason: str) -> Position:
        def command() -> Position:
            now = self.clock.now()
            pos = self.position(client_id, position_id)
            policy = self.policy(client_id)
            pos.cancel(reason, now)
            policy.release_risk(pos.id, now)
            self.store.save(pos, policy)
            return pos

        return retry_on_conflict(command)

    # --- reconciliation ---

    def reconcile(self, position_id: UUID, grace: timedelta = RECONCILE_GRACE) -> Position | None:
        """Settle an order whose outcome is unknown by asking the exchange for its client id.

        Found: record the fill. Not found: an entry is given up (the moment has passed);
        an exit is sent again with the SAME client order id, so it can never fill twice.
        """
        position = self.store.load(position_id, Position)
        if position is None or position.order_in_flight is None:
            return position
        if self.clock.now() - position.modified_on < grace:
            return position  # its sender may still be waiting for the answer
        order_id = position.order_in_flight
        account = self.trading_account(position.client_id)
        found = self.exchange.find_order(account, position.symbol, order_id)
        entering = position.status is Status.ENTERING
        if found is not None:
            settle = self._settle_entry if entering else self._settle_exit
            return settle(position.client_id, position.id, order_id, found)
        if entering:
            return self._entry_failed(
                position.client_id, position.id, order_id, "Entry order never reached the exchange"
            )
        return self._send_exit(account, position, order_id)

    def _find(self, account: TradingAccount, symbol: str, order_id: str) -> OrderResult | None:
        """One immediate look-up after an unknown outcome; None when it cannot tell yet."""
        try:
            return self.exchange.find_order(account, symbol, order_id)
        except (OrderOutcomeUnknown, ExchangeUnavailable):
            return None

    # --- reads of one aggregate (tenant-scoped) ---

    def position(self, client_id: UUID, position_id: UUID) -> Position:
        position = self.store.load(position_id, Position)
        if position is None or position.client_id != client_id:
            raise PositionNotFound(f"Position {position_id} not found")
        return position


def _violations(position: Position) -> list[Violation]:
    return [Violation(v["rule"], v["reason"]) for v in position.violations]
