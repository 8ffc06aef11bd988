"""Indexes for the national batch's range scans.

Batch reconciliation reads every scheduled dose due, and every record administered, in a
day and its margin, across all facilities. Both tables only grow (records are never
deleted), so without an index on the time alone each batch would read the whole history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scheduled_doses_due", "scheduled_doses", ["due_at"])
    op.create_index("ix_records_administered", "administration_records", ["administered_at"])


def downgrade() -> None:
    op.drop_index("ix_records_administered", table_name="administration_records")
    op.drop_index("ix_scheduled_doses_due", table_name="scheduled_doses")
