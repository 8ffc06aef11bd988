"""The medicine card mirror: cards and order versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
RESIDENT_FK = (["facility_id", "resident_id"], ["residents.facility_id", "residents.resident_id"])


def upgrade() -> None:
    op.create_table(
        "medicine_cards",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("card_version", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(*RESIDENT_FK),
    )
    op.create_table(
        "order_versions",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("order_id", sa.String(63), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("valid_from", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(*RESIDENT_FK),
    )


def downgrade() -> None:
    op.drop_table("order_versions")
    op.drop_table("medicine_cards")
