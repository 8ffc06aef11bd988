"""A PN dose's evaluation of its effect, and the sweep's mark for its deadline (issue 16).

Each administration record gets the evaluation of a PN dose (effect, note, who, when, and
when first), an etag (compare-and-set of evaluations), and `followup_due_at`: the
evaluation deadline at which the sweep has still to reconcile the resident (NULL: nothing
to sweep). Records made before this migration have none: no sweep should flag them all at
once on the first pass after an upgrade (a batch reconciliation still finds them).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("administration_records") as batch:
        batch.add_column(sa.Column("pn_effect", sa.String(20)))
        batch.add_column(sa.Column("pn_effect_note", sa.String(1000), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("evaluated_by", sa.String(200), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("evaluated_at", UTC_DATETIME))
        batch.add_column(sa.Column("first_evaluated_at", UTC_DATETIME))
        batch.add_column(sa.Column("etag", sa.String(64), nullable=False, server_default="0"))
        batch.add_column(sa.Column("followup_due_at", UTC_DATETIME))
    op.create_index("ix_records_followup", "administration_records", ["followup_due_at"],
                    sqlite_where=sa.text("followup_due_at IS NOT NULL"),
                    postgresql_where=sa.text("followup_due_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_records_followup", "administration_records")
    with op.batch_alter_table("administration_records") as batch:
        for column in ("followup_due_at", "etag", "first_evaluated_at", "evaluated_at",
                       "evaluated_by", "pn_effect_note", "pn_effect"):
            batch.drop_column(column)
