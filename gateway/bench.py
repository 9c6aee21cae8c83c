"""`gateway bench`: what the gateway adds to what the providers themselves cost.

It starts the sandbox providers on a loopback port with a chosen upstream
latency, starts the gateway against them as if they were real (real servers,
real sockets), drives a fixed query mix at a given concurrency for a given
time, and reports requests per second, latency percentiles, errors, upstream
requests per query (from the sandbox's counters), each query's ideal latency
(its dependency depth times one upstream round trip, measured against the
sandbox directly in the same run) and the overhead ratio between the two.

The ideal leaves out what the providers themselves spend on a query and how
they fare under load, so an ideal client is also driven: it replays the very
requests the gateway made for each query, level by level, straight at the
sandbox, with the same concurrency and duration. What the gateway adds to
that client's latency is what a user pays for the gateway.

With `--latency 0` the gateway's own CPU per query and per returned object is
what is left to see.

`--fault-run` asks another question: while one provider stalls for the middle third of
the run, how many of the other providers' queries still get through, and how long the
gateway takes to stop waiting for the stalled one.
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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from gateway.loopback import DidNotStart, free_port, running
from gateway.sandbox import PROVIDERS, Sandbox
from gateway.sandbox.data import WorldSize
from gateway.vault import Vault

__all__ = [
    "FAULT_MIX",
    "MIX",
    "BenchQuery",
    "Upstream",
    "fault_run",
    "fault_table",
    "levels",
    "pick",
    "run",
    "scale",
    "scale_table",
    "table",
]

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
        "Primmo, one read of pms's property list (a page per 100 properties), one request per "
        "SCOM landlord (its own token); MyCRM has no buildings",
    ),
    # Building:primmo:27 and Unit:primmo:28: the sandbox world's first building and its first
    # unit, Primmo's, numbered after the 26 landlord records of the default 20 landlords.
    BenchQuery(
        "node by id",
        '{ node(id: "QnVpbGRpbmc6cHJpbW1vOjI3") { ... on Building { sourceId name city } } }',
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
        'mutation { createTenant(input: {unitId: "VW5pdDpwcmltbW86Mjg", firstName: "Bench", '
        'lastName: "Mark"}) { tenant { sourceId } errors { code } } }',
        2,
        "2: the unit's codes (Primmo files tenants by codes), then the POST",
    ),
]


def pick(names: list[str] | None) -> list[BenchQuery]:
    """The mix, or the queries of it whose names contain one of `names`."""
    if not names:
        return MIX
    chosen = [item for item in MIX if any(name in item.name for name in names)]
    if not chosen:
        raise SystemExit(
            f"gateway bench: no query of the mix matches {names}; "
            f"the mix: {', '.join(item.name for item in MIX)}"
        )
    return chosen


def _config(directory: Path, sandbox: str, max_page: int) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "PROPGATE_CONFIG"}
    lines = [
        "[gateway]",
        f"max_page_size = {max_page}",
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
        options = Sandbox.options(name, sandbox)
        if options:
            lines.append(f"[providers.{name}.options]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
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


@dataclass(frozen=True)
class Upstream:
    """One request as a provider received it, to be sent again as it was."""

    provider: str
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: str
    arrived: float
    answered: float


def levels(requests: list[Upstream]) -> list[list[Upstream]]:
    """The requests as an ideal client sends them: one that arrived after another was
    answered may have needed that answer, so it waits for it; the others go together."""
    ordered = sorted(requests, key=lambda r: r.arrived)
    level_of: list[int] = []
    for index, request in enumerate(ordered):
        after = [level_of[i] + 1 for i in range(index) if ordered[i].answered <= request.arrived]
        level_of.append(max(after, default=0))
    grouped: list[list[Upstream]] = [[] for _ in range(max(level_of, default=-1) + 1)]
    for request, level in zip(ordered, level_of, strict=True):
        grouped[level].append(request)
    return grouped


RECORDING_LATENCY = 0.05
"""Upstream latency while a query's requests are recorded: long enough that the requests
sent together arrive together, long before any answer, whatever the bench's own latency."""


