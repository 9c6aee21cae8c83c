"""The matching rules: which records, at different providers, describe the same thing.

Each rule compares keys (`normalize`) and proposes a pair with a score and its name;
pairs at or above the threshold are linked, the others wait for a person. Rules only
ever pair records of two providers: two records at one provider are that provider's to
merge (a person can still link them). Records are grouped in stages, each using the
groups before it: buildings by address, then landlords (one building has one owner),
units by number within a building, tenants within a unit, relationships by role.

Records are joined on their keys through dictionaries, never compared pairwise, so a
rebuild over 10,000 records a provider takes a moment; a key shared by two records of
one provider is ambiguous, and its pairs are proposed rather than linked.

| rule | what matches | score |
|---|---|---|
| `address+code` | building: civic number, street, city and building code | 0.99 |
| `address+postal-code` | building: civic number, street, city and postal code | 0.97 |
| `address` | building: civic number, street and city (one side has no postal code) | 0.92 |
| `business-number` | landlord: business number (its nine-digit root) | 0.99 |
| `name+postal-code` | landlord: company name and postal code | 0.95 |
| `owner+name` | landlord: named owner of one building by two providers, same name | 0.96 |
| `owner` | the same, names differing | 0.75 |
| `name` | landlord: company name alone | 0.6 |
| `unit-number` | unit: its number, within one building (a listing: at its address) | 0.96 |
| `email` | tenant: e-mail address | 0.97 |
| `name+unit` | tenant: first and last name, within one unit | 0.95 |
| `phone` | tenant: phone number, as E.164 | 0.93 |
| `same-role` | relationship: one role, held by one party, on one place | 0.99 |

Conflicting keys veto a pair (two business numbers, two postal codes that differ): no
chain of other links puts the two in one group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

from gateway.federation.links import normalize
from gateway.model import Building, Entity, Landlord, Link, Relationship, Tenant, Unit
from gateway.state.links import Decisions, Evidence, Proposal, Source, provider_of, reference

__all__ = ["Candidate", "Matched", "Snapshot", "match", "AMBIGUOUS"]

Ref = str
AMBIGUOUS = 0.7
"""A key two records of one provider share says less: their pairs wait for a person."""
VETO = 0.0
"""The score of a pair whose keys conflict (two postal codes): never in one group."""
STAGES = (Entity.BUILDING, Entity.LANDLORD, Entity.UNIT, Entity.TENANT, Entity.RELATIONSHIP)


@dataclass
class Snapshot:
    """Every record the rules compare, by reference, and where each stands."""

    landlords: dict[Ref, Landlord] = field(default_factory=dict)
    buildings: dict[Ref, Building] = field(default_factory=dict)
    units: dict[Ref, Unit] = field(default_factory=dict)
    tenants: dict[Ref, Tenant] = field(default_factory=dict)
    relationships: dict[Ref, Relationship] = field(default_factory=dict)
    """Recorded by a provider (LEAP); derived ones are read off buildings and tenants."""
    owner: dict[Ref, Ref] = field(default_factory=dict)
    """Building -> its landlord, as the building's own provider says."""
    building_of: dict[Ref, Ref] = field(default_factory=dict)
    unit_of: dict[Ref, Ref] = field(default_factory=dict)
    listed_by: dict[Ref, Ref] = field(default_factory=dict)
    """A unit its provider shows without a building (a listing) -> its landlord."""


@dataclass(frozen=True)
class Candidate:
    entity: Entity
    first: Ref
    second: Ref
    score: float
    rule: str
    source: Source = Source.RULE


