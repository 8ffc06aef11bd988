"""Whether the card version a mirror holds was applied whole (issue 21).

A whole-card import in which an order cannot be read applies what it can read, keeps the
unreadable orders as they were, and records its card version as read but not applied
whole (`complete` false): an older card is still refused as stale, and a corrected import
of the same version is applied instead of being skipped as already held.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("medicine_cards", sa.Column("complete", sa.Boolean, nullable=False,
                                              server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("medicine_cards") as batch:
        batch.drop_column("complete")
