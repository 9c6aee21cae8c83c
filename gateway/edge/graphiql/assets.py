"""GraphiQL's browser files, fetched from the npm registry at install time, never committed.

The setuptools build step (`build_hooks.py`) and `gateway graphiql-assets` both call
`fetch`, so this module imports nothing outside the standard library: the build runs it
in pip's isolated build environment, before any dependency is installed.

Each package is pinned by version and by the registry's own sha512 `integrity`, so a
tarball that differs by one byte from what was published is refused, whatever mirror
served it. The directory holds a manifest of the pins it was filled from; a re-install
with the same pins reuses it without the network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DIRECTORY", "FILES", "PACKAGES", "AssetsUnavailable", "fetch", "missing"]

DIRECTORY = Path(__file__).parent / "static"
"""Git-ignored; filled by the build, shipped in the wheel as package data."""

_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    """The registry's `dist.integrity` for this version: `sha512-<base64>`."""
    files: dict[str, str]
    """Path inside the tarball -> file name served under /graphiql/assets/."""

    @property
    def tarball(self) -> str:
        registry = os.environ.get("npm_config_registry") or os.environ.get(
            "NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/"
        )
        return f"{registry.rstrip('/')}/{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES = (
    # React 18 is the last React with UMD builds, which GraphiQL 3's own bundle expects.
    Package(
        "react",
        "18.3.1",
        "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
        {"package/umd/react.production.min.js": "react.production.min.js"},
    ),
    Package(
        "react-dom",
        "18.3.1",
        "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
        {"package/umd/react-dom.production.min.js": "react-dom.production.min.js"},
    ),
    # GraphiQL 3 is the last major with a browser bundle (4 and later ship ES modules only);
    # it bundles graphql-ws, which subscriptions need.
    Package(
        "graphiql",
        "3.9.0",
        "sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA==",
        {
            "package/graphiql.min.js": "graphiql.min.js",
            "package/graphiql.min.css": "graphiql.min.css",
        },
    ),
)

FILES = tuple(name for package in PACKAGES for name in package.files.values())


class AssetsUnavailable(RuntimeError):
    """The registry could not be reached, or answered something other than what was pinned."""


def missing(directory: Path = DIRECTORY) -> list[str]:
    return [name for name in FILES if not (directory / name).is_file()]


def fetch(directory: Path = DIRECTORY, timeout: float = 60) -> bool:
    """Fills `directory`; False when it already held these pins, True when it was fetched."""
    pins = {package.name: package.integrity for package in PACKAGES}
    manifest = directory / _MANIFEST
    if not missing(directory) and manifest.is_file():
        if json.loads(manifest.read_text(encoding="utf-8")) == pins:
            return False
    contents = {}
    for package in PACKAGES:
        tarball = _download(package, timeout)
        contents.update(_extract(package, tarball))
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        (directory / name).write_bytes(content)
    manifest.write_text(json.dumps(pins, indent=2), encoding="utf-8")
    return True


def _download(package: Package, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(package.tarball, timeout=timeout) as response:
            tarball: bytes = response.read()
    except OSError as error:
        raise AssetsUnavailable(f"{package.tarball}: {error}") from error
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise AssetsUnavailable(
            f"{package.tarball}: {algorithm} is {actual}, not the pinned {expected}; refused"
        )
    return tarball


def _extract(package: Package, tarball: bytes) -> dict[str, bytes]:
    contents = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for inside, name in package.files.items():
            try:
                member = archive.extractfile(inside)
            except KeyError:
                member = None
            if member is None:
                raise AssetsUnavailable(f"{package.name}@{package.version} has no {inside}")
            contents[name] = member.read()
    return contents
