"""Deterministic identifiers: one aggregate per natural key, one client order id per order."""

from __future__ import annotations

import base64
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

NAMESPACE = uuid5(NAMESPACE_URL, "https://robson.trading/ledger")


def client_id_for(email: str) -> UUID:
    return uuid5(NAMESPACE, f"/clients/{email.strip().lower()}")


@lru_cache(maxsize=100_000)  # every command of a tenant asks for it
def policy_id_for(client_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"/policies/{client_id}")


def client_order_id(position_id: UUID, sequence: int, attempt: int = 1) -> str:
    """`R<22 chars of base64url(position id)>-<sequence>[.<attempt>]`: ≤ 36 chars of
    [A-Za-z0-9._-].

    The same position, sequence and attempt always give the same id. Binance frees an id once
    its order is no longer open, so an order re-sent after proof that it never executed goes
    out under its next attempt's id: reusing the id could execute it twice.
    """
    if not 1 <= sequence <= 99999:
        raise ValueError("order sequence out of range")
    if not 1 <= attempt <= 999:
        raise ValueError("order attempt out of range")
    encoded = base64.urlsafe_b64encode(position_id.bytes).decode("ascii").rstrip("=")
    suffix = f".{attempt}" if attempt > 1 else ""
    return f"R{encoded}-{sequence}{suffix}"


def position_of_order(order_id: str) -> tuple[UUID, int] | None:
    """Inverse of `client_order_id` (position id and sequence, whatever the attempt); None
    for ids this ledger did not create."""
    head, _, tail = order_id.rpartition("-")
    seq, dot, attempt = tail.partition(".")
    numbers = seq + attempt
    if len(head) != 23 or not head.startswith("R") or not (numbers.isascii() and numbers.isdigit()):
        return None
    try:
        position_id = UUID(bytes=base64.urlsafe_b64decode(head[1:] + "=="))
        recreated = client_order_id(position_id, int(seq), int(attempt) if dot else 1)
    except ValueError:
        return None
    return (position_id, int(seq)) if recreated == order_id else None
