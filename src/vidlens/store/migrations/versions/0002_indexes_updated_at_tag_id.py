"""Indexes on ``extractions.updated_at`` (what changed since a time) and ``tag_clicks.tag_id`` (a tag's clicks,
and the ``ON DELETE SET NULL`` of a deleted tag, which otherwise scans every click).

A DB made by ``create_all`` from these models before migrations existed may have them already: those are
left alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = (("ix_extractions_updated_at", "extractions", ["updated_at"]),
           ("ix_tag_clicks_tag_id", "tag_clicks", ["tag_id"]))


def upgrade() -> None:
    """Create each index that is not there yet."""
    inspector = sa.inspect(op.get_bind())
    for name, table, columns in INDEXES:
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop the indexes."""
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
