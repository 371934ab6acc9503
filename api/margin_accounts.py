"""The tenant's isolated margin accounts, beside its spot balances: collateral, loans and
interest per asset, so that a margin position's loan is never out of sight."""

from __future__ import annotations

from typing import TypedDict
from uuid import UUID

from api.services import Services
from domain.formats import money

LIVE_STATUSES = {"entering", "open", "closing"}


class MarginAccount(TypedDict):
    symbol: str
    assets: list[dict[str, str]]  # per asset: its name and amounts, money as strings


def isolated_margin_accounts(services: Services, client_id: UUID) -> list[MarginAccount]:
    """Paper lists every account it keeps; on Binance, those of the live margin positions."""
    if services.paper is not None:
        accounts = services.paper.isolated_accounts(client_id)
    else:
        rows = services.read_models.positions(client_id)
        symbols = sorted({r.symbol for r in rows if r.margin and r.status in LIVE_STATUSES})
        accounts = services.ledger.isolated_margin(client_id, symbols)
    return [
        {
            "symbol": symbol,
            "assets": [
                {
                    "asset": h.asset,
                    "free": money(h.free),
                    "borrowed": money(h.borrowed),
                    "interest": money(h.interest),
                    "net_asset": money(h.free - h.owed),
                }
                for h in sorted(holdings.values(), key=lambda h: h.asset)
            ],
        }
        for symbol, holdings in accounts.items()
        if any(h.free or h.owed for h in holdings.values())
    ]
