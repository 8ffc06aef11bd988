"""The append-only audit trail.

The database itself refuses UPDATE and DELETE on audit_events, so no code path (nor a
mistaken hand-written statement) can rewrite the trail. TRUNCATE is left alone: it is not
row-level, and the test fixtures use it to empty a PostgreSQL database between tests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
REFUSAL = "audit_events is append-only"

PG_FUNCTION = f"""
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
END
$$
"""
# Statement-level: refused even when the statement would touch no row.
PG_TRIGGER = """
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_time", UTC_DATETIME, nullable=False),
        sa.Column("facility_id", sa.String(63)),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("method", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("resident_id", sa.String(63)),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
    )
    op.create_index("ix_audit_events_facility_time", "audit_events",
                    ["facility_id", "event_time"])
    op.create_index("ix_audit_events_time", "audit_events", ["event_time"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} "
                       f"ON audit_events BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    op.drop_index("ix_audit_events_time", "audit_events")
    op.drop_index("ix_audit_events_facility_time", "audit_events")
    op.drop_table("audit_events")
