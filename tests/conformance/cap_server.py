"""A real OData v4 server with Primmo's shape: SAP CAP over SQLite, on a loopback port.

The model is in `cap/` (entity sets at Primmo's paths, Primmo's property names and
types, `Units` on Buildings as an association on company, division and building code);
`cap/server.js` adds what CAP does not do itself: Primmo's token flow, bearer checks and
`api/Units/ForRent`. The rows are the Primmo sandbox's, read from it over HTTP and
written as CAP's CSV seed files, padded codes and all, so both servers hold one world.

CAP 10 needs Node.js 22 and the machines have 20: the runtime comes from the npm
registry too (`node-linux-<arch>`), installed once with CAP into the per-user cache.
The tool is `cap` for `PROPGATE_REQUIRE`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.sandbox import Sandbox
from gateway.sandbox.primmo import token_request
from gateway.tools.loopback import free_port
from tests.tools import npm_package, unavailable

__all__ = ["CREDENTIALS", "CapRuntime", "CapServer", "cap_runtime", "running_cap", "write_world"]

PROJECT = Path(__file__).with_name("cap")
NODE_VERSION = "22.23.5"
CREDENTIALS = {
    "api_key": "cap-primmo-api-key",
    "username": "cap-integrateur",
    "password": "cap-primmo-password",
}
_ARCHITECTURES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
_ENTITY_SETS = ("Buildings", "Units", "Tenants", "LedgerDivisions")


@dataclass(frozen=True)
class CapRuntime:
    node: Path
    modules: Path


def cap_runtime() -> CapRuntime:
    """CAP at the versions `cap/package.json` pins, and a Node.js it accepts."""
    architecture = _ARCHITECTURES.get(platform.machine().lower())
    if architecture is None:
        unavailable("cap", f"no Node.js {NODE_VERSION} package for {platform.machine()}")
    pinned = json.loads((PROJECT / "package.json").read_text())["dependencies"]
    runtime = f"node-linux-{architecture}"
    specs = [f"{name}@{version}" for name, version in sorted(pinned.items())]
    modules = npm_package(*specs, f"{runtime}@{NODE_VERSION}", tool="cap")
    return CapRuntime(modules / runtime / "bin" / "node", modules)


@dataclass(frozen=True)
class CapServer:
    url: str
    page_cap: int
    credentials: dict[str, str]


def _csv_field(value: Any) -> str:
    """Text is always quoted: CAP trims unquoted fields, and the padding is the point."""
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return json.dumps(value)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    lines = [",".join(columns)]
    lines.extend(",".join(_csv_field(row.get(name)) for name in columns) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _served_rows(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Each entity set as the Primmo sandbox serves it, logged in as its client would."""
    credentials = Sandbox.credentials("primmo")
    transport = httpx.ASGITransport(sandbox.apps["primmo"])
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        token = await client.post(**token_request("", credentials))
        client.headers["Authorization"] = f"Bearer {token.json()}"
        tables = {}
        for name in _ENTITY_SETS:
            response = await client.get(f"/api/{name}")
            response.raise_for_status()
            tables[name] = response.json()["value"]
        return tables


def write_world(sandbox: Sandbox, folder: Path) -> None:
    """The Primmo sandbox's entity sets, and the leases of its units that its availability
    is computed from, as seed files for CAP's `primmo` namespace. The sandbox is read on a
    thread of its own, as a test's event loop may already be running on this one."""
    with ThreadPoolExecutor(1) as thread:
        tables = thread.submit(asyncio.run, _served_rows(sandbox)).result()
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        _write_csv(folder / f"primmo-{name}.csv", rows)
    units = {row["Id"] for row in tables["Units"]}
    leases = sorted({(t.lease.unit_id, t.lease.start, t.lease.end) for t in sandbox.world.tenants})
    _write_csv(
        folder / "primmo-Leases.csv",
        [
            {"Id": index, "UnitId": unit, "StartDate": str(start), "EndDate": str(end)}
            for index, (unit, start, end) in enumerate(
                (lease for lease in leases if lease[0] in units), start=1
            )
        ],
    )


@contextmanager
def running_cap(
    sandbox: Sandbox, workspace: Path, page_cap: int = 4, seconds: float = 60
) -> Iterator[CapServer]:
    """CAP serving `sandbox`'s Primmo world at a free loopback port, `page_cap` rows per
    response at most (`@odata.nextLink` for the rest), stopped on leaving."""
    runtime = cap_runtime()
    project = workspace / "cap"
    shutil.copytree(PROJECT, project)
    (project / "node_modules").symlink_to(runtime.modules, target_is_directory=True)
    write_world(sandbox, project / "db" / "data")
    port = free_port()
    environment = {
        **os.environ,
        "PRIMMO_API_KEY": CREDENTIALS["api_key"],
        "PRIMMO_USERNAME": CREDENTIALS["username"],
        "PRIMMO_PASSWORD": CREDENTIALS["password"],
        "CDS_CONFIG": json.dumps({"query": {"limit": {"default": page_cap, "max": page_cap}}}),
    }
    log = project / "cap.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(runtime.node),
                str(runtime.modules / "@sap" / "cds" / "bin" / "serve.js"),
                "--port",
                str(port),
            ],
            cwd=project,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url, process, seconds, log)
            yield CapServer(url, page_cap, dict(CREDENTIALS))
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    """Any answer from `/api` means CAP has loaded the model and the data and listens."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"CAP exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/api/$metadata", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"CAP did not answer within {seconds:.0f} s:\n{log.read_text()[-2000:]}")
