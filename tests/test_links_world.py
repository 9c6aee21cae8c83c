"""The matching rules against the sandbox world's truth, on several seeds and sizes: every
provider read through the gateway as `gateway links rebuild` reads it, scored pair by pair.

Targets: precision at least 0.99 and recall at least 0.95 over every type; landlords and
buildings all found (the `distinct` lists' totals depend on them). What is missed, by
design of the world: tenants who changed their last name at one of their two providers.
"""

from __future__ import annotations

import pytest

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, LinkSettings, Settings
from gateway.federation.links.rebuild import rebuild
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.sandbox.overlaps import truth
from gateway.tools.linking import score
from tests.conftest import serving

CASES = {
    "seed1-default": (1, WorldSize()),
    "seed2-default": (2, WorldSize()),
    "seed5-default": (5, WorldSize()),
    "seed3-crowded": (3, WorldSize(landlords=31, buildings=150, units_per_building=(2, 10))),
    "seed4-large-buildings": (4, WorldSize(buildings=45, units_per_building=(20, 30))),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_rules_find_what_the_world_says_is_one_thing(case: str) -> None:
    seed, size = CASES[case]
    clock = ManualClock()
    sandbox = Sandbox(seed=seed, size=size, clock=clock)
    settings = Settings(
        gateway=GatewaySettings(max_page_size=500, subscribe_at_start=False),
        links=LinkSettings(write_back=False),
    )
    async with serving(sandbox, clock, settings) as client:
        rebuilt = await rebuild(client.gateway.federation, today=sandbox.world.today)

    scores = score(truth(sandbox.world), rebuilt)

    right = sum(s.right for s in scores.values())
    found = sum(s.found for s in scores.values())
    true = sum(s.true for s in scores.values())
    assert right / found >= 0.99, scores
    assert right / true >= 0.95, scores
    for kind in ("landlord", "building"):
        assert scores[kind].true > 0
        assert scores[kind].precision == scores[kind].recall == 1.0, (kind, scores[kind])
    assert all(s.precision >= 0.99 for s in scores.values()), scores
