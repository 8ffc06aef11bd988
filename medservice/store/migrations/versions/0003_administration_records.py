"""Administration records, with one settling record per scheduled dose.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
SETTLING = sa.text("settles AND NOT entered_in_error")


def upgrade() -> None:
    op.create_table(
        "administration_records",
        sa.Column("record_id", sa.String(36), primary_key=True),
        sa.Column("facility_id", sa.String(63), nullable=False),
        sa.Column("resident_id", sa.String(63), nullable=False),
        sa.Column("order_id", sa.String(63)),
        sa.Column("drug_id", sa.String(100), nullable=False),
        sa.Column("dose_id", sa.String(36)),
        sa.Column("settles", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("quantity", sa.String(40)),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("source", sa.String(20)),
        sa.Column("not_given_reason", sa.String(30)),
        sa.Column("reason_text", sa.String(1000), nullable=False),
        sa.Column("pn_reason", sa.String(1000), nullable=False),
        sa.Column("administered_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("performer", sa.String(200), nullable=False),
        sa.Column("entered_in_error", sa.Boolean, nullable=False),
        sa.Column("correction_reason", sa.String(1000), nullable=False),
        sa.Column("corrected_by", sa.String(200), nullable=False),
        sa.Column("corrected_at", UTC_DATETIME),
        sa.ForeignKeyConstraint(["facility_id", "resident_id"],
                                ["residents.facility_id", "residents.resident_id"]),
    )
    op.create_index("ix_records_resident_time", "administration_records",
                    ["facility_id", "resident_id", "administered_at"])
    op.create_index("ux_records_settling_dose", "administration_records", ["dose_id"],
                    unique=True, sqlite_where=SETTLING, postgresql_where=SETTLING)


def downgrade() -> None:
    op.drop_index("ux_records_settling_dose", "administration_records")
    op.drop_index("ix_records_resident_time", "administration_records")
    op.drop_table("administration_records")
