"""Records linked across providers: each node's group, its entity id, the records proposed for a
person to decide on, and the `link` and `unlink` a person decides with (`identity:manage`).

Everything here asks the federation: its loaders find a record's group (one read of the
link store per query level) and its other records (one batch per provider); linking goes
through `federation.linking`. While the link store cannot be reached, a field that needs
it answers what it can (no `sameAs`, only the record in `sources`, no `entityId`) with a
`LINKS_UNAVAILABLE` error at its path.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway import model
from gateway.errors import (
    BadUserInput,
    InvalidCursor,
    InvalidId,
    LinksUnavailable,
    NotFound,
    ProviderError,
)
from gateway.federation.links import (
    LINKED,
    NOT_MERGED,
    Group,
    KeptApart,
    Proposal,
    Source,
    decide,
    provider_of,
    reference,
    reference_of,
)
from gateway.federation.links.decide import Decided
from gateway.federation.links.rebuild import keep_in_step
from schema.connection import PageInfo
from schema.context import Context
from schema.ids import decode_entity_id, decode_id, encode_entity_id, encode_id, is_entity_id
from schema.selection import selection_here

if TYPE_CHECKING:
    from schema.types import Node

__all__ = [
    "LinkSource",
    "LinkedGroup",
    "ProposedLink",
    "ProposedLinkConnection",
    "RecordLink",
    "Refusal",
    "entity_id_of",
    "link",
    "links_of",
    "members_of",
    "node_by_entity_id",
    "proposed_links",
    "unlink",
]

Info = strawberry.Info[Context, None]
Nodes = list[Annotated["Node", strawberry.lazy("schema.types")]]
_NEVER = datetime.min.replace(tzinfo=UTC)

LinkSource = Source
strawberry.enum(
    LinkSource,
    description="Where a link came from: a provider's own reference to another's record, a "
    "matching rule whose score reached the threshold, or a person.",
)


def _node_type(entity: model.Entity) -> Any:
    from schema.types import NODE_TYPES

    return NODE_TYPES[entity]


async def entity_id_of(root: model.Record, info: Info) -> str | None:
    if root.merged is not None:
        return encode_entity_id(model.ENTITY_OF[type(root)], root.merged.label)
    try:
        group = await info.context.loaders.group(root)
    except LinksUnavailable as error:
        info.context.report(error, info.path.as_list())
        return None
    return encode_entity_id(model.ENTITY_OF[type(root)], group.label)


async def members_of(root: model.Record, info: Info, *, itself: bool) -> list[model.Record]:
    """The record's group in precedence order, with or without the record itself; a merged
    record's are the records it was made of (none of them is itself), read again only if
    more is asked of them than was when they were read."""
    entity = model.ENTITY_OF[type(root)]
    selection = selection_here(_node_type(entity), info)
    if root.merged is not None:
        read = {item.name for item in dataclasses.fields(root)} - NOT_MERGED
        if selection.fields & read <= root.merged.selection.fields:
            return list(root.merged.records)
        return await _records(info, entity, [reference_of(r) for r in root.merged.records])
    try:
        members, failed = await info.context.loaders.members(root, selection)
    except LinksUnavailable as error:
        info.context.report(error, info.path.as_list())
        members, failed = [root], []
    for provider_error in failed:
        info.context.report(provider_error, info.path.as_list())
    own = reference_of(root)
    return [member for member in members if itself or reference_of(member) != own]


async def node_by_entity_id(info: Info, text: str, path: list[str | int]) -> model.Record | None:
    """A linked group as one record (as a `distinct` list shows it), by its entity id."""
    entity, label = decode_entity_id(text)
    if not info.context.federation.knows(provider_of(label)):
        raise InvalidId(f"'{text[:80]}' names a provider this gateway does not serve.")
    group = (await info.context.federation.linking.groups(entity, [label]))[label]
    records, failed = await _read(info, entity, group.members)
    for error in failed:
        info.context.report(error, path)
    if not records:
        if not failed:
            info.context.report(NotFound(f"No {entity.value} with entity id '{text[:80]}'."), path)
        return None
    selection = selection_here(_node_type(entity), info)
    return info.context.federation.linking.merged(records, group.label, selection)


async def _records(
    info: Info, entity: model.Entity, refs: tuple[str, ...] | list[str]
) -> list[model.Record]:
    """The records, each read by id (one batch per provider), with the fields selected
    under the field `info` is about; a provider that fails is an error at that field, and
    the others' records still come."""
    found, failed = await _read(info, entity, refs)
    for error in failed:
        info.context.report(error, info.path.as_list())
    return found


