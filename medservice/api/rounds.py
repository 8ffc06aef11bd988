"""RoundService: shift schedules, dispensing lists, scheduled doses, dose checks and
records."""

from __future__ import annotations

from typing import Any

import structlog

from medservice.api import convert, convert_rounds
from medservice.api.audit_capture import item_audit
from medservice.api.convert import instant, timestamp
from medservice.api.convert_rounds import (
    VERDICT,
    dispensing_list_to_proto,
    dose_to_proto,
    reasons_to_proto,
    schedule_to_proto,
)
from medservice.api.errors import internal_message, status_message
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc, run_idempotent
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import DomainError, FieldViolation, InvalidArgument
from medservice.domain.rounds import (
    DUE,
)
from medservice.reconcile import ProposedDose
from medservice.service import administration as admin_uc
from medservice.service import rounds as uc
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.v1 import rounds_pb2 as pb
from medservice.v1 import rounds_pb2_grpc

ROUND_ROLES = (Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)





















RECORDERS = (Role.CARER, Role.SHIFT_LEAD)
_SERVICE = "/medservice.v1.RoundService/"
# RecordDoses: the emergency list of an outage, a few hundred records; more is refused
# rather than held in one call for minutes.
MAX_BATCH = 1000
log = structlog.get_logger("medservice.api")




