"""The sandbox and the gateway as real servers on loopback, configured for a run."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from gateway.sandbox import PROVIDERS, Sandbox
from gateway.sandbox.data import WorldSize
from gateway.sandbox.primmo import token_request
from gateway.state.vault import Vault
from gateway.tools.loopback import DidNotStart, free_ports, running

__all__ = ["KEY", "primmo_token", "serving"]

KEY = "bench-caller-key"
"""The API key every bench client sends, the only caller the bench's gateway knows."""


def _config(
    directory: Path, sandbox: str, max_page: int, compiled: bool
) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "PROPGATE_CONFIG"}
    lines = [
        "[gateway]",
        f"max_page_size = {max_page}",
        f"compiled_execution = {'true' if compiled else 'false'}",
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
            lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    path = directory / "propgate.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, env


def _toml(value: Any) -> str:
    """An option's value in TOML: JSON's strings, numbers and lists are TOML's, its objects not
    (LEAP's `extid_forms` is a list of tables)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


@contextmanager
def serving(
    *,
    latency: float,
    jitter: float,
    workers: int,
    buildings: int,
    units: int,
    max_page: int,
    compiled: bool = True,
) -> Iterator[tuple[str, str, int]]:
    """The sandbox and the gateway as real servers on loopback: (gateway, sandbox, gateway pid)."""
    with tempfile.TemporaryDirectory(prefix="propgate-bench-") as scratch:
        directory = Path(scratch)
        sandbox_port, gateway_port = free_ports(2)
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        config, env = _config(directory, sandbox, max_page, compiled)
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


def primmo_token(sandbox: str) -> str:
    """A token from the sandbox Primmo."""
    answer = httpx.post(**token_request(f"{sandbox}/sandbox/primmo"), timeout=30)
    answer.raise_for_status()
    token: str = answer.json()
    return token