async def _read(
    info: Info, entity: model.Entity, refs: tuple[str, ...] | list[str]
) -> tuple[list[model.Record], list[ProviderError]]:
    selection = selection_here(_node_type(entity), info)

    async def one(ref: str) -> model.Record | ProviderError | None:
        link = model.Link(provider_of(ref), entity, "id", ref.partition(":")[2])
        try:
            return await info.context.loaders.one(link, selection)
        except ProviderError as error:
            return error

    found = await asyncio.gather(*(one(ref) for ref in refs))
    records = [item for item in found if item is not None and not isinstance(item, ProviderError)]
    return records, [item for item in found if isinstance(item, ProviderError)]


@strawberry.type(description="Why two records are one: who said so, how sure, and when.")
class RecordLink:
    source: LinkSource
    origin: str = strawberry.field(
        description="The provider whose reference it is, the rule's name, or the person."
    )
    score: float
    made_at: datetime
    other: strawberry.Private[tuple[model.Entity, str]]

    @strawberry.field(description="The global id of the record at the other end.")
    def other_id(self) -> strawberry.ID:
        entity, ref = self.other
        provider, _, source_id = ref.partition(":")
        return strawberry.ID(encode_id(entity, provider, source_id))


async def links_of(root: model.Record, info: Info) -> list[RecordLink]:
    entity = model.ENTITY_OF[type(root)]
    own = reference_of(root)
    try:
        found = await info.context.federation.linking.evidence(entity, [own])
    except LinksUnavailable as error:
        info.context.report(error, info.path.as_list())
        return []
    return [
        RecordLink(
            source=item.source,
            origin=item.origin,
            score=item.score,
            made_at=item.made_at or _NEVER,
            other=(entity, item.second if item.first == own else item.first),
        )
        for item in found[own]
    ]


@strawberry.type(description="Records, at one or several providers, that are one thing.")
class LinkedGroup:
    entity_id: strawberry.ID
    entity: strawberry.Private[model.Entity]
    refs: strawberry.Private[list[str]]

    @strawberry.field(graphql_type=Nodes, description="In precedence order.")
    async def records(self, info: Info) -> list[model.Record]:
        """Read here, where the fields selected of them are known."""
        return await _records(info, self.entity, self.refs)


@strawberry.type(description="Records a rule found alike, below the threshold: a person decides.")
class ProposedLink:
    id: strawberry.ID
    score: float
    rule: str
    proposed_at: datetime
    entity: strawberry.Private[model.Entity]
    refs: strawberry.Private[list[str]]

    @strawberry.field(
        graphql_type=Nodes,
        description="Link them with `link`, or keep them apart with `unlink`.",
    )
    async def records(self, info: Info) -> list[model.Record]:
        return await _records(info, self.entity, self.refs)


@strawberry.type
class ProposedLinkEdge:
    node: ProposedLink
    cursor: str


@strawberry.type
class ProposedLinkConnection:
    edges: list[ProposedLinkEdge]
    page_info: PageInfo
    total_count: int
    end_cursor: str | None = strawberry.field(
        deprecation_reason="Use `pageInfo { endCursor }`, as every other list has it."
    )
    has_next_page: bool = strawberry.field(
        deprecation_reason="Use `pageInfo { hasNextPage }`, as every other list has it."
    )


@dataclass(frozen=True)
class Refusal:
    """Something the caller can act on, for its payload's `errors`."""

    code: str
    message: str
    field: str | None = None


_LARGEST_ID = 2**31 - 1
"""Proposal ids are PostgreSQL `integer`s: a cursor naming a larger one is not ours."""


def _list_of(entity: model.Entity | None) -> str:
    """Which list a cursor is of: proposals of one type, or of all."""
    return f"proposals-{entity.value if entity else 'all'}"