class RoundServicer(rounds_pb2_grpc.RoundServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    def _shift_args(self, request: Any, principal: Principal) -> tuple[str, Any, str]:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        if not request.shift_id:
            raise InvalidArgument([FieldViolation("shift_id", "is required")])
        return facility_id, uc.parse_date(request.date, "date"), request.shift_id

    @rpc(*ROUND_ROLES)
    def GetShiftSchedule(self, request: pb.GetShiftScheduleRequest, context: Any,
                         principal: Principal) -> pb.ShiftSchedule:
        facility_id, day, shift_id = self._shift_args(request, principal)
        with self._uow(write=False) as uow:
            return schedule_to_proto(uc.shift_schedule(uow, facility_id, day, shift_id,
                                                       self._clock()))

    @rpc(*ROUND_ROLES)
    def GetDispensingList(self, request: pb.GetDispensingListRequest, context: Any,
                          principal: Principal) -> pb.DispensingList:
        facility_id, day, shift_id = self._shift_args(request, principal)
        with self._uow(write=False) as uow:
            lists = uc.shift_dispensing_list(uow, facility_id, day, shift_id, self._clock())
        return dispensing_list_to_proto(facility_id, day, shift_id, lists)

    @rpc(*ROUND_ROLES)
    def ListScheduledDoses(self, request: pb.ListScheduledDosesRequest, context: Any,
                           principal: Principal) -> pb.ListScheduledDosesResponse:
        facility_id, resident_id = names.parse_resident_name(request.parent, "parent")
        principal.require_facility(facility_id)
        start, end = convert.required_instants(request, "start_time", "end_time")
        page = read_page(request.page_size, request.page_token, {
            "parent": request.parent, "start": request.start_time.ToJsonString(),
            "end": request.end_time.ToJsonString()})
        with self._uow(write=False) as uow:
            items, states, token = uc.resident_doses(
                uow, facility_id, resident_id, start, end, self._clock(), page)
        return pb.ListScheduledDosesResponse(
            doses=[dose_to_proto(d, c, states.get(d.dose_id, DUE)) for d, c in items],
            next_page_token=token)

    @rpc(*ROUND_ROLES)
    def CheckDose(self, request: pb.CheckDoseRequest, context: Any,
                  principal: Principal) -> pb.CheckDoseResponse:
        facility_id, resident_id = names.parse_resident_name(request.resident, "resident")
        principal.require_facility(facility_id)
        order_id = None
        if request.order:
            f, r, order_id = names.parse_order_name(request.order, "order")
            if (f, r) != (facility_id, resident_id):
                raise InvalidArgument([FieldViolation("order",
                                                      "names an order of another resident")])
        if not (order_id or request.drug_id or request.dose_id):
            raise InvalidArgument([FieldViolation("order", "give the order, drug_id or dose_id")])
        quantity = convert.decimal_field(request.quantity, "quantity")
        now = self._clock()
        at = instant(request, "administration_time", now)
        proposal = ProposedDose(facility_id, resident_id, request.drug_id, at, order_id,
                                names.parse_dose(request.dose_id, facility_id, resident_id,
                                                 "dose_id") if request.dose_id else None,
                                quantity, request.route,
                                request.as_needed)
        with self._uow(write=False) as uow:
            done = admin_uc.checked(uow, proposal, now)
        result, content = done.result, done.content
        response = pb.CheckDoseResponse(
            verdict=VERDICT[result.verdict], reasons=reasons_to_proto(result),
            pn_doses_left=result.pn_doses_left,
            last_given_time=timestamp(result.last_given))
        if result.matched_dose is not None and content is not None:
            response.matched_dose.CopyFrom(dose_to_proto(result.matched_dose, content,
                                                         result.matched_state or DUE))
        return response

    @rpc(*RECORDERS)
    def RecordDose(self, request: pb.RecordDoseRequest, context: Any,
                   principal: Principal) -> pb.RecordDoseResponse:
        facility_id, resident_id = names.parse_resident_name(request.parent, "parent")
        principal.require_facility(facility_id)
        return self._record(request, principal, facility_id, resident_id)

    @rpc(*RECORDERS)
    def RecordDoses(self, request: pb.RecordDosesRequest, context: Any,
                    principal: Principal) -> pb.RecordDosesResponse:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        if len(request.requests) > MAX_BATCH:
            raise InvalidArgument([FieldViolation(
                "requests", f"holds more than {MAX_BATCH} items; send them in parts")])
        results = []
        for i, item in enumerate(request.requests):
            if not context.is_active():
                # The caller gave up (deadline, cancel): what committed stays, the rest is
                # for its retry.
                log.info("batch abandoned by the caller", done=i, items=len(request.requests))
                break
            results.append(self._batch_item(item, i, principal, facility_id))
        return pb.RecordDosesResponse(results=results)

    def _batch_item(self, item: pb.RecordDoseRequest, i: int, principal: Principal,
                    facility_id: str) -> pb.RecordDoseResult:
        """One item of RecordDoses, done exactly as RecordDose does it, under the item's
        request_id; its failure is its result."""
        result = pb.RecordDoseResult(request_id=item.request_id)
        try:
            try:
                f, resident_id = names.parse_resident_name(item.parent, "parent")
                if f != facility_id:
                    raise InvalidArgument([FieldViolation(
                        "parent", "names a resident of another facility than the batch")])
                if not item.request_id:
                    # Without one a retried batch would record the item twice.
                    raise InvalidArgument([FieldViolation("request_id", "is required")])
                with item_audit(item):
                    result.response.CopyFrom(self._record(item, principal, facility_id,
                                                          resident_id))
            except InvalidArgument as e:
                raise InvalidArgument([FieldViolation(f"requests[{i}].{v.field}",
                                                      v.description)
                                       for v in e.violations]) from e
            result.status.SetInParent()  # OK
        except DomainError as e:
            log.info("batch item failed", item=i, reason=e.reason)
            result.status.CopyFrom(status_message(e))
        except Exception:
            log.exception("batch item failed unexpectedly", item=i)
            result.status.CopyFrom(internal_message())
        return result

    def _record(self, request: pb.RecordDoseRequest, principal: Principal, facility_id: str,
                resident_id: str) -> pb.RecordDoseResponse:
        now = self._clock()
        record = convert_rounds.record_from_proto(
            request.record, facility_id, resident_id, admin_uc.new_record_id(),
            principal.subject, now)
        acknowledged = convert_rounds.acknowledged_reasons(request.acknowledged_reasons)

        def work(uow: UnitOfWork) -> pb.RecordDoseResponse:
            done = admin_uc.record_dose(
                uow, record, acknowledged, now,
                dated=request.record.HasField("administration_time"))
            return pb.RecordDoseResponse(
                record=convert_rounds.record_to_proto(done.record),
                reasons=reasons_to_proto(done.check),
                discrepancies=[f"{names.facility_name(facility_id)}/discrepancies/{i}"
                               for i in done.discrepancy_ids])

        return run_idempotent(self._uow, principal, _SERVICE + "RecordDose", request,
                              request.request_id, pb.RecordDoseResponse, work, now)

    @rpc(*RECORDERS)
    def EvaluatePnDose(self, request: pb.EvaluatePnDoseRequest, context: Any,
                       principal: Principal) -> pb.AdministrationRecord:
        facility_id, resident_id, record_id = names.parse_record_name(request.name)
        principal.require_facility(facility_id)
        effect = convert_rounds.PN_EFFECT_BACK.get(request.effect)
        if effect is None:
            raise InvalidArgument([FieldViolation("effect", "is required: good, partial or "
                                                            "none")])
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.AdministrationRecord:
            return convert_rounds.record_to_proto(admin_uc.evaluate_pn_dose(
                uow, facility_id, resident_id, record_id, effect, request.note, request.etag,
                principal.subject, now))

        return run_idempotent(self._uow, principal, _SERVICE + "EvaluatePnDose", request,
                              request.request_id, pb.AdministrationRecord, work, now)

    @rpc(*RECORDERS)
    def CorrectRecord(self, request: pb.CorrectRecordRequest, context: Any,
                      principal: Principal) -> pb.AdministrationRecord:
        facility_id, resident_id, record_id = names.parse_record_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.AdministrationRecord:
            return convert_rounds.record_to_proto(admin_uc.correct_record(
                uow, facility_id, resident_id, record_id, request.reason, principal.subject,
                now))

        return run_idempotent(self._uow, principal, _SERVICE + "CorrectRecord", request,
                              request.request_id, pb.AdministrationRecord, work, now)

    @rpc(*ROUND_ROLES)
    def ListAdministrationRecords(self, request: pb.ListAdministrationRecordsRequest,
                                  context: Any, principal: Principal
                                  ) -> pb.ListAdministrationRecordsResponse:
        facility_id, resident_id = names.parse_resident_name(request.parent, "parent")
        principal.require_facility(facility_id)
        start = instant(request, "start_time", None)
        end = instant(request, "end_time", None)
        page = read_page(request.page_size, request.page_token, {
            "parent": request.parent, "start": str(start), "end": str(end)})
        with self._uow(write=False) as uow:
            items, token = admin_uc.list_records(uow, facility_id, resident_id, start, end,
                                                 page)
        return pb.ListAdministrationRecordsResponse(
            records=[convert_rounds.record_to_proto(r) for r in items],
            next_page_token=token)
