"""Migration 0016 (issue 15): facilities stored before it get Danish, stored texts get a
message column, and the revision goes down and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import insert, inspect, select

from medservice.domain.facility import Facility
from medservice.store import tables as t
from medservice.store.db import make_engine
from medservice.store.migrate import alembic_config
from medservice.store.repositories import FacilityRepository, facility_settings
from tests.integration.test_person_per_facility import empty_db as empty_db  # fixture

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _settings_before_0016() -> dict[str, object]:
    settings = facility_settings(Facility("a", "A"))
    del settings["language"]  # as stored before issue 15
    return settings


def test_facilities_stored_before_become_danish_and_texts_get_a_message_column(
        empty_db: str) -> None:
    cfg = alembic_config(empty_db)
    command.upgrade(cfg, "0012")
    engine = make_engine(empty_db)
    try:
        with engine.begin() as conn:
            conn.execute(insert(t.facilities), dict(
                facility_id="a", display_name="A", time_zone="Europe/Copenhagen",
                settings=_settings_before_0016(), create_time=NOW, update_time=NOW,
                etag="e"))
        engine.dispose()
        command.upgrade(cfg, "0016")
        with engine.begin() as conn:
            settings = conn.execute(select(t.facilities.c.settings)).scalar_one()
            assert settings["language"] == "da"
            facility = FacilityRepository(conn).get("a")
            assert facility is not None and facility.language == "da"
            for table in ("discrepancies", "alerts"):
                assert "message" in {c["name"] for c in inspect(conn).get_columns(table)}
        engine.dispose()
        command.downgrade(cfg, "0012")
        with engine.begin() as conn:
            assert "language" not in conn.execute(select(t.facilities.c.settings)).scalar_one()
            assert "message" not in {c["name"] for c in inspect(conn).get_columns("alerts")}
        engine.dispose()
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
