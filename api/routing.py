"""Starlette's router with an index of exact paths.

Starlette tries every route's pattern in turn until one matches. The API has about sixty
routes (each path with and without its trailing slash), so a request for a late one ran
dozens of regular expressions. Here the routes that can match a path without parameters
are worked out once, in their order, and a request for such a path tries only those. Any
other request, and anything the indexed routes do not answer in full (405, redirects, 404),
goes through Starlette's own matching, so the answers are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send, StatelessLifespan


class IndexedRouter(Router):
    def __init__(
        self, routes: Sequence[BaseRoute], lifespan: StatelessLifespan[Starlette] | None = None
    ) -> None:
        super().__init__(list(routes), lifespan=lifespan)
        self.by_path = candidates(self.routes)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):  # mounted: Starlette's way
            for route in self.by_path.get(scope["path"], ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def candidates(routes: Sequence[BaseRoute]) -> dict[str, list[BaseRoute]]:
    """For each route path without parameters: every route that can match it, in order."""
    exact = [r.path for r in routes if isinstance(r, Route) and not r.param_convertors]
    return {
        path: [r for r in routes if not isinstance(r, Route) or r.path_regex.match(path)]
        for path in exact
    }
