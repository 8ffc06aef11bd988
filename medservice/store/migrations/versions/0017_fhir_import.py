"""FHIR import (issue 20): an audit event says what the caller asserted that the call acted
on (`detail`, e.g. "unidentified": a document naming no patient by CPR number, imported on
the caller's word).

Plain ADD COLUMN, not a batch: SQLite's batch mode copies the table, which would drop the
triggers that keep audit_events append-only (migration 0005).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("detail", sa.String(100), nullable=False,
                                            server_default=""))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops a column in place; the append-only triggers stay.
        op.execute("ALTER TABLE audit_events DROP COLUMN detail")
    else:
        op.drop_column("audit_events", "detail")
