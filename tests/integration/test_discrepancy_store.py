"""The discrepancy store's history on SQLite and PostgreSQL: reconciliation writes its
events in bulk (a fixed number of statements per call, whatever the number of
discrepancies: it is the hot path of a national-day batch), and `save` still returns
exactly the new and re-opened ids."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event

from medservice.reconcile import Code, Discrepancy, Severity
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.discrepancies import EventKind, Status, discrepancy_id

DAY = datetime(2026, 3, 29, tzinfo=UTC)
NOW = DAY + timedelta(days=1)
N = 200


def _found(n: int) -> list[Discrepancy]:
    return [Discrepancy(key=f"MISSED_DOSE|f/r{i}|o|d{i}", code=Code.MISSED_DOSE,
                        severity=Severity.HIGH, is_error=True, facility_id="f",
                        resident_id=f"r{i}", order_id="o", dose_id=f"d{i}", record_id=None,
                        occurred_at=DAY + timedelta(minutes=i), description="missed")
            for i in range(n)]


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _kinds(uow: UnitOfWorkFactory, ids: list[str]) -> list[list[EventKind]]:
    with uow(write=False) as u:
        return [[e.kind for e in u.discrepancies.events(i, limit=10, after=None)] for i in ids]


def test_reconciliation_writes_history_in_bulk(uow: UnitOfWorkFactory, engine: Engine) -> None:
    found = _found(N)
    ids = [discrepancy_id(d.key) for d in found]
    with _statements(engine) as seen, uow() as u:
        assert u.discrepancies.save(found, NOW) == ids
        u.commit()
    assert seen.count("INSERT") == 2, seen  # the discrepancies, then their events
    with _statements(engine) as seen, uow() as u:
        assert u.discrepancies.save(found, NOW) == []  # nothing new, no event
        assert u.discrepancies.withdraw_absent("f", None, DAY, NOW,
                                               {d.key for d in found[:150]}, NOW) == 50
        u.commit()
    assert len([s for s in seen if s in ("INSERT", "UPDATE", "SELECT")]) <= 5, seen
    with uow() as u:  # found again after the withdrawal: re-opened, and said so
        assert u.discrepancies.save(found, NOW) == ids[150:]
        u.commit()
    kinds = _kinds(uow, ids)
    assert kinds[0] == [EventKind.DETECTED]
    assert kinds[-1] == [EventKind.DETECTED, EventKind.WITHDRAWN, EventKind.REDETECTED]
    with uow(write=False) as u:
        entry = u.discrepancies.get("f", ids[-1])
    assert entry is not None and entry.status is Status.OPEN


def test_a_discrepancy_found_again_with_other_facts_takes_them(uow: UnitOfWorkFactory
                                                                ) -> None:
    """A back-dated change or a later record can move what a key's discrepancy is about (its
    dose, record, time, text): the stored row takes the facts found now, with a new etag and
    a CHANGED event naming what changed; found again unchanged, nothing is written."""
    [first] = _found(1)
    d_id = discrepancy_id(first.key)
    with uow() as u:
        u.discrepancies.save([first], NOW)
        u.commit()
    with uow(write=False) as u:
        before = u.discrepancies.get("f", d_id)
    moved = dataclasses.replace(first, dose_id="d-later", record_id="rec-2",
                                occurred_at=first.occurred_at + timedelta(hours=2),
                                description="missed, as ordered since the change")
    with uow() as u:
        assert u.discrepancies.save([moved], NOW) == []  # not new: no second detection
        u.commit()
    with uow(write=False) as u:
        after = u.discrepancies.get("f", d_id)
        events = u.discrepancies.events(d_id, limit=10, after=None)
    assert before is not None and after is not None
    assert (after.discrepancy.dose_id, after.discrepancy.record_id,
            after.discrepancy.occurred_at, after.discrepancy.description) == \
        ("d-later", "rec-2", moved.occurred_at, "missed, as ordered since the change")
    assert after.etag != before.etag and after.status is Status.OPEN
    assert [e.kind for e in events] == [EventKind.DETECTED, EventKind.CHANGED]
    assert events[-1].detail == "dose_id, record_id, occurred_at, description"
    with uow() as u:
        u.discrepancies.save([moved], NOW)
        u.commit()
    assert _kinds(uow, [d_id]) == [[EventKind.DETECTED, EventKind.CHANGED]]
