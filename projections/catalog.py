"""Every projection the ledger keeps, by name (what `robson projections rebuild NAME` takes)."""

from __future__ import annotations

from collections.abc import Sequence

from projections.drawdown import DrawdownProjection
from projections.pnl import PnlProjection
from projections.positions import PositionsProjection
from projections.projection import Projection
from projections.tables import Table
from projections.trade_history import TradeHistoryProjection

PROJECTION_NAMES = ("positions", "trades", "pnl", "drawdown")


class UnknownProjection(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown projection {name!r}; known: {', '.join(PROJECTION_NAMES)}")


def all_projections() -> tuple[Projection, ...]:
    return (PositionsProjection(), TradeHistoryProjection(), PnlProjection(), DrawdownProjection())


def select_projections(names: Sequence[str]) -> tuple[Projection, ...]:
    """The named projections (all of them when no name is given), in catalog order."""
    projections = all_projections()
    if not names:
        return projections
    for name in names:
        if name not in PROJECTION_NAMES:
            raise UnknownProjection(name)
    return tuple(p for p in projections if p.name in names)


def all_tables() -> tuple[Table, ...]:
    return tuple(t for p in all_projections() for t in p.tables)