def _cursor(proposal: Proposal, entity: model.Entity | None) -> str:
    """Where a page stands: its last proposal's score and id (the list's order), in the
    list it was of, so it cannot skip another list's proposals above that score."""
    text = f"{_list_of(entity)}:{proposal.score!r}:{proposal.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str | None, entity: model.Entity | None) -> tuple[float, int] | None:
    """Where a page of proposals goes on: only as `_cursor` writes it (Python's `int` and
    `float` read `1_0`, ` 1` and other scripts' digits too)."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, score, identifier = raw.split(":")
        after = (float(score), int(identifier))
    except (ValueError, UnicodeDecodeError):
        after = None
        kind = score = identifier = ""
    if (
        not kind.startswith("proposals-")
        or after is None
        or (repr(after[0]), str(after[1])) != (score, identifier)
        or not (0.0 <= after[0] <= 1.0 and 0 <= after[1] <= _LARGEST_ID)
    ):
        raise InvalidCursor("The cursor is malformed; use a cursor from this connection.")
    if kind != _list_of(entity):
        raise InvalidCursor("The cursor belongs to another list of proposals (another type).")
    return after


async def proposed_links(
    info: Info, entity: model.Entity | None, first: int | None, after: str | None
) -> ProposedLinkConnection:
    if entity is not None:
        _linked(entity, "type")
    size = info.context.federation.page_size(first)
    linking = info.context.federation.linking
    found, total = await linking.proposals(entity, _after(after, entity), size + 1)
    edges = [
        ProposedLinkEdge(node=_proposal(proposal), cursor=_cursor(proposal, entity))
        for proposal in found[:size]
    ]
    end, more = edges[-1].cursor if edges else after, len(found) > size
    return ProposedLinkConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=more,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=end,
        ),
        total_count=total,
        end_cursor=end,
        has_next_page=more,
    )


def _proposal(proposal: Proposal) -> ProposedLink:
    return ProposedLink(
        id=strawberry.ID(
            base64.urlsafe_b64encode(f"ProposedLink:{proposal.id}".encode()).decode().rstrip("=")
        ),
        score=proposal.score,
        rule=proposal.rule,
        proposed_at=proposal.made_at or _NEVER,
        entity=proposal.entity,
        refs=[proposal.first, proposal.second],
    )


@dataclass(frozen=True)
class _Named:
    entity: model.Entity
    refs: list[str]
    given: dict[str, str]
    """Each reference, by the global id the caller gave for it: what errors name."""


def _named(info: Info, ids: list[strawberry.ID], least: int) -> _Named:
    if len(ids) < least:
        raise BadUserInput(f"Give at least {_ids(least)}.", field="ids")
    for global_id in ids:
        if is_entity_id(global_id):
            raise InvalidId(
                f"'{global_id[:80]}' is an entity id (a group's): link and unlink take the "
                "records' own ids (`id`, or `sources { id }` of a group).",
                field="ids",
            )
    decoded = [(global_id, *decode_id(global_id)) for global_id in ids]
    entities = {entity for _, entity, _, _ in decoded}
    if len(entities) != 1:
        raise BadUserInput("The ids must all be of one type.", field="ids")
    _linked(next(iter(entities)), "ids")
    for global_id, _, provider, _ in decoded:
        if not info.context.federation.knows(provider):
            raise InvalidId(f"'{global_id}' names a provider this gateway does not serve.")
    given = {reference(provider, source): str(text) for text, _, provider, source in decoded}
    if len(given) < least:
        raise BadUserInput(f"Give at least {_ids(least)}, all different.", field="ids")
    return _Named(entities.pop(), list(given), given)


def _linked(entity: model.Entity, field: str) -> None:
    """Refuses a type whose records are never linked: a decision on them would have nothing
    to join, and their records are not the link store's to hold."""
    if entity not in LINKED:
        kinds = ", ".join(sorted(kind.value for kind in LINKED))
        refusal = f"{entity.value} records are not linked; these are: {kinds}."
        raise BadUserInput(refusal, field=field)


def _ids(count: int) -> str:
    return "one id" if count == 1 else f"{count} ids"


def _groups(info: Info, groups: list[Group]) -> list[LinkedGroup]:
    precedence = info.context.federation.linking.precedence
    return [
        LinkedGroup(
            entity_id=strawberry.ID(encode_entity_id(group.entity, group.label)),
            entity=group.entity,
            refs=precedence.ordered(group.entity, list(group.members)),
        )
        for group in groups
    ]


def _id_of(named: _Named, ref: str) -> str:
    provider, _, source_id = ref.partition(":")
    return named.given.get(ref) or encode_id(named.entity, provider, source_id)


def _refused(named: _Named, decided: Decided) -> list[Refusal]:
    return [
        Refusal("NOT_FOUND", f"No record {named.given[ref]}.", "ids") for ref in decided.missing
    ]


async def link(info: Info, ids: list[strawberry.ID]) -> tuple[list[LinkedGroup], list[Refusal]]:
    named = _named(info, ids, 2)
    federation = info.context.federation
    try:
        decided = await decide.link(federation, named.entity, named.refs, info.context.caller.name)
    except KeptApart as refused:
        first, second = _id_of(named, refused.first), _id_of(named, refused.second)
        message = f"A person kept {first} and {second} apart; unlink or link those two first."
        return [], [Refusal(refused.code, message, "ids")]
    if decided.missing:
        return [], _refused(named, decided)
    await keep_in_step(federation, decided.groups)
    return _groups(info, decided.groups), []


async def unlink(info: Info, ids: list[strawberry.ID]) -> tuple[list[LinkedGroup], list[Refusal]]:
    named = _named(info, ids, 1)
    federation = info.context.federation
    decided = await decide.unlink(federation, named.entity, named.refs, info.context.caller.name)
    return _groups(info, decided.groups), _refused(named, decided)
