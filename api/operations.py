"""Operations: an endpoint described as data (method, path, models, access), turned into
Starlette routes and into the OpenAPI document from the same description.

A handler is a plain synchronous function of a parsed `Call`; it runs in the thread pool
(the ledger and the read models block on the database) and contains no error handling.
A coroutine handler runs on the event loop instead, so it must not block: the busiest reads
await their documents (`api.documents`) without a thread hop.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import PRINCIPAL_KEY, Principal
from api.documents import Documents
from api.errors import POSITION_KEY, MalformedBody, RequestInvalid
from api.idempotency import Idempotency
from api.metrics import Metrics
from api.rate_limit import RateLimiter
from api.schemas import Empty, NoQuery
from api.services import Services
from domain.errors import OperatorOnly, Unauthorized

NO_BODY = Empty()
NO_QUERY = NoQuery()
B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)
B_co = TypeVar("B_co", bound=BaseModel, covariant=True)
Q_co = TypeVar("Q_co", bound=BaseModel, covariant=True)


class Access(Enum):
    PUBLIC = "public"  # no token
    CLIENT = "client"  # any tenant's token, rate limited
    OPERATOR = "operator"  # the operator's token; tenants get 403


@dataclass(frozen=True)
class Reply:
    payload: Mapping[str, object]  # any JSON document: `JSONResponse` writes it
    status: int = 200


@dataclass(frozen=True)
class Call(Generic[B_co, Q_co]):
    """One parsed request: who, what (body, query, path) and the services to act with.

    `Call[Empty, NoQuery]` reads neither; a helper for any call takes `AnyCall`."""

    request: Request
    services: Services
    metrics: Metrics
    documents: Documents
    body: B_co
    query: Q_co
    path: Mapping[str, Any]  # Starlette's converted path parameters (untyped there)

    @property
    def principal(self) -> Principal:
        principal = self.request.scope.get(PRINCIPAL_KEY)
        if not isinstance(principal, Principal):
            raise Unauthorized("Invalid or missing token")
        return principal

    def working_on(self, position_id: object) -> None:
        """Name the position a command acts on, so an error reply can name it too."""
        self.request.scope[POSITION_KEY] = position_id


AnyCall = Call[BaseModel, BaseModel]
# Each handler names its own body and query models; a table of them can only say "some".
Handler = Callable[[Call[Any, Any]], Reply | Response]
OnLoop = Callable[[Call[Any, Any]], Awaitable[Reply | Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # canonical, with its trailing slash; also served without it
    handler: Handler | OnLoop
    summary: str
    tag: str
    body: type[BaseModel] = Empty
    query: type[BaseModel] = NoQuery
    response: type[BaseModel] | None = None
    status: int = 200
    access: Access = Access.CLIENT
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"
    command: bool = False  # changes state: wait for the read models before answering
    idempotent: bool = False  # places orders: an `Idempotency-Key` makes a retry safe

    @property
    def paths(self) -> tuple[str, ...]:
        bare = self.path.rstrip("/")
        return (self.path,) if not bare or bare == self.path else (self.path, bare)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _field(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _invalid(error: ValidationError, model: type[BaseModel], prefix: str = "") -> RequestInvalid:
    because: Mapping[str, str] = getattr(model, "required_because", {})
    problems = []
    for e in error.errors(include_url=False):
        name = _field(e["loc"])
        reason = str(e["msg"])
        if e["type"] == "missing":
            reason = because.get(name, "is required")
        problems.append({"field": prefix + name, "reason": reason})
    return RequestInvalid(problems or [{"field": prefix or "body", "reason": "is invalid"}])


NOT_TEXT = "is not valid Unicode text"


def _not_text(field: str) -> RequestInvalid:
    return RequestInvalid([{"field": field, "reason": NOT_TEXT}])


def _printable(text: str) -> str:
    """A name that may hold lone surrogates, escaped so the error reply can carry it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(body: dict[str, object]) -> None:
    """Lone surrogates (`"\\ud800"` in JSON) are not text: refuse them, naming the field,
    before they reach a model, the database or a reply (a loop: JSON may nest deeply)."""
    pending: list[tuple[str, object]] = [("", body)]
    while pending:
        at, data = pending.pop()
        if isinstance(data, str):
            try:
                data.encode("utf-8")
            except UnicodeEncodeError:
                raise _not_text(at or "body") from None
        elif isinstance(data, dict):
            for key, value in data.items():
                name = f"{at}.{_printable(key)}" if at else _printable(key)
                pending += [(name, value), (name, key)]
        elif isinstance(data, list):
            pending += [(f"{at}.{i}" if at else str(i), item) for i, item in enumerate(data)]


