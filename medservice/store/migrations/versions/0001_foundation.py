"""Facilities, residents and the request log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "facilities",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
        sa.Column("update_time", UTC_DATETIME, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
    )
    op.create_table(
        "residents",
        sa.Column("facility_id", sa.String(63), sa.ForeignKey("facilities.facility_id"),
                  primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("person_id", sa.String(10), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("room", sa.String(50), nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
        sa.Column("update_time", UTC_DATETIME, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
    )
    op.create_index("ix_residents_room_order", "residents",
                    ["facility_id", "room", "resident_id"])
    op.create_table(
        "request_log",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("method", sa.String(200), primary_key=True),
        sa.Column("request_id", sa.String(100), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_index("ix_residents_room_order", "residents")
    op.drop_table("residents")
    op.drop_table("facilities")
