"""The committed SDL is what codegen clients build from: it must be the schema that runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schema import sdl

COMMITTED = Path(__file__).parent.parent / "schema" / "schema.graphql"


def test_committed_sdl_matches_the_running_schema() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == sdl(), (
        "schema/schema.graphql is stale: run `gateway schema > schema/schema.graphql`"
    )


def test_gateway_schema_prints_the_sdl() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "gateway", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == sdl()
    assert "type Building implements Node" in printed
