"""The durable alert log and the materialised scheduled doses the missed-dose sweep claims.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_logs",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.Column("pruned_through", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(32), primary_key=True),
        sa.Column("facility_id", sa.String(63), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        sa.Column("source_key", sa.String(450), nullable=False, unique=True),
        sa.Column("shift_id", sa.String(30), nullable=False),
        sa.Column("shift_date", sa.String(10), nullable=False),
        sa.Column("discrepancy_id", sa.String(32)),
        sa.Column("resident_id", sa.String(63)),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("escalate_at", UTC_DATETIME),
        sa.Column("escalates", sa.String(32)),
        sa.Column("acknowledged_at", UTC_DATETIME),
        sa.Column("acknowledged_by", sa.String(200), nullable=False),
    )
    op.create_index("ux_alerts_position", "alerts", ["facility_id", "position"], unique=True)
    op.create_index("ix_alerts_escalate_at", "alerts", ["escalate_at"],
                    postgresql_where=sa.text("escalate_at IS NOT NULL"),
                    sqlite_where=sa.text("escalate_at IS NOT NULL"))
    op.create_table(
        "scheduled_doses",
        sa.Column("dose_id", sa.String(36), primary_key=True),
        sa.Column("facility_id", sa.String(63), nullable=False),
        sa.Column("resident_id", sa.String(63), nullable=False),
        sa.Column("order_id", sa.String(63), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("closes_at", UTC_DATETIME, nullable=False),
        sa.Column("swept_at", UTC_DATETIME),
    )
    op.create_index("ix_scheduled_doses_resident", "scheduled_doses",
                    ["facility_id", "resident_id", "due_at"])
    op.create_index("ix_scheduled_doses_unswept", "scheduled_doses", ["closes_at"],
                    postgresql_where=sa.text("swept_at IS NULL"),
                    sqlite_where=sa.text("swept_at IS NULL"))
    op.create_table(
        "schedule_horizons",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("materialised_until", UTC_DATETIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_horizons")
    op.drop_index("ix_scheduled_doses_unswept", "scheduled_doses")
    op.drop_index("ix_scheduled_doses_resident", "scheduled_doses")
    op.drop_table("scheduled_doses")
    op.drop_index("ix_alerts_escalate_at", "alerts")
    op.drop_index("ux_alerts_position", "alerts")
    op.drop_table("alerts")
    op.drop_table("alert_logs")
