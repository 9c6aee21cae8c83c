"""GraphiQL from the gateway's own origin: usable with no internet, key prefilled, live.

The browser test is the one that shows it as a person sees it: headless Chromium that can
reach nothing but loopback opens the page, runs the prefilled query and a subscription,
and leaves screenshots in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.edge.callers import DEV_KEY
from gateway.edge.graphiql import ASSETS_PATH, GraphiQL
from gateway.edge.graphiql.assets import DIRECTORY, FILES, PACKAGES, AssetsUnavailable, fetch
from gateway.tools.loopback import free_port, running
from tests.browser import Page, open_page
from tests.conftest import Client
from tests.test_realtime_e2e import _primmo, _wait_for_subscription

ARTIFACTS = Path(__file__).parent / "artifacts"
HTML = {"Accept": "text/html"}
EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESULT = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
RUN = "document.querySelector('.graphiql-execute-button').click()"
SETTINGS = r'<script type="application/json" id="graphiql-settings">(.*?)</script>'


def _settings(page: str) -> dict[str, str]:
    found = re.search(SETTINGS, page)
    assert found is not None, page
    settings: dict[str, str] = json.loads(found.group(1))
    return settings


async def test_the_page_loads_everything_from_this_origin(client: Client) -> None:
    response = await client.http.get("/graphql", headers=HTML)

    assert response.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    loaded = [url for url in urls if not url.startswith("data:")]
    assert loaded and all(url.startswith(f"{ASSETS_PATH}/") for url in loaded), urls
    assert "//" not in response.text.replace("://", ""), "no scheme-relative URL either"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    for url in loaded:
        asset = await client.http.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css"))
        name = url.rsplit("/", 1)[1]
        if name in FILES:
            assert asset.content == (DIRECTORY / name).read_bytes()


async def test_the_gateways_own_address_leads_to_graphiql(client: Client) -> None:
    """A newcomer opens http://127.0.0.1:8000/ in a browser: GraphiQL, not a JSON 404."""
    response = await client.http.get("/", headers=HTML, follow_redirects=True)

    assert response.status_code == 200 and response.url.path == "/graphql"
    assert "<html" in response.text.lower()
    query = await client.http.get("/", params={"query": "{ __typename }"})
    assert query.headers["location"] == "/graphql?query=%7B+__typename+%7D"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/"])
async def test_probes_may_ask_with_head(client: Client, path: str) -> None:
    """Load balancers' health checks often send HEAD, which HTTP servers must answer as GET
    without the body (RFC 9110 §9.3.2)."""
    head = await client.http.head(path)
    get = await client.http.get(path)

    assert head.status_code == get.status_code and head.content == b""


async def test_the_headers_editor_holds_the_development_key(client: Client) -> None:
    page = (await client.http.get("/graphql", headers=HTML)).text

    settings = _settings(page)
    assert json.loads(settings["headers"]) == {"X-API-Key": DEV_KEY}
    assert settings["endpoint"] == "/graphql"
    prefilled = await client.http.post(
        "/graphql", json={"query": settings["query"]}, headers=json.loads(settings["headers"])
    )
    assert prefilled.json()["data"]["buildings"]["totalCount"] > 0


def test_without_a_development_key_the_editor_shows_where_a_key_goes() -> None:
    page = bytes(GraphiQL(endpoint="/graphql", development_key=None).page().body).decode()

    assert json.loads(_settings(page)["headers"]) == {"X-API-Key": ""}
    assert DEV_KEY not in page


async def test_only_graphiqls_own_files_are_served(client: Client) -> None:
    for name in ("manifest.json", "../assets.py", "page.html", "graphiql.js.map"):
        assert (await client.http.get(f"{ASSETS_PATH}/{name}")).status_code == 404, name


def test_missing_files_give_a_page_that_says_how_to_fetch_them(tmp_path: Path) -> None:
    response = GraphiQL(endpoint="/graphql", development_key=DEV_KEY, directory=tmp_path).page()

    text = bytes(response.body).decode()
    assert response.status_code == 503
    assert "gateway graphiql-assets" in text and "pip install -e ." in text
    assert all(name in text for name in FILES)
    assert "<script" not in text


class _Registry(BaseHTTPRequestHandler):
    """A registry that serves the pinned tarballs' names with other bytes."""

    def do_GET(self) -> None:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for package in PACKAGES:
                for inside in package.files:
                    data = b"alert('not what was published')"
                    info = tarfile.TarInfo(inside)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        body = gzip.compress(archive.getvalue())
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