@dataclass
class Matched:
    """The rules' outcome: links, proposals, and every record's group, per entity."""

    evidence: dict[Entity, list[Evidence]] = field(default_factory=dict)
    proposals: dict[Entity, list[Proposal]] = field(default_factory=dict)
    groups: dict[Entity, dict[Ref, Ref]] = field(default_factory=dict)
    """Record -> its group's root, for records in a group of two or more."""
    derived: set[Ref] = field(default_factory=set)
    """The derived relationships the rules compared (`"primmo:owner:9"`)."""

    def group_of(self, entity: Entity, ref: Ref) -> Ref:
        return self.groups.get(entity, {}).get(ref, ref)

    def members(self, entity: Entity) -> dict[Ref, list[Ref]]:
        grouped: dict[Ref, list[Ref]] = defaultdict(list)
        for ref, root in self.groups.get(entity, {}).items():
            grouped[root].append(ref)
        return grouped


def match(
    snapshot: Snapshot,
    decisions: Mapping[Entity, Decisions],
    threshold: float,
    today: date,
) -> Matched:
    matched = Matched()
    finders: dict[Entity, Callable[[], Iterable[Candidate]]] = {
        Entity.BUILDING: lambda: _buildings(snapshot),
        Entity.LANDLORD: lambda: _landlords(snapshot, matched, today),
        Entity.UNIT: lambda: _units(snapshot, matched),
        Entity.TENANT: lambda: _tenants(snapshot, matched),
        Entity.RELATIONSHIP: lambda: _relationships(snapshot, matched),
    }
    for entity in STAGES:
        _cluster(
            entity, list(finders[entity]()), decisions.get(entity, Decisions()), threshold, matched
        )
    return matched


def _pairs(
    entity: Entity,
    keyed: Mapping[Any, Sequence[Ref]],
    score: Callable[[Ref, Ref], tuple[float, str] | None],
) -> Iterable[Candidate]:
    """Every pair sharing a key, at two providers; a provider with two records under one
    key makes its pairs ambiguous."""
    for refs in keyed.values():
        if len(refs) < 2:
            continue
        per_provider: dict[str, int] = defaultdict(int)
        for ref in refs:
            per_provider[provider_of(ref)] += 1
        for first, second in combinations(sorted(set(refs)), 2):
            if provider_of(first) == provider_of(second):
                continue
            scored = score(first, second)
            if scored is None:
                continue
            value, rule = scored
            ambiguous = (
                per_provider[provider_of(first)] > 1 or per_provider[provider_of(second)] > 1
            )
            if value > VETO and ambiguous:
                value, rule = min(value, AMBIGUOUS), f"{rule} (ambiguous)"
            yield Candidate(entity, first, second, value, rule)


def _index(items: Iterable[tuple[Ref, Hashable | None]]) -> dict[Hashable, list[Ref]]:
    keyed: dict[Hashable, list[Ref]] = defaultdict(list)
    for ref, key in items:
        if key is not None:
            keyed[key].append(ref)
    return keyed


def _place(street: str | None, city: str | None) -> tuple[str, str, str] | None:
    """A building's place: civic number, street and city, without any unit."""
    parsed = normalize.address(street)
    town = normalize.city(city)
    return (parsed.civic, parsed.street, town) if parsed is not None and town else None


def _buildings(snapshot: Snapshot) -> Iterable[Candidate]:
    buildings = snapshot.buildings
    postal = {ref: normalize.postal_code(b.postal_code) for ref, b in buildings.items()}
    codes = {ref: normalize.fold(b.code) or None for ref, b in buildings.items()}

    def score(first: Ref, second: Ref) -> tuple[float, str] | None:
        one, two = postal[first], postal[second]
        if one and two and one != two:
            return VETO, "postal codes differ"
        if codes[first] and codes[second]:
            if codes[first] != codes[second]:
                return VETO, "codes differ"
            return 0.99, "address+code"
        if one and two:
            return 0.97, "address+postal-code"
        return 0.92, "address"

    keyed = _index((ref, _place(b.street, b.city)) for ref, b in buildings.items())
    return _pairs(Entity.BUILDING, keyed, score)


