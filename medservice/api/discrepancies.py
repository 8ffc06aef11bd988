"""DiscrepancyService: queries, the pharmacist's review (queue, decision, history), batch
reconciliation and the error rate."""

from __future__ import annotations

from typing import Any

from medservice.api import convert
from medservice.api.convert import enum_value, instant
from medservice.api.convert_review import (
    CODE_BACK,
    DECISION_BACK,
    STATUS_BACK,
    discrepancy_to_proto,
    event_to_proto,
)
from medservice.api.rpc import (
    Authenticate,
    Clock,
    principal_from_interceptor,
    rpc,
    run_idempotent,
)
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.service import reconciliation as uc
from medservice.service import review
from medservice.service.facilities import get_facility
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store.discrepancies import (
    DiscrepancyFilter,
)
from medservice.v1 import discrepancies_pb2 as pb
from medservice.v1 import discrepancies_pb2_grpc

READERS = (Role.PHARMACIST, Role.SHIFT_LEAD, Role.ADMIN)
RECONCILERS = (Role.PHARMACIST, Role.ADMIN)
QUEUE_READERS = (Role.PHARMACIST, Role.ADMIN)  # the queue is the pharmacist's work list
# A review is a clinical decision: the pharmacist's alone, not an administrator's.
REVIEWERS = (Role.PHARMACIST,)
_SERVICE = "/medservice.v1.DiscrepancyService/"







def _parent(principal: Principal, parent: str) -> frozenset[str] | None:
    """The facilities a list may span: one, or with "facilities/-" all the caller's."""
    if parent == names.ALL_FACILITIES:
        return principal.visible_facilities()
    facility_id = names.parse_facility_name(parent, "parent")
    principal.require_facility(facility_id)
    return frozenset({facility_id})


class DiscrepancyServicer(discrepancies_pb2_grpc.DiscrepancyServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    @rpc(*READERS)
    def ListDiscrepancies(self, request: pb.ListDiscrepanciesRequest, context: Any,
                          principal: Principal) -> pb.ListDiscrepanciesResponse:
        facilities = _parent(principal, request.parent)
        resident_id = None
        if request.resident:
            f, resident_id = names.parse_resident_name(request.resident, "resident")
            if facilities is not None and f not in facilities:
                raise InvalidArgument([FieldViolation("resident", "is not under parent")])
        flt = DiscrepancyFilter(
            facilities, resident_id, enum_value(request, "code", CODE_BACK),
            enum_value(request, "min_severity", convert.SEVERITY_BACK),
            enum_value(request, "status", STATUS_BACK),
            instant(request, "start_time", None), instant(request, "end_time", None))
        page = read_page(request.page_size, request.page_token, {"q": _query(request)})
        with self._uow(write=False) as uow:
            items, token = review.list_discrepancies(uow, flt, page)
        return pb.ListDiscrepanciesResponse(
            discrepancies=[discrepancy_to_proto(e) for e in items], next_page_token=token)

    @rpc(*READERS)
    def GetDiscrepancy(self, request: pb.GetDiscrepancyRequest, context: Any,
                       principal: Principal) -> pb.Discrepancy:
        facility_id, discrepancy_id = _parse_discrepancy_name(request.name)
        principal.require_facility(facility_id)
        with self._uow(write=False) as uow:
            return discrepancy_to_proto(review.get_discrepancy(uow, facility_id,
                                                               discrepancy_id))

    @rpc(*QUEUE_READERS)
    def ListReviewQueue(self, request: pb.ListReviewQueueRequest, context: Any,
                        principal: Principal) -> pb.ListReviewQueueResponse:
        facilities = _parent(principal, request.parent)
        page = read_page(request.page_size, request.page_token,
                         {"queue": request.parent})
        with self._uow(write=False) as uow:
            items, token = review.review_queue(uow, facilities, page)
        return pb.ListReviewQueueResponse(
            discrepancies=[discrepancy_to_proto(e) for e in items], next_page_token=token)

    @rpc(*REVIEWERS)
    def ReviewDiscrepancy(self, request: pb.ReviewDiscrepancyRequest, context: Any,
                          principal: Principal) -> pb.Discrepancy:
        facility_id, discrepancy_id = _parse_discrepancy_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Discrepancy:
            return discrepancy_to_proto(review.review_discrepancy(
                uow, facility_id, discrepancy_id, enum_value(request, "decision", DECISION_BACK),
                request.note, request.etag, principal.subject, now))

        return run_idempotent(self._uow, principal, _SERVICE + "ReviewDiscrepancy", request,
                              request.request_id, pb.Discrepancy, work, now)

    @rpc(*READERS)
    def ListDiscrepancyEvents(self, request: pb.ListDiscrepancyEventsRequest, context: Any,
                              principal: Principal) -> pb.ListDiscrepancyEventsResponse:
        facility_id, discrepancy_id = _parse_discrepancy_name(request.parent, "parent")
        principal.require_facility(facility_id)
        page = read_page(request.page_size, request.page_token, {"events": request.parent})
        with self._uow(write=False) as uow:
            items, token = review.discrepancy_history(uow, facility_id, discrepancy_id, page)
        return pb.ListDiscrepancyEventsResponse(events=[event_to_proto(e) for e in items],
                                                next_page_token=token)

    @rpc(*RECONCILERS)
    def ReconcileFacility(self, request: pb.ReconcileFacilityRequest, context: Any,
                          principal: Principal) -> pb.ReconcileFacilityResponse:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        start, end = _range(request)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.ReconcileFacilityResponse:
            doses, records, found, new = uc.reconcile_facility(uow, facility_id, start, end,
                                                               now)
            return pb.ReconcileFacilityResponse(
                doses_examined=doses, records_examined=records,
                discrepancies_found=len(found), discrepancies_new=new)

        return run_idempotent(self._uow, principal, _SERVICE + "ReconcileFacility", request,
                              request.request_id, pb.ReconcileFacilityResponse, work, now)

    @rpc(*READERS)
    def ComputeErrorRate(self, request: pb.ComputeErrorRateRequest, context: Any,
                         principal: Principal) -> pb.ErrorRate:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        start, end = _range(request)
        with self._uow(write=False) as uow:
            get_facility(uow, facility_id)
            rate = uc.facility_error_rate(uow, facility_id, start, end)
        return pb.ErrorRate(facility=request.facility, errors=rate.errors,
                            doses_given=rate.given, doses_not_given=rate.not_given,
                            error_rate_percent=str(rate.percent))


def _query(request: pb.ListDiscrepanciesRequest) -> str:
    bare = pb.ListDiscrepanciesRequest()
    bare.CopyFrom(request)
    bare.page_token = ""
    bare.page_size = 0
    return bare.SerializeToString(deterministic=True).hex()


def _range(request: Any) -> tuple[Any, Any]:
    start, end = convert.required_instants(request, "start_time", "end_time")
    if end <= start:
        raise InvalidArgument([FieldViolation("end_time", "must be after start_time")])
    return start, end


def _parse_discrepancy_name(name: str, field: str = "name") -> tuple[str, str]:
    facility, _, rest = name.partition("/discrepancies/")
    facility_id = names.parse_facility_name(facility, field)
    if len(rest) != 32 or not all(c in "0123456789abcdef" for c in rest):
        raise InvalidArgument([FieldViolation(
            field, "must be a discrepancy name, facilities/{id}/discrepancies/{id}")])
    return facility_id, rest
