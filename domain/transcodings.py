"""Stored forms of the domain's own types (plain Enums decode back to members, not strings)."""

from __future__ import annotations

from enum import Enum

from eventsourcing.persistence import Transcoding

from domain.market import OrderSide, Side
from domain.position import ExitReason


def enum_transcoding(enum_type: type[Enum]) -> Transcoding:
    class EnumAsValue(Transcoding):
        type = enum_type
        name = f"enum_{enum_type.__name__}"

        def encode(self, obj: Enum) -> str:
            return str(obj.value)

        def decode(self, data: str) -> Enum:
            return enum_type(data)

    return EnumAsValue()


DOMAIN_TRANSCODINGS: tuple[type[Enum], ...] = (Side, OrderSide, ExitReason)
