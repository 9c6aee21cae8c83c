"""While one provider stalls for the middle third of a run, how the others' queries fare
and how long the gateway takes to stop waiting for the stalled one."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.tools.bench.drive import drive
from gateway.tools.bench.mix import FAULT_MIX
from gateway.tools.bench.report import save
from gateway.tools.bench.serving import serving

__all__ = ["SHED", "fault_run", "phases"]


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
        drive(gateway, concurrency, seconds, FAULT_MIX), middle_third()
    )
    return driven, started, began, ended


def phases(
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
    with serving(
        latency=latency, jitter=jitter, workers=1, buildings=750, units=4, max_page=1000
    ) as (gateway, sandbox, _):
        asyncio.run(drive(gateway, 1, 2, FAULT_MIX))
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
    phased = phases(timeline, stall, bounds)
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
    before_rate = phased[0]["others_ok_per_second"]
    result = {
        "settings": {
            "stall": stall,
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
        },
        "phases": phased,
        "shed_seconds": round(min(shed), 2) if shed else None,
        "others_ok_each_second_of_the_stall": per_second,
        "seconds_below_half": sum(1 for count in per_second if count < before_rate / 2),
    }
    save(result, out)
    return result
