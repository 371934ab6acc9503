"""How an amount is written wherever the ledger shows one: the API's replies and the chat's
documents and messages share this rule, so the two can never disagree about a value."""

from __future__ import annotations

from decimal import Decimal


def money(value: Decimal) -> str:
    """Money and quantities: a string with exactly 8 decimals, like the spec, never `-0`."""
    text = f"{value:.8f}"
    return "0.00000000" if text == "-0.00000000" else text
