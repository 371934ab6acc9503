"""The tenant's risk policy: the month's drawdown state and budget, and resuming after a review.

Read from the projection tables only (the policy row, the month's row, open positions).
"""

from __future__ import annotations

from decimal import Decimal

from api.as_of import AsOfQuery, past_instant, read_models_for
from api.operations import Call, Operation, Reply
from api.schemas import Empty, Input, MoneyOut, NoQuery, Note, Output
from domain.drawdown import ALERT_LEVELS, month_of, remaining_budget
from domain.errors import ClientNotFound
from domain.formats import Document, maybe_money, money
from domain.market import Side
from domain.protections import Protections
from domain.read_models import PositionRow

RESERVED = ("validated", "entering")  # risk reserved, nothing filled yet
HELD = ("open", "closing")  # risk = what the rest loses at the current stop


class ProtectionsState(Output):
    stop_out_limit: int  # this many consecutive stop-outs...
    stop_out_window_hours: int  # ...within this many hours...
    cooldown_hours: int  # ...refuse new entries this long after the last
    consecutive_stop_outs: int
    cooldown_until: str | None  # an ISO instant (UTC) while a cooldown runs
    daily_loss_limit_percent: str
    daily_loss_limit: MoneyOut  # of the month's capital base
    today_realised_pnl: MoneyOut  # on the current UTC day
    max_open_positions: int
    open_positions: int  # open or awaiting entry


class PolicyState(Output):
    month: str
    capital: MoneyOut
    risk_percent: str
    drawdown_limit_percent: str
    capital_base: MoneyOut
    realised_pnl: MoneyOut
    unrealised_pnl: MoneyOut
    loss_percent: str
    open_risk: MoneyOut
    remaining_budget: MoneyOut  # never below 0
    can_trade: bool  # as the trade status says and VALIDATE decides
    reason: str | None
    until: str | None
    paused: bool
    pause_reason: str | None
    alerts: list[str]
    protections: ProtectionsState


class Resume(Input):
    note: Note


class ResumeReply(Output):
    success: bool
    paused: bool
    resumed_by: str


def risk_at_stake(row: PositionRow) -> Decimal:
    """What a position can still lose, as the policy reserves it (never negative)."""
    if row.status in RESERVED and row.initial_stop is not None:
        return row.quantity * abs(row.entry_price - row.initial_stop)
    if row.status in HELD and row.current_stop is not None:
        sign = 1 if row.side == Side.LONG.value else -1
        return max(Decimal(0), (row.entry_price - row.current_stop) * sign * row.open_quantity)
    return Decimal(0)


def policy_state(call: Call[Empty, AsOfQuery]) -> Reply:
    """The state now or, with `as_of`, as the caller's events up to it left it."""
    client_id, as_of = call.principal.client_id, past_instant(call)
    month = month_of(as_of or call.services.clock.now())
    with read_models_for(call, as_of) as read_models:
        policy = read_models.policy_row(client_id)
        found = read_models.tenant_drawdowns(month, client_id=client_id)
        positions = read_models.positions(client_id, None, 500)
    if policy is None or not found:
        raise ClientNotFound("No policy recorded for this client yet; try again shortly")
    drawdown = found[0].row
    open_risk = sum((risk_at_stake(p) for p in positions), Decimal(0))
    limit: Decimal = policy["drawdown_limit_percent"]
    reached = drawdown.alert_level or Decimal(0)
    budget = remaining_budget(drawdown.capital_base, limit, drawdown.realised_pnl, open_risk)
    keys_ok = call.principal.has_credentials or not call.services.ledger.live
    gate, protections = call.services.ledger.policy_state(client_id, keys_ok, as_of)
    return Reply(
        {
            "month": month,
            "capital": money(policy["capital"]),
            "risk_percent": f"{policy['risk_percent']:f}",
            "drawdown_limit_percent": f"{limit:f}",
            "capital_base": money(drawdown.capital_base),
            "realised_pnl": money(drawdown.realised_pnl),
            "unrealised_pnl": money(drawdown.unrealised_pnl),
            "loss_percent": f"{drawdown.loss_percent:.4f}",
            "open_risk": money(open_risk),
            "remaining_budget": money(max(budget, Decimal(0))),
            "can_trade": gate.allowed,
            "reason": gate.reason,
            "until": gate.until,
            "paused": bool(policy["paused"]),
            "pause_reason": policy["pause_reason"],
            "alert_level": maybe_money(drawdown.alert_level),
            "alerts": [f"{level}%" for level in ALERT_LEVELS if level <= reached],
            "protections": protections_state(protections, drawdown.capital_base),
        }
    )


def protections_state(found: Protections, capital_base: Decimal) -> Document:
    settings, state = found.settings, found.state
    cooldown = state.cooldown_until
    return {
        "stop_out_limit": settings.stop_out_limit,
        "stop_out_window_hours": settings.stop_out_window_hours,
        "cooldown_hours": settings.cooldown_hours,
        "consecutive_stop_outs": state.stop_outs,
        "cooldown_until": cooldown.isoformat() if cooldown and state.now < cooldown else None,
        "daily_loss_limit_percent": f"{settings.daily_loss_limit_percent:f}",
        "daily_loss_limit": money(capital_base * settings.daily_loss_limit_percent / 100),
        "today_realised_pnl": money(state.day_pnl),
        "max_open_positions": settings.max_open_positions,
        "open_positions": state.open_positions,
    }


def resume(call: Call[Resume, NoQuery]) -> Reply:
    who = call.principal
    policy = call.services.ledger.resume_trading(who.client_id, who.email, call.body.note)
    return Reply({"success": True, "paused": policy.paused, "resumed_by": who.email})


OPERATIONS = [
    Operation(
        "GET",
        "/api/policy/",
        policy_state,
        "The month's risk state: capital base, realised loss, open risk, budget, pause",
        tag="policy",
        query=AsOfQuery,
        response=PolicyState,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/api/policy/resume/",
        resume,
        "Record a review and lift a drawdown pause (the note is required)",
        tag="policy",
        body=Resume,
        response=ResumeReply,
        errors=(409,),
        command=True,
    ),
]
