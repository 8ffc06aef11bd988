"""Migration 0018 (issue 20) on SQLite and PostgreSQL: records get the id of the record
they replace. An upgrade from 0017 keeps every record, with no link (NULL); the revision
goes down and up again."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import insert, inspect, select

from medservice.store import tables as t
from medservice.store.db import make_engine
from medservice.store.migrate import alembic_config
from medservice.store.records import RecordRepository
from tests.integration.test_person_per_facility import _facility, _resident
from tests.integration.test_person_per_facility import empty_db as empty_db  # fixture

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _record_row(record_id: str, entered_in_error: bool) -> dict[str, object]:
    """A record as stored at 0017 (no replaces_record_id column yet)."""
    return dict(record_id=record_id, facility_id="a", resident_id="r1", order_id="o1",
                drug_id="drug-a", dose_id="dose-1", settles=True, outcome="given",
                quantity="1", route="oral", reason_text="", pn_reason="",
                administered_at=NOW, recorded_at=NOW, performer="nurse-1",
                entered_in_error=entered_in_error, correction_reason="typo"
                if entered_in_error else "", corrected_by="", corrected_at=None)


def _columns(conn: object) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("administration_records")}


def test_an_upgrade_from_0017_keeps_records_with_no_link_and_goes_down_again(
        empty_db: str) -> None:
    cfg = alembic_config(empty_db)
    command.upgrade(cfg, "0017")
    engine = make_engine(empty_db)
    try:
        with engine.begin() as conn:
            assert "replaces_record_id" not in _columns(conn)
            conn.execute(insert(t.facilities), _facility("a"))
            conn.execute(insert(t.residents), _resident("a", "r1"))
            conn.execute(insert(t.administration_records),
                         [_record_row("old", True), _record_row("new", False)])
        engine.dispose()
        command.upgrade(cfg, "head")
        with engine.begin() as conn:
            rows = conn.execute(select(t.administration_records.c.record_id,
                                       t.administration_records.c.replaces_record_id)
                                .order_by(t.administration_records.c.record_id)).all()
            assert [tuple(r) for r in rows] == [("new", None), ("old", None)]
            stored = RecordRepository(conn).get("a", "r1", "new")
            assert stored is not None and stored.replaces_record_id is None
            assert stored.quantity is not None and stored.route == "oral"
        engine.dispose()
        command.downgrade(cfg, "0017")
        with engine.begin() as conn:
            assert "replaces_record_id" not in _columns(conn)
            # The settling dose's uniqueness is still partial: an active record may follow
            # the entered-in-error one on the same dose.
            assert any(i["name"] == "ux_records_settling_dose"
                       for i in inspect(conn).get_indexes("administration_records"))
            conn.execute(insert(t.administration_records), _record_row("older", True))
            assert sorted(r for (r,) in conn.execute(
                select(t.administration_records.c.record_id))) == ["new", "old", "older"]
        engine.dispose()
        command.upgrade(cfg, "head")
        with engine.begin() as conn:
            assert "replaces_record_id" in _columns(conn)
    finally:
        engine.dispose()
