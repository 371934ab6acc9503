"""The trader's desk: one page at `/` that reads the same HTTP API a script would, and the
static files it needs, all served by the app itself under a self-only Content-Security-Policy.

The page's assets (its script, its stylesheet, the chart library) are built from `web/` by
`make install`; without them the page says so instead of failing half-drawn.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

HERE = Path(__file__).parent / "web"
STATIC = HERE / "static"
REQUIRED_ASSETS = ("app.js", "app.css", "uPlot.esm.js", "uPlot.min.css")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Robson: dashboard assets missing</title>
</head><body><main><h1>Dashboard assets are missing</h1>
<p>The page's scripts and styles were not built. Run <code>make install</code> (it runs
<code>npm ci</code> in <code>web/</code> and copies the files into the app), then reload.</p>
<p>The HTTP API works without them: see <a href="/docs">/docs</a>.</p></main></body></html>
"""


def missing_assets(static: Path | None = None) -> list[str]:
    folder = STATIC if static is None else static
    return [name for name in REQUIRED_ASSETS if not (folder / name).is_file()]


def page(request: Request) -> Response:
    """The dashboard shell; the script fills it from the API once the user signs in."""
    if missing_assets():
        return HTMLResponse(MISSING, 503, headers=PAGE_HEADERS)
    return HTMLResponse((HERE / "index.html").read_text("utf-8"), headers=PAGE_HEADERS)


class _Static(StaticFiles):
    """Static files under the same policy as the page (a script URL opened directly)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/", page, methods=["GET"], include_in_schema=False),
        Route("/dashboard", page, methods=["GET"], include_in_schema=False),
        Route("/dashboard/", page, methods=["GET"], include_in_schema=False),
        Mount("/static", _Static(directory=STATIC, check_dir=False), name="static"),
    ]
