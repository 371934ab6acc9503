"""VALIDATE: every risk rule a plan must pass before an order may reach an exchange."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.drawdown import remaining_budget
from domain.errors import CredentialsMissing, InvalidInput, TradingDisabled, Violation
from domain.market import BASE_FEE_ALLOWANCE, Side, SymbolRules, ceil_to_step, floor_to_step
from domain.protections import Refusal

PAUSED = Violation(
    "policy_paused", "Trading is paused by the monthly drawdown rule; a review must resume it"
)
BUDGET_EXCEEDED = "monthly_budget_exceeded"
AFTER_REVIEW = "after a review"
WHEN_RISK_IS_RELEASED = "an open position closes or its stop is tightened"

MAX_RISK_PERCENT = Decimal(1)
MONTHLY_LIMIT_PERCENT = Decimal(4)


def check_risk_settings(capital: Decimal, risk_percent: Decimal, limit_percent: Decimal) -> None:
    """A policy's settings: a positive capital, at most 1% risked per position, at most a 4%
    monthly loss limit."""
    if not capital.is_finite() or capital <= 0:
        raise InvalidInput("capital", "must be a positive amount")
    if not risk_percent.is_finite() or not 0 < risk_percent <= MAX_RISK_PERCENT:
        raise InvalidInput("risk_percent", "must be above 0 and at most 1")
    if not limit_percent.is_finite() or not 0 < limit_percent <= MONTHLY_LIMIT_PERCENT:
        raise InvalidInput("drawdown_limit_percent", "must be above 0 and at most 4")


@dataclass(frozen=True)
class EntryGate:
    """Whether a new position may be entered now and, if not, the rule refusing it, why, and
    when that lifts: the one answer the status, the policy reply and VALIDATE all give."""

    rule: str | None
    reason: str | None
    until: str | None  # a date (YYYY-MM-DD, UTC), AFTER_REVIEW or WHEN_RISK_IS_RELEASED
    remaining_budget: Decimal  # what may still be lost this month, never below 0
    paused: bool = False  # a recorded pause awaits its review (even behind another refusal)
    refusals: tuple[Refusal, ...] = ()  # every protection refusing now (VALIDATE lists all)

    @property
    def allowed(self) -> bool:
        return self.rule is None


def entry_gate(
    month: str,
    capital_base: Decimal,
    limit_percent: Decimal,
    realised_pnl: Decimal,
    open_risk: Decimal,
    *,
    paused: bool,
    trading_enabled: bool = True,
    credentials_ok: bool = True,
    refusals: tuple[Refusal, ...] = (),
) -> EntryGate:
    """The first refusal of: trading off, keys missing, a pause (lifted only by a review),
    the month's loss budget used up by realised losses (until next month begins), a
    protection (cooldown, daily loss cap, open positions), the budget held by open risk."""
    budget = remaining_budget(capital_base, limit_percent, realised_pnl, open_risk)
    left = max(budget, Decimal(0))
    if not trading_enabled:
        return EntryGate(
            TradingDisabled.code, TradingDisabled().message, None, left, paused, refusals
        )
    if not credentials_ok:
        missing = CredentialsMissing()
        return EntryGate(missing.code, missing.message, None, left, paused, refusals)
    if paused:
        return EntryGate(PAUSED.rule, PAUSED.reason, AFTER_REVIEW, left, paused, refusals)
    limit = f"{limit_percent.normalize():f}%"
    if budget <= 0 and budget + open_risk <= 0:  # realised losses alone spent it
        until = next_month_start(month)
        reason = f"This month's losses used up the {limit} loss budget; new entries wait until"
        return EntryGate(BUDGET_EXCEEDED, f"{reason} {until} (UTC)", until, left, False, refusals)
    if refusals:
        first = refusals[0]
        return EntryGate(first.rule, first.reason, first.until, left, False, refusals)
    if budget > 0:
        return EntryGate(None, None, None, left)
    reason = f"The risk of open positions holds the rest of this month's {limit} loss budget"
    return EntryGate(BUDGET_EXCEEDED, reason, WHEN_RISK_IS_RELEASED, left)


def next_month_start(month: str) -> str:
    """`2026-11` → `2026-12-01`: the day a month's loss budget is renewed (UTC)."""
    year, number = (int(part) for part in month.split("-"))
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return f"{year:04d}-{number:02d}-01"


@dataclass(frozen=True)
class PlanFacts:
    side: Side
    entry_price: Decimal
    stop_price: Decimal | None
    target_price: Decimal | None
    quantity: Decimal


@dataclass(frozen=True)
class RiskContext:
    """What the rules need to know besides the plan, gathered by the ledger and passed in."""

    capital: Decimal
    max_risk_percent: Decimal
    entry: EntryGate  # the pause and the month's loss budget (trading and keys: below)
    trading_enabled: bool
    credentials_ok: bool
    rules: SymbolRules
    balance_asset: str
    available_balance: Decimal
    required_balance: Decimal
    balance_account: str = ""  # where the balance is, e.g. "the BTCUSDC isolated margin account"


def _in(account: str) -> str:
    return f" in {account}" if account else ""


