"""A person identifier is unique per facility, not across facilities (issue 13).

With a global unique key, CreateResident in facility B answered ALREADY_EXISTS for the
person id of a resident of facility A and OK for an unused one: any facility could learn
whether a person lives in another care home. Now one person has at most one resident per
facility, and may have one in each facility they have lived in (a move keeps both).

SQLite cannot drop a column's UNIQUE, so the table is rebuilt. Child tables reference it
with foreign keys that are on, and PRAGMA foreign_keys cannot change inside the migration's
transaction: with the constraints deferred, dropping the old table counts its children as
violations and inserting the same rows into the new one counts them back, so the commit
checks that every reference still holds.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
NEW_KEY = "uq_residents_facility_person"
COLUMNS = ("facility_id", "resident_id", "person_id", "display_name", "room", "create_time",
           "update_time", "etag", "order_changes")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(per_facility=True)
        return
    for name in _unique_keys_on(["person_id"]):
        op.drop_constraint(name, "residents", type_="unique")
    op.create_unique_constraint(NEW_KEY, "residents", ["facility_id", "person_id"])


def downgrade() -> None:
    # Fails, changing nothing, while a person has residents in two facilities.
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(per_facility=False)
        return
    op.drop_constraint(NEW_KEY, "residents", type_="unique")
    op.create_unique_constraint("residents_person_id_key", "residents", ["person_id"])


def _unique_keys_on(columns: list[str]) -> list[str]:
    inspector = sa.inspect(op.get_bind())
    return [str(u["name"]) for u in inspector.get_unique_constraints("residents")
            if list(u["column_names"]) == columns and u["name"]]


def _rebuild_sqlite(*, per_facility: bool) -> None:
    cols = ", ".join(COLUMNS)
    op.execute("PRAGMA defer_foreign_keys = ON")  # until this transaction commits
    op.execute(f"CREATE TEMP TABLE residents_0011 AS SELECT {cols} FROM residents")
    op.drop_index("ix_residents_room_order", "residents")
    op.drop_table("residents")
    key = (sa.UniqueConstraint("facility_id", "person_id", name=NEW_KEY) if per_facility
           else sa.UniqueConstraint("person_id"))
    op.create_table(
        "residents",
        sa.Column("facility_id", sa.String(63), sa.ForeignKey("facilities.facility_id"),
                  primary_key=True),
        sa.Column("resident_id", sa.String(63), primary_key=True),
        sa.Column("person_id", sa.String(10), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("room", sa.String(50), nullable=False),
        sa.Column("create_time", UTC_DATETIME, nullable=False),
        sa.Column("update_time", UTC_DATETIME, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("order_changes", sa.BigInteger, nullable=False, server_default="0"),
        key,
    )
    op.execute(f"INSERT INTO residents ({cols}) SELECT {cols} FROM residents_0011")
    op.execute("DROP TABLE residents_0011")
    op.create_index("ix_residents_room_order", "residents",
                    ["facility_id", "room", "resident_id"])
