"""Drawdown state: each tenant's policy (capital, limit, pause) and each month's capital base,
realised P&L and recorded alerts; plus the last paper price of each symbol.

Unrealised P&L moves with every price, so it is valued when asked, from the open positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from domain.drawdown import loss_percent
from domain.paper_market import PaperMarket
from domain.policy import Policy
from domain.read_models import DrawdownRow
from projections.positions import unrealised_pnl
from projections.projection import On, Projection, Rows, StreamEvent
from projections.tables import Column, Index, Kind, Row, Table

POLICIES = Table(
    name="robson_policies",
    columns=(
        Column("policy_id", Kind.UUID),
        Column("client_id", Kind.UUID),
        Column("capital", Kind.MONEY),
        Column("risk_percent", Kind.MONEY),
        Column("drawdown_limit_percent", Kind.MONEY),
        Column("paused", Kind.BOOL),
        Column("paused_month", Kind.TEXT, nullable=True),
        Column("pause_reason", Kind.TEXT, nullable=True),
        Column("updated_at", Kind.TIME),
    ),
    key=("policy_id",),
    indexes=(Index(("client_id",)),),
)

DRAWDOWN_MONTHS = Table(
    name="robson_drawdown_months",
    columns=(
        Column("client_id", Kind.UUID),
        Column("month", Kind.TEXT),
        Column("capital_base", Kind.MONEY, nullable=True),  # None: the policy's capital
        Column("realised_pnl", Kind.MONEY),
        Column("alert_level", Kind.MONEY, nullable=True),  # highest alert recorded
        Column("pause_recorded", Kind.BOOL),  # a TradingPaused was recorded for the month
    ),
    key=("client_id", "month"),
)

PRICES = Table(
    name="robson_prices",
    columns=(
        Column("market_id", Kind.UUID),
        Column("symbol", Kind.TEXT),
        Column("price", Kind.MONEY),
        Column("updated_at", Kind.TIME),
    ),
    key=("market_id",),
    indexes=(Index(("symbol",)),),
)

ZERO = Decimal(0)


class MonthEvent(StreamEvent, Protocol):
    """A policy event about one month."""

    @property
    def month(self) -> str: ...


class DrawdownProjection(Projection):
    name = "drawdown"
    tables = (POLICIES, DRAWDOWN_MONTHS, PRICES)

    def handlers(self) -> Mapping[type, On]:
        settings = ("timestamp", "capital", "risk_percent", "drawdown_limit_percent")
        return {
            Policy.Configured: On(self._configured, (*settings, "client_id")),
            Policy.Reconfigured: On(self._reconfigured, settings),
            Policy.MonthStarted: On(self._month_started, ("month", "capital_base")),
            Policy.PnlRealised: On(self._realised, ("month", "pnl")),
            Policy.DrawdownAlerted: On(self._alerted, ("month", "level")),
            Policy.TradingPaused: On(self._paused, ("timestamp", "month", "reason")),
            Policy.TradingResumed: On(self._resumed, ("timestamp",)),
            PaperMarket.Opened: On(self._market_opened, ("timestamp", "symbol", "price")),
            PaperMarket.PriceSet: On(self._price_set, ("timestamp", "price")),
        }

    def _configured(self, e: Policy.Configured, nid: int, rows: Rows) -> None:
        rows.put(
            POLICIES,
            {
                "policy_id": e.originator_id,
                "client_id": e.client_id,
                "capital": e.capital,
                "risk_percent": e.risk_percent,
                "drawdown_limit_percent": e.drawdown_limit_percent,
                "paused": False,
                "paused_month": None,
                "pause_reason": None,
                "updated_at": e.timestamp,
            },
        )

    def _policy(self, e: StreamEvent, rows: Rows) -> Row | None:
        policy = rows.get(POLICIES, (e.originator_id,))
        if policy is not None:
            policy["updated_at"] = e.timestamp
        return policy

    def _month(self, e: MonthEvent, rows: Rows) -> Row | None:
        """The tenant's row for `e.month`, added when the month is new."""
        policy = rows.get(POLICIES, (e.originator_id,))
        if policy is None:
            return None
        key = (policy["client_id"], e.month)
        month = rows.get(DRAWDOWN_MONTHS, key)
        if month is None:
            month = {
                "client_id": key[0],
                "month": key[1],
                "capital_base": None,
                "realised_pnl": ZERO,
                "alert_level": None,
                "pause_recorded": False,
            }
            rows.put(DRAWDOWN_MONTHS, month)
        return month

    def _reconfigured(self, e: Policy.Reconfigured, nid: int, rows: Rows) -> None:
        policy = self._policy(e, rows)
        if policy is not None:
            policy["capital"] = e.capital
            policy["risk_percent"] = e.risk_percent
            policy["drawdown_limit_percent"] = e.drawdown_limit_percent

    def _month_started(self, e: Policy.MonthStarted, nid: int, rows: Rows) -> None:
        month = self._month(e, rows)
        if month is not None:
            month["capital_base"] = e.capital_base

    def _realised(self, e: Policy.PnlRealised, nid: int, rows: Rows) -> None:
        month = self._month(e, rows)
        if month is not None:
            month["realised_pnl"] += e.pnl

    def _alerted(self, e: Policy.DrawdownAlerted, nid: int, rows: Rows) -> None:
        month = self._month(e, rows)
        if month is not None:
            level = month["alert_level"]
            month["alert_level"] = e.level if level is None else max(level, e.level)

    def _paused(self, e: Policy.TradingPaused, nid: int, rows: Rows) -> None:
        policy = self._policy(e, rows)
        month = self._month(e, rows)
        if policy is not None and month is not None:
            policy["paused"] = True
            policy["paused_month"] = e.month
            policy["pause_reason"] = e.reason
            month["pause_recorded"] = True

    def _resumed(self, e: Policy.TradingResumed, nid: int, rows: Rows) -> None:
        policy = self._policy(e, rows)
        if policy is not None:
            policy["paused"] = False
            policy["paused_month"] = None
            policy["pause_reason"] = None

    def _market_opened(self, e: PaperMarket.Opened, nid: int, rows: Rows) -> None:
        rows.put(
            PRICES,
            {
                "market_id": e.originator_id,
                "symbol": e.symbol,
                "price": e.price,
                "updated_at": e.timestamp,
            },
        )

    def _price_set(self, e: PaperMarket.PriceSet, nid: int, rows: Rows) -> None:
        market = rows.get(PRICES, (e.originator_id,))
        if market is not None:
            market["price"] = e.price
            market["updated_at"] = e.timestamp


