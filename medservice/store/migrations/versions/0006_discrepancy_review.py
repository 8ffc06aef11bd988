"""The pharmacist's review history of discrepancies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "discrepancy_events",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("discrepancy_id", sa.String(32), nullable=False),
        sa.Column("event_time", UTC_DATETIME, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(4100), nullable=False),
    )
    op.create_index("ix_discrepancy_events_history", "discrepancy_events",
                    ["discrepancy_id", "event_time", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_discrepancy_events_history", "discrepancy_events")
    op.drop_table("discrepancy_events")
