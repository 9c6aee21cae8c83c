"""GraphiQL served from the gateway's own origin, so it works with no internet at all.

Strawberry's own page loads React and GraphiQL from a CDN. This one loads the same files
from `/graphiql/assets/`, fetched from the npm registry when the gateway was installed
(see `assets.py`), and its Content-Security-Policy lets the browser load nothing from
elsewhere. When the files are missing the page says how to fetch them instead of
showing a blank screen.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from string import Template

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from gateway.edge.graphiql.assets import DIRECTORY, FILES, missing

__all__ = ["ASSETS_PATH", "GraphiQL"]

ASSETS_PATH = "/graphiql/assets"

_HERE = Path(__file__).parent
_PAGE = Template((_HERE / "page.html").read_text(encoding="utf-8"))
_OWN_FILES = {"boot.js": _HERE / "boot.js"}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}

_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        # GraphiQL's editors set inline styles; its fonts and icons are data: URIs.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "frame-ancestors 'none'",
    )
)

_FIRST_QUERY = """\
# Ctrl-Enter runs it. The Headers tab below holds the API key,
# which subscriptions (a websocket to this origin) send too.
{
  buildings(first: 5) {
    totalCount
    edges { node { name provider units { unitCode occupancy } } }
  }
}
"""


class GraphiQL:
    """The page at `GET /graphql` (for browsers) and the files it loads."""

    def __init__(
        self, *, endpoint: str, development_key: str | None, directory: Path = DIRECTORY
    ) -> None:
        self.directory = directory
        self._endpoint = endpoint
        # Without a development key the editor shows where a key goes; an empty one is
        # refused with a message that says what to send.
        headers = {"X-API-Key": development_key or ""}
        self._settings = {
            "endpoint": endpoint,
            "headers": json.dumps(headers, indent=2),
            "query": _FIRST_QUERY,
        }
        self.router = APIRouter()
        self.router.add_api_route(
            f"{ASSETS_PATH}/{{name}}", self.asset, methods=["GET", "HEAD"], include_in_schema=False
        )

    @property
    def missing(self) -> list[str]:
        return missing(self.directory)

    def page(self) -> HTMLResponse:
        absent = self.missing
        if absent:
            return HTMLResponse(_instructions(absent, self._endpoint), status_code=503)
        # `<` is escaped so no value can close the script element it is written into.
        settings = json.dumps(self._settings).replace("<", "\\u003c")
        body = _PAGE.substitute(assets=ASSETS_PATH, settings=settings)
        return HTMLResponse(body, headers={"Content-Security-Policy": _POLICY})

    async def asset(self, name: str) -> Response:
        path = _OWN_FILES.get(name) or (self.directory / name if name in FILES else None)
        if path is None or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix))


def _instructions(absent: list[str], endpoint: str) -> str:
    files = ", ".join(absent)
    return f"""<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>GraphiQL is not installed</title></head>
  <body style="font-family: sans-serif; max-width: 46em; margin: 3em auto">
    <h1>GraphiQL's files are not installed</h1>
    <p>This gateway serves GraphiQL from its own origin, with files taken from the npm
    registry when it is installed. They were not fetched (was the npm registry
    unreachable?): {escape(files)}.</p>
    <p>Fetch them, then reload this page:</p>
    <pre>gateway graphiql-assets</pre>
    <p>(or run the install again, <code>pip install -e .</code>, with access to the npm
    registry). The endpoint answers queries meanwhile, for example:</p>
    <pre>curl -H 'Content-Type: application/json' -H 'X-API-Key: &lt;key&gt;' \\
  -d '{{"query": "{{ buildings(first: 3) {{ totalCount }} }}"}}' \\
  http://&lt;host:port&gt;{escape(endpoint)}</pre>
  </body>
</html>
"""
