"""Liveness, readiness and Prometheus metrics: answered without a token."""

from __future__ import annotations

from decimal import Decimal

from starlette.responses import JSONResponse, PlainTextResponse, Response

from api.operations import Access, Call, Operation, Reply
from api.schemas import Empty, NoQuery, Output

MAX_LAG_EVENTS = 1000
MAX_LAG_SECONDS = Decimal(30)
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class Health(Output):
    status: str


class Readiness(Output):
    status: str
    database: str
    projections: list[dict[str, object]]
    problems: list[str]


def healthz(call: Call[Empty, NoQuery]) -> Reply:
    return Reply({"status": "ok"})


def readyz(call: Call[Empty, NoQuery]) -> Response:
    """Ready when the database answers and every projection is close to the log's head."""
    problems: list[str] = []
    try:
        call.services.read_models.log_position()
        database = "ok"
    except Exception as error:  # any failure to reach it means: not ready
        database = "unreachable"
        problems.append(f"database unreachable ({type(error).__name__})")
    projections: list[dict[str, str | int]] = []
    if database == "ok":
        for status in call.services.read_models.status():
            projections.append(
                {
                    "name": status.name,
                    "position": status.position,
                    "lag_events": status.lag_events,
                    "lag_seconds": f"{status.lag_seconds:.3f}",
                }
            )
            if status.lag_events > MAX_LAG_EVENTS or status.lag_seconds > MAX_LAG_SECONDS:
                problems.append(
                    f"projection {status.name} is {status.lag_events} events "
                    f"({status.lag_seconds:.0f} s) behind"
                )
    body = {
        "status": "ready" if not problems else "not ready",
        "database": database,
        "projections": projections,
        "problems": problems,
    }
    return JSONResponse(body, 200 if not problems else 503)


def metrics(call: Call[Empty, NoQuery]) -> Response:
    gauges: list[tuple[str, str, dict[str, str], float]] = []
    for status in call.services.read_models.status():
        gauges.append(
            (
                "robson_projection_lag_events",
                "Events in the log not yet applied by the projection.",
                {"projection": status.name},
                float(status.lag_events),
            )
        )
        gauges.append(
            (
                "robson_projection_lag_seconds",
                "Age of the oldest event the projection has not applied.",
                {"projection": status.name},
                float(status.lag_seconds),
            )
        )
    return PlainTextResponse(call.metrics.render(gauges), media_type=PROMETHEUS)


OPERATIONS = [
    Operation(
        "GET",
        "/healthz",
        healthz,
        "Liveness: the process answers",
        tag="health",
        response=Health,
        access=Access.PUBLIC,
    ),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database reachable, projections within the lag threshold",
        tag="health",
        response=Readiness,
        access=Access.PUBLIC,
        errors=(503,),
    ),
    Operation(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics (text exposition format)",
        tag="health",
        access=Access.PUBLIC,
        media_type=PROMETHEUS,
    ),
]
