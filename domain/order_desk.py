"""The order lifecycle: an order reaches an exchange only for a VALIDATED position whose
client order id was recorded first; an outcome that is not definite is reconciled by that
id, never re-sent blindly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from domain.client import Client
from domain.drawdown import loss_percent, month_of
from domain.errors import (
    ClientNotFound,
    CredentialsMissing,
    DomainError,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientBalance,
    OrderOutcomeUnknown,
    OrderRejected,
    PositionNotFound,
    RiskRuleViolated,
    TradingDisabled,
)
from domain.identity import policy_id_for
from domain.policy import Policy
from domain.ports import (
    ApiCredentials,
    Cipher,
    Clock,
    Exchange,
    MarginEffect,
    MarginHolding,
    OrderRequest,
    OrderResult,
    OrderStatus,
    TradingAccount,
)
from domain.position import ExitReason, Position, Status
from domain.risk import PAUSED
from domain.store import EventStore, FirstThenFresh, cached_then_fresh, retry_on_conflict

# How long an order may be in flight before reconciliation treats its sender as gone.
RECONCILE_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class TradingConfig:
    trading_enabled: bool
    operator_credentials: ApiCredentials | None = None
    fee_buffer: Decimal = Decimal(0)


class OrderDesk:
    """Execution, exits and reconciliation, with the tenant-scoped reads they share."""

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

    # --- tenant-scoped reads ---

    def client(self, client_id: UUID) -> Client:
        client = self.store.load(client_id, Client)
        if client is None:
            raise ClientNotFound(f"Client {client_id} not found")
        return client

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

    def policy(self, client_id: UUID, cached: bool = False) -> Policy:
        """`cached=True` only in a command that saves the policy or checks it unchanged."""
        policy = self.store.load(policy_id_for(client_id), Policy, cached=cached)
        if policy is None:
            raise ClientNotFound(f"Client {client_id} not found")
        return policy

    def position(self, client_id: UUID, position_id: UUID, cached: bool = False) -> Position:
        """`cached=True` only in a command that saves the position (see `EventStore.load`)."""
        position = self.store.load(position_id, Position, cached=cached)
        if position is None or position.client_id != client_id:
            raise PositionNotFound(f"Position {position_id} not found")
        return position

    # --- EXECUTE ---

    def execute_position(self, client_id: UUID, position_id: UUID) -> Position:
        """Send the entry order of a VALIDATED position; its id is recorded before sending."""
        if not self.config.trading_enabled:
            raise TradingDisabled()
        account = self.trading_account(client_id)

        def submit(cached: bool) -> tuple[Position, str]:
            pos = self.position(client_id, position_id, cached)
            read = []
            if pos.status is Status.VALIDATED:
                # A pause recorded after VALIDATE still stops the entry, up to the save.
                policy = self.policy(client_id, cached)
                if policy.paused:
                    raise RiskRuleViolated([PAUSED])
                read.append(policy)
            order_id = pos.submit_entry(self.clock.now())
            self.store.save(pos, unchanged=read)
            return pos, order_id

        position, order_id = cached_then_fresh(submit)
        request = OrderRequest(
            symbol=position.symbol,
            side=position.side.entry_order_side,
            client_order_id=order_id,
            quantity=position.quantity,
            margin=MarginEffect.MARGIN_BUY if position.margin else None,
            leverage=position.leverage if position.margin else None,
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
        positions, fee_prices = self._fill_context(client_id, position_id, result, loaded)

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
        current = self.position(client_id, position_id, cached=True)  # its symbol and side
        price = trigger_price or self.exchange.price(current.symbol)
        loan = self._loan(account, current)

        def trigger(cached: bool) -> tuple[Position, str]:
            pos = self.position(client_id, position_id, cached)
            pos.trigger_exit(reason, price, self.clock.now(), quantity)
            order_id = pos.submit_exit(self.clock.now(), loan)
            self.store.save(pos)
            return pos, order_id

        position, order_id = cached_then_fresh(trigger)
        return self._send_exit(account, position, order_id)

    def _loan(self, account: TradingAccount, position: Position) -> MarginHolding | None:
        """What a margin position's isolated account owes in its loan asset, when it can tell.

        Without an answer the exit still goes out (a stop must not wait for a read); a
        SHORT's buy-back then covers the fee but not the interest.
        """
        if not position.margin:
            return None
        try:
            holdings = self.exchange.isolated_margin(account, position.symbol)
        except ExchangeError:
            return None
        return holdings.get(position.loan_asset)

    def _send_exit(self, account: TradingAccount, position: Position, order_id: str) -> Position:
        request = OrderRequest(
            symbol=position.symbol,
            side=position.side.exit_order_side,
            client_order_id=order_id,
            quantity=position.exit_order_quantity,
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
        positions, fee_prices = self._fill_context(client_id, position_id, result, loaded)

        def command(cached: bool) -> Position:
            pos = positions.get()
            if pos.exit_order_id != order_id:
                return pos  # already settled: idempotent (the position is this call's own)
            policy = self.policy(client_id, cached)
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

        return cached_then_fresh(command)

    def _fill_context(
        self, client_id: UUID, position_id: UUID, result: OrderResult, loaded: Position | None
    ) -> tuple[FirstThenFresh[Position], dict[str, Decimal]]:
        """The position a fill settles (reused on the first attempt) and its fee prices."""
        position = loaded or self.position(client_id, position_id)
        positions = FirstThenFresh(position, lambda: self.position(client_id, position_id))
        return positions, self._fee_prices(position, result)

    def _fee_prices(self, position: Position, result: OrderResult) -> dict[str, Decimal]:
        """Quote prices of fee assets other than the pair's own (e.g. BNB), when known."""
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
        """Tighten an open position's stop; the month's budget gets back what the position
        can no longer lose (all of it once the stop is past the entry)."""

        def command() -> bool:
            pos = self.position(client_id, position_id)
            if pos.status is not Status.OPEN:
                return False
            now = self.clock.now()
            if not pos.adjust_stop(new_stop, span, now):
                return False
            policy = self.policy(client_id)
            if policy.lower_risk(pos.id, pos.open_risk, now):
                self.store.save(pos, policy)
            else:
                self.store.save(pos)
            return True

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
