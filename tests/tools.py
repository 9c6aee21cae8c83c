"""Tools a few tests install at run time, once, into a per-user cache.

Some tools cannot live in the test environment itself: an npm package needs
Node.js, and ariadne-codegen pins a graphql-core older than Strawberry's. A
test that cannot get its tool is skipped with the reason, unless the
comma-separated `PROPGATE_REQUIRE` names that tool (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from gateway.tools.installs import NotInstalled, installed, npm_packages

__all__ = ["npm_package", "python_tool", "unavailable"]

_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "propgate-tests"


def unavailable(tool: str, reason: str) -> NoReturn:
    required = {name.strip() for name in os.environ.get("PROPGATE_REQUIRE", "").split(",")}
    if tool in required:
        pytest.fail(f"{reason} (PROPGATE_REQUIRE names {tool}, so this is not skipped)")
    pytest.skip(reason)


def _installed(place: Path, install: list[str], tool: str) -> Path:
    try:
        return installed(place, install)
    except NotInstalled as error:
        unavailable(tool, f"cannot install {tool}: {error}")


def npm_package(*specs: str, tool: str = "node") -> Path:
    """The `node_modules` holding the npm packages `specs` (`name@version`), installed
    together; `tool` is the name `PROPGATE_REQUIRE` gives to insist on them."""
    try:
        return npm_packages(*specs, cache=_CACHE)
    except NotInstalled as error:
        unavailable(tool, f"cannot install {tool}: {error}")


def python_tool(spec: str, command: str) -> Path:
    """The executable `command` of the PyPI package `spec` (`name==version`), in a virtual
    environment of its own."""
    tool = spec.partition("==")[0]
    script = (
        "import subprocess, sys, venv; venv.create(sys.argv[1], with_pip=True); "
        "subprocess.run([sys.argv[1] + '/bin/pip', 'install', '-q', sys.argv[2]], check=True)"
    )
    place = _installed(_CACHE / "venv" / spec, [sys.executable, "-c", script, "{}", spec], tool)
    return place / "bin" / command
