"""Where a position is in its life: the states its state machine moves through."""

from __future__ import annotations

from enum import Enum


class Status(Enum):
    PLANNED = "planned"
    VALIDATED = "validated"
    REJECTED = "rejected"
    ENTERING = "entering"  # entry order recorded as submitted, fill not yet known
    OPEN = "open"
    CLOSING = "closing"  # an exit order is in flight
    CLOSED = "closed"
    CANCELLED = "cancelled"
