"""Replay: the ledger's own rules run over historical bars, in memory, with no exchange.

Each trade drives the real aggregates (`Position`, `Policy`) through PLAN → VALIDATE →
EXECUTE → exit, so sizing, validation, the monthly budget and the drawdown pause are the
ledger's, not a copy. Only the per-bar checks (stop, target, trailing threshold) run on
plain values: they are a few comparisons, and the aggregates are touched only when one fires.

Within a bar (the order a bar's prices came in is unknown, so the pessimistic order is used):
plans due at the bar are validated at its open; then each open position's stop is checked
against the bar's adverse extreme (low for a LONG, high for a SHORT) and its target against
the favourable one, the stop first, so a bar touching both stops out; then the stop trails
by the hand-span rule from the favourable extreme, AFTER the exit checks. A validated plan
fills at its entry price on the first bar whose range contains it; in that bar only its stop
is checked. An exit fills at its level, or at the bar's open when the bar opened past it.

The drawdown is observed at each exit fill from the month's realised P&L, as the order desk
does. The live rule that also values open positions at the market is not replayed: with
every stop checked on every bar, an open loss at a bar's close stays within the risk the
month's budget already holds for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

from domain.bars import EPOCH, Bar, moment
from domain.drawdown import loss_percent, month_of
from domain.errors import InvalidInput, Violation
from domain.market import Side, SymbolRules
from domain.policy import Policy
from domain.position import ExitReason, Position, Status
from domain.protections import DEFAULTS, ProtectionSettings
from domain.replay_entries import EntryRule, PlannedTrade
from domain.replay_report import ReplayResult, SkippedPlan, TradeResult
from domain.risk import MAX_RISK_PERCENT, MONTHLY_LIMIT_PERCENT, PlanFacts, RiskContext, check_plan
from domain.sizing import position_size
from domain.trailing import hand_span_stop, next_trail_price, spans_moved

PAPER_FEE_RATE = Decimal("0.001")  # the paper exchange's taker fee: 0.1% of each fill
REPLAY_NAMESPACE = UUID("5f0c7a52-8d1e-4c8e-9a55-0d6c3e0b7a11")

__all__ = [
    "PAPER_FEE_RATE",
    "REPLAY_NAMESPACE",
    "Bar",
    "EntryRule",
    "PlannedTrade",
    "Replay",
    "ReplaySettings",
    "moment",
]


@dataclass(frozen=True)
class ReplaySettings:
    rules: SymbolRules
    capital: Decimal = Decimal(1000)
    risk_percent: Decimal = MAX_RISK_PERCENT
    drawdown_limit_percent: Decimal = MONTHLY_LIMIT_PERCENT
    fee_rate: Decimal = PAPER_FEE_RATE
    fee_buffer: Decimal = Decimal(0)  # the trailing stop's break-even buffer, as the worker's
    entry_window: timedelta = timedelta(days=1)  # a plan not filled by then is cancelled
    review_monthly: bool = False  # record a review lifting a pause when a new month starts
    protection: ProtectionSettings = DEFAULTS  # cooldown, daily cap, open positions


@dataclass(slots=True)
class _Live:
    """An open position's values the per-bar checks read, beside its aggregate."""

    position: Position
    long: bool
    stop: Decimal
    target: Decimal | None
    trail_at: Decimal | None  # the favourable price at which the stop next moves
    risk: Decimal
    committed: Decimal  # quote held by the position: spent on a buy, or posted as collateral


