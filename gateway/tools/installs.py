"""Tools installed at run time, once, into a per-user cache, by their registries' own clients.

Nothing from a registry is committed: GraphQL Mesh for `gateway bench --mesh`, and the
npm packages and Python tools some tests need, are installed where they are first needed
and found there the next time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CACHE", "NotInstalled", "installed", "npm_packages"]

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "propgate"


class NotInstalled(RuntimeError):
    """The tool could not be installed; the message says why."""


def installed(place: Path, install: list[str], seconds: float = 600) -> Path:
    """`place` once `install` (with `{}` standing for `place`) has succeeded there; a
    marker written last tells a finished install from an interrupted one."""
    done = place / ".propgate-installed"
    if done.exists():
        return place
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir(parents=True)
    command = [str(place) if part == "{}" else part for part in install]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=seconds)
    except (OSError, subprocess.SubprocessError) as error:
        output = getattr(error, "stderr", b"") or b""
        raise NotInstalled(f"{error} {output.decode(errors='replace')[-500:]}") from None
    done.touch()
    return place


def npm_packages(*specs: str, cache: Path = CACHE) -> Path:
    """The `node_modules` holding the npm packages `specs` (`name@version`), installed
    together under `cache`."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise NotInstalled("Node.js and npm are not installed")
    install = ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", "{}", *specs]
    place = cache / "npm" / "+".join(spec.replace("/", "%2F") for spec in specs)
    return installed(place, install) / "node_modules"
