"""Discrepancies, keyed by their stable key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "discrepancies",
        sa.Column("discrepancy_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("facility_id", sa.String(63), nullable=False),
        sa.Column("resident_id", sa.String(63), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("is_error", sa.Boolean, nullable=False),
        sa.Column("order_id", sa.String(63)),
        sa.Column("dose_id", sa.String(36)),
        sa.Column("record_id", sa.String(36)),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("detected_at", UTC_DATETIME, nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("known_at_administration", sa.Boolean),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(30)),
        sa.Column("review_note", sa.String(4000), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("reviewed_at", UTC_DATETIME),
        sa.Column("etag", sa.String(32), nullable=False),
    )
    op.create_index("ix_discrepancies_facility_time", "discrepancies",
                    ["facility_id", "occurred_at"])
    op.create_index("ix_discrepancies_queue", "discrepancies",
                    ["status", "severity", "facility_id"])


def downgrade() -> None:
    op.drop_index("ix_discrepancies_queue", "discrepancies")
    op.drop_index("ix_discrepancies_facility_time", "discrepancies")
    op.drop_table("discrepancies")
