"""Danish first (issue 15): each facility's language, and texts kept as catalogue messages.

A facility's settings get `language` ("da" for every facility stored before). A
discrepancy's description and an alert's summary get `message`: the text as a catalogue
message (JSON: key and arguments), so one stored in the facility's language can be shown
in the language a caller asks for. Rows stored before have none and keep their text.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_facilities = sa.table("facilities", sa.column("facility_id", sa.String),
                       sa.column("settings", sa.JSON))


def _set_language(language: str | None) -> None:
    conn = op.get_bind()
    for facility_id, settings in conn.execute(
            sa.select(_facilities.c.facility_id, _facilities.c.settings)).all():
        values = dict(settings if isinstance(settings, dict) else json.loads(settings))
        if language is None:
            values.pop("language", None)
        else:
            values.setdefault("language", language)
        conn.execute(_facilities.update().where(_facilities.c.facility_id == facility_id)
                     .values(settings=values))


def upgrade() -> None:
    with op.batch_alter_table("discrepancies") as batch:
        batch.add_column(sa.Column("message", sa.Text))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("message", sa.Text))
    _set_language("da")


def downgrade() -> None:
    _set_language(None)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("message")
    with op.batch_alter_table("discrepancies") as batch:
        batch.drop_column("message")
