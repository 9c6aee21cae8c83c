"""A real PostgreSQL server on a loopback port, made and stopped by the tests that need it.

The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`,
or `initdb` on PATH). Without them the tests that need one are skipped, unless
`PROPGATE_REQUIRE` names `postgresql` (`.ci/run` sets it and installs the package), which
makes the absence a failure. PostgreSQL refuses to run as root: as root, the server runs
as the package's `postgres` user, in a directory given to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.tools.loopback import free_port
from tests.tools import unavailable

__all__ = ["PostgresServer", "postgres_binaries"]


def postgres_binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    unavailable("postgresql", "no PostgreSQL server: apt-get install postgresql")


class PostgresServer:
    """One throwaway cluster: trust authentication for its one user, on loopback only."""

    user = "propgate"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/postgres"
        self._place: Path | None = None

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*prefix, *command], check=True, capture_output=True, timeout=timeout, cwd="/"
        )

    def start(self) -> None:
        binaries = postgres_binaries()
        self._place = Path(tempfile.mkdtemp(prefix="propgate-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self._place, "postgres")
        data = self._place / "data"
        self._run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-p {self.port} -k {self._place} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self._place / "log"),
            "-w",
            "start",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start on {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._place is None:
            return
        try:
            self._run(
                str(postgres_binaries() / "pg_ctl"),
                "-D",
                str(self._place / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self._place, ignore_errors=True)
            self._place = None

    @contextmanager
    def running(self) -> Iterator[PostgresServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
