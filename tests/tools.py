"""Tools a few tests install at run time, once, into a per-user cache.

Some tools cannot live in the test environment itself: an npm package needs
Node.js, and ariadne-codegen pins a graphql-core older than Strawberry's. A
test that cannot get its tool is skipped with the reason, unless the
comma-separated `PROPGATE_REQUIRE` names that tool (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["npm_package", "python_tool", "unavailable"]

_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "propgate-tests"


def unavailable(tool: str, reason: str) -> NoReturn:
    required = {name.strip() for name in os.environ.get("PROPGATE_REQUIRE", "").split(",")}
    if tool in required:
        pytest.fail(f"{reason} (PROPGATE_REQUIRE names {tool}, so this is not skipped)")
    pytest.skip(reason)


def _installed(place: Path, install: list[str], tool: str) -> Path:
    """`place` once `install` (with `{}` standing for `place`) has succeeded there; a
    marker written last tells a finished install from an interrupted one."""
    done = place / ".propgate-installed"
    if done.exists():
        return place
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir(parents=True)
    command = [str(place) if part == "{}" else part for part in install]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as error:
        output = getattr(error, "stderr", b"") or b""
        unavailable(
            tool, f"cannot install {tool}: {error} {output.decode(errors='replace')[-500:]}"
        )
    done.touch()
    return place


def npm_package(*specs: str, tool: str = "node") -> Path:
    """The `node_modules` holding the npm packages `specs` (`name@version`), installed
    together; `tool` is the name `PROPGATE_REQUIRE` gives to insist on them."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable(tool, "Node.js and npm are not installed")
    install = ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", "{}", *specs]
    place = _CACHE / "npm" / "+".join(spec.replace("/", "%2F") for spec in specs)
    return _installed(place, install, tool) / "node_modules"


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