def check_plan(plan: PlanFacts, ctx: RiskContext) -> list[Violation]:
    """All failing rules at once, in a stable order; empty means the plan is valid."""
    found: list[Violation] = []
    stop = plan.stop_price
    if stop is None:
        found.append(Violation("no_stop", "A stop-loss price is required for every position"))
    elif (plan.entry_price - stop) * plan.side.sign <= 0:
        below = "below" if plan.side is Side.LONG else "above"
        found.append(
            Violation(
                "stop_wrong_side",
                f"Stop {stop} must be {below} the entry price {plan.entry_price} "
                f"for a {plan.side.value} position",
            )
        )
    if (
        plan.target_price is not None
        and (plan.target_price - plan.entry_price) * plan.side.sign <= 0
    ):
        above = "above" if plan.side is Side.LONG else "below"
        found.append(
            Violation(
                "target_wrong_side",
                f"Target {plan.target_price} must be {above} the entry price {plan.entry_price}",
            )
        )
    if stop is not None and stop != plan.entry_price:
        distance = abs(plan.entry_price - stop)
        risk = plan.quantity * distance
        limit = ctx.capital * ctx.max_risk_percent / 100
        if risk > limit:
            max_qty = floor_to_step(limit / distance, ctx.rules.step_size)
            found.append(
                Violation(
                    "risk_above_limit",
                    f"Risk {risk.normalize():f} exceeds {ctx.max_risk_percent.normalize():f}% of "
                    f"capital ({limit.normalize():f}); maximum allowed quantity is "
                    f"{max_qty.normalize():f}",
                )
            )
        budget = ctx.entry.remaining_budget
        if risk > budget and ctx.entry.rule != BUDGET_EXCEEDED:
            found.append(
                Violation(
                    BUDGET_EXCEEDED,
                    f"Risk {risk.normalize():f} exceeds the month's remaining loss budget "
                    f"({budget.normalize():f})",
                )
            )
    if ctx.entry.rule in (PAUSED.rule, BUDGET_EXCEEDED):
        found.append(Violation(ctx.entry.rule, ctx.entry.reason or ""))
    found.extend(Violation(r.rule, r.reason) for r in ctx.entry.refusals)
    if not ctx.trading_enabled:
        found.append(Violation(TradingDisabled.code, TradingDisabled().message))
    if not ctx.credentials_ok:
        found.append(Violation(CredentialsMissing.code, CredentialsMissing().message))
    if plan.quantity <= 0:
        found.append(Violation("quantity_too_small", "Quantity must be greater than zero"))
    else:
        entry_problems = ctx.rules.order_problems(plan.quantity, plan.entry_price)
        found.extend(Violation("exchange_filter", problem) for problem in entry_problems)
        stop_ok = stop is not None and (plan.entry_price - stop) * plan.side.sign > 0
        if not entry_problems and stop is not None and stop_ok:
            found.extend(_exit_problems(plan, stop, ctx.rules))
    if not ctx.credentials_ok:
        pass  # without keys the balance cannot be read: the credentials reason says why
    elif ctx.available_balance <= 0:
        found.append(
            Violation(
                "insufficient_balance",
                f"No {ctx.balance_asset} available for trading{_in(ctx.balance_account)}",
            )
        )
    elif ctx.required_balance > ctx.available_balance:
        found.append(
            Violation(
                "insufficient_balance",
                f"Insufficient {ctx.balance_asset}{_in(ctx.balance_account)}: the order needs "
                f"{ctx.required_balance.normalize():f}, available "
                f"{ctx.available_balance.normalize():f}",
            )
        )
    return found


EXIT_SIZE_STEPS = 16  # lot steps tried above the computed least exitable size


def _exit_problems(plan: PlanFacts, stop: Decimal, rules: SymbolRules) -> list[Violation]:
    """An entry whose stop could not sell what it holds after the fee would leave a stop
    retrying forever: refused, with the least quantity that can be exited."""
    held, step = rules.held_after_fee(plan.side, plan.quantity), rules.step_size
    problems = rules.order_problems(held, stop)
    if not problems:
        return []
    fee_share = BASE_FEE_ALLOWANCE if plan.side is Side.LONG else Decimal(0)
    least = max(plan.quantity, ceil_to_step(rules.smallest_order(stop) / (1 - fee_share), step))
    # Rounding the fee away can cost a step or two; past the lot maximum no size can exit.
    for _ in range(EXIT_SIZE_STEPS):
        if least > rules.max_qty or not rules.order_problems(
            rules.held_after_fee(plan.side, least), stop
        ):
            break
        least += step
    advice = (
        f"buy at least {least.normalize():f} {rules.base_asset}"
        if least <= rules.max_qty
        and not rules.order_problems(rules.held_after_fee(plan.side, least), stop)
        else "no quantity the exchange accepts could be sold at that stop"
    )
    return [
        Violation(
            "exit_unsellable",
            f"The position would hold {held.normalize():f} {rules.base_asset} after the entry "
            f"fee, which its stop at {stop.normalize():f} could not sell "
            f"({'; '.join(problems)}); {advice}",
        )
    ]
