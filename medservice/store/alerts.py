"""The durable alert log: one log per facility, positions in commit order.

`append` takes the next positions by updating the facility's `alert_logs` row; that row
stays locked until the transaction commits, so a transaction that took position N commits
before one that takes N+1 can. A watcher that has read up to N and then sees N+2 can trust
that N+1 does not exist (pruned or rolled back never happens to a committed position), so
reading "after my position" never skips a row that commits late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, text, update

from medservice import i18n
from medservice.domain.access import Role
from medservice.domain.alerts import Alert, AlertKind, NewAlert
from medservice.domain.discrepancy import Severity
from medservice.store import tables as t
from medservice.store.bulk import any_of, insert_rows
from medservice.store.repositories import _utc

_A = t.alerts.c
_L = t.alert_logs.c

# The channel NOTIFY wakes watchers on (PostgreSQL); the payload is the facility id.
CHANNEL = "medservice_alerts"


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id, position=row.position, facility_id=row.facility_id,
        kind=AlertKind(row.kind), audience=Role(row.audience),
        severity=Severity(row.severity), summary=row.summary,
        created_at=_utc(row.created_at), shift_id=row.shift_id, shift_date=row.shift_date,
        discrepancy_id=row.discrepancy_id, resident_id=row.resident_id,
        escalates=row.escalates,
        acknowledged_at=_utc(row.acknowledged_at) if row.acknowledged_at else None,
        acknowledged_by=row.acknowledged_by, message=i18n.decode(row.message))


class AlertRepository:
    def __init__(self, conn: Connection, touched: dict[str, int]) -> None:
        self._conn = conn
        # Facility -> last position this transaction appended: watchers woken after commit.
        self._touched = touched

    @property
    def _postgres(self) -> bool:
        return self._conn.dialect.name == "postgresql"

    def append(self, new: Sequence[NewAlert]) -> int:
        """Append the alerts not raised before (by source key) to their facilities' logs;
        returns how many were appended. Call it last in a transaction: it holds the logs' locks.
        A fixed number of statements however many facilities (a national batch)."""
        if not new:
            return 0
        facility_ids = sorted({a.facility_id for a in new})
        last = self._lock_logs(facility_ids)
        # Under the logs' locks no other transaction can raise the same source meanwhile.
        known = set(self._conn.scalars(select(_A.source_key).where(
            any_of(self._conn, _A.source_key, {a.source_key for a in new}))))
        fresh = list({a.source_key: a for a in new if a.source_key not in known}.values())
        rows = []
        for a in fresh:
            last[a.facility_id] += 1
            rows.append(self._row(a, last[a.facility_id]))
        if not rows:
            return 0
        insert_rows(self._conn, t.alerts, rows)
        appended = {r["facility_id"] for r in rows}
        self._conn.execute(update(t.alert_logs).where(
            any_of(self._conn, _L.facility_id, appended)).values(
                last_position=select(func.max(_A.position))
                .where(_A.facility_id == _L.facility_id).scalar_subquery()))
        for f in appended:
            self._touched[f] = last[f]
        if self._postgres:
            self._conn.execute(text("SELECT pg_notify(:c, f) FROM unnest(CAST(:fs AS text[])) f"),
                               {"c": CHANNEL, "fs": sorted(appended)})
        return len(rows)

    def _lock_logs(self, facility_ids: list[str]) -> dict[str, int]:
        """Each facility's last position, its log row locked until commit (in facility
        order, so two appenders cannot deadlock)."""
        insert_rows(self._conn, t.alert_logs,
                    [dict(facility_id=f, last_position=0, pruned_through=0)
                     for f in facility_ids], on_conflict=["facility_id"])
        rows = self._conn.execute(
            select(_L.facility_id, _L.last_position)
            .where(any_of(self._conn, _L.facility_id, facility_ids))
            .order_by(_L.facility_id).with_for_update())
        return {r[0]: int(r[1]) for r in rows}

    @staticmethod
    def _row(a: NewAlert, position: int) -> dict[str, Any]:
        return dict(
            alert_id=a.alert_id, facility_id=a.facility_id, position=position,
            kind=a.kind.value, audience=a.audience.value, source_key=a.source_key,
            shift_id=a.shift_id, shift_date=a.shift_date, discrepancy_id=a.discrepancy_id,
            resident_id=a.resident_id, severity=a.severity.value, summary=a.summary,
            message=i18n.encode(a.message), created_at=a.created_at,
            escalate_at=a.escalate_at, escalates=a.escalates,
            acknowledged_at=None, acknowledged_by="")

    def bounds(self, facility_id: str) -> tuple[int, int]:
        """(pruned_through, last_position) of the facility's log; (0, 0) before any."""
        row = self._conn.execute(select(_L.pruned_through, _L.last_position).where(
            _L.facility_id == facility_id)).first()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def after(self, facility_id: str, position: int, limit: int) -> list[Alert]:
        """The log after `position`, in order."""
        return [_alert(r) for r in self._conn.execute(
            select(t.alerts).where(_A.facility_id == facility_id, _A.position > position)
            .order_by(_A.position).limit(limit))]

    def get(self, facility_id: str, alert_id: str) -> Alert | None:
        row = self._conn.execute(select(t.alerts).where(
            _A.facility_id == facility_id, _A.alert_id == alert_id)).first()
        return _alert(row) if row else None

    def page(self, facility_id: str, audience: Role | None, unacknowledged_only: bool, *,
             limit: int, before: int | None) -> list[Alert]:
        """Newest first; `before` is the position the previous page ended at."""
        q = select(t.alerts).where(_A.facility_id == facility_id)
        if audience is not None:
            q = q.where(_A.audience == audience.value)
        if unacknowledged_only:
            q = q.where(_A.acknowledged_at.is_(None))
        if before is not None:
            q = q.where(_A.position < before)
        return [_alert(r) for r in self._conn.execute(
            q.order_by(_A.position.desc()).limit(limit))]

    def acknowledge(self, facility_id: str, alert_id: str, by: str, now: datetime) -> bool:
        """Acknowledge once; False when it already was (the first acknowledgement stays)."""
        done = self._conn.execute(update(t.alerts).where(
            _A.facility_id == facility_id, _A.alert_id == alert_id,
            _A.acknowledged_at.is_(None)).values(
                acknowledged_at=now, acknowledged_by=by, escalate_at=None))
        return done.rowcount == 1

    def claim_escalations(self, now: datetime, limit: int) -> list[Alert]:
        """Unacknowledged alerts due to escalate, claimed for this transaction: a replica
        skips the rows another is escalating, and the claim is cleared with them."""
        rows = list(self._conn.execute(
            select(t.alerts).where(_A.escalate_at.is_not(None), _A.escalate_at <= now,
                                   _A.acknowledged_at.is_(None))
            .order_by(_A.escalate_at).limit(limit).with_for_update(skip_locked=True)))
        if rows:
            self._conn.execute(update(t.alerts).where(
                _A.alert_id.in_([r.alert_id for r in rows])).values(escalate_at=None))
        return [_alert(r) for r in rows]

    def prune(self, facility_id: str, older_than: datetime) -> int:
        """Drop alerts older than retention; resume tokens before them become too old."""
        last = self._conn.execute(select(func.max(_A.position)).where(
            _A.facility_id == facility_id, _A.created_at < older_than)).scalar()
        if last is None:
            return 0
        gone = self._conn.execute(delete(t.alerts).where(
            and_(_A.facility_id == facility_id, _A.position <= last))).rowcount
        self._conn.execute(update(t.alert_logs).where(_L.facility_id == facility_id)
                           .values(pruned_through=func.max(_L.pruned_through, last)
                                   if not self._postgres else
                                   func.greatest(_L.pruned_through, last)))
        return int(gone)

    def facilities_with_logs(self) -> list[str]:
        return list(self._conn.scalars(select(_L.facility_id)))
