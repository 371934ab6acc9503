"""Every error the API can answer, in one table: exception class -> HTTP status.

Endpoints never catch domain errors; Starlette finds the handler by walking the exception's
classes, so the most specific entry wins (`TradingDisabled` 403 before `DomainError` 400).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, Decimal

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    CredentialsMissing,
    CredentialsRejected,
    DomainError,
    ExchangeError,
    ExchangeUnavailable,
    Forbidden,
    IllegalTransition,
    InsufficientBalance,
    InvalidInput,
    MarginUnavailable,
    NotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    RiskRuleViolated,
    TradingDisabled,
    Unauthorized,
)
from domain.formats import JSON, Document

log = logging.getLogger("robson.api")

POSITION_KEY = "robson.position_id"  # scope key: the position a command is working on


class MalformedBody(InvalidInput):
    """The body is not a JSON object at all (as opposed to a field with a bad value)."""

    code = "malformed_body"


class RequestInvalid(InvalidInput):
    """Fields that failed validation; the first is `field`, all are listed in `errors`."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["field"], errors[0]["reason"])
        self.errors = errors


class TooManyRequests(DomainError):
    """This API's own per-token request limit (not the exchange's)."""

    code = "rate_limited"

    def __init__(self, limit: int, window: str, retry_after_seconds: int) -> None:
        super().__init__(
            f"Rate limit of {limit} requests per {window} exceeded; "
            f"retry in {retry_after_seconds} seconds"
        )
        self.retry_after_seconds = Decimal(retry_after_seconds)


STATUS: Mapping[type[Exception], int] = {
    DomainError: 400,
    InvalidInput: 422,
    MalformedBody: 400,
    Unauthorized: 401,
    Forbidden: 403,
    TradingDisabled: 403,
    NotFound: 404,
    AlreadyExists: 409,
    IllegalTransition: 409,
    ConcurrencyConflict: 409,
    RiskRuleViolated: 422,
    CredentialsMissing: 400,
    InsufficientBalance: 400,
    TooManyRequests: 429,
    ExchangeError: 502,
    OrderRejected: 422,
    CredentialsRejected: 400,
    MarginUnavailable: 400,
    RateLimited: 429,
    OrderOutcomeUnknown: 202,
    ExchangeUnavailable: 503,
    OperationalError: 503,
    InterfaceError: 503,
    psycopg.OperationalError: 503,  # the read side's own connections (pool timeouts too)
}

HTTP_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


ErrorHandler = Callable[[Request, Exception], Response]


def error_body(message: str, code: str, **extra: JSON) -> Document:
    return {"success": False, "error": message, "code": code, **extra}


def domain_error(request: Request, exc: Exception) -> Response:
    """The reply for any exception in `STATUS`: the error shape plus what the class adds."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    extra: Document = {}
    position_id = request.scope.get(POSITION_KEY)
    if isinstance(exc, DomainError):
        message, code = exc.message, exc.code
    else:  # the database: never show its internals
        message, code = "The database is unavailable; try again shortly", "database_unavailable"
        log.warning("database unavailable: %s", exc)
        if position_id is not None:
            # The command may have sent its order before the database failed: never call
            # that a failure. Reconciliation settles it; the position says how.
            message = (
                f"The database became unavailable while working on position {position_id}; "
                "whether its order executed is not known yet: look the position up once "
                "the service answers again"
            )
            extra["outcome"] = "unknown"
    if isinstance(exc, InvalidInput):
        extra["field"] = exc.field
        if isinstance(exc, RequestInvalid):
            extra["errors"] = exc.errors
    if isinstance(exc, RiskRuleViolated):
        extra["violations"] = [{"rule": v.rule, "reason": v.reason} for v in exc.violations]
    if isinstance(exc, OrderOutcomeUnknown):
        extra["outcome"] = "unknown"
        message = (
            "The exchange has not confirmed the order yet; reconciliation is pending"
            + (f" for position {position_id}" if position_id else "")
            + f" ({exc.message})"
        )
    if isinstance(exc, TooManyRequests | RateLimited):
        seconds = exc.retry_after_seconds.to_integral_value(rounding=ROUND_CEILING)
        headers["Retry-After"] = str(max(1, int(seconds)))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if position_id is not None:
        extra["position_id"] = str(position_id)
    return JSONResponse(error_body(message, code, **extra), status, headers=headers)


def http_error(request: Request, exc: Exception) -> Response:
    """Routing and protocol errors (404, 405, 413) in the same shape as domain errors."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(str(exc.detail), code), exc.status_code, headers=dict(exc.headers or {})
    )


def unexpected_error(request: Request, exc: Exception) -> Response:
    """The last resort: logged in full, answered without internals."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("Internal server error", "internal_error"), 500)


class ClientGone:
    """App middleware (outermost): a client that hangs up before its body arrives is routine,
    not a server error, so it is one info line, with no traceback and no 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.info("client disconnected during %s %s", scope.get("method"), scope.get("path"))


EXCEPTION_HANDLERS: Mapping[type[Exception], ErrorHandler] = {
    **dict.fromkeys(STATUS, domain_error),
    HTTPException: http_error,
    Exception: unexpected_error,
}