@contextmanager
def _registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_tarball_that_is_not_the_pinned_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _registry() as registry:
        monkeypatch.setenv("npm_config_registry", registry)
        with pytest.raises(AssetsUnavailable, match="not the pinned"):
            fetch(tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_registry_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(AssetsUnavailable, match="react-18.3.1.tgz"):
        fetch(tmp_path, timeout=5)


SUBSCRIPTION = """subscription {
  entityChanged(types: [TENANT], providers: ["primmo"]) {
    kind sourceId node { ... on Tenant { lastName } }
  }
}"""


def _keep(shot: bytes, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(shot)
    return path


def _subscribed(params: dict[str, Any]) -> bool:
    return '"subscribe"' in params["response"]["payloadData"]


async def test_graphiql_runs_a_query_and_a_subscription_with_no_internet(tmp_path: Path) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with (
        running(["serve", "--port", str(port)], f"{origin}/healthz", seconds=30),
        closing(_primmo(f"{origin}/sandbox/primmo")) as primmo,
    ):
        async with (
            open_page(f"{origin}/graphql", tmp_path / "profile") as page,
            httpx.AsyncClient(base_url=origin, headers={"X-API-Key": DEV_KEY}) as http,
        ):
            await page.wait_for("!!document.querySelector('.graphiql-execute-button')")
            visible = await page.evaluate("document.body.innerText")
            assert DEV_KEY in visible, "the headers editor shows the development key"

            await page.evaluate(RUN)
            shown = await page.wait_for(f"{RESULT}.includes('totalCount') && {RESULT}")
            query = await page.evaluate(f"{EDITOR}.getValue()")
            expected = (await http.post("/graphql", json={"query": query})).json()
            first = expected["data"]["buildings"]["edges"][0]["node"]["name"]
            assert json.loads(shown) == expected
            assert first in await page.evaluate("document.body.innerText")
            query_shot = await asyncio.to_thread(
                _keep, await page.screenshot(), "graphiql-query.png"
            )

            await asyncio.to_thread(_wait_for_subscription, primmo)
            tenants = await asyncio.to_thread(primmo.get, "/api/Tenants", params={"$top": "1"})
            tenant = tenants.json()["value"][0]["Id"]
            await page.evaluate(f"{EDITOR}.setValue({json.dumps(SUBSCRIPTION)})")
            # GraphiQL sends an operation over the websocket once its own parse of the
            # editor, made a moment after an edit, says that it is a subscription.
            await page.wait_for(
                f"{EDITOR}.documentAST?.definitions[0].operation === 'subscription'"
            )
            await page.evaluate(RUN)
            await page.event("Network.webSocketFrameSent", _subscribed)
            await asyncio.sleep(1)  # the subscribe message is out; the server subscribes next
            await asyncio.to_thread(
                primmo.post, f"/_sandbox/tenants/{tenant}", json={"LastName": "Live-From-GraphiQL"}
            )
            pushed = await page.wait_for(
                f"{RESULT}.includes('Live-From-GraphiQL') && {RESULT}", seconds=15
            )
            live_shot = await asyncio.to_thread(
                _keep, await page.screenshot(), "graphiql-subscription.png"
            )
            requested = page.requested()

    change = json.loads(pushed)["data"]["entityChanged"]
    assert change == {
        "kind": "UPDATED",
        "sourceId": str(tenant),
        "node": {"lastName": "Live-From-GraphiQL"},
    }
    assert requested, "the browser's requests were recorded"
    elsewhere = [
        url for url in requested if not url.startswith((origin, f"ws://127.0.0.1:{port}", "data:"))
    ]
    assert elsewhere == []
    assert f"ws://127.0.0.1:{port}/graphql" in requested
    print(f"\nGraphiQL screenshots: {query_shot} {live_shot}")  # noqa: T201


SHOW_DOCS = "document.querySelector('[aria-label=\"Show Documentation Explorer\"]')"


def _asks_for_the_schema(request: dict[str, Any]) -> bool:
    return request.get("method") == "POST" and "__schema" in request.get("postData", "")


async def test_graphiql_loads_the_schema_and_its_docs_list_the_query_fields(
    tmp_path: Path,
) -> None:
    """What a person sees first: the page's own schema request answered without an error,
    nothing wrong in the console or the result pane, and the Docs explorer listing Query's
    fields (it is empty, and the editor cannot complete, when introspection is refused)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with running(["serve", "--port", str(port)], f"{origin}/healthz", seconds=30):
        async with open_page(f"{origin}/graphql", tmp_path / "profile") as page:
            await page.wait_for("!!document.querySelector('.graphiql-execute-button')")
            await page.wait_for(f"!!{SHOW_DOCS}")
            asked = await _schema_request(page)
            schema = json.loads(await page.response_body(asked))

            await page.evaluate(f"{SHOW_DOCS}.click()")
            await page.wait_for("!!document.querySelector('.graphiql-doc-explorer-type-name')")
            await page.evaluate(
                "[...document.querySelectorAll('.graphiql-doc-explorer-type-name')]"
                ".find(a => a.innerText === 'Query').click()"
            )
            listed = await page.wait_for(
                "[...document.querySelectorAll('.graphiql-doc-explorer-field-name')]"
                ".map(field => field.innerText).join(',')"
            )
            docs_shot = await asyncio.to_thread(_keep, await page.screenshot(), "graphiql-docs.png")
            await page.evaluate(RUN)
            shown = await page.wait_for(f"{RESULT}.includes('data') && {RESULT}")
            said = page.console_errors()

    assert "errors" not in schema, schema.get("errors")
    fields = {field["name"] for field in _query_type(schema)["fields"]}
    assert {"buildings", "landlords", "units", "tenants", "node"} <= fields
    assert set(listed.split(",")) == fields
    assert "errors" not in json.loads(shown)
    assert said == []
    print(f"\nGraphiQL's Docs explorer: {docs_shot}")  # noqa: T201


async def _schema_request(page: Page) -> str:
    await page.event(
        "Network.requestWillBeSent", lambda params: _asks_for_the_schema(params["request"])
    )
    return page.request_ids(_asks_for_the_schema)[0]


def _query_type(schema: dict[str, Any]) -> dict[str, Any]:
    types = schema["data"]["__schema"]["types"]
    name = schema["data"]["__schema"]["queryType"]["name"]
    found: dict[str, Any] = next(kind for kind in types if kind["name"] == name)
    return found
