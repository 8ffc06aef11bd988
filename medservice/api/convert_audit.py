"""Proto <-> domain for audit events."""

from __future__ import annotations

from medservice.api import convert
from medservice.api.convert import timestamp
from medservice.domain import names
from medservice.store.audit import AuditEvent
from medservice.v1 import audit_pb2 as pb


def audit_event_to_proto(e: AuditEvent) -> pb.AuditEvent:
    facility = e.facility_id or "-"  # calls that named no facility, e.g. ListFacilities
    return pb.AuditEvent(
        name=f"facilities/{facility}/auditEvents/{e.event_id}",
        event_time=timestamp(e.event_time), subject=e.subject, role=convert.ROLE[e.role],
        method=e.method, resource=e.resource,
        resident=names.resident_name(e.facility_id, e.resident_id)
        if e.facility_id and e.resident_id else "",
        request_id=e.request_id, outcome=e.outcome, detail=e.detail)
