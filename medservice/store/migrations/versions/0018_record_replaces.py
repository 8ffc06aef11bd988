"""A correction's replacement names the record it replaces (issue 20): the new record of a
scheduled dose whose earlier record was marked entered-in-error keeps that record's id, so
the FHIR export can reference it. Records made before this migration have none (NULL): the
link cannot be told after the fact without guessing.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table copy on SQLite, no rewrite on
    # PostgreSQL.
    op.add_column("administration_records", sa.Column("replaces_record_id", sa.String(36)))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops an unindexed column in place: a batch copy of the table
        # would have to recreate its partial indexes (the settling dose's uniqueness).
        op.execute("ALTER TABLE administration_records DROP COLUMN replaces_record_id")
    else:
        op.drop_column("administration_records", "replaces_record_id")