@dataclass(frozen=True)
class TenantDrawdown:
    """A tenant's drawdown for a month, with what the rule needs to decide (limit, history)."""

    row: DrawdownRow
    limit_percent: Decimal
    pause_recorded: bool


def tenant_drawdown(
    policy: Row,
    month: str,
    month_row: Row | None,
    open_positions: Iterable[Row],
    prices: Mapping[str, Decimal],
) -> TenantDrawdown:
    """Realised P&L of the month plus open positions valued at `prices` (entry if unknown)."""
    capital = policy["capital"]
    if month_row is not None and month_row["capital_base"] is not None:
        capital = month_row["capital_base"]
    realised = month_row["realised_pnl"] if month_row is not None else ZERO
    unrealised = sum(
        (unrealised_pnl(p, prices.get(p["symbol"], p["entry_price"])) for p in open_positions),
        ZERO,
    )
    row = DrawdownRow(
        client_id=policy["client_id"],
        month=month,
        capital_base=capital,
        realised_pnl=realised,
        unrealised_pnl=unrealised,
        loss_percent=loss_percent(capital, realised, unrealised),
        alert_level=month_row["alert_level"] if month_row is not None else None,
        paused=policy["paused"],
    )
    recorded = bool(month_row["pause_recorded"]) if month_row is not None else False
    return TenantDrawdown(row, policy["drawdown_limit_percent"], recorded)
