"""The queries the bench asks: the usual mix, and one per provider for the fault run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULT_MIX", "MIX", "BenchQuery", "pick"]


@dataclass(frozen=True)
class BenchQuery:
    name: str
    query: str
    depth: int
    """Upstream round trips an ideal client needs one after the other."""
    minimum: str
    """The fewest upstream requests the providers' APIs allow, and why."""


MIX = [
    BenchQuery(
        "nested buildings",
        '{ buildings(first: 20, providers: ["primmo"]) { edges { node { sourceId name '
        "units { sourceId unitCode rooms tenants { sourceId lastName } } } } } }",
        2,
        "2: Buildings with $expand=Units, then every unit's tenants in one $filter",
    ),
    BenchQuery(
        "units for rent",
        '{ unitsForRent(from: "2027-01-01", to: "2027-03-31", first: 20, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode building { sourceId name } } } } }",
        2,
        "2: Units/ForRent, then their buildings in one $filter",
    ),
    BenchQuery(
        "landlords with buildings",
        "{ landlords(first: 10) { edges { node { sourceId name buildings { sourceId name } } } } }",
        2,
        "one page per landlord provider (4, in parallel), then buildings: one $filter for "
        "Primmo, one read of pms's property list (a page per 100 properties), one request per "
        "SCOM landlord (its own token); MyCRM has no buildings",
    ),
    # Building:primmo:27 and Unit:primmo:28: the sandbox world's first building and its first
    # unit, Primmo's, numbered after the 26 landlord records of the default 20 landlords.
    BenchQuery(
        "node by id",
        '{ node(id: "QnVpbGRpbmc6cHJpbW1vOjI3") { ... on Building { sourceId name city } } }',
        1,
        "1: Buildings with $filter on the id",
    ),
    BenchQuery(
        "1,000 units",
        '{ units(first: 1000, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode rooms } } } }",
        1,
        "1: Units with $top=1001 (one more, to know whether a page follows)",
    ),
    BenchQuery(
        "create tenant",
        'mutation { createTenant(input: {unitId: "VW5pdDpwcmltbW86Mjg", firstName: "Bench", '
        'lastName: "Mark"}) { tenant { sourceId } errors { code } } }',
        2,
        "2: the unit's codes (Primmo files tenants by codes), then the POST",
    ),
]


def pick(names: list[str] | None) -> list[BenchQuery]:
    """The mix, or the queries of it whose names contain one of `names`."""
    if not names:
        return MIX
    chosen = [item for item in MIX if any(name in item.name for name in names)]
    if not chosen:
        raise SystemExit(
            f"gateway bench: no query of the mix matches {names}; "
            f"the mix: {', '.join(item.name for item in MIX)}"
        )
    return chosen


FAULT_MIX = [
    BenchQuery(
        "primmo",
        '{ buildings(first: 10, providers: ["primmo"]) { edges { node { sourceId name } } } }',
        1,
        "1: Buildings with $top=11",
    ),
    BenchQuery(
        "mycrm",
        '{ landlords(first: 10, providers: ["mycrm"]) { edges { node { sourceId name } } } }',
        1,
        "1: a page of landlords",
    ),
    BenchQuery(
        "scom",
        '{ landlords(first: 10, providers: ["scom"]) { edges { node { sourceId name } } } }',
        1,
        "1: a relay page of landlords",
    ),
    BenchQuery(
        "leap",
        "{ relationships(first: 10) { edges { node { sourceId role } } } }",
        1,
        "1: a page of relationships",
    ),
]
"""One query per provider, each asking that provider alone, so a stall shows under one name.
pms is left out: the sandbox's pms allows 1,000 requests an hour, which one run would spend,
and its refusals would hide what the stall does."""
