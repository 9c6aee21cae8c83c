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
that client's latency is what a user pays for the gateway. `--clients 1,8,32`
measures both at each number of clients.

Each query has variants (pages, ids, dates) and clients ask them in turn from
their own places, so clients running side by side ask different things, as real
callers do: identical reads in flight, which the gateway sends upstream once,
would flatter it. The ideal client replays each variant's own requests.

With `--latency 0` the gateway's own CPU per query and per returned object is
what is left to see.

`--fault-run` asks another question: while one provider stalls for the middle third of
the run, how many of the other providers' queries still get through, and how long the
gateway takes to stop waiting for the stalled one.

One module per job: `mix` (the queries), `vary` (their variants, read from the world),
`serving` (the sandbox and gateway processes), `drive` (the load), `ideal` (the ideal
client), `overhead`, `scale` and `fault_run` (the three runs), `report` (their tables and
JSON), `process` (what /proc says of the gateway, its worker processes included).
"""

from gateway.tools.bench.fault_run import fault_run
from gateway.tools.bench.ideal import ReceivedRequest, levels
from gateway.tools.bench.mix import FAULT_MIX, MIX, BenchQuery, pick
from gateway.tools.bench.overhead import run
from gateway.tools.bench.report import fault_table, scale_table, table
from gateway.tools.bench.scale import scale

__all__ = [
    "FAULT_MIX",
    "MIX",
    "BenchQuery",
    "ReceivedRequest",
    "fault_run",
    "fault_table",
    "levels",
    "pick",
    "run",
    "scale",
    "scale_table",
    "table",
]
