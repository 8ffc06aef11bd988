"""The audit trail (issue 5): one event per authenticated API call, only ever added.

There is no method to change or remove an event, and the database refuses UPDATE and
DELETE on the table (migration 0005). The API passes the event of the call in progress to
the call's units of work (`SqlUnitOfWork.audit_draft`); a write unit of work adds it in the
transaction that does the work (`commit`), so work and its event land together or not at
all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from medservice.domain.access import Role
from medservice.domain.names import time_ordered_id
from medservice.store import tables as t
from medservice.store.repositories import _utc, newest_first

_A = t.audit_events.c
_INSERT = insert(t.audit_events)


@dataclass(frozen=True)
class AuditEvent:
    event_id: str
    event_time: datetime
    facility_id: str | None  # None: the call named no facility
    subject: str
    role: Role
    method: str
    resource: str  # a resource name, never a person identifier
    resident_id: str | None
    request_id: str
    outcome: str  # the gRPC status code name
    # What the caller asserted that the call acted on ("unidentified": a document naming no
    # patient by CPR number imported on the caller's word); never a person identifier.
    detail: str = ""


@dataclass
class AuditDraft:
    """The event of the call in progress, before its outcome is known. `written` is set
    once an event with outcome OK has been committed for it. `with_reads`: a read unit of
    work may commit it too, when it ends without error (a unary call; see
    SqlUnitOfWork.__exit__)."""

    event: AuditEvent
    written: bool = False
    with_reads: bool = False

    def completed(self, outcome: str) -> AuditEvent:
        return replace(self.event, event_id=time_ordered_id(), outcome=outcome)


@dataclass(frozen=True)
class AuditFilter:
    facility_ids: frozenset[str] | None  # None: every facility and calls naming none
    subject: str | None = None
    resident: tuple[str, str] | None = None  # (facility id, resident id)
    # A full method ("/medservice.v1.RoundService/RecordDose") or its tail
    # ("RoundService/RecordDose", "RecordDose").
    method: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _event(row: Any) -> AuditEvent:
    return AuditEvent(row.event_id, _utc(row.event_time), row.facility_id, row.subject,
                      Role(row.role), row.method, row.resource, row.resident_id,
                      row.request_id, row.outcome, row.detail)


class AuditLog:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, e: AuditEvent) -> None:
        self.add_all([e])

    def add_all(self, events: Sequence[AuditEvent]) -> None:
        # A prepared statement with parameters, all events in one execution (executemany):
        # building insert().values() per event cost more than running it, and a group
        # commit's events went one execution each.
        self._conn.execute(_INSERT, [dict(
            event_id=e.event_id, event_time=e.event_time, facility_id=e.facility_id,
            subject=e.subject, role=e.role.value, method=e.method, resource=e.resource,
            resident_id=e.resident_id, request_id=e.request_id, outcome=e.outcome,
            detail=e.detail) for e in events])

    def page(self, f: AuditFilter, *, limit: int, after: tuple[str, str] | None
             ) -> list[AuditEvent]:
        """Newest first; `after` is (event_time ISO, event id) of the previous page."""
        q = select(t.audit_events)
        if f.facility_ids is not None:
            q = q.where(_A.facility_id.in_(sorted(f.facility_ids)))
        if f.subject:
            q = q.where(_A.subject == f.subject)
        if f.resident is not None:
            q = q.where(_A.facility_id == f.resident[0], _A.resident_id == f.resident[1])
        if f.method:
            if f.method.startswith("/"):
                q = q.where(_A.method == f.method)
            else:  # "RecordDose" ends "/RecordDose"; "RoundService/X" ends ".RoundService/X"
                tail = ("." if "/" in f.method else "/") + f.method
                q = q.where(_A.method.endswith(tail, autoescape=True))
        q = newest_first(q, _A.event_time, _A.event_id, f.start, f.end, after, limit)
        return [_event(r) for r in self._conn.execute(q)]
