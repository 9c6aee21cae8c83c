"""At the end of a run, a tally of the conformance cases by the server they ran against, so
CI's output shows that the independent servers were there and each case passed on them."""

from __future__ import annotations

from collections import Counter

import pytest

_SERVERS = ("cap", "authlib", "sandbox")


def _server(nodeid: str) -> str | None:
    if "tests/conformance/" not in nodeid or "[" not in nodeid:
        return None
    parameters = nodeid.rsplit("[", 1)[1].rstrip("]").split("-")
    return next((name for name in _SERVERS if name in parameters), None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally: Counter[tuple[str, str]] = Counter()
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            server = _server(getattr(report, "nodeid", ""))
            if server is not None and (outcome != "passed" or report.when == "call"):
                tally[(server, outcome)] += 1
    if not tally:
        return
    terminalreporter.section("conformance")
    for server in _SERVERS:
        counts = {outcome: n for (name, outcome), n in tally.items() if name == server}
        if counts:
            said = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"{server}: {said}")
