"""The link store's tables, as SQLAlchemy Core describes them to its queries.

The migrations (`migrations/versions/`) create them; these descriptions must say the
same, which `tests/test_links_store.py` checks against a migrated database.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

__all__ = ["REFERENCE_LENGTH", "apart", "links", "members", "metadata", "proposals"]

metadata = MetaData()

_ENTITY = 16
_PROVIDER = 64
REFERENCE_LENGTH = 600
"""The longest record reference the store keeps (`"<provider>:<source id>"`)."""
_ORIGIN = 200

members = Table(
    "link_members",
    metadata,
    Column("entity", String(_ENTITY), primary_key=True),
    Column("reference", String(REFERENCE_LENGTH), primary_key=True),
    Column("provider", String(_PROVIDER), nullable=False),
    Column("label", String(REFERENCE_LENGTH), nullable=False),
    Index("link_members_by_label", "entity", "label"),
)
"""Each record of a linked group of two or more, with the group's label (its founding
record's reference); a record in no row is a group of its own."""

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(_ENTITY), nullable=False),
    Column("first", String(REFERENCE_LENGTH), nullable=False),
    Column("second", String(REFERENCE_LENGTH), nullable=False),
    Column("source", String(16), nullable=False),
    Column("origin", String(_ORIGIN), nullable=False),
    Column("score", Float, nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("entity", "first", "second", "source", "origin", name="links_once"),
    Index("links_by_first", "entity", "first"),
    Index("links_by_second", "entity", "second"),
)
"""Why two records are one: a provider's reference, a rule and its score, or a person."""

apart = Table(
    "link_apart",
    metadata,
    Column("entity", String(_ENTITY), primary_key=True),
    Column("first", String(REFERENCE_LENGTH), primary_key=True),
    Column("second", String(REFERENCE_LENGTH), primary_key=True),
    Column("origin", String(_ORIGIN), nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
)
"""Records a person said are not one: no rule links them again."""

proposals = Table(
    "link_proposals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(_ENTITY), nullable=False),
    Column("first", String(REFERENCE_LENGTH), nullable=False),
    Column("second", String(REFERENCE_LENGTH), nullable=False),
    Column("rule", String(_ORIGIN), nullable=False),
    Column("score", Float, nullable=False),
    Column("made_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("entity", "first", "second", name="link_proposals_once"),
)
"""What a rule found below the threshold, waiting for a person."""
