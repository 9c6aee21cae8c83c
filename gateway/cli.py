"""`gateway serve` runs the gateway (on the sandbox unless configured).

`gateway schema` prints the SDL that codegen clients build from; `gateway safelist`
the manifest of the operations a safelisted gateway runs; `gateway graphiql-assets`
fetches GraphiQL's files when the install could not; `gateway links` rebuilds the links
between providers' records, or measures the rules.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys

from gateway.errors import ConfigError

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.config import load_settings
    from gateway.edge.app import create_app
    from gateway.edge.http11 import Http11
    from gateway.observability.logs import logging_config

    log_format = args.log_format
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    log_config = logging_config(log_format, args.log_level)
    logging.config.dictConfig(log_config)
    loopback = args.host in ("0.0.0.0", "::", "")
    self_url = f"http://{'127.0.0.1' if loopback else args.host}:{args.port}"
    if args.workers > 1:
        if not (args.config or os.environ.get("PROPGATE_CONFIG")):
            sys.exit(
                "gateway: --workers needs real providers (--config): each worker would "
                "otherwise run its own sandbox"
            )
        os.environ["PROPGATE_CONFIG"] = args.config or os.environ["PROPGATE_CONFIG"]
        os.environ["PROPGATE_SELF_URL"] = self_url
        uvicorn.run(
            "gateway.edge.app:from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            log_config=log_config,
            http=Http11,
        )
        return
    try:
        settings = load_settings(args.config)
        rebuilding = settings.uses_sandbox and settings.links.rebuild_at_start
        app = create_app(settings, self_url=self_url, rebuild_links=rebuilding, freeze_heap=True)
    except ConfigError as error:
        sys.exit(f"gateway: {error}")
    logging.getLogger("gateway").info("GraphQL at %s/graphql", self_url)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=log_config,
        http=Http11,
    )


def _sandbox(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.config import SandboxSettings
    from gateway.observability.logs import logging_config
    from gateway.sandbox import Sandbox
    from gateway.sandbox.data import WorldSize

    logging.config.dictConfig(logging_config("text" if sys.stderr.isatty() else "json"))
    sandbox = Sandbox(
        seed=args.seed,
        size=WorldSize(
            landlords=SandboxSettings().landlords,
            buildings=args.buildings,
            units_per_building=(args.min_units, args.max_units),
        ),
    )
    for state in sandbox.states.values():
        state.latency, state.jitter = args.latency, args.jitter
    if args.callback_url:
        sandbox.states["scom"].callback_url = args.callback_url
    logging.getLogger("gateway").info(
        "sandbox providers at http://%s:%s/sandbox/<host> (%s)",
        args.host,
        args.port,
        ", ".join(host for hosts in sandbox.hosts.values() for host in hosts),
    )
    uvicorn.run(sandbox.app(), host=args.host, port=args.port, log_level="warning")


def _webhooks(args: argparse.Namespace) -> None:
    """Shows or changes what providers send webhooks for, using the configured providers."""
    import asyncio

    from gateway.config import load_settings
    from gateway.connectors.capabilities import WebhookSource
    from gateway.edge.app import build_gateway
    from gateway.errors import GatewayError

    try:
        settings = load_settings(args.config)
        gateway = build_gateway(settings, self_url=args.url or "http://127.0.0.1:8000")
    except ConfigError as error:
        sys.exit(f"gateway: {error}")
    public_url = args.url or settings.gateway.public_url

    async def run() -> bool:
        """Whether every provider answered: one that did not is told, and the command fails,
        so a script that subscribes does not go on as if it had."""
        answered = True
        try:
            for name, connector in gateway.federation.capable(WebhookSource).items():
                try:
                    if args.action == "subscribe":
                        if not public_url:
                            sys.exit("gateway: give --url or set [gateway] public_url")
                        entities = await connector.subscribe_webhooks(public_url)
                    elif args.action == "unsubscribe":
                        entities = await connector.unsubscribe_webhooks()
                    else:
                        entities = await connector.webhook_subscriptions()
                except GatewayError as error:
                    sys.stdout.write(f"{name}: {error.code}: {error.message}\n")
                    answered = False
                    continue
                sys.stdout.write(f"{name}: {', '.join(entities) or '-'}\n")
        finally:
            await gateway.aclose()
        return answered

    if not asyncio.run(run()):
        sys.exit(1)


def _bench(args: argparse.Namespace) -> None:
    from pathlib import Path
    from typing import Any

    from gateway.tools.bench import fault_run, fault_table, pick, run, scale, scale_table, table
    from gateway.tools.bench.mesh import mesh_table, side_by_side
    from gateway.tools.bench.wire import wire, wire_table

    common: dict[str, Any] = {
        "latency": args.latency,
        "jitter": args.jitter,
        "seconds": args.seconds,
        "out": Path(args.out) if args.out else None,
    }
    if args.mesh:
        printed = mesh_table(
            side_by_side(
                **common, concurrency=args.concurrency, rounds=args.rounds, workers=args.workers
            )
        )
    elif args.wire:
        printed = wire_table(wire(rounds=args.rounds, requests=args.requests, out=common["out"]))
    elif args.fault_run:
        printed = fault_table(fault_run(**common, stall=args.stall, concurrency=args.concurrency))
    elif args.scale:
        printed = scale_table(scale(**common))
    else:
        clients = [int(n) for n in args.clients.split(",")] if args.clients else [args.concurrency]
        result = run(
            **common,
            clients=clients,
            workers=args.workers,
            buildings=args.buildings,
            units=args.units,
            mix=pick(args.query),
            compiled=not args.graphql_core,
        )
        printed = table(result)
    sys.stdout.write(printed + "\n")


def _links(args: argparse.Namespace) -> None:
    from gateway.config import load_settings
    from gateway.tools.linking import bench, rebuild_now

    if args.action == "bench":
        sys.stdout.write(bench(args.records, args.seed or [1, 2, 3], args.units))
        return
    try:
        settings = load_settings(args.config)
        code = rebuild_now(settings)
    except ConfigError as error:
        sys.exit(f"gateway: {error}")
    sys.exit(code)


def _graphiql_assets(_: argparse.Namespace) -> None:
    """The install's own step, again: for an install made without the npm registry."""
    from gateway.edge.graphiql.assets import DIRECTORY, AssetsUnavailable, fetch

    try:
        fetched = fetch()
    except AssetsUnavailable as error:
        sys.exit(f"gateway: GraphiQL's files could not be fetched: {error}")
    except OSError as error:
        sys.exit(f"gateway: GraphiQL's files could not be written to {DIRECTORY}: {error}")
    done = "fetched into" if fetched else "already in"
    sys.stdout.write(f"GraphiQL's files {done} {DIRECTORY}\n")


