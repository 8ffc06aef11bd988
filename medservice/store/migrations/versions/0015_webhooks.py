"""Webhook subscriptions and their delivery cursors (issue 17).

A subscription POSTs one facility's alerts for one audience to an endpoint; its cursor row
is the lease a replica claims to deliver, and the log position delivered through.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("subscription_id", sa.String(32), primary_key=True),
        sa.Column("facility_id", sa.String(63), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
    )
    op.create_index("ix_webhook_subscriptions_facility", "webhook_subscriptions",
                    ["facility_id", "subscription_id"])
    op.create_table(
        "webhook_cursors",
        sa.Column("subscription_id", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("lease_holder", sa.String(100)),
        sa.Column("lease_until", UTC_DATETIME),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_delivered_alert", sa.String(32)),
        sa.Column("last_delivered_at", UTC_DATETIME),
        sa.Column("failing_since", UTC_DATETIME),
        sa.Column("last_error", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"],
                                ["webhook_subscriptions.subscription_id"],
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_index("ix_webhook_subscriptions_facility", "webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
