"""Operations on the system rather than a tenant's trading: projections (operator only) and
the paper exchange's prices."""

from __future__ import annotations

from api.operations import Access, Call, Operation, Reply
from api.schemas import Empty, Input, NoQuery, Output, Price, Symbol
from domain.errors import NotFound
from domain.formats import money
from projections.catalog import PROJECTION_NAMES


class ProjectionState(Output):
    name: str
    position: int
    lag_events: int
    lag_seconds: str


class ProjectionList(Output):
    projections: list[ProjectionState]


class PaperPrice(Input):
    symbol: Symbol
    price: Price


class PaperPriceReply(Output):
    success: bool
    symbol: str
    price: str


def projection_status(call: Call[Empty, NoQuery]) -> Reply:
    return Reply(
        {
            "projections": [
                {
                    "name": s.name,
                    "position": s.position,
                    "lag_events": s.lag_events,
                    "lag_seconds": f"{s.lag_seconds:.3f}",
                }
                for s in call.services.read_models.status()
            ]
        }
    )


class RebuildReply(Output):
    success: bool
    name: str
    position: int
    events_read: int
    rows: int
    seconds: str


def rebuild_projection(call: Call[Empty, NoQuery]) -> Reply:
    """Fold the whole log into fresh tables, then swap them in; queries keep answering."""
    name: str = call.path["name"]
    if name not in PROJECTION_NAMES:
        raise NotFound(f"Unknown projection {name!r}; known: {', '.join(PROJECTION_NAMES)}")
    report = call.services.read_models.rebuild([name])
    return Reply(
        {
            "success": True,
            "name": name,
            "position": report.position,
            "events_read": report.events_read,
            "rows": report.rows,
            "seconds": f"{report.seconds:.3f}",
        }
    )


def set_paper_price(call: Call[PaperPrice, NoQuery]) -> Reply:
    paper = call.services.paper
    if paper is None:
        raise NotFound("The paper exchange is not in use (ROBSON_EXCHANGE is not paper)")
    price = paper.set_price(call.body.symbol, call.body.price)
    return Reply({"success": True, "symbol": call.body.symbol.upper(), "price": money(price)})


OPERATIONS = [
    Operation(
        "GET",
        "/api/projections/",
        projection_status,
        "Every projection's position and lag (operator)",
        tag="admin",
        response=ProjectionList,
        access=Access.OPERATOR,
    ),
    Operation(
        "POST",
        "/api/projections/{name}/rebuild/",
        rebuild_projection,
        "Rebuild one projection from the whole log, then swap it in (operator)",
        tag="admin",
        response=RebuildReply,
        access=Access.OPERATOR,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/api/paper/price/",
        set_paper_price,
        "Set a symbol's paper price: it fires every tenant's stops (operator, paper only)",
        tag="admin",
        body=PaperPrice,
        response=PaperPriceReply,
        access=Access.OPERATOR,
        errors=(404, 409),
        command=True,
    ),
]