async def _upstream(
    gateway: str, sandbox: str, mix: list[BenchQuery], latency: float, jitter: float
) -> dict[str, list[list[Upstream]]]:
    """Each query alone, with every provider's record cleared before and read after: its
    upstream requests, grouped as an ideal client would send them. Token requests are left
    out: an ideal client, like the gateway, holds its tokens already."""
    plans = {}
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": KEY}) as http:

        async def slow_down(seconds: float, spread: float) -> None:
            for name in PROVIDERS:
                await http.post(
                    f"{sandbox}/sandbox/{name}/_sandbox/latency",
                    params={"seconds": seconds, "jitter": spread},
                )

        await slow_down(RECORDING_LATENCY, 0)
        for item in mix:
            for name in PROVIDERS:
                await http.post(f"{sandbox}/sandbox/{name}/_sandbox/requests/reset")
            await http.post(f"{gateway}/graphql", json={"query": item.query})
            made = []
            for name in PROVIDERS:
                seen = await http.get(f"{sandbox}/sandbox/{name}/_sandbox/requests/recent")
                made += [
                    Upstream(
                        name,
                        r["method"],
                        r["target"],
                        [tuple(h) for h in r["headers"]],
                        r["body"],
                        r["arrived"],
                        r["answered"],
                    )
                    for r in seen.json()["requests"]
                    if r["answered"] is not None and not r["token"]
                ]
            plans[item.name] = levels(made)
        await slow_down(latency, jitter)
    return plans


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


Ask = Callable[[BenchQuery], Awaitable[tuple[bool, Any]]]
"""Runs one query; whether it failed, and the data whose objects it returned."""


async def _load(
    concurrency: int, seconds: float, mix: list[BenchQuery], ask: Ask
) -> dict[str, Any]:
    """`concurrency` clients, each running the mix in turn (each from its own place in it)
    for `seconds`, with a progress line. The timeline holds every query as (start on
    `time.perf_counter()`, seconds, name, failed), for runs whose conditions change."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    objects: dict[str, int] = defaultdict(int)
    timeline: list[tuple[float, float, str, bool]] = []
    done = 0
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        turn = offset
        while time.monotonic() < stop:
            item = mix[turn % len(mix)]
            turn += 1
            started = time.perf_counter()
            failed, data = await ask(item)
            elapsed = time.perf_counter() - started
            latencies[item.name].append(elapsed)
            timeline.append((started, elapsed, item.name, failed))
            errors[item.name] += failed
            objects[item.name] += _objects(data)
            done += 1

    async def progress() -> None:
        started = time.monotonic()
        while time.monotonic() < stop:
            await asyncio.sleep(1)
            elapsed = time.monotonic() - started
            sys.stderr.write(f"\r  {elapsed:5.0f} s  {done:7d} queries  {done / elapsed:8.1f}/s")
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
        "timeline": timeline,
    }


def _client(connections: int, **options: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=60, limits=limits, **options)


async def _drive(
    gateway: str, concurrency: int, seconds: float, mix: list[BenchQuery]
) -> dict[str, Any]:
    async with _client(concurrency, headers={"X-API-Key": KEY}) as http:

        async def ask(item: BenchQuery) -> tuple[bool, Any]:
            try:
                response = await http.post(f"{gateway}/graphql", json={"query": item.query})
                body = response.json()
            except (httpx.HTTPError, ValueError):
                return True, None
            return response.status_code != 200 or bool(body.get("errors")), body.get("data")

        return await _load(concurrency, seconds, mix, ask)


async def _drive_direct(
    sandbox: str,
    concurrency: int,
    seconds: float,
    mix: list[BenchQuery],
    plans: dict[str, list[list[Upstream]]],
) -> dict[str, Any]:
    """The ideal client: each query's upstream requests, sent straight to the sandbox, every
    level's at once. It reads each answer whole but spends nothing on making sense of it."""
    widest = max((len(level) for plan in plans.values() for level in plan), default=1)
    async with _client(concurrency * widest) as http:

        async def send(request: Upstream) -> bool:
            try:
                response = await http.request(
                    request.method,
                    f"{sandbox}/sandbox/{request.provider}{request.target}",
                    headers=request.headers,
                    content=request.body.encode(),
                )
            except httpx.HTTPError:
                return True
            return response.status_code >= 400

        async def ask(item: BenchQuery) -> tuple[bool, Any]:
            failed = False
            for level in plans[item.name]:
                failed |= any(await asyncio.gather(*(send(request) for request in level)))
            return failed, None

        return await _load(concurrency, seconds, mix, ask)


