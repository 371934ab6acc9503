"""`make run`'s preparation: a demo client (created once) and a paper price (set once), then
a fresh token for it, printed with a first request to try."""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from typing import TextIO

from domain.errors import AlreadyExists, ExchangeUnavailable
from infra.bootstrap import build_services
from infra.settings import Settings

DEMO_EMAIL = "demo@robson.local"
DEMO_CAPITAL = Decimal(10000)
DEMO_PRICE = Decimal(98500)


def prepare(settings: Settings) -> str:
    """Idempotent: returns a new token for the demo client."""
    services = build_services(settings)
    try:
        try:
            token = services.ledger.register_client(
                "Demo trader", DEMO_EMAIL, DEMO_CAPITAL, is_operator=True
            ).token
        except AlreadyExists:
            token = services.ledger.issue_token(DEMO_EMAIL)
        if services.paper is not None and not services.paper.prices_are_live:
            try:
                services.paper.price("BTCUSDC")
            except ExchangeUnavailable:  # no price yet
                services.paper.set_price("BTCUSDC", DEMO_PRICE)
        return token
    finally:
        services.close()


def main(out: TextIO = sys.stdout) -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    token = prepare(Settings.from_env(os.environ))
    out.write(
        f"Demo client {DEMO_EMAIL} (operator). Token:\n  {token}\n"
        f"Try:\n  curl -H 'Authorization: Bearer {token}' http://{host}:{port}/api/trade/status/\n"
        f"Docs: http://{host}:{port}/docs\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