def _landlords(snapshot: Snapshot, matched: Matched, today: date) -> Iterable[Candidate]:
    landlords = snapshot.landlords
    names = {ref: normalize.company(one.name) for ref, one in landlords.items()}
    numbers = {
        ref: normalize.business_number(one.business_number) for ref, one in landlords.items()
    }
    postal = {ref: normalize.postal_code(one.billing_postal_code) for ref, one in landlords.items()}

    def vetoed(first: Ref, second: Ref) -> bool:
        """Two business numbers that differ: two companies, whatever else they share."""
        return bool(numbers[first] and numbers[second] and numbers[first] != numbers[second])

    def elsewhere(first: Ref, second: Ref) -> bool:
        """Two postal codes that differ: no proof of two companies (one has several
        addresses), but then a name alone says nothing."""
        return bool(postal[first] and postal[second] and postal[first] != postal[second])

    def by_number(_first: Ref, _second: Ref) -> tuple[float, str] | None:
        """A business number is the company's, whatever addresses it gives."""
        return 0.99, "business-number"

    def by_name_and_postal(first: Ref, second: Ref) -> tuple[float, str] | None:
        if vetoed(first, second):
            return VETO, "business numbers differ"
        return 0.95, "name+postal-code"

    def by_name(first: Ref, second: Ref) -> tuple[float, str] | None:
        if vetoed(first, second):
            return VETO, "business numbers differ"
        return None if elsewhere(first, second) else (0.6, "name")

    def by_ownership(first: Ref, second: Ref) -> tuple[float, str] | None:
        if vetoed(first, second):
            return VETO, "business numbers differ"
        return (0.96, "owner+name") if names[first] == names[second] else (0.75, "owner")

    yield from _pairs(Entity.LANDLORD, _index((ref, numbers[ref]) for ref in landlords), by_number)
    yield from _pairs(
        Entity.LANDLORD,
        _index(
            (ref, (names[ref], postal[ref]) if names[ref] and postal[ref] else None)
            for ref in landlords
        ),
        by_name_and_postal,
    )
    yield from _pairs(Entity.LANDLORD, _index((ref, names[ref]) for ref in landlords), by_name)
    owners = _claimed_owners(snapshot, matched, today)
    keyed = {root: [ref for ref in refs if ref in landlords] for root, refs in owners.items()}
    yield from _pairs(Entity.LANDLORD, keyed, by_ownership)


def _claimed_owners(snapshot: Snapshot, matched: Matched, today: date) -> dict[Ref, list[Ref]]:
    """Who owns each building group, by every provider's word: the buildings' own, LEAP's
    current owners on record, and the landlords of listings at the building's address."""
    owners: dict[Ref, set[Ref]] = defaultdict(set)
    for building, landlord in snapshot.owner.items():
        owners[matched.group_of(Entity.BUILDING, building)].add(landlord)
    for record in snapshot.relationships.values():
        place, party = _target(record.building), _target(record.party)
        current = record.end_date is None or record.end_date >= today
        if record.role == "OWNER" and current and place in snapshot.buildings and party:
            owners[matched.group_of(Entity.BUILDING, place)].add(party)
    at_place = _buildings_at(snapshot, matched)
    for unit, landlord in snapshot.listed_by.items():
        listing = snapshot.units[unit]
        spot = _place(listing.address, listing.city)
        for group in at_place.get(spot, set()) if spot else set():
            owners[group].add(landlord)
    return {group: sorted(refs) for group, refs in owners.items()}


def _buildings_at(snapshot: Snapshot, matched: Matched) -> dict[tuple[str, str, str], set[Ref]]:
    """Building groups by each place their records give."""
    found: dict[tuple[str, str, str], set[Ref]] = defaultdict(set)
    for ref, building in snapshot.buildings.items():
        place = _place(building.street, building.city)
        if place is not None:
            found[place].add(matched.group_of(Entity.BUILDING, ref))
    return found


