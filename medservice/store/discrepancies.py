"""Repository of discrepancies: saved by stable key (never twice), withdrawn when they no
longer apply, reviewed under an etag."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medservice.reconcile.discrepancy import Code, Discrepancy, Severity
from medservice.store import tables as t
from medservice.store.repositories import _utc

_D = t.discrepancies.c


class Status(Enum):
    OPEN = "open"
    REVIEWED = "reviewed"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class DiscrepancyEntry:
    """A stored discrepancy with its workflow state."""

    discrepancy_id: str
    discrepancy: Discrepancy
    detected_at: datetime
    status: Status
    decision: str | None
    review_note: str
    reviewer: str
    reviewed_at: datetime | None
    etag: str


def discrepancy_id(key: str) -> str:
    """The same key gives the same id in every replica."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _entry(row: Any) -> DiscrepancyEntry:
    d = Discrepancy(
        key=row.key, code=Code(row.code), severity=Severity(row.severity),
        is_error=row.is_error, facility_id=row.facility_id, resident_id=row.resident_id,
        order_id=row.order_id, dose_id=row.dose_id, record_id=row.record_id,
        occurred_at=_utc(row.occurred_at), description=row.description,
        known_at_administration=row.known_at_administration)
    return DiscrepancyEntry(
        row.discrepancy_id, d, _utc(row.detected_at), Status(row.status), row.decision,
        row.review_note, row.reviewer, _utc(row.reviewed_at) if row.reviewed_at else None,
        row.etag)


@dataclass(frozen=True)
class DiscrepancyFilter:
    facility_ids: frozenset[str] | None  # None: every facility
    resident_id: str | None = None
    code: Code | None = None
    min_severity: Severity | None = None
    status: Status | None = None
    start: datetime | None = None
    end: datetime | None = None


class DiscrepancyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def save(self, found: Iterable[Discrepancy], now: datetime) -> list[str]:
        """Insert what is new (by key) and reopen what had been withdrawn; return the ids
        of the discrepancies that are new or reopened."""
        rows = [self._row(d, now) for d in found]
        if not rows:
            return []
        keys = [r["key"] for r in rows]
        before = {k: s for k, s in self._conn.execute(
            select(_D.key, _D.status).where(_D.key.in_(keys)))}
        insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        self._conn.execute(insert(t.discrepancies).on_conflict_do_nothing(
            index_elements=["key"]), rows)
        reopened = [k for k, s in before.items() if s == Status.WITHDRAWN.value]
        if reopened:
            self._conn.execute(update(t.discrepancies).where(_D.key.in_(reopened)).values(
                status=Status.OPEN.value, etag=uuid.uuid4().hex))
        return [discrepancy_id(k) for k in keys if k not in before or k in reopened]

    @staticmethod
    def _row(d: Discrepancy, now: datetime) -> dict[str, Any]:
        return dict(
            discrepancy_id=discrepancy_id(d.key), key=d.key, facility_id=d.facility_id,
            resident_id=d.resident_id, code=d.code.value, severity=d.severity.value,
            is_error=d.is_error, order_id=d.order_id, dose_id=d.dose_id,
            record_id=d.record_id, occurred_at=d.occurred_at, detected_at=now,
            description=d.description, known_at_administration=d.known_at_administration,
            status=Status.OPEN.value, decision=None, review_note="", reviewer="",
            reviewed_at=None, etag=uuid.uuid4().hex)

    def withdraw_absent(self, facility_id: str, resident_id: str | None, start: datetime,
                        end: datetime, produced: set[str]) -> int:
        """Withdraw open discrepancies of the scope that reconciliation no longer finds."""
        q = select(_D.key).where(_D.facility_id == facility_id, _D.occurred_at >= start,
                                 _D.occurred_at < end, _D.status == Status.OPEN.value)
        if resident_id is not None:
            q = q.where(_D.resident_id == resident_id)
        stale = [k for (k,) in self._conn.execute(q) if k not in produced]
        if stale:
            self._conn.execute(update(t.discrepancies).where(_D.key.in_(stale)).values(
                status=Status.WITHDRAWN.value, etag=uuid.uuid4().hex))
        return len(stale)

    def get(self, facility_id: str, discrepancy_id_: str) -> DiscrepancyEntry | None:
        row = self._conn.execute(select(t.discrepancies).where(
            _D.facility_id == facility_id, _D.discrepancy_id == discrepancy_id_)).first()
        return _entry(row) if row else None

    def page(self, f: DiscrepancyFilter, *, limit: int, after: tuple[str, str] | None
             ) -> list[DiscrepancyEntry]:
        """Newest occurrence first; `after` is (occurred_at ISO, id) of the previous page."""
        q = select(t.discrepancies)
        if f.facility_ids is not None:
            q = q.where(_D.facility_id.in_(sorted(f.facility_ids)))
        if f.resident_id:
            q = q.where(_D.resident_id == f.resident_id)
        if f.code is not None:
            q = q.where(_D.code == f.code.value)
        if f.min_severity is not None:
            q = q.where(_D.severity.in_([s.value for s in Severity
                                         if s.rank >= f.min_severity.rank]))
        if f.status is not None:
            q = q.where(_D.status == f.status.value)
        if f.start is not None:
            q = q.where(_D.occurred_at >= f.start)
        if f.end is not None:
            q = q.where(_D.occurred_at < f.end)
        if after is not None:
            at = datetime.fromisoformat(after[0])
            q = q.where(or_(_D.occurred_at < at,
                            and_(_D.occurred_at == at, _D.discrepancy_id < after[1])))
        q = q.order_by(_D.occurred_at.desc(), _D.discrepancy_id.desc()).limit(limit)
        return [_entry(r) for r in self._conn.execute(q)]
