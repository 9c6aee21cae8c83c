"""The queries the bench asks: the usual mix, and one per provider for the fault run.

Each query of the mix has variants (`vary`): another page, another date range, another
id. Clients running side by side ask different variants at any moment, so the gateway
cannot answer several of them with one upstream request (identical reads in flight are
sent once, `Coalesce`), which real traffic, whose callers ask different things, rarely
allows either. The values come from the world being measured (`gateway.tools.bench.vary`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["FAULT_MIX", "MIX", "VARY", "BenchQuery", "pick"]

VARY = "__VARY__"
"""Where a query's variants differ: replaced by each variant's text."""


@dataclass(frozen=True)
class BenchQuery:
    name: str
    query: str
    depth: int
    """Upstream round trips an ideal client needs one after the other."""
    minimum: str
    """The fewest upstream requests the providers' APIs allow, and why."""
    vary: str | None = None
    """What its variants change (a kind `gateway.tools.bench.vary` knows), or nothing."""
    variants: tuple[str, ...] = ()
    """The texts the clients ask, in turn: the first asks what the query asked before it
    had variants (the first page, the first building)."""

    def text(self, variant: int) -> str:
        """The variant's text (the query itself when it has none)."""
        return self.variants[variant % len(self.variants)] if self.variants else self.query

    def varied(self, values: list[str]) -> BenchQuery:
        """With one variant per value (each replacing `VARY`)."""
        return replace(self, variants=tuple(self.query.replace(VARY, v) for v in values))


MIX = [
    BenchQuery(
        "nested buildings",
        f'{{ buildings(first: 20, providers: ["primmo"]{VARY}) {{ edges {{ node {{ sourceId '
        "name units { sourceId unitCode rooms tenants { sourceId lastName } } } } } }",
        2,
        "2: Buildings with $expand=Units, then every unit's tenants in one $filter (a "
        "division's buildings that want the same unit codes named together, within the "
        "2,048 bytes and 100 nodes Primmo's ASP.NET server takes)",
        vary="after: building pages",
    ),
    BenchQuery(
        "units for rent",
        f'{{ unitsForRent({VARY}, first: 20, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode building { sourceId name } } } } }",
        2,
        "2: Units/ForRent, then their buildings in one $filter",
        vary="from, to: rent windows",
    ),
    BenchQuery(
        "landlords with buildings",
        f"{{ landlords(first: 10{VARY}) {{ edges {{ node {{ sourceId name buildings "
        "{ sourceId name } } } } }",
        2,
        "one page per landlord provider (4, in parallel), then buildings: one $filter for "
        "Primmo, one read of pms's property list (a page per 100 properties), one request per "
        "SCOM landlord (its own token); MyCRM has no buildings",
        vary="after: landlord pages",
    ),
    BenchQuery(
        "node by id",
        f'{{ node(id: "{VARY}") {{ ... on Building {{ sourceId name city }} }} }}',
        1,
        "1: Buildings with $filter on the id",
        vary="id: primmo buildings",
    ),
    BenchQuery(
        "1,000 units",
        f'{{ units(first: {VARY}, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode rooms } } } }",
        1,
        "1: Units with $top=1001 (one more, to know whether a page follows)",
        vary="first: 1,000 less a few",
    ),
    BenchQuery(
        "create tenant",
        f'mutation {{ createTenant(input: {{unitId: "{VARY}", firstName: "Bench", '
        'lastName: "Mark"}) { tenant { sourceId } errors { code } } }',
        2,
        "2: the unit's codes (Primmo files tenants by codes), then the POST",
        vary="unitId: primmo units",
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
