"""propgate and GraphQL Mesh side by side, on the same sandbox, asked the same nested query.

GraphQL Mesh v0 (`@graphql-mesh/cli` with its OData handler) is installed by npm at
run time into the per-user cache (`gateway.tools.installs`) and configured over the
sandbox Primmo's own `$metadata`: a building's units come from `$expand` (the handler's
`expandNavProps`), a unit's tenants from a resolver Mesh's configuration adds (Primmo
relates them by codes, which `$metadata` cannot say), one `Tenants` request per unit.
Mesh runs as one Node process bound to 127.0.0.1 with a Primmo token fetched for it;
propgate runs as `gateway serve`, both against one sandbox process.

The two are driven in turns (propgate, Mesh, propgate, ...) at the same concurrency for
the same time, each client asking another twenty buildings (a page starting one
building further each time, as propgate's variants do), and each turn
reports requests per second, p50/p95, the upstream requests per query (the sandbox's
own counter) and the CPU per query of each one's processes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway.tools.bench.drive import client, drive, load
from gateway.tools.bench.mix import VARY, BenchQuery, pick
from gateway.tools.bench.process import tree_cpu_seconds
from gateway.tools.bench.report import percentile, save
from gateway.tools.bench.serving import primmo_token, serving
from gateway.tools.bench.vary import with_variants
from gateway.tools.installs import NotInstalled, npm_packages
from gateway.tools.loopback import free_port

__all__ = ["MESH_PACKAGES", "mesh_table", "side_by_side"]

MESH_PACKAGES = ("@graphql-mesh/cli@0.103.2", "@graphql-mesh/odata@0.22.18", "graphql@16.15.0")
"""The Mesh measured: v0's last CLI and OData handler, and the graphql-js they run on."""

_MESH_QUERY = (
    f'{{ Buildings(queryOptions: {{top: 20, skip: {VARY}, orderby: "Name,Id"}}) '
    "{ Id Name Units { Id UnitCode NumberOfRooms Tenants { Id LastName } } } }"
)
"""The nested query as Mesh's schema spells it: twenty buildings, their units (with the
unit's id, code and rooms), each unit's tenants (id and last name)."""

_CONFIG = """\
sources:
  - name: Primmo
    handler:
      odata:
        endpoint: {endpoint}
        expandNavProps: true
        operationHeaders:
          Authorization: "Bearer {token}"
additionalTypeDefs: |
  extend type Unit {{
    Tenants: [Tenant]
  }}
additionalResolvers:
  - targetTypeName: Unit
    targetFieldName: Tenants
    requiredSelectionSet: "{{ CompanyNo DivisionNo BuildingCode UnitCode }}"
    sourceName: Primmo
    sourceTypeName: Query
    sourceFieldName: Tenants
    sourceArgs:
      queryOptions:
        filter: "CompanyNo eq {{root.CompanyNo}} and DivisionNo eq {{root.DivisionNo}} and \
BuildingCode eq '{{root.BuildingCode}}' and UnitCode eq '{{root.UnitCode}}'"
serve:
  hostname: 127.0.0.1
  port: {port}
  playground: false
  fork: false
"""


@contextmanager
def _mesh(sandbox: str) -> Iterator[tuple[str, int]]:
    """Mesh built and started over the sandbox's Primmo: (its /graphql URL, its pid)."""
    try:
        modules = npm_packages(*MESH_PACKAGES)
    except NotInstalled as error:
        message = f"gateway bench --mesh: GraphQL Mesh could not be installed: {error}"
        raise SystemExit(message) from None
    mesh = str(modules / ".bin" / "mesh")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="propgate-mesh-") as scratch:
        directory = Path(scratch)
        (directory / "node_modules").symlink_to(modules)
        endpoint = f"{sandbox}/sandbox/primmo/api/"
        config = _CONFIG.format(endpoint=endpoint, token=primmo_token(sandbox), port=port)
        (directory / ".meshrc.yaml").write_text(config, encoding="utf-8")
        log = (directory / "mesh.log").open("wb")
        built = subprocess.run([mesh, "build"], cwd=directory, stdout=log, stderr=log, timeout=300)
        if built.returncode != 0:
            raise SystemExit(f"gateway bench --mesh: mesh build failed; see {directory}")
        process = subprocess.Popen([mesh, "start"], cwd=directory, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}/graphql"
        try:
            _until_answers(url, process)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()