@contextmanager
def _serving(
    *, latency: float, jitter: float, workers: int, buildings: int, units: int, max_page: int
) -> Iterator[tuple[str, str, int]]:
    """The sandbox and the gateway as real servers on loopback: (gateway, sandbox, gateway pid)."""
    with tempfile.TemporaryDirectory(prefix="propgate-bench-") as scratch:
        directory = Path(scratch)
        sandbox_port, gateway_port = free_port(), free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        config, env = _config(directory, sandbox, max_page)
        env["PROPGATE_VAULT_KEY"] = key = Fernet.generate_key().decode()
        vault = Vault(directory / "vault.sqlite3", key)
        world = WorldSize(buildings=buildings, units_per_building=(units, units))
        Sandbox(size=world).hand_over_tokens(vault)
        vault.close()
        sandbox_args = ["sandbox", "--port", str(sandbox_port), "--latency", str(latency)]
        sandbox_args += ["--jitter", str(jitter), "--buildings", str(buildings)]
        sandbox_args += ["--min-units", str(units), "--max-units", str(units)]
        serve_args = ["serve", "--port", str(gateway_port), "--config", str(config)]
        serve_args += ["--workers", str(workers), "--log-level", "warning"]
        try:
            with (
                running(sandbox_args, f"{sandbox}/healthz", env),
                running(serve_args, f"{gateway}/healthz", env) as server,
            ):
                yield gateway, sandbox, server.pid
        except DidNotStart as error:
            raise SystemExit(f"gateway bench: {error}") from error


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
    mix: list[BenchQuery] = MIX,
) -> dict[str, Any]:
    with _serving(
        latency=latency,
        jitter=jitter,
        workers=workers,
        buildings=buildings,
        units=units,
        max_page=1000,
    ) as (gateway, sandbox, pid):
        sys.stderr.write("measuring upstream requests per query and one round trip...\n")
        asyncio.run(_drive(gateway, 1, 2, mix))
        plans = asyncio.run(_upstream(gateway, sandbox, mix, latency, jitter))
        trip = asyncio.run(_round_trip(sandbox))
        cpu_before = _cpu_seconds(pid)
        sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
        driven = asyncio.run(_drive(gateway, concurrency, seconds, mix))
        cpu_after = _cpu_seconds(pid)
        sys.stderr.write(
            f"the ideal client, straight to the sandbox: {concurrency} clients "
            f"for {seconds:.0f} s\n"
        )
        direct = asyncio.run(_drive_direct(sandbox, concurrency, seconds, mix, plans))
    return _report(
        driven,
        direct,
        plans,
        trip,
        cpu_before,
        cpu_after,
        workers,
        out,
        mix,
        {
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
            "workers": workers,
            "buildings": buildings,
            "units_per_building": units,
            "queries": [item.name for item in mix],
        },
    )


SIZES = (100, 1_000, 10_000)
CLIENTS = (1, 8, 32, 128)


def _units(size: int) -> str:
    return (
        f'{{ units(first: {size}, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode rooms } } } }"
    )


