"""The audit appender (events that commit on their own: reads, failures) stores exactly
what the unit of work's AuditLog stores, on both stores, and a failure loses nothing that
was committed and spoils no later append."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from medservice.domain.access import Role
from medservice.domain.names import time_ordered_id
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.audit import AuditAppender, AuditEvent, AuditFilter

# A summer instant with microseconds, given in a zone other than UTC: stored as the same
# instant either way.
AT = datetime(2026, 7, 1, 10, 15, 30, 123456, tzinfo=UTC)


def _event(i: int, **fields: object) -> AuditEvent:
    e = AuditEvent(time_ordered_id(), AT + timedelta(seconds=i), "f", f"nurse-{i}", Role.CARER,
                   "/medservice.v1.RoundService/CheckDose", "facilities/f/residents/r1",
                   "r1", "", "OK")
    return dataclasses.replace(e, **fields)  # type: ignore[arg-type]


# Only this file's events: the database may hold other tests' (never assume it empty).
MINE = AuditFilter(None, start=AT - timedelta(seconds=1), end=AT + timedelta(minutes=1))


def _stored(uow: UnitOfWorkFactory) -> list[AuditEvent]:
    with uow(write=False) as u:
        return u.audit.page(MINE, limit=100, after=None)


def test_the_appender_stores_what_the_audit_log_stores(engine: Engine,
                                                       uow: UnitOfWorkFactory) -> None:
    plus_two = AT.astimezone(ZoneInfo("Europe/Copenhagen"))
    through_log = [_event(0), _event(1, facility_id=None, resident_id=None, resource="",
                                     outcome="NOT_FOUND", detail="unidentified",
                                     event_time=plus_two)]
    through_appender = [dataclasses.replace(e, event_id=time_ordered_id()) for e in through_log]
    with uow() as u:
        u.audit.add_all(through_log)
        u.commit()
    appender = AuditAppender(engine)
    try:
        appender(lambda: through_appender)
    finally:
        appender.close()
    by_id = {e.event_id: e for e in _stored(uow)}
    assert len(by_id) == 4
    for logged, appended in zip(through_log, through_appender, strict=True):
        assert by_id[logged.event_id] == logged
        assert dataclasses.replace(by_id[appended.event_id], event_id=logged.event_id) == logged
    # Read back in UTC, the instant given at +02:00.
    assert by_id[through_appender[1].event_id].event_time.utcoffset() == timedelta(0)


def test_a_failed_append_keeps_nothing_of_it_and_the_next_one_works(
        engine: Engine, uow: UnitOfWorkFactory) -> None:
    appender = AuditAppender(engine)
    try:
        first = _event(0)
        appender(lambda: [first])
        # The same event id again: the primary key refuses the whole batch.
        with pytest.raises(engine.dialect.dbapi.IntegrityError):  # type: ignore[union-attr]
            appender(lambda: [_event(1), first])
        later = _event(2)
        appender(lambda: [later])
    finally:
        appender.close()
    assert sorted(e.event_id for e in _stored(uow)) == sorted([first.event_id, later.event_id])


def _raw_time(engine: Engine, event_id: str) -> str:
    """The stored event_time as the database holds it, not as read back and parsed."""
    with engine.connect() as conn:
        return str(conn.execute(text(
            "SELECT CAST(event_time AS TEXT) FROM audit_events WHERE event_id = :id"),
            {"id": event_id}).scalar_one())


def test_the_stored_text_of_an_instant_is_the_audit_logs(engine: Engine,
                                                         uow: UnitOfWorkFactory) -> None:
    """Compared as stored: ListAuditEvents filters and pages on it, so the same instant
    written two ways would sort apart (no microseconds is where formats differ)."""
    whole_second = AT.replace(microsecond=0)
    logged, appended = _event(0, event_time=whole_second), _event(1, event_time=whole_second)
    with uow() as u:
        u.audit.add_all([logged])
        u.commit()
    appender = AuditAppender(engine)
    try:
        appender(lambda: [appended])
    finally:
        appender.close()
    assert _raw_time(engine, appended.event_id) == _raw_time(engine, logged.event_id)
    # Paged one at a time, events at the same instant all come (none lost at a tie).
    with uow(write=False) as u:
        seen, after = [], None
        while True:
            page = u.audit.page(MINE, limit=1, after=after)
            if not page:
                break
            seen += [e.event_id for e in page]
            after = (page[-1].event_time.isoformat(), page[-1].event_id)
    assert sorted(seen) == sorted([logged.event_id, appended.event_id])


def _drop_underneath(engine: Engine, appender: AuditAppender) -> None:
    """What a database restart or an idle timeout does to the kept connection."""
    kept = appender._conn.driver_connection
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid})
    else:
        kept.close()


def test_a_kept_connection_the_database_dropped_is_replaced(engine: Engine,
                                                            uow: UnitOfWorkFactory) -> None:
    appender = AuditAppender(engine)
    try:
        first, second = _event(0), _event(1)
        appender(lambda: [first])
        _drop_underneath(engine, appender)
        appender(lambda: [second])  # not lost: tried again on a new connection
    finally:
        appender.close()
    assert sorted(e.event_id for e in _stored(uow)) == sorted([first.event_id,
                                                               second.event_id])
    with pytest.raises(RuntimeError, match="closed"):
        appender(lambda: [_event(2)])  # after close: refused, no connection opened
    assert appender._conn is None