def _target(relation: object) -> Ref | None:
    """The record a relation names by id (how LEAP's references are read)."""
    if isinstance(relation, Link) and relation.by == "id":
        return reference(relation.provider, relation.key)
    return None


def _units(snapshot: Snapshot, matched: Matched) -> Iterable[Candidate]:
    """Units by number within one building group; a listing, which has no building, is in
    the building group at its address (if exactly one is there)."""
    at_place = _buildings_at(snapshot, matched)
    keyed: dict[Hashable, list[Ref]] = defaultdict(list)
    for ref, unit in snapshot.units.items():
        building = snapshot.building_of.get(ref)
        number = normalize.unit_number(unit.code)
        groups: set[Ref] = set()
        if building is not None:
            groups = {matched.group_of(Entity.BUILDING, building)}
        elif unit.address:
            parsed = normalize.address(unit.address)
            place = _place(unit.address, unit.city)
            number = parsed.unit if parsed is not None else None
            groups = at_place.get(place, set()) if place else set()
        if number is not None and len(groups) == 1:
            keyed[(next(iter(groups)), number)].append(ref)
    return _pairs(Entity.UNIT, keyed, lambda _a, _b: (0.96, "unit-number"))


def _tenants(snapshot: Snapshot, matched: Matched) -> Iterable[Candidate]:
    """A tenant record is a tenancy (pms keeps one per lease, former ones too): a record its
    provider says is former is matched only with another said to be former. A name within a
    unit cannot tell a former tenant from the present one of the same name; their standing
    can."""
    tenants = snapshot.tenants

    def keyed(key: Callable[[Ref, Tenant], Hashable | None]) -> dict[Hashable, list[Ref]]:
        return _index(
            (ref, (found, tenant.current is False) if (found := key(ref, tenant)) else None)
            for ref, tenant in tenants.items()
        )

    yield from _pairs(
        Entity.TENANT,
        keyed(lambda _ref, tenant: normalize.email(tenant.email)),
        lambda _a, _b: (0.97, "email"),
    )
    yield from _pairs(
        Entity.TENANT,
        keyed(lambda _ref, tenant: normalize.phone(tenant.phone)),
        lambda _a, _b: (0.93, "phone"),
    )

    def in_unit(ref: Ref, tenant: Tenant) -> Hashable | None:
        name = normalize.person(tenant.first_name, tenant.last_name)
        unit = snapshot.unit_of.get(ref)
        return (matched.group_of(Entity.UNIT, unit), name) if name and unit else None

    yield from _pairs(Entity.TENANT, keyed(in_unit), lambda _a, _b: (0.95, "name+unit"))


def _relationships(snapshot: Snapshot, matched: Matched) -> Iterable[Candidate]:
    """A provider's recorded role, and the one the gateway reads off the records (a
    landlord owns its building, a tenant occupies its unit), when they are one fact:
    the same role, by a party of one group, on a place of one group."""
    owned: dict[tuple[Ref, Ref], list[Ref]] = defaultdict(list)
    for building, landlord in snapshot.owner.items():
        derived = reference(provider_of(building), f"owner:{building.partition(':')[2]}")
        matched.derived.add(derived)
        key = (
            matched.group_of(Entity.BUILDING, building),
            matched.group_of(Entity.LANDLORD, landlord),
        )
        owned[key].append(derived)
    occupying: dict[Ref, list[Ref]] = defaultdict(list)
    for tenant in snapshot.tenants:
        derived = reference(provider_of(tenant), f"occupier:{tenant.partition(':')[2]}")
        matched.derived.add(derived)
        occupying[matched.group_of(Entity.TENANT, tenant)].append(derived)
    keyed: dict[Any, list[Ref]] = {**owned, **occupying}
    yield from _pairs(Entity.RELATIONSHIP, keyed, lambda _a, _b: (0.99, "same-role"))
    for ref, record in snapshot.relationships.items():
        place, party = _target(record.building), _target(record.party)
        if party is None:
            continue
        if record.role == "OWNER" and place is not None:
            key = (
                matched.group_of(Entity.BUILDING, place),
                matched.group_of(Entity.LANDLORD, party),
            )
            same = owned.get(key, [])
        elif record.role == "OCCUPIER":
            same = occupying.get(matched.group_of(Entity.TENANT, party), [])
        else:
            continue
        for derived in same:
            yield Candidate(
                Entity.RELATIONSHIP, ref, derived, 1.0, provider_of(ref), Source.PROVIDER
            )