def _schema(_: argparse.Namespace) -> None:
    from schema import sdl

    sys.stdout.write(sdl())


def _safelist(args: argparse.Namespace) -> None:
    """A manifest of operations that run: one that does not validate against this gateway's
    schema would be refused on every call, so it is refused here, where it is written."""
    import json

    from graphql import build_schema, parse, validate

    from gateway.edge.persisted.safelist import manifest_of
    from schema import sdl

    try:
        manifest = manifest_of(args.files)
    except ConfigError as error:
        sys.exit(f"gateway: {error}")
    except OSError as error:
        sys.exit(f"gateway: cannot read {error.filename}: {error.strerror}")
    schema = build_schema(sdl())
    invalid = [
        f"{path}: {errors[0].message}"
        for path, operation in zip(args.files, manifest["operations"], strict=True)
        if (errors := validate(schema, parse(operation["body"])))
    ]
    if invalid:
        sys.exit("gateway: operations this gateway would refuse:\n" + "\n".join(invalid))
    sys.stdout.write(json.dumps(manifest, indent=2) + "\n")


class _SaysDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every option says its default in `--help`, so none has to be looked up; an option
    whose default is nothing (unset, a flag off) says what unset means in its own words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args)


def parser() -> argparse.ArgumentParser:
    from gateway.config import SandboxSettings

    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, formatter_class=_SaysDefaults)

    serve = command("serve", "run the gateway")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--config", help="TOML settings (default: $PROPGATE_CONFIG, else the sandbox)"
    )
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="the least severe level logged",
    )
    serve.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        default="auto",
        help="text for a person on a terminal, one JSON object per line otherwise (auto), "
        "or either always",
    )
    serve.set_defaults(run=_serve)
    command("schema", "print the GraphQL SDL").set_defaults(run=_schema)
    safelist = command(
        "safelist",
        "print the persisted query manifest of operation files, one operation each "
        "(README: Persisted queries)",
    )
    safelist.add_argument("files", nargs="+", help=".graphql files")
    safelist.set_defaults(run=_safelist)
    command(
        "graphiql-assets",
        "fetch GraphiQL's pinned files from the npm registry (the install does this; "
        "run it when the install could not reach the registry)",
    ).set_defaults(run=_graphiql_assets)
    sandbox = command(
        "sandbox",
        "serve the sandbox providers on their own, for a gateway configured "
        "with their URLs (providers then outlive gateway restarts)",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=9000, help="port to listen on")
    world = SandboxSettings()
    sandbox.add_argument("--seed", type=int, default=world.seed, help="the generated world's seed")
    sandbox.add_argument(
        "--buildings", type=int, default=world.buildings, help="buildings in the world"
    )
    sandbox.add_argument(
        "--min-units",
        type=int,
        default=world.min_units_per_building,
        help="fewest units per building",
    )
    sandbox.add_argument(
        "--max-units",
        type=int,
        default=world.max_units_per_building,
        help="most units per building",
    )
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    sandbox.add_argument("--jitter", type=float, default=0.0, help="± seconds per request")
    sandbox.add_argument(
        "--callback-url",
        help="where SCOM calls back (the gateway's /webhooks/scom); unset, it calls no one",
    )
    sandbox.set_defaults(run=_sandbox)
    webhooks = command("webhooks", "see or change which provider webhooks reach this gateway")
    webhooks.add_argument(
        "action", choices=("status", "subscribe", "unsubscribe"), help="what to do"
    )
    webhooks.add_argument("--config", help="TOML settings (default: $PROPGATE_CONFIG)")
    webhooks.add_argument("--url", help="the gateway's public URL (default: [gateway] public_url)")
    webhooks.set_defaults(run=_webhooks)
    links = command(
        "links",
        "rebuild the links between providers' records by the matching rules (README: Linking "
        "records), or measure the rules on sandbox worlds (bench)",
    )
    links.add_argument("action", choices=("rebuild", "bench"), help="what to do")
    links.add_argument(
        "--config", help="TOML settings (default: $PROPGATE_CONFIG, else the sandbox)"
    )
    links.add_argument(
        "--records", type=int, default=10_000, help="bench: records per provider in its worlds"
    )
    links.add_argument("--units", type=int, default=40, help="bench: units per building")
    links.add_argument(
        "--seed", type=int, action="append", help="bench: a world's seed (repeatable; 1, 2, 3)"
    )
    links.set_defaults(run=_links)
    bench = command(
        "bench", "measure the gateway against the sandbox on loopback (README: Performance)"
    )
    bench.add_argument("--latency", type=float, default=0.020, help="upstream seconds per request")
    bench.add_argument("--jitter", type=float, default=0.005, help="± seconds per request")
    bench.add_argument("--concurrency", type=int, default=32, help="clients at once")
    bench.add_argument(
        "--clients",
        help="several numbers of clients, e.g. 1,8,32: the mix and the ideal client at each, "
        "on one gateway, then each query's ratio to the ideal client at each",
    )
    bench.add_argument("--seconds", type=float, default=20, help="how long the mix is driven")
    bench.add_argument("--workers", type=int, default=1, help="gateway uvicorn workers")
    bench.add_argument(
        "--buildings", type=int, default=750, help="a third are Primmo's: 750 x 4 = 1,000 units"
    )
    bench.add_argument("--units", type=int, default=4, help="units per building")
    bench.add_argument("--out", default="bench-result.json", help="JSON results ('' for none)")
    bench.add_argument(
        "--query",
        action="append",
        help="only the mix's queries whose names contain this (repeatable), e.g. '1,000'",
    )
    bench.add_argument(
        "--scale",
        action="store_true",
        help="time and memory by result size (100, 1,000, 10,000 units), then by clients "
        "(1, 8, 32, 128) for --seconds each",
    )
    bench.add_argument(
        "--fault-run",
        action="store_true",
        help="one query per provider while --stall stops answering for the middle third: "
        "throughput before, during and after, and the time to shed (README: Traffic)",
    )
    bench.add_argument("--stall", default="primmo", help="the provider that stalls (--fault-run)")
    bench.add_argument(
        "--mesh",
        action="store_true",
        help="propgate and GraphQL Mesh (installed by npm into ~/.cache/propgate) on the nested "
        "query, in turns, on one sandbox (README: Performance)",
    )
    bench.add_argument(
        "--wire",
        action="store_true",
        help="CPU per upstream request on httpx's own transport and on the gateway's (aiohttp), "
        "in turns, against the sandbox (README: Performance)",
    )
    bench.add_argument(
        "--rounds", type=int, default=3, help="turns each side gets (--mesh, --wire)"
    )
    bench.add_argument(
        "--requests", type=int, default=500, help="requests per turn and page (--wire)"
    )
    bench.add_argument(
        "--graphql-core",
        action="store_true",
        help="the gateway with compiled_execution = false: every operation through graphql-core",
    )
    bench.set_defaults(run=_bench)
    return parser