def _check_query_text(raw: bytes, model: type[BaseModel]) -> None:
    """Starlette decodes a query string leniently (bad UTF-8 becomes U+FFFD): refuse it in
    the parameters the model reads (others are ignored anyway)."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        if key in model.model_fields:
            try:
                unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise _not_text(f"query.{key}") from None


async def read_body(request: Request, model: type[B]) -> B:
    """JSON object -> model; numbers are parsed as Decimal, never through float."""
    raw = await request.body()
    data: object = {}
    if raw.strip():
        try:
            data = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise MalformedBody("body", f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise MalformedBody("body", "must be a JSON object")
    _check_text(data)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _invalid(error, model) from None


def read_query(request: Request, model: type[Q]) -> Q:
    _check_query_text(request.scope["query_string"], model)
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as error:
        raise _invalid(error, model, prefix="query.") from None


def query_reader(model: type[Q]) -> Callable[[Request], Q]:
    """`read_query` for one model; an empty query string gets the defaults, validated once
    (query models are frozen), when every parameter has one."""
    try:
        defaults = model.model_validate({})
    except ValidationError:
        return lambda request: read_query(request, model)
    return lambda request: read_query(request, model) if request.scope["query_string"] else defaults


@dataclass(frozen=True)
class Runtime:
    """What every endpoint of one app shares."""

    services: Services
    metrics: Metrics
    limiter: RateLimiter
    documents: Documents
    settle: Callable[[], None]  # wait until the read models show this process's writes
    idempotency: Idempotency | None = None  # the keys of the `idempotent` operations


def endpoint(operation: Operation, runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for one operation: parse, check access, run the handler."""

    bodiless = operation.method == "GET" and operation.body is Empty
    query = query_reader(operation.query)
    on_loop = inspect.iscoroutinefunction(operation.handler)
    if on_loop and operation.command:
        raise ValueError(f"{operation.operation_id}: commands block on the ledger, not on the loop")

    async def run(request: Request) -> Response:
        if operation.access is Access.OPERATOR:
            principal = request.scope.get(PRINCIPAL_KEY)
            if not isinstance(principal, Principal) or not principal.is_operator:
                raise OperatorOnly("This endpoint is for the operator only")
        call: AnyCall = Call(
            request=request,
            services=runtime.services,
            metrics=runtime.metrics,
            documents=runtime.documents,
            body=NO_BODY if bodiless else await read_body(request, operation.body),
            query=NO_QUERY if operation.query is NoQuery else query(request),
            path=request.path_params,
        )
        if on_loop:
            return await _handle_on_loop(operation, call, runtime)
        response: Response = await run_in_threadpool(_handle, operation, call, runtime)
        return response

    run.__name__ = operation.operation_id
    return run


def _handle(operation: Operation, call: AnyCall, runtime: Runtime) -> Response:
    """In the worker thread: the rate limit, the handler, (commands) read-your-writes, and
    the JSON encoding, so the event loop only moves bytes."""
    if operation.access is not Access.PUBLIC:
        runtime.limiter.admit(call.request.scope, call.principal.token_key)
    if not operation.command:
        return _response(_run(operation, call))
    try:
        if operation.idempotent and runtime.idempotency is not None:
            return runtime.idempotency.run(
                call.request,
                call.principal.client_id,
                call.body,
                lambda: _response(_run(operation, call)),
            )
        return _response(_run(operation, call))
    finally:  # a refused command may have recorded events too (a rejected plan)
        runtime.settle()  # the caller reads its own writes on the next query


def _run(operation: Operation, call: AnyCall) -> Reply | Response:
    result = operation.handler(call)
    assert isinstance(result, Reply | Response), "a coroutine handler runs on the loop"
    return result


async def _handle_on_loop(operation: Operation, call: AnyCall, runtime: Runtime) -> Response:
    """On the event loop: the rate limit, then the (non-blocking, read-only) handler."""
    if operation.access is not Access.PUBLIC:
        await runtime.limiter.admit_on_loop(call.request.scope, call.principal.token_key)
    result = operation.handler(call)
    assert inspect.isawaitable(result)
    return _response(await result)


def _response(result: Reply | Response) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result.payload, result.status)


def routes(
    operations: Sequence[Operation],
    runtime: Runtime,
    guards: Mapping[Access, Sequence[Middleware]],
) -> tuple[list[Route], dict[object, str]]:
    """Routes for every operation (with and without the trailing slash), and each endpoint's
    path template (for metrics labels)."""
    built: list[Route] = []
    templates: dict[object, str] = {}
    for operation in operations:
        run = endpoint(operation, runtime)
        templates[run] = operation.path
        for index, path in enumerate(operation.paths):
            built.append(
                Route(
                    path,
                    run,
                    methods=[operation.method],
                    name=operation.operation_id if index == 0 else f"{operation.operation_id}_",
                    include_in_schema=index == 0,
                    middleware=list(guards.get(operation.access, ())),
                )
            )
    return built, templates
