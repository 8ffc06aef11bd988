"""AuditService: the audit trail, for pharmacists and administrators, limited to the
facilities in their token. What is recorded: medservice.api.audit_capture."""

from __future__ import annotations

import re
from typing import Any

from medservice.api.convert import instant
from medservice.api.convert_audit import audit_event_to_proto
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.service import audit as uc
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.audit import AuditFilter
from medservice.v1 import audit_pb2 as pb
from medservice.v1 import audit_pb2_grpc

READERS = (Role.PHARMACIST, Role.ADMIN)
# "/medservice.v1.RoundService/RecordDose", "RoundService/RecordDose" or "RecordDose".
_METHOD = re.compile(r"^(/[A-Za-z0-9_.]+/|[A-Za-z0-9_]+/)?[A-Za-z0-9_]+$")




def _filter(principal: Principal, request: pb.ListAuditEventsRequest
            ) -> tuple[AuditFilter, str | None]:
    """The filter, and the one facility asked for (None for "facilities/-"). Permission is
    decided before anything is read."""
    if request.parent == names.ALL_FACILITIES:
        facility_id, facilities = None, principal.visible_facilities()
    else:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        facilities = frozenset({facility_id})
    resident = None
    if request.resident:
        resident = names.parse_resident_name(request.resident, "resident")
        if facility_id is not None and resident[0] != facility_id:
            raise InvalidArgument([FieldViolation("resident", "is not under parent")])
        principal.require_facility(resident[0])
    violations = []
    if len(request.subject) > 200:
        violations.append(FieldViolation("subject", "is longer than 200 characters"))
    if request.method and (len(request.method) > 200 or not _METHOD.match(request.method)):
        violations.append(FieldViolation(
            "method", "must be a method, /package.Service/Method, Service/Method or Method"))
    start = instant(request, "start_time", None)
    end = instant(request, "end_time", None)
    if start is not None and end is not None and end <= start:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    if violations:
        raise InvalidArgument(violations)
    return AuditFilter(facilities, request.subject or None, resident, request.method or None,
                       start, end), facility_id


def _query(request: pb.ListAuditEventsRequest) -> str:
    bare = pb.ListAuditEventsRequest()
    bare.CopyFrom(request)
    bare.page_token = ""
    bare.page_size = 0
    return bare.SerializeToString(deterministic=True).hex()


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    @rpc(*READERS)
    def ListAuditEvents(self, request: pb.ListAuditEventsRequest, context: Any,
                        principal: Principal) -> pb.ListAuditEventsResponse:
        flt, facility_id = _filter(principal, request)
        page = read_page(request.page_size, request.page_token, {"q": _query(request)})
        with self._uow(write=False) as uow:
            items, token = uc.list_audit_events(uow, flt, page, facility_id)
        return pb.ListAuditEventsResponse(events=[audit_event_to_proto(e) for e in items],
                                          next_page_token=token)