def _memory_mb(pid: int, field: str) -> float | None:
    """`VmRSS` (now) or `VmHWM` (the peak so far) of a process, from /proc; None elsewhere."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


async def _by_size(gateway: str, pid: int, repeats: int) -> list[dict[str, Any]]:
    """Each size after the one before, so the process's peak memory so far is this size's."""
    rows = []
    async with httpx.AsyncClient(timeout=300, headers={"X-API-Key": KEY}) as http:
        for size in SIZES:
            query = {"query": _units(size)}
            body = (await http.post(f"{gateway}/graphql", json=query)).json()
            if body.get("errors"):
                raise SystemExit(f"gateway bench: the {size}-unit query failed: {body['errors']}")
            returned = len(body["data"]["units"]["edges"])
            times = []
            cpu = _cpu_seconds(pid)
            for _ in range(repeats):
                started = time.perf_counter()
                (await http.post(f"{gateway}/graphql", json=query)).raise_for_status()
                times.append(time.perf_counter() - started)
            spent = _cpu_seconds(pid)
            per_query = (spent - cpu) / repeats if spent is not None and cpu is not None else None
            rows.append(
                {
                    "units": returned,
                    "p50_ms": round(statistics.median(times) * 1000, 1),
                    "cpu_ms_per_query": round(per_query * 1000, 1) if per_query else None,
                    "cpu_us_per_object": round(per_query / returned * 1e6, 1)
                    if per_query and returned
                    else None,
                    "peak_rss_mb": _memory_mb(pid, "VmHWM"),
                }
            )
    return rows


def scale(*, latency: float, jitter: float, seconds: float, out: Path | None) -> dict[str, Any]:
    """How time and memory grow with the size of a result, then with the number of clients.

    Sizes are served by a world of 7,500 buildings (10,000 Primmo units) on one gateway
    process; clients drive the usual mix against the usual world, one gateway process
    each time, so each row starts from the same state.
    """
    sizes: list[dict[str, Any]] = []
    with _serving(
        latency=latency, jitter=jitter, workers=1, buildings=7500, units=4, max_page=10_000
    ) as (gateway, _, pid):
        idle = _memory_mb(pid, "VmRSS")
        sys.stderr.write(f"result sizes {', '.join(map(str, SIZES))} units...\n")
        sizes = asyncio.run(_by_size(gateway, pid, repeats=5))
    clients: list[dict[str, Any]] = []
    for concurrency in CLIENTS:
        with _serving(
            latency=latency, jitter=jitter, workers=1, buildings=750, units=4, max_page=1000
        ) as (gateway, _, pid):
            asyncio.run(_drive(gateway, 1, 2, MIX))
            sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
            driven = asyncio.run(_drive(gateway, concurrency, seconds, MIX))
            every = [t for samples in driven["latencies"].values() for t in samples]
            nested = driven["latencies"].get(MIX[0].name, [])
            clients.append(
                {
                    "clients": concurrency,
                    "requests_per_second": round(driven["queries"] / driven["seconds"], 1),
                    "p50_ms": round(statistics.median(every) * 1000, 1) if every else None,
                    "p99_ms": round(_percentile(every, 0.99) * 1000, 1) if every else None,
                    "nested_p50_ms": round(statistics.median(nested) * 1000, 1) if nested else None,
                    "errors": sum(driven["errors"].values()),
                    "peak_rss_mb": _memory_mb(pid, "VmHWM"),
                }
            )
    result = {
        "settings": {"latency": latency, "jitter": jitter, "seconds": seconds},
        "idle_rss_mb": idle,
        "sizes": sizes,
        "clients": clients,
    }
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def scale_table(result: dict[str, Any]) -> str:
    rows = [
        f"gateway process at rest: {result['idle_rss_mb']} MB",
        f"{'units':>7} {'p50 ms':>8} {'CPU ms':>8} {'µs/object':>10} {'peak MB':>8}",
    ]
    for row in result["sizes"]:
        rows.append(
            f"{row['units']:7d} {row['p50_ms']:8.1f} {row['cpu_ms_per_query']!s:>8} "
            f"{row['cpu_us_per_object']!s:>10} {row['peak_rss_mb']!s:>8}"
        )
    rows.append(
        f"{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'nested p50':>11} "
        f"{'errors':>7} {'peak MB':>8}"
    )
    for row in result["clients"]:
        rows.append(
            f"{row['clients']:7d} {row['requests_per_second']:8.1f} {row['p50_ms']!s:>8} "
            f"{row['p99_ms']!s:>8} {row['nested_p50_ms']!s:>11} {row['errors']:7d} "
            f"{row['peak_rss_mb']!s:>8}"
        )
    return "\n".join(rows)


FAULT_MIX = [
    BenchQuery(
        "primmo",
        '{ buildings(first: 10, providers: ["primmo"]) { edges { node { sourceId name } } } }',
        1,
        "1: Buildings with $top=11",
    ),
    BenchQuery(
        "mycrm",
        '{ landlords(first: 10, providers: ["mycrm"]) { edges { node { sourceId name } } } }',
        1,
        "1: a page of landlords",
    ),
    BenchQuery(
        "scom",
        '{ landlords(first: 10, providers: ["scom"]) { edges { node { sourceId name } } } }',
        1,
        "1: a relay page of landlords",
    ),
    BenchQuery(
        "leap",
        "{ relationships(first: 10) { edges { node { sourceId role } } } }",
        1,
        "1: a page of relationships",
    ),
]
"""One query per provider, each asking that provider alone, so a stall shows under one name.
pms is left out: the sandbox's pms allows 1,000 requests an hour, which one run would spend,
and its refusals would hide what the stall does."""

SHED = 1.0
"""A stalled provider's query that fails faster than this was shed, not waited for."""


