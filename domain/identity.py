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


def client_order_id(position_id: UUID, sequence: int) -> str:
    """`R<22 chars of base64url(position id)>-<sequence>`: ≤ 36 chars of [A-Za-z0-9._-].

    The same position and sequence always give the same id, so a retried submission is
    the same order on the exchange, never a second one.
    """
    if not 1 <= sequence <= 99999:
        raise ValueError("order sequence out of range")
    encoded = base64.urlsafe_b64encode(position_id.bytes).decode("ascii").rstrip("=")
    return f"R{encoded}-{sequence}"


def position_of_order(order_id: str) -> tuple[UUID, int] | None:
    """Inverse of `client_order_id`; None for ids this ledger did not create."""
    head, _, seq = order_id.rpartition("-")
    if len(head) != 23 or not head.startswith("R") or not (seq.isascii() and seq.isdigit()):
        return None
    try:
        position_id = UUID(bytes=base64.urlsafe_b64decode(head[1:] + "=="))
        recreated = client_order_id(position_id, int(seq))
    except ValueError:
        return None
    return (position_id, int(seq)) if recreated == order_id else None
