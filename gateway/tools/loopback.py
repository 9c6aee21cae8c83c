"""Gateway processes on loopback: `gateway bench` runs the sandbox and the gateway this way,
and so do the end-to-end tests, so both start, wait for and stop them alike."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import IO

import httpx

__all__ = ["DidNotStart", "free_port", "free_ports", "running"]


class DidNotStart(RuntimeError):
    """The process exited, or its health URL did not answer 200 in time."""


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """`count` ports free now, all different: each probe stays bound until every one is
    chosen. Probed one after the other, a port released could be handed out again: a
    sandbox and a gateway were once given the same one, and the gateway's health check was
    answered by the sandbox."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


@contextmanager
def running(
    args: list[str],
    health: str,
    env: Mapping[str, str] | None = None,
    seconds: float = 60,
    log: IO[bytes] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m gateway <args>`, entered once `health` answers 200, stopped on leaving;
    its log (stderr) goes to `log`, or nowhere."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
    )
    try:
        _wait(health, process, seconds)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DidNotStart(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise DidNotStart(f"{url} did not answer within {seconds:.0f} s")
