"""Headless Chromium driven over the DevTools protocol, with no network beyond loopback.

The protocol is JSON over a websocket, and `websockets` is already a dependency, so a
page can be opened, read, clicked and photographed without a browser-automation
package (and without one that downloads a browser of its own).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.tools import unavailable

__all__ = ["Page", "chromium", "open_page"]

_OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    # Every name resolves to nothing, so nothing but a loopback address is reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-proxy-server",
    "--window-size=1400,900",
    "--remote-debugging-port=0",
]


def chromium() -> str:
    """Debian's chromium; skipped when absent, unless `PROPGATE_REQUIRE` names it (CI)."""
    found = shutil.which("chromium")
    if found is None:
        unavailable("chromium", "needs Debian's chromium (apt-get install -y chromium)")
    return found


class Page:
    """One tab: commands are awaited by id; events are kept for the test to read."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            waiter = self._waiting.pop(message.get("id", -1), None)
            if waiter is None:
                async with self._arrived:
                    self.events.append(message)
                    self._arrived.notify_all()
            elif "error" in message:
                waiter.set_exception(RuntimeError(f"DevTools: {message['error']}"))
            else:
                waiter.set_result(message.get("result", {}))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        identifier = next(self._ids)
        self._waiting[identifier] = asyncio.get_running_loop().create_future()
        await self._socket.send(json.dumps({"id": identifier, "method": method, "params": params}))
        async with asyncio.timeout(30):
            return await self._waiting[identifier]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 30) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"still false after {seconds:.0f} s: {expression}")

    async def event(self, method: str, test: Callable[[dict[str, Any]], bool]) -> None:
        """Returns once an event of `method` whose params pass `test` has arrived."""

        def seen() -> bool:
            return any(
                event.get("method") == method and test(event["params"]) for event in self.events
            )

        async with asyncio.timeout(30), self._arrived:
            await self._arrived.wait_for(seen)

    async def screenshot(self) -> bytes:
        shot = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])

    def requested(self) -> list[str]:
        """Every URL the page asked for, over HTTP or as a websocket."""
        return [
            event["params"]["request"]["url"]
            if event["method"] == "Network.requestWillBeSent"
            else event["params"]["url"]
            for event in self.events
            if event.get("method") in ("Network.requestWillBeSent", "Network.webSocketCreated")
        ]

    def console_errors(self) -> list[str]:
        """What the page said was wrong: console errors, uncaught exceptions, browser log
        errors (a failed request among them)."""
        said = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                said.append(" ".join(str(arg.get("value", arg)) for arg in params["args"]))
            elif method == "Runtime.exceptionThrown":
                said.append(str(params["exceptionDetails"].get("exception", params)))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                said.append(params["entry"].get("text", ""))
        return said

    def request_ids(self, test: Callable[[dict[str, Any]], bool]) -> list[str]:
        """The ids of the requests whose `request` passes `test`, in the order they left."""
        return [
            event["params"]["requestId"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
            and test(event["params"]["request"])
        ]

    async def response_body(self, request_id: str) -> str:
        """A request's response body, once the browser has read all of it."""
        await self.event(
            "Network.loadingFinished", lambda params: params["requestId"] == request_id
        )
        return str((await self.send("Network.getResponseBody", requestId=request_id))["body"])

    async def close(self) -> None:
        self._reader.cancel()
        with suppress(asyncio.CancelledError):
            await self._reader


@asynccontextmanager
async def open_page(url: str, profile: Path) -> AsyncIterator[Page]:
    """Chromium with an empty profile at `profile`, its one tab at `url`, network recorded."""
    browser = await asyncio.create_subprocess_exec(
        chromium(),
        *_OFFLINE,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = await _debugging_port(profile / "DevToolsActivePort", browser)
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        tab = next(target for target in targets if target["type"] == "page")
        async with websockets.connect(tab["webSocketDebuggerUrl"], max_size=None) as socket:
            page = Page(socket)
            try:
                await page.send("Network.enable")
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                await page.send("Log.enable")
                await page.send("Page.navigate", url=url)
                yield page
            finally:
                await page.close()
    finally:
        browser.terminate()
        try:
            async with asyncio.timeout(10):
                await browser.wait()
        except TimeoutError:
            browser.kill()
            await browser.wait()


def _announced_port(announced: Path) -> int | None:
    text = announced.read_text(encoding="utf-8") if announced.is_file() else ""
    return int(text.splitlines()[0]) if text.strip() else None


async def _debugging_port(announced: Path, browser: asyncio.subprocess.Process) -> int:
    """Chromium writes the port it chose for `--remote-debugging-port=0` into the profile."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if browser.returncode is not None:
            raise RuntimeError(f"chromium exited with {browser.returncode}")
        port = await asyncio.to_thread(_announced_port, announced)
        if port is not None:
            return port
        await asyncio.sleep(0.1)
    raise RuntimeError("chromium did not open its debugging port within 30 s")
