"""Refused operations leave nothing behind: a caller sending texts that will not run
cannot grow the gateway's memory."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import pytest

from schema import documents
from tests.conftest import Client, error_codes

STATUS = Path("/proc/self/status")


def _resident_bytes() -> int:
    for line in STATUS.read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _one_letter_fields(characters: int) -> str:
    """`query Q… { a a a … }`, distinct each time: the densest tree a text can parse to,
    some 280 bytes a character."""
    head = f"query Q{uuid.uuid4().hex} {{ "
    return head + "a " * ((characters - len(head) - 1) // 2) + "}"


@pytest.mark.skipif(not STATUS.is_file(), reason="reads VmRSS from Linux's /proc")
async def test_thousands_of_distinct_refused_queries_leave_memory_within_budget(
    client: Client,
) -> None:
    """Kept whole, as they once were, these would be 57 MB a large text and a quarter of
    a megabyte a small one; the budget is that of the documents cache, which takes none
    of them."""
    await client.query(_one_letter_fields(1_000))
    gc.collect()
    before = _resident_bytes()
    refusals: set[str] = set()
    kept = 0

    for characters, count in ((190_000, 2_000), (1_000, 300)):
        for _ in range(count):
            text = _one_letter_fields(characters)
            refusals.update(error_codes(await client.query(text)))
            kept += text in documents._kept
    gc.collect()
    grown = _resident_bytes() - before

    assert refusals == {"TOO_MANY_CHARACTERS", "TOO_MANY_ROOT_FIELDS"}
    assert kept == 0
    assert grown < documents.BUDGET_BYTES, f"grew {grown / 2**20:.1f} MiB"