class Replay:
    """Feed bars in time order with `step`; `result` holds what happened so far."""

    def __init__(self, settings: ReplaySettings, rule: EntryRule) -> None:
        self.settings = settings
        self.rule = rule
        self.client_id = uuid5(REPLAY_NAMESPACE, "client")
        self.policy: Policy | None = None
        self.result = ReplayResult(capital=settings.capital)
        self.equity = settings.capital
        self._pending: list[tuple[Position, int, Decimal]] = []  # position, expiry ms, committed
        self._open: list[_Live] = []
        self._last_ms = -1
        self._month_ends_ms = -1
        self._sequence = 0

    # --- the bar loop ---

    def step(self, bar: Bar) -> None:
        opened = bar.opened_ms
        if opened <= self._last_ms:
            raise InvalidInput(
                "klines", f"bars must be in time order: {moment(opened)} after {self._moment()}"
            )
        self._last_ms = opened
        if opened >= self._month_ends_ms:
            self._new_month(bar)
        plans = self.rule(bar)
        if plans:
            for plan in plans:
                self._validate(plan, opened)
        if self._open:
            self._manage(bar)
        if self._pending:
            self._fill(bar)

    def run(
        self, bars: Iterable[Bar], progress: Callable[[int], None] | None = None
    ) -> ReplayResult:
        count, step = 0, self.step
        for count, bar in enumerate(bars, start=1):
            step(bar)
            if not count & 0xFFF and progress is not None:
                progress(count)
        if progress is not None:
            progress(count)
        return self.finish(count)

    def finish(self, count: int) -> ReplayResult:
        result = self.result
        result.bars = count
        if self._last_ms >= 0:
            end = moment(self._last_ms)
            result.last_bar = end
            for position, _, _ in self._pending:
                self._cancel(position, end, "not filled before the data ended")
            self._pending.clear()
            result.open_at_end = len(self._open)
            result.equity_curve.append((end, self.equity))
        return result

    @property
    def open_positions(self) -> list[Position]:
        return [live.position for live in self._open]

    def _moment(self) -> datetime:
        return moment(self._last_ms)

    def _start(self, bar: Bar) -> None:
        now = moment(bar.opened_ms)
        s = self.settings
        self.policy = Policy.configure(
            self.client_id, s.capital, now, s.risk_percent, s.drawdown_limit_percent
        )
        if s.protection != self.policy.protection:
            self.policy.reconfigure(
                s.capital, s.risk_percent, s.drawdown_limit_percent, now, s.protection
            )
        self.result.first_bar = now
        self.result.equity_curve.append((now, self.equity))

    def _new_month(self, bar: Bar) -> None:
        if self.policy is None:
            self._start(bar)
        now = moment(bar.opened_ms)
        following = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        self._month_ends_ms = (following - EPOCH) // timedelta(milliseconds=1)
        policy = self._policy()
        if self.settings.review_monthly and policy.paused:
            policy.resume("replay", "automatic review at the start of a new month", now)
        policy.collect_events()  # nothing is stored: drop what the month recorded

    def _policy(self) -> Policy:
        assert self.policy is not None, "the first bar configures the policy"
        return self.policy

    # --- PLAN → VALIDATE ---

    def _validate(self, plan: PlannedTrade, opened_ms: int) -> None:
        """PLAN and VALIDATE as `Ledger.plan_position` and `Ledger.validate_position` do."""
        s, policy = self.settings, self._policy()
        now = moment(opened_ms)
        month = month_of(now)
        capital = policy.capital_base(month)
        quantity = Decimal(0)  # a plan that cannot be sized: VALIDATE says why
        if plan.stop is not None and plan.stop != plan.entry:
            quantity = position_size(
                capital, plan.entry, plan.stop, s.rules.step_size, policy.risk_percent
            ).quantity
        self._sequence += 1
        position = Position.plan(
            position_id=uuid5(REPLAY_NAMESPACE, str(self._sequence)),
            client_id=self.client_id,
            rules=s.rules,
            side=plan.side,
            entry_price=plan.entry,
            stop_price=plan.stop,
            target_price=plan.target,
            quantity=quantity,
            capital_base=capital,
            now=now,
            margin=plan.side is Side.SHORT,
        )
        policy.start_month(month, now)
        committed = position.quantity * position.entry_price / position.leverage
        available = self.equity - sum((p.committed for p in self._open), Decimal(0))
        available -= sum((c for _, _, c in self._pending), Decimal(0))
        context = RiskContext(
            capital=position.capital_base,
            max_risk_percent=policy.risk_percent,
            entry=policy.entry_gate(month, excluding=position.id, now=now),
            trading_enabled=True,
            credentials_ok=True,
            rules=s.rules,
            balance_asset=s.rules.quote_asset,
            available_balance=available,
            required_balance=committed,
        )
        violations = check_plan(
            PlanFacts(plan.side, plan.entry, plan.stop, plan.target, position.quantity), context
        )
        position.validate(violations, now)
        if violations:
            self._skip(position, now, "rejected", violations)
            return
        policy.reserve_risk(position.id, position.risk_amount, now)
        expires = opened_ms + int(s.entry_window.total_seconds() * 1000)
        self._pending.append((position, expires, committed))

    def _skip(
        self, position: Position, now: datetime, outcome: str, violations: Sequence[Violation]
    ) -> None:
        self.result.skipped.append(
            SkippedPlan(
                at=now,
                side=position.side,
                entry=position.entry_price,
                stop=position.initial_stop,
                outcome=outcome,
                reasons=tuple(v.reason for v in violations),
            )
        )

    def _cancel(self, position: Position, now: datetime, reason: str) -> None:
        position.cancel(reason, now)
        self._policy().release_risk(position.id, now)
        self._skip(position, now, "cancelled", [Violation("not_filled", reason)])

    # --- EXECUTE ---

    def _fill(self, bar: Bar) -> None:
        waiting: list[tuple[Position, int, Decimal]] = []
        for position, expires, committed in self._pending:
            if bar.low <= position.entry_price <= bar.high:
                self._enter(position, bar, committed)
            elif bar.opened_ms >= expires:
                self._cancel(position, moment(bar.opened_ms), "entry price not reached in time")
            else:
                waiting.append((position, expires, committed))
        self._pending = waiting

    def _enter(self, position: Position, bar: Bar, committed: Decimal) -> None:
        now = moment(bar.opened_ms)
        price, quantity = position.entry_price, position.quantity
        order_id = position.submit_entry(now)
        position.record_entry_fill(
            order_id, order_id, price, quantity, self._fees(position, True, price, quantity), now
        )
        stop = position.stop_price
        assert stop is not None  # VALIDATE let no position through without one
        live = _Live(
            position=position,
            long=position.side is Side.LONG,
            stop=stop,
            target=position.target_price,
            trail_at=None,
            risk=position.risk_amount,
            committed=committed,
        )
        self._set_trail(live)
        self._open.append(live)
        # The bar may have reached the entry and then the stop: the stop is checked
        # (pessimistic); the target and trailing start with the next bar.
        if (bar.low <= stop) if live.long else (bar.high >= stop):
            self._exit(live, ExitReason.STOP_LOSS, stop, bar.opened_ms)
            self._open.remove(live)

    def _fees(
        self, position: Position, entry: bool, price: Decimal, quantity: Decimal
    ) -> dict[str, Decimal]:
        """As the paper exchange charges: a buy pays in the base asset, a sell in the quote."""
        buys = (position.side is Side.LONG) == entry
        if buys:
            return {position.base_asset: quantity * self.settings.fee_rate}
        return {position.quote_asset: quantity * price * self.settings.fee_rate}

    # --- exits and the trailing stop ---

    def _manage(self, bar: Bar) -> None:
        low, high = bar.low, bar.high
        closed: list[_Live] = []
        for live in self._open:
            if live.long:
                if low <= live.stop:
                    self._exit(live, ExitReason.STOP_LOSS, min(live.stop, bar.open), bar.opened_ms)
                    closed.append(live)
                elif live.target is not None and high >= live.target:
                    self._exit(
                        live, ExitReason.TAKE_PROFIT, max(live.target, bar.open), bar.opened_ms
                    )
                    closed.append(live)
                elif live.trail_at is not None and high >= live.trail_at:
                    self._trail(live, high, bar.opened_ms)
            elif high >= live.stop:
                self._exit(live, ExitReason.STOP_LOSS, max(live.stop, bar.open), bar.opened_ms)
                closed.append(live)
            elif live.target is not None and low <= live.target:
                self._exit(live, ExitReason.TAKE_PROFIT, min(live.target, bar.open), bar.opened_ms)
                closed.append(live)
            elif live.trail_at is not None and low <= live.trail_at:
                self._trail(live, low, bar.opened_ms)
        if closed:
            self._open = [live for live in self._open if live not in closed]

    def _set_trail(self, live: _Live) -> None:
        """The first price at which `hand_span_stop` can tighten the stop: one span past the
        entry. Short of the next whole span the rule keeps the stop, so calling it only when
        a bar reaches `trail_at` gives the stops calling it on every bar would."""
        p = live.position
        entry, initial = p.average_entry_price, p.initial_stop
        assert entry is not None and initial is not None
        live.trail_at = next_trail_price(p.side, entry, initial, entry)

    def _trail(self, live: _Live, price: Decimal, opened_ms: int) -> None:
        """Move the stop as the trailing worker would on seeing `price`; then `adjust_stop`."""
        p = live.position
        entry, initial = p.average_entry_price, p.initial_stop
        assert entry is not None and initial is not None
        s = self.settings
        new_stop = hand_span_stop(p.side, entry, initial, live.stop, price, s.fee_buffer, s.rules)
        live.trail_at = next_trail_price(p.side, entry, initial, price)
        if new_stop == live.stop:
            return
        now = moment(opened_ms)
        if p.adjust_stop(new_stop, spans_moved(p.side, entry, initial, price), now):
            live.stop = new_stop
            self._policy().lower_risk(p.id, p.open_risk, now)

    def _exit(self, live: _Live, reason: ExitReason, price: Decimal, opened_ms: int) -> None:
        """Trigger, submit and fill the exit, then realise it in the Policy, as the order
        desk settles an exit fill (the drawdown alerts and the pause included)."""
        now = moment(opened_ms)
        p, policy = live.position, self._policy()
        p.trigger_exit(reason, price, now)
        order_id = p.submit_exit(now)
        quantity = p.exit_order_quantity
        p.record_exit_fill(
            order_id, order_id, price, quantity, self._fees(p, False, price, quantity), now
        )
        fill_pnl = p.exits[-1]["pnl"]
        month = month_of(now)
        still_open = p.open_risk if p.status is not Status.CLOSED else Decimal(0)
        was_paused = policy.paused
        closed = p.status is Status.CLOSED
        policy.realise(
            p.id, month, fill_pnl, still_open, now, exit_reason=reason.value, closed=closed
        )
        policy.observe_drawdown(
            month,
            loss_percent(policy.capital_base(month), policy.realised_pnl(month), Decimal(0)),
            now,
        )
        if policy.paused and not was_paused:
            self.result.pauses.append((now, policy.pause_reason or "paused"))
        self.equity += fill_pnl
        self.result.equity_curve.append((now, self.equity))
        assert p.average_entry_price is not None and p.initial_stop is not None
        self.result.trades.append(
            TradeResult(
                opened_at=p.opened_at or now,
                closed_at=now,
                side=p.side,
                entry=p.average_entry_price,
                initial_stop=p.initial_stop,
                final_stop=live.stop,
                target=live.target,
                exit_price=price,
                quantity=p.filled_quantity,
                reason=reason,
                pnl=p.realised_pnl,
                fees=p.entry_fees_quote + p.exit_fees_quote,
                risk=live.risk,
            )
        )
