"""The pharmacy's dose-dispensing cards as read from FMK (issue 16 part 3, inspection checks).

One row per imported GetDoseDispensingCardResponse, never updated: which orders the card
lists (`lines`, JSON) and the dispensing periods it covers. The inspection checks compare a
resident's latest card with the orders of the medicine card. Cards imported before this
migration were not kept: the checks say "no dose-dispensing card" until the next import.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dose_dispensing_cards",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("period_start", sa.Date),
        sa.Column("period_end", sa.Date),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["facility_id", "resident_id"],
                                ["residents.facility_id", "residents.resident_id"]),
    )


def downgrade() -> None:
    op.drop_table("dose_dispensing_cards")
