"""`gateway bench`: what the gateway adds to what the providers themselves cost.

It starts the sandbox providers on a loopback port with a chosen upstream
latency, starts the gateway against them as if they were real (real servers,
real sockets), drives a fixed query mix at a given concurrency for a given
time, and reports requests per second, latency percentiles, errors, upstream
requests per query (from the sandbox's counters), each query's ideal latency
(its dependency depth times one upstream round trip, measured against the
sandbox directly in the same run) and the overhead ratio between the two.
With `--latency 0` the gateway's own CPU per query and per returned object is
what is left to see.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from gateway.loopback import DidNotStart, free_port, running
from gateway.sandbox import PROVIDERS, Sandbox
from gateway.sandbox.data import WorldSize
from gateway.vault import Vault

__all__ = ["MIX", "BenchQuery", "run", "table"]

KEY = "bench-caller-key"


@dataclass(frozen=True)
class BenchQuery:
    name: str
    query: str
    depth: int
    """Upstream round trips an ideal client needs one after the other."""
    minimum: str
    """The fewest upstream requests the providers' APIs allow, and why."""


MIX = [
    BenchQuery(
        "nested buildings",
        '{ buildings(first: 20, providers: ["primmo"]) { edges { node { sourceId name '
        "units { sourceId unitCode rooms tenants { sourceId lastName } } } } } }",
        2,
        "2: Buildings with $expand=Units, then every unit's tenants in one $filter",
    ),
    BenchQuery(
        "units for rent",
        '{ unitsForRent(from: "2027-01-01", to: "2027-03-31", first: 20, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode building { sourceId name } } } } }",
        2,
        "2: Units/ForRent, then their buildings in one $filter",
    ),
    BenchQuery(
        "landlords with buildings",
        "{ landlords(first: 10) { edges { node { sourceId name buildings { sourceId name } } } } }",
        2,
        "one page per landlord provider (4, in parallel), then buildings: one $filter for "
        "Primmo, one request per SCOM landlord (its own token); pms and MyCRM landlords link none",
    ),
    BenchQuery(
        "node by id",
        '{ node(id: "QnVpbGRpbmc6cHJpbW1vOjk") { ... on Building { sourceId name city } } }',
        1,
        "1: Buildings with $filter on the id",
    ),
    BenchQuery(
        "1,000 units",
        '{ units(first: 1000, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode rooms } } } }",
        1,
        "1: Units with $top=1001 (one more, to know whether a page follows)",
    ),
    BenchQuery(
        "create tenant",
        'mutation { createTenant(input: {unitId: "VW5pdDpwcmltbW86MTA", firstName: "Bench", '
        'lastName: "Mark"}) { tenant { sourceId } errors { code } } }',
        2,
        "2: the unit's codes (Primmo files tenants by codes), then the POST",
    ),
]


def _config(directory: Path, sandbox: str) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "PROPGATE_CONFIG"}
    lines = [
        "[gateway]",
        "max_page_size = 1000",
        "subscribe_at_start = false",
        "[gateway.limits]",
        "max_cost = 1000000",
        "[[auth.api_keys]]",
        'name = "bench"',
        f'sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"',
        'scopes = ["*"]',
        "[vault]",
        f'path = "{directory / "vault.sqlite3"}"',
    ]
    for name, provider in PROVIDERS.items():
        lines += [f"[providers.{name}]", f'url = "{sandbox}/sandbox/{name}"']
        for credential, value in provider.credentials.items():
            if credential == "username":
                lines.append(f'username = "{value}"')
            else:
                variable = f"BENCH_{name}_{credential}".upper()
                env[variable] = value
                lines.append(f'{credential} = {{ env = "{variable}" }}')
    path = directory / "propgate.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, env


def _cpu_seconds(pid: int) -> float | None:
    """The process's user + system CPU time (Linux /proc); None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _objects(value: Any) -> int:
    if isinstance(value, dict):
        return ("sourceId" in value) + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def _upstream_counts(gateway: str, sandbox: str) -> dict[str, int]:
    """Each query alone, with every provider's counter zeroed before and read after."""
    counts = {}
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": KEY}) as http:
        for item in MIX:
            for name in PROVIDERS:
                await http.post(f"{sandbox}/sandbox/{name}/_sandbox/requests/reset")
            await http.post(f"{gateway}/graphql", json={"query": item.query})
            total = 0
            for name in PROVIDERS:
                seen = (await http.get(f"{sandbox}/sandbox/{name}/_sandbox/requests")).json()
                total += sum(
                    r["count"]
                    for r in seen["requests"]
                    if not any(word in r["path"].lower() for word in ("token", "identity"))
                )
            counts[item.name] = total
    return counts