async def _stall_midway(
    gateway: str, sandbox: str, stall: str, concurrency: int, seconds: float
) -> tuple[dict[str, Any], float, float, float]:
    """The fault mix driven for `seconds` while `stall` stalls for the middle third: the run,
    and when it began, when the stall began and when it ended (`time.perf_counter()`).

    Each stalled request is held a third of the run, so the last is answered as the run
    ends and the sandbox can stop (it finishes what it holds before it exits)."""

    async def fault(kind: str) -> float:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                f"{sandbox}/sandbox/{stall}/_sandbox/fault",
                params={"kind": kind, "seconds": seconds / 3},
            )
            answer.raise_for_status()
        return time.perf_counter()

    async def middle_third() -> tuple[float, float]:
        await asyncio.sleep(seconds / 3)
        began = await fault("slow")
        await asyncio.sleep(seconds / 3)
        return began, await fault("none")

    started = time.perf_counter()
    driven, (began, ended) = await asyncio.gather(
        _drive(gateway, concurrency, seconds, FAULT_MIX), middle_third()
    )
    return driven, started, began, ended


def _phases(
    timeline: list[tuple[float, float, str, bool]],
    stall: str,
    bounds: list[tuple[str, float, float]],
) -> list[dict[str, Any]]:
    """Per phase, the queries that ended in it: the others' successes per second and p50,
    the stalled provider's successes and failures per second and p50."""
    rows = []
    for phase, start, stop in bounds:
        ended = [
            (seconds, name, failed)
            for began, seconds, name, failed in timeline
            if start <= began + seconds < stop
        ]
        others = [seconds for seconds, name, failed in ended if name != stall and not failed]
        stalled = [(seconds, failed) for seconds, name, failed in ended if name == stall]
        length = stop - start
        rows.append(
            {
                "phase": phase,
                "seconds": round(length, 1),
                "others_ok_per_second": round(len(others) / length, 1),
                "others_p50_ms": round(statistics.median(others) * 1000, 1) if others else None,
                "stalled_ok_per_second": round(
                    sum(1 for _, failed in stalled if not failed) / length, 1
                ),
                "stalled_failed_per_second": round(
                    sum(1 for _, failed in stalled if failed) / length, 1
                ),
                "stalled_p50_ms": round(
                    statistics.median(seconds for seconds, _ in stalled) * 1000, 1
                )
                if stalled
                else None,
            }
        )
    return rows


