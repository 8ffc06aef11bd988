"""Materialised due doses: what the missed-dose sweep claims once their window has closed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medservice.store import tables as t
from medservice.store.repositories import _utc

_S = t.scheduled_doses.c
_H = t.schedule_horizons.c


@dataclass(frozen=True)
class DueDose:
    dose_id: str
    facility_id: str
    resident_id: str
    order_id: str
    due_at: datetime
    closes_at: datetime


class ScheduleRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _insert(self) -> Any:
        return pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert

    def add(self, doses: Iterable[DueDose]) -> None:
        """Insert the doses not yet materialised (a swept dose stays swept)."""
        rows = [dict(dose_id=d.dose_id, facility_id=d.facility_id, resident_id=d.resident_id,
                     order_id=d.order_id, due_at=d.due_at, closes_at=d.closes_at,
                     swept_at=None) for d in doses]
        for i in range(0, len(rows), 5000):
            self._conn.execute(self._insert()(t.scheduled_doses).on_conflict_do_nothing(
                index_elements=["dose_id"]), rows[i:i + 5000])

    def replace_unswept(self, facility_id: str, resident_id: str | None, start: datetime,
                        end: datetime, doses: list[DueDose]) -> None:
        """Make the unswept doses due in [start, end) exactly `doses`: an order change may
        add, move or cancel doses. The caller holds the resident's card lock."""
        keep = {d.dose_id for d in doses}
        q = select(_S.dose_id).where(_S.facility_id == facility_id, _S.swept_at.is_(None),
                                     _S.due_at >= start, _S.due_at < end)
        if resident_id is not None:
            q = q.where(_S.resident_id == resident_id)
        stale = [i for i in self._conn.scalars(q) if i not in keep]
        for i in range(0, len(stale), 1000):
            self._conn.execute(delete(t.scheduled_doses).where(
                _S.dose_id.in_(stale[i:i + 1000])))
        self.add(doses)

    def claim_closed(self, now: datetime, limit: int, *, facility_id: str | None = None,
                     resident_id: str | None = None) -> list[DueDose]:
        """Unswept doses whose window closed by `now`, oldest first, claimed for this
        transaction: another replica's sweep skips them (SKIP LOCKED; SQLite has one
        writer at a time anyway)."""
        q = (select(_S.dose_id, _S.facility_id, _S.resident_id, _S.order_id, _S.due_at,
                    _S.closes_at)
             .where(_S.swept_at.is_(None), _S.closes_at <= now))
        if facility_id is not None:
            q = q.where(_S.facility_id == facility_id, _S.resident_id == resident_id)
        rows = self._conn.execute(
            q.order_by(_S.closes_at).limit(limit).with_for_update(skip_locked=True))
        return [DueDose(r.dose_id, r.facility_id, r.resident_id, r.order_id, _utc(r.due_at),
                        _utc(r.closes_at)) for r in rows]

    def mark_swept(self, dose_ids: list[str], now: datetime) -> None:
        for i in range(0, len(dose_ids), 1000):
            self._conn.execute(update(t.scheduled_doses).where(
                _S.dose_id.in_(dose_ids[i:i + 1000])).values(swept_at=now))

    def horizon(self, facility_id: str) -> datetime | None:
        value = self._conn.scalar(select(_H.materialised_until).where(
            _H.facility_id == facility_id))
        return _utc(value) if value is not None else None

    def claim_horizon(self, before: datetime) -> tuple[str, datetime] | None:
        """A facility whose doses are materialised only until before `before`, claimed
        (SKIP LOCKED) so one replica extends it."""
        row = self._conn.execute(
            select(_H.facility_id, _H.materialised_until)
            .where(_H.materialised_until < before).order_by(_H.materialised_until)
            .limit(1).with_for_update(skip_locked=True)).first()
        return (row[0], _utc(row[1])) if row else None

    def ensure_horizon(self, facility_id: str, at: datetime) -> None:
        self._conn.execute(self._insert()(t.schedule_horizons).values(
            facility_id=facility_id, materialised_until=at
        ).on_conflict_do_nothing(index_elements=["facility_id"]))

    def set_horizon(self, facility_id: str, until: datetime) -> None:
        self._conn.execute(update(t.schedule_horizons).where(
            _H.facility_id == facility_id).values(materialised_until=until))

    def unswept_count(self) -> int:
        return int(self._conn.scalar(select(func.count()).select_from(t.scheduled_doses)
                                     .where(_S.swept_at.is_(None))) or 0)
