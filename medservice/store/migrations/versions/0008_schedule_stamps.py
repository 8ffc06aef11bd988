"""What batch reconciliation needs to trust the materialised schedule.

Each scheduled dose carries what a record on it is checked against (the part of its
window in which one version of the order is in force and to be given, the ordered amount
and route, when the mirror first knew the order). A schedule stamp per resident says for
which due-time range the resident's rows are exactly the schedule, and under which order
history (a counter on the resident that every new order version increments) and facility
settings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("residents", sa.Column("order_changes", sa.BigInteger, nullable=False,
                                         server_default="0"))
    with op.batch_alter_table("scheduled_doses") as batch:
        # Where in the dose's window a record is plainly right (NULL: nowhere; rows from
        # before this revision too, so a record on them is examined).
        batch.add_column(sa.Column("plain_from", UTC_DATETIME))
        batch.add_column(sa.Column("plain_until", UTC_DATETIME))
        # The ordered quantity as records write it; NULL for a range.
        batch.add_column(sa.Column("amount", sa.String(40)))
        batch.add_column(sa.Column("route", sa.String(100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("order_since", UTC_DATETIME))
    op.create_table(
        "schedule_stamps",
        sa.Column("facility_id", sa.String(63), primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("order_changes", sa.BigInteger, nullable=False),
        sa.Column("settings_key", sa.String(32), nullable=False),
        sa.Column("covers_from", UTC_DATETIME, nullable=False),
        sa.Column("covers_until", UTC_DATETIME, nullable=False),
        sa.Column("simple", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_stamps")
    with op.batch_alter_table("scheduled_doses") as batch:
        for column in ("order_since", "route", "amount", "plain_until", "plain_from"):
            batch.drop_column(column)
    with op.batch_alter_table("residents") as batch:
        batch.drop_column("order_changes")