def fault_run(
    *,
    stall: str,
    latency: float,
    jitter: float,
    concurrency: int,
    seconds: float,
    out: Path | None,
) -> dict[str, Any]:
    """`concurrency` clients for `seconds`; `stall` stops answering for the middle third.

    Reported: each phase's throughput for the other providers and for the stalled one; the
    time from the stall's start to its first shed query (one that failed within `SHED`);
    and, second by second during the stall, how many of the others' queries got through,
    with the seconds in which fewer than half the rate before the stall did.
    """
    if stall not in {item.name for item in FAULT_MIX}:
        raise SystemExit(
            f"gateway bench: --stall takes one of {', '.join(item.name for item in FAULT_MIX)}"
        )
    with _serving(
        latency=latency, jitter=jitter, workers=1, buildings=750, units=4, max_page=1000
    ) as (gateway, sandbox, _):
        asyncio.run(_drive(gateway, 1, 2, FAULT_MIX))
        sys.stderr.write(
            f"fault run: {concurrency} clients for {seconds:.0f} s, {stall} stalls "
            "for the middle third\n"
        )
        driven, started, began, ended = asyncio.run(
            _stall_midway(gateway, sandbox, stall, concurrency, seconds)
        )
    timeline = driven["timeline"]
    bounds = [
        ("before", started, began),
        ("during", began, ended),
        ("after", ended, started + seconds),
    ]
    phases = _phases(timeline, stall, bounds)
    shed = [
        start + spent - began
        for start, spent, name, failed in timeline
        if name == stall and failed and spent < SHED and start + spent >= began
    ]
    per_second = [
        sum(
            1
            for start, spent, name, failed in timeline
            if name != stall and not failed and began + second <= start + spent < began + second + 1
        )
        for second in range(int(ended - began))
    ]
    before_rate = phases[0]["others_ok_per_second"]
    result = {
        "settings": {
            "stall": stall,
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
        },
        "phases": phases,
        "shed_seconds": round(min(shed), 2) if shed else None,
        "others_ok_each_second_of_the_stall": per_second,
        "seconds_below_half": sum(1 for count in per_second if count < before_rate / 2),
    }
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def fault_table(result: dict[str, Any]) -> str:
    stall = result["settings"]["stall"]
    rows = [
        f"{'phase':8} {'others ok/s':>12} {'others p50 ms':>14} {stall + ' ok/s':>12} "
        f"{stall + ' failed/s':>14} {stall + ' p50 ms':>14}"
    ]
    for row in result["phases"]:
        rows.append(
            f"{row['phase']:8} {row['others_ok_per_second']:12.1f} {row['others_p50_ms']!s:>14} "
            f"{row['stalled_ok_per_second']:12.1f} {row['stalled_failed_per_second']:14.1f} "
            f"{row['stalled_p50_ms']!s:>14}"
        )
    rows.append(
        f"time to shed {result['shed_seconds']} s; the others' queries each second of the "
        f"stall: {result['others_ok_each_second_of_the_stall']} "
        f"({result['seconds_below_half']} s below half the rate before)"
    )
    return "\n".join(rows)


def _report(
    driven: dict[str, Any],
    direct: dict[str, Any],
    plans: dict[str, list[list[Upstream]]],
    trip: float,
    cpu_before: float | None,
    cpu_after: float | None,
    workers: int,
    out: Path | None,
    mix: list[BenchQuery],
    settings: dict[str, Any],
) -> dict[str, Any]:
    queries = []
    for item in mix:
        samples = driven["latencies"].get(item.name, [])
        p50 = statistics.median(samples) if samples else 0.0
        ideal = item.depth * trip
        count = len(samples)
        replayed = direct["latencies"].get(item.name, [])
        direct_p50 = statistics.median(replayed) if replayed else 0.0
        plan = plans.get(item.name, [])
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
                "direct_p50_ms": round(direct_p50 * 1000, 2),
                "direct_errors": direct["errors"].get(item.name, 0),
                "ratio_to_direct": round(p50 / direct_p50, 3) if direct_p50 else None,
                "upstream_requests": sum(len(level) for level in plan),
                "upstream_levels": len(plan),
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
        "direct_requests_per_second": round(direct["queries"] / direct["seconds"], 1),
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
        f"{'ideal':>7} {'ratio':>6} {'direct':>8} {'ratio':>6} {'upstream':>8}"
    ]
    for q in result["queries"]:
        ratio = f"{q['overhead_ratio']:.2f}" if q["overhead_ratio"] is not None else "-"
        to_direct = f"{q['ratio_to_direct']:.2f}" if q["ratio_to_direct"] is not None else "-"
        rows.append(
            f"{q['name']:26} {q['count']:6d} {q['errors']:4d} {q['p50_ms']:8.2f} "
            f"{q['p95_ms']:8.2f} {q['p99_ms']:8.2f} {q['ideal_ms']:7.2f} {ratio:>6} "
            f"{q['direct_p50_ms']:8.2f} {to_direct:>6} {q['upstream_requests']!s:>8}"
        )
    rows.append(
        f"requests/s {result['requests_per_second']} (the ideal client: "
        f"{result['direct_requests_per_second']}), one upstream round trip "
        f"{result['round_trip_ms']} ms, gateway CPU {result['cpu_us_per_query']} µs/query, "
        f"{result['cpu_us_per_object']} µs/object"
    )
    rows.append(
        "ideal: depth x round trip; direct: p50 of the ideal client, which replays the "
        "query's upstream requests straight to the sandbox at the same concurrency"
    )
    return "\n".join(rows)