def _until_answers(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gateway bench --mesh: mesh exited with {process.returncode}")
        try:
            answer = httpx.post(url, json={"query": "{ __typename }"}, timeout=2)
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gateway bench --mesh: mesh did not answer within {seconds:.0f} s")


async def _drive_mesh(url: str, concurrency: int, seconds: float, pages: int) -> dict[str, Any]:
    item = BenchQuery("nested buildings", _MESH_QUERY, 2, "").varied(
        [str(start) for start in range(pages)]
    )
    async with client(concurrency) as http:

        async def ask(query: BenchQuery, variant: int) -> tuple[bool, Any]:
            try:
                answer = await http.post(url, json={"query": query.text(variant)})
                body = answer.json()
            except (httpx.HTTPError, ValueError):
                return True, None
            return answer.status_code != 200 or bool(body.get("errors")), body.get("data")

        return await load(concurrency, seconds, [item], ask)


async def _upstream(sandbox: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(f"{sandbox}/sandbox/primmo/_sandbox/requests")
        total: int = answer.json()["total"]
        return total


def _turn(name: str, driven: dict[str, Any], cpu: float | None, upstream: int) -> dict[str, Any]:
    samples = [t for times in driven["latencies"].values() for t in times]
    queries = driven["queries"]
    return {
        "side": name,
        "queries": queries,
        "errors": sum(driven["errors"].values()),
        "requests_per_second": round(queries / driven["seconds"], 1),
        "p50_ms": round(statistics.median(samples) * 1000, 1) if samples else None,
        "p95_ms": round(percentile(samples, 0.95) * 1000, 1) if samples else None,
        "upstream_per_query": round(upstream / queries, 1) if queries else None,
        "cpu_ms_per_query": round(cpu / queries * 1000, 2) if cpu is not None and queries else None,
    }


def side_by_side(
    *,
    latency: float,
    jitter: float,
    concurrency: int,
    seconds: float,
    rounds: int,
    workers: int,
    out: Path | None,
) -> dict[str, Any]:
    """`rounds` turns each, propgate then Mesh, on one sandbox and one gateway."""
    turns: list[dict[str, Any]] = []
    with (
        serving(
            latency=latency, jitter=jitter, workers=workers, buildings=750, units=4, max_page=1000
        ) as (gateway, sandbox, pid),
        _mesh(sandbox) as (mesh, mesh_pid),
    ):
        (nested,) = asyncio.run(with_variants(gateway, pick(["nested"])))
        pages = len(nested.variants)
        sys.stderr.write("warming both up...\n")
        asyncio.run(drive(gateway, 2, 2, [nested]))
        asyncio.run(_drive_mesh(mesh, 2, 2, pages))
        for number in range(rounds):
            for name, process in (("propgate", pid), ("mesh", mesh_pid)):
                sys.stderr.write(f"round {number + 1}: {name}, {concurrency} clients\n")
                cpu = tree_cpu_seconds(process)
                upstream = asyncio.run(_upstream(sandbox))
                if name == "propgate":
                    driven = asyncio.run(drive(gateway, concurrency, seconds, [nested]))
                else:
                    driven = asyncio.run(_drive_mesh(mesh, concurrency, seconds, pages))
                spent = tree_cpu_seconds(process)
                made = asyncio.run(_upstream(sandbox)) - upstream
                used = spent - cpu if spent is not None and cpu is not None else None
                turns.append({"round": number + 1, **_turn(name, driven, used, made)})
    result = {
        "settings": {
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
            "rounds": rounds,
            "workers": workers,
            "mesh": list(MESH_PACKAGES),
        },
        "turns": turns,
        "medians": _medians(turns),
    }
    save(result, out)
    return result


def _medians(turns: list[dict[str, Any]]) -> dict[str, Any]:
    figures = ("requests_per_second", "p50_ms", "p95_ms", "upstream_per_query", "cpu_ms_per_query")
    medians: dict[str, Any] = {}
    for side in ("propgate", "mesh"):
        own = [turn for turn in turns if turn["side"] == side]
        medians[side] = {
            figure: statistics.median(values)
            if (values := [t[figure] for t in own if t[figure] is not None])
            else None
            for figure in figures
        }
    ours, theirs = medians["propgate"], medians["mesh"]
    medians["ratios"] = {
        figure: round(ours[figure] / theirs[figure], 2) if ours[figure] and theirs[figure] else None
        for figure in figures
    }
    return medians


def mesh_table(result: dict[str, Any]) -> str:
    rows = [
        f"{'round':>5} {'side':9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'upstream':>9} "
        f"{'CPU ms/query':>13} {'errors':>7}"
    ]
    for turn in result["turns"]:
        rows.append(
            f"{turn['round']:5d} {turn['side']:9} {turn['requests_per_second']:8.1f} "
            f"{turn['p50_ms']!s:>8} {turn['p95_ms']!s:>8} {turn['upstream_per_query']!s:>9} "
            f"{turn['cpu_ms_per_query']!s:>13} {turn['errors']:7d}"
        )
    medians = result["medians"]
    for side in ("propgate", "mesh", "ratios"):
        figures = medians[side]
        rows.append(
            f"{'median' if side != 'ratios' else 'ratio':>5} "
            f"{side if side != 'ratios' else 'prop/mesh':9} "
            + " ".join(
                f"{figures[name]!s:>{width}}"
                for name, width in (
                    ("requests_per_second", 8),
                    ("p50_ms", 8),
                    ("p95_ms", 8),
                    ("upstream_per_query", 9),
                    ("cpu_ms_per_query", 13),
                )
            )
        )
    rows.append(json.dumps(result["settings"]))
    return "\n".join(rows)