async def _round_trip(sandbox: str, samples: int = 20) -> float:
    """One upstream round trip as an ideal client sees it: Primmo's token endpoint, direct."""
    credentials = PROVIDERS["primmo"].credentials
    times = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(samples):
            started = time.perf_counter()
            await http.post(
                f"{sandbox}/sandbox/primmo/api/Token",
                headers={"x-api-key": credentials["api_key"]},
                json={"UserName": credentials["username"], "Password": credentials["password"]},
            )
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _drive(gateway: str, concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    objects: dict[str, int] = defaultdict(int)
    done = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=60, limits=limits, headers={"X-API-Key": KEY}) as http:

        async def worker(offset: int) -> None:
            nonlocal done
            turn = offset
            while time.monotonic() < stop:
                item = MIX[turn % len(MIX)]
                turn += 1
                started = time.perf_counter()
                try:
                    response = await http.post(f"{gateway}/graphql", json={"query": item.query})
                    body = response.json()
                    failed = response.status_code != 200 or bool(body.get("errors"))
                except (httpx.HTTPError, ValueError):
                    failed, body = True, {}
                latencies[item.name].append(time.perf_counter() - started)
                errors[item.name] += failed
                objects[item.name] += _objects(body.get("data"))
                done += 1

        async def progress() -> None:
            started = time.monotonic()
            while time.monotonic() < stop:
                await asyncio.sleep(1)
                elapsed = time.monotonic() - started
                sys.stderr.write(
                    f"\r  {elapsed:5.0f} s  {done:7d} queries  {done / elapsed:8.1f}/s"
                )
            sys.stderr.write("\n")

        started = time.monotonic()
        await asyncio.gather(progress(), *(worker(n) for n in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "latencies": latencies,
        "errors": errors,
        "objects": objects,
        "queries": done,
        "seconds": elapsed,
    }


def run(
    *,
    latency: float,
    jitter: float,
    concurrency: int,
    seconds: float,
    workers: int,
    buildings: int,
    units: int,
    out: Path | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="propgate-bench-") as scratch:
        directory = Path(scratch)
        sandbox_port, gateway_port = free_port(), free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        config, env = _config(directory, sandbox)
        env["PROPGATE_VAULT_KEY"] = key = Fernet.generate_key().decode()
        vault = Vault(directory / "vault.sqlite3", key)
        world = WorldSize(buildings=buildings, units_per_building=(units, units))
        Sandbox(size=world).hand_over_tokens(vault)
        vault.close()
        sandbox_args = ["sandbox", "--port", str(sandbox_port), "--latency", str(latency)]
        sandbox_args += ["--jitter", str(jitter), "--buildings", str(buildings)]
        sandbox_args += ["--units", str(units)]
        serve_args = ["serve", "--port", str(gateway_port), "--config", str(config)]
        serve_args += ["--workers", str(workers), "--log-level", "warning"]
        try:
            with (
                running(sandbox_args, f"{sandbox}/healthz", env),
                running(serve_args, f"{gateway}/healthz", env) as server,
            ):
                sys.stderr.write("measuring upstream requests per query and one round trip...\n")
                upstream = asyncio.run(_upstream_counts(gateway, sandbox))
                trip = asyncio.run(_round_trip(sandbox))
                asyncio.run(_drive(gateway, 1, 2))
                cpu_before = _cpu_seconds(server.pid)
                sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
                driven = asyncio.run(_drive(gateway, concurrency, seconds))
                cpu_after = _cpu_seconds(server.pid)
        except DidNotStart as error:
            raise SystemExit(f"gateway bench: {error}") from error
    return _report(
        driven,
        upstream,
        trip,
        cpu_before,
        cpu_after,
        workers,
        out,
        {
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
            "workers": workers,
            "buildings": buildings,
            "units_per_building": units,
        },
    )


def _report(
    driven: dict[str, Any],
    upstream: dict[str, int],
    trip: float,
    cpu_before: float | None,
    cpu_after: float | None,
    workers: int,
    out: Path | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    queries = []
    for item in MIX:
        samples = driven["latencies"].get(item.name, [])
        p50 = statistics.median(samples) if samples else 0.0
        ideal = item.depth * trip
        count = len(samples)
        queries.append(
            {
                "name": item.name,
                "count": count,
                "errors": driven["errors"].get(item.name, 0),
                "p50_ms": round(p50 * 1000, 2),
                "p95_ms": round(_percentile(samples, 0.95) * 1000, 2),
                "p99_ms": round(_percentile(samples, 0.99) * 1000, 2),
                "ideal_ms": round(ideal * 1000, 2),
                "overhead_ratio": round(p50 / ideal, 3) if ideal > 0.001 else None,
                "upstream_requests": upstream.get(item.name),
                "minimum_upstream_requests": item.minimum,
                "objects_per_query": round(driven["objects"].get(item.name, 0) / count, 1)
                if count
                else 0,
            }
        )
    total_objects = sum(driven["objects"].values())
    cpu = (
        cpu_after - cpu_before
        if workers == 1 and cpu_before is not None and cpu_after is not None
        else None
    )
    result = {
        "settings": settings,
        "round_trip_ms": round(trip * 1000, 2),
        "requests_per_second": round(driven["queries"] / driven["seconds"], 1),
        "queries": queries,
        "gateway_cpu_seconds": round(cpu, 3) if cpu is not None else None,
        "cpu_us_per_query": round(cpu / driven["queries"] * 1e6, 1)
        if cpu is not None and driven["queries"]
        else None,
        "cpu_us_per_object": round(cpu / total_objects * 1e6, 2)
        if cpu is not None and total_objects
        else None,
    }
    text = json.dumps(result, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        f"{'query':26} {'n':>6} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'ideal':>7} {'ratio':>6} {'upstream':>8}"
    ]
    for q in result["queries"]:
        ratio = f"{q['overhead_ratio']:.2f}" if q["overhead_ratio"] is not None else "-"
        rows.append(
            f"{q['name']:26} {q['count']:6d} {q['errors']:4d} {q['p50_ms']:8.2f} "
            f"{q['p95_ms']:8.2f} {q['p99_ms']:8.2f} {q['ideal_ms']:7.2f} {ratio:>6} "
            f"{q['upstream_requests']!s:>8}"
        )
    rows.append(
        f"requests/s {result['requests_per_second']}, one upstream round trip "
        f"{result['round_trip_ms']} ms, gateway CPU {result['cpu_us_per_query']} µs/query, "
        f"{result['cpu_us_per_object']} µs/object"
    )
    return "\n".join(rows)
