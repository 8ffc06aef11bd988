"""Clinical changes of the medicine card waiting for, or given, approval (issue 16 part 1).

Changes recorded before this migration have no row: the cards as they stand are the
approved baseline, so an upgrade asks nobody to approve the whole history.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_changes",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("order_id", sa.String(63), primary_key=True),
        sa.Column("first_version", sa.Integer, primary_key=True),
        sa.Column("base_version", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("aspects", sa.String(300), nullable=False),
        sa.Column("drug_name", sa.String(200), nullable=False),
        sa.Column("before_text", sa.String(2000), nullable=False),
        sa.Column("after_text", sa.String(2000), nullable=False),
        sa.Column("detected_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("approved_at", UTC_DATETIME),
        sa.Column("approved_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_card_changes_pending", "card_changes",
                    ["facility_id", "status", "detected_at"])


def downgrade() -> None:
    op.drop_index("ix_card_changes_pending", "card_changes")
    op.drop_table("card_changes")
