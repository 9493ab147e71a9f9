"""The operator page: one HTML file, a script and a style sheet, shipped with the package.

No build step and nothing from the network (a control room may have none): the script polls
the JSON API and draws its chart as SVG itself. Every response carries headers that keep the
page from being framed by another site or running scripts from anywhere but this server.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

#: Files under ``vpp/web/static`` that are served, with their content types.
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def read_static(name: str) -> bytes:
    """The packaged file ``vpp/web/static/<name>``."""
    return resources.files("vpp.web").joinpath("static", name).read_bytes()


class Page:
    """Serves the static files, read once (they do not change while the server runs)."""

    def __init__(self) -> None:
        self.files = {name: read_static(name) for name in STATIC_FILES}

    async def index(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files or name == "index.html":
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        # no-cache: the browser revalidates, so an upgraded controller serves its new script.
        return web.Response(
            body=self.files[name],
            content_type=STATIC_FILES[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the headers of :data:`SECURITY_HEADERS` on every answer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def add_routes(app: web.Application) -> None:
    """``/`` and ``/static/{name}`` on ``app``, and the security headers on every response."""
    page = Page()
    app.router.add_get("/", page.index)
    app.router.add_get("/static/{name}", page.static)
    app.on_response_prepare.append(security_headers)
