"""Domain errors. Each carries a stable machine `code`; entry points map classes to replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """Input that can never be valid, reported with the field at fault."""

    code = "invalid_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    code = "not_found"


class ClientNotFound(NotFound):
    code = "client_not_found"


class PositionNotFound(NotFound):
    code = "position_not_found"


class AlreadyExists(DomainError):
    code = "already_exists"


class IllegalTransition(DomainError):
    """A command the aggregate's state machine does not allow (e.g. execute before validate)."""

    code = "illegal_transition"


class ConcurrencyConflict(DomainError):
    """Another writer kept winning the race for the same aggregate."""

    code = "conflict"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class OperatorOnly(Forbidden):
    """An action on the whole system (projections, the shared paper market), not one tenant's."""

    code = "operator_only"


class TradingDisabled(DomainError):
    code = "trading_disabled"

    def __init__(self) -> None:
        super().__init__("Trading is disabled. Set TRADING_ENABLED=True to enable.")


class CredentialsMissing(DomainError):
    code = "credentials_missing"

    def __init__(self, message: str = "Binance API credentials not configured for production mode"):
        super().__init__(message)


class InsufficientBalance(DomainError):
    code = "insufficient_balance"

    def __init__(self, asset: str, message: str | None = None) -> None:
        super().__init__(message or f"No {asset} available for trading")
        self.asset = asset


@dataclass(frozen=True)
class Violation:
    """One failed VALIDATE rule: a machine code and the sentence a trader reads."""

    rule: str
    reason: str


class RiskRuleViolated(DomainError):
    """VALIDATE failed; every failing rule is listed, not only the first."""

    code = "risk_rule_violated"

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(v.reason for v in violations))
        self.violations = tuple(violations)


# --- exchange errors: raised by adapters, translated from the exchange's own codes ---


class ExchangeError(DomainError):
    code = "exchange_error"


class OrderRejected(ExchangeError):
    """The exchange gave a definite 'no': nothing was executed."""

    code = "order_rejected"


class FilterFailure(OrderRejected):
    code = "filter_failure"

    def __init__(self, filter_name: str, message: str) -> None:
        super().__init__(message)
        self.filter_name = filter_name


class CredentialsRejected(OrderRejected):
    code = "credentials_rejected"


class OrderOutcomeUnknown(ExchangeError):
    """No definite answer (timeout, reset, 5xx): the order may or may not have executed."""

    code = "order_outcome_unknown"


class ExchangeUnavailable(ExchangeError):
    code = "exchange_unavailable"


class RateLimited(ExchangeError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: Decimal) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class MarginUnavailable(ExchangeError):
    code = "margin_unavailable"


class ConfigurationError(Exception):
    """The environment describes a setup that must not start."""
