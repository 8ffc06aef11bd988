"""Migration 0011 on SQLite and PostgreSQL (issue 13): a person identifier becomes unique per
facility. Upgrading from 0010 keeps every resident and every reference to one; afterwards
the same person may be a resident of two facilities, and twice in one is still refused."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from medservice.store import tables as t
from medservice.store.db import make_engine, normalise_url
from medservice.store.migrate import alembic_config
from tests.conftest import PG_URL_ENV

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PERSON = "0101451234"


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all: each test migrates it step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    admin_url = os.environ.get(PG_URL_ENV, "")
    if not admin_url:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    name = f"medservice_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(admin_url)).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _resident(facility_id: str, resident_id: str, person_id: str = PERSON
              ) -> dict[str, object]:
    return dict(facility_id=facility_id, resident_id=resident_id, person_id=person_id,
                display_name="Test Person", room="1", create_time=NOW, update_time=NOW,
                etag="e")


def _facility(facility_id: str) -> dict[str, object]:
    return dict(facility_id=facility_id, display_name=facility_id, time_zone="Europe/Copenhagen",
                settings={}, create_time=NOW, update_time=NOW, etag="e")


def _fails(engine: Engine, table: object, row: dict[str, object]) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(table), row)  # type: ignore[arg-type]


def test_upgrade_keeps_residents_and_their_references_and_scopes_the_key(
        empty_db: str) -> None:
    cfg = alembic_config(empty_db)
    command.upgrade(cfg, "0010")
    engine = make_engine(empty_db)
    try:
        with engine.begin() as conn:
            conn.execute(insert(t.facilities), [_facility("a"), _facility("b")])
            conn.execute(insert(t.residents), [_resident("a", "r1"),
                                               _resident("a", "r2", "0202452345")])
            conn.execute(insert(t.medicine_cards), dict(
                facility_id="a", resident_id="r1", card_version=3, recorded_at=NOW))
        # Before: the key is global, so facility b cannot hold the person.
        _fails(engine, t.residents, _resident("b", "r9"))
        engine.dispose()

        command.upgrade(cfg, "head")
        with engine.begin() as conn:
            assert sorted(conn.execute(select(t.residents.c.resident_id,
                                              t.residents.c.person_id))) == [
                ("r1", PERSON), ("r2", "0202452345")]
            assert conn.execute(select(t.medicine_cards.c.card_version)).scalar_one() == 3
            # After: the same person may be a resident of another facility ...
            conn.execute(insert(t.residents), _resident("b", "r9"))
        # ... but not twice in one, and references are still checked.
        _fails(engine, t.residents, _resident("a", "r3"))
        _fails(engine, t.medicine_cards, dict(facility_id="a", resident_id="nobody",
                                              card_version=1, recorded_at=NOW))
        _fails(engine, t.residents, _resident("nowhere", "r4", "0303453456"))
        with engine.begin() as conn:
            conn.execute(t.residents.delete().where(t.residents.c.facility_id == "b"))
    finally:
        engine.dispose()
    # Down again (no person in two facilities now) and up: the revision is reversible.
    command.downgrade(cfg, "0010")
    command.upgrade(cfg, "head")
