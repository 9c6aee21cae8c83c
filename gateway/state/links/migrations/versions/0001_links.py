"""The link store: groups, links with their origin, records kept apart, proposals.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_members",
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("reference", sa.String(600), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("label", sa.String(600), nullable=False),
    )
    op.create_index("link_members_by_label", "link_members", ["entity", "label"])
    op.create_table(
        "links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("first", sa.String(600), nullable=False),
        sa.Column("second", sa.String(600), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("entity", "first", "second", "source", "origin", name="links_once"),
    )
    op.create_index("links_by_first", "links", ["entity", "first"])
    op.create_index("links_by_second", "links", ["entity", "second"])
    op.create_table(
        "link_apart",
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("first", sa.String(600), primary_key=True),
        sa.Column("second", sa.String(600), primary_key=True),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "link_proposals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("first", sa.String(600), nullable=False),
        sa.Column("second", sa.String(600), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("entity", "first", "second", name="link_proposals_once"),
    )


def downgrade() -> None:
    op.drop_table("link_proposals")
    op.drop_table("link_apart")
    op.drop_index("links_by_second", "links")
    op.drop_index("links_by_first", "links")
    op.drop_table("links")
    op.drop_index("link_members_by_label", "link_members")
    op.drop_table("link_members")