def _cluster(
    entity: Entity,
    candidates: list[Candidate],
    decisions: Decisions,
    threshold: float,
    matched: Matched,
) -> None:
    """Links, best score first, what people linked before anything: a link that would put
    two records of one provider in a group, or records a person kept apart, is proposed
    instead; so is one below the threshold."""
    parent: dict[Ref, Ref] = {}
    providers: dict[Ref, set[str]] = {}
    members: dict[Ref, set[Ref]] = {}
    apart: dict[Ref, set[Ref]] = defaultdict(set)
    for pair in decisions.apart:
        first, second = sorted(pair)
        apart[first].add(second)
        apart[second].add(first)

    def root(ref: Ref) -> Ref:
        if ref not in parent:
            parent[ref], providers[ref], members[ref] = ref, {provider_of(ref)}, {ref}
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    def union(a: Ref, b: Ref) -> None:
        small, large = sorted((a, b), key=lambda r: len(members[r]))
        parent[small] = large
        providers[large] |= providers.pop(small)
        members[large] |= members.pop(small)

    def blocked(a: Ref, b: Ref) -> bool:
        if providers[a] & providers[b]:
            return True
        small, large = sorted((a, b), key=lambda r: len(members[r]))
        return any(apart[ref] & members[large] for ref in members[small])

    for first, second in decisions.linked:
        a, b = root(first), root(second)
        if a != b:
            union(a, b)
    for candidate in candidates:
        if candidate.score <= VETO:
            apart[candidate.first].add(candidate.second)
            apart[candidate.second].add(candidate.first)
    candidates = [candidate for candidate in candidates if candidate.score > VETO]
    best: dict[frozenset[Ref], Candidate] = {}
    for candidate in candidates:
        pair = frozenset((candidate.first, candidate.second))
        held = best.get(pair)
        if held is None or (candidate.score, candidate.rule) > (held.score, held.rule):
            best[pair] = candidate
    evidence, proposals = [], []

    def order(candidate: Candidate) -> tuple[float, int, str, str, str]:
        """Best score first; between equals, the pair whose records conflict with fewer
        others (a record vetoed against several is the odd one out)."""
        conflicts = len(apart[candidate.first]) + len(apart[candidate.second])
        return (-candidate.score, conflicts, candidate.rule, candidate.first, candidate.second)

    for candidate in sorted(best.values(), key=order):
        if candidate.second in apart[candidate.first]:
            continue
        a, b = root(candidate.first), root(candidate.second)
        if a == b:
            if candidate.score >= threshold:
                evidence.append(_evidence(candidate))
            continue
        if candidate.score >= threshold and not blocked(a, b):
            union(a, b)
            evidence.append(_evidence(candidate))
        else:
            proposals.append(
                Proposal(entity, candidate.first, candidate.second, candidate.rule, candidate.score)
            )
    groups = {}
    for ref in parent:
        top = root(ref)
        if len(members[top]) > 1:
            groups[ref] = top
    matched.evidence[entity] = evidence
    matched.proposals[entity] = proposals
    matched.groups[entity] = groups


def _evidence(candidate: Candidate) -> Evidence:
    """The rule's name, or for a provider's own reference the provider, is the origin."""
    return Evidence(
        candidate.entity,
        candidate.first,
        candidate.second,
        candidate.source,
        candidate.rule,
        candidate.score,
    )
