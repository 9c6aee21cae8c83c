"""A fresh `gateway serve` on the sandbox, as a new user starts it: what its console says."""

from __future__ import annotations

import tempfile
import time

from gateway.tools.loopback import free_port, running


def _console_of_a_fresh_start(
    *until: str, options: tuple[str, ...] = (), seconds: float = 15
) -> str:
    """Everything the process printed, once every line in `until` has appeared (or after
    `seconds`), stopping it only then: a stop mid-subscription would fail the subscription."""
    with tempfile.TemporaryFile() as log:
        port = free_port()
        serve = ["serve", "--port", str(port), "--log-format", "text", *options]
        with running(serve, f"http://127.0.0.1:{port}/healthz", seconds=30, log=log):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                log.seek(0)
                printed = log.read().decode()
                if all(line in printed for line in until):
                    break
                time.sleep(0.1)
        log.seek(0)
        return log.read().decode()


def test_webhooks_are_subscribed_once_the_gateway_listens_without_a_false_warning() -> None:
    """And the sandbox's records are linked, once it listens too."""
    console = _console_of_a_fresh_start(
        "primmo sends webhooks for", "pms sends webhooks for", "links rebuilt"
    )

    assert "links rebuilt in" in console and "links were not rebuilt" not in console
    assert (
        "primmo sends webhooks for Building, Invoice, ServiceCall, ServiceCallDetail, Supplier, "
        "Tenant, Unit" in console
    )
    assert "pms sends webhooks for invoice.created" in console
    assert "webhook subscription failed" not in console
    assert "ConnectError" not in console


def _access_lines(console: str, path: str) -> list[str]:
    return [line for line in console.splitlines() if "uvicorn.access" in line and path in line]


def test_the_sandboxs_own_request_lines_are_debug_and_the_callers_are_info() -> None:
    """A person at the console sees their own requests, not the demo's traffic to itself."""
    quiet = _console_of_a_fresh_start("pms sends webhooks for")
    told = _console_of_a_fresh_start("pms sends webhooks for", options=("--log-level", "debug"))

    assert _access_lines(quiet, "/sandbox/") == []
    assert [line for line in _access_lines(quiet, "/healthz") if " INFO " in line]
    sandbox_lines = _access_lines(told, "/sandbox/")
    assert sandbox_lines and all(" DEBUG " in line for line in sandbox_lines)
