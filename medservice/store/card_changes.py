"""Repository of the clinical card changes and their approval (issue 16 part 1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from medservice.domain.card_changes import Aspect, ChangeStatus, PendingChange
from medservice.store import tables as t
from medservice.store.repositories import _utc

_C = t.card_changes.c


def _change(row: Any) -> PendingChange:
    return PendingChange(
        facility_id=row.facility_id, resident_id=row.resident_id, order_id=row.order_id,
        first_version=int(row.first_version), base_version=int(row.base_version),
        version=int(row.version),
        aspects=tuple(Aspect(a) for a in row.aspects.split(",") if a),
        drug_name=row.drug_name, before=row.before_text, after=row.after_text,
        detected_at=_utc(row.detected_at), updated_at=_utc(row.updated_at), etag=row.etag,
        status=ChangeStatus(row.status),
        approved_at=_utc(row.approved_at) if row.approved_at is not None else None,
        approved_by=row.approved_by)


def _values(c: PendingChange) -> dict[str, Any]:
    return {"base_version": c.base_version, "version": c.version, "status": c.status.value,
            "aspects": ",".join(a.value for a in c.aspects), "drug_name": c.drug_name[:200],
            "before_text": c.before, "after_text": c.after, "detected_at": c.detected_at,
            "updated_at": c.updated_at, "etag": c.etag, "approved_at": c.approved_at,
            "approved_by": c.approved_by}


class CardChangeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def save(self, c: PendingChange) -> None:
        """Insert the change, or replace what is stored under its key."""
        done = self._conn.execute(update(t.card_changes).where(
            _C.facility_id == c.facility_id, _C.resident_id == c.resident_id,
            _C.order_id == c.order_id, _C.first_version == c.first_version
        ).values(**_values(c)))
        if done.rowcount == 0:
            self._conn.execute(insert(t.card_changes).values(
                facility_id=c.facility_id, resident_id=c.resident_id, order_id=c.order_id,
                first_version=c.first_version, **_values(c)))

    def get(self, facility_id: str, resident_id: str, order_id: str, first_version: int
            ) -> PendingChange | None:
        row = self._conn.execute(select(t.card_changes).where(
            _C.facility_id == facility_id, _C.resident_id == resident_id,
            _C.order_id == order_id, _C.first_version == first_version)).first()
        return None if row is None else _change(row)

    def pending(self, facility_id: str, resident_id: str | None = None
                ) -> list[PendingChange]:
        """The facility's (or one resident's) changes waiting for approval, oldest first."""
        q = select(t.card_changes).where(_C.facility_id == facility_id,
                                         _C.status == ChangeStatus.PENDING.value)
        if resident_id is not None:
            q = q.where(_C.resident_id == resident_id)
        rows = self._conn.execute(q.order_by(_C.detected_at, _C.resident_id, _C.order_id,
                                             _C.first_version))
        return [_change(r) for r in rows]

    def approve(self, c: PendingChange, etag: str, by: str, now: datetime) -> bool:
        """Compare-and-set: approve the pending change only if its etag is still `etag`."""
        done = self._conn.execute(update(t.card_changes).where(
            _C.facility_id == c.facility_id, _C.resident_id == c.resident_id,
            _C.order_id == c.order_id, _C.first_version == c.first_version,
            _C.status == ChangeStatus.PENDING.value, _C.etag == etag
        ).values(status=ChangeStatus.APPROVED.value, approved_at=now, approved_by=by,
                 updated_at=now, etag=str(int(etag) + 1) if etag.isdigit() else "1"))
        return done.rowcount == 1
