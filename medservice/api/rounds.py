"""RoundService: shift schedules, dispensing lists, scheduled doses, dose checks and
records."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from medservice.api import convert, convert_records
from medservice.api.convert import from_timestamp, timestamp
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc, run_idempotent
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.dosage import Amount, DoseUnit, TimeKind
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.orders import DispensingMode, Drug, OrderContent
from medservice.domain.rounds import (
    DUE,
    DispensingItem,
    DoseState,
    DoseStatus,
    NoteKind,
    PnLine,
    ResidentRound,
    ShiftSchedule,
)
from medservice.domain.schedule import ScheduledDose
from medservice.reconcile import CheckResult, ProposedDose, Verdict
from medservice.service import administration as admin_uc
from medservice.service import rounds as uc
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.v1 import common_pb2, rounds_pb2_grpc
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb

ROUND_ROLES = (Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)

_NAMED = {TimeKind.MORNING: pb.NAMED_TIME_MORNING, TimeKind.NOON: pb.NAMED_TIME_NOON,
          TimeKind.EVENING: pb.NAMED_TIME_EVENING, TimeKind.NIGHT: pb.NAMED_TIME_NIGHT,
          TimeKind.CLOCK: pb.NAMED_TIME_CLOCK, TimeKind.ANY: pb.NAMED_TIME_ANY}
_MODE = {DispensingMode.DOSE_DISPENSED: common_pb2.DISPENSING_MODE_DOSE_DISPENSED,
         DispensingMode.STAFF_POURED: common_pb2.DISPENSING_MODE_STAFF_POURED}
_NOTE = {k: getattr(pb, f"ORDER_NOTE_KIND_{k.name}") for k in NoteKind}


def _drug(d: Drug) -> cpb.Drug:
    return cpb.Drug(name=d.name, drug_id=d.drug_id, atc_code=d.atc_code, form=d.form,
                    strength=d.strength)


def _amount(a: Amount) -> common_pb2.DoseQuantity:
    if a.quantity is not None:
        return common_pb2.DoseQuantity(quantity=str(a.quantity))
    return common_pb2.DoseQuantity(min_quantity=str(a.min_quantity),
                                   max_quantity=str(a.max_quantity))


def _unit(u: DoseUnit) -> cpb.DoseUnit:
    return cpb.DoseUnit(singular=u.singular, plural=u.plural)


_STATUS = {DoseStatus.DUE: pb.DOSE_STATUS_DUE, DoseStatus.GIVEN: pb.DOSE_STATUS_GIVEN,
           DoseStatus.NOT_GIVEN: pb.DOSE_STATUS_NOT_GIVEN,
           DoseStatus.MISSED: pb.DOSE_STATUS_MISSED,
           DoseStatus.NOT_DOCUMENTED: pb.DOSE_STATUS_NOT_DOCUMENTED}


def dose_to_proto(dose: ScheduledDose, content: OrderContent, state: DoseState
                  ) -> pb.ScheduledDose:
    facility_id, resident_id = dose.resident_id.split("/", 1)
    out = pb.ScheduledDose(
        name=names.dose_name(facility_id, resident_id, dose.dose_id), dose_id=dose.dose_id,
        order=names.order_name(facility_id, resident_id, dose.order_id),
        resident=names.resident_name(facility_id, resident_id),
        drug=_drug(content.drug), route=content.route, amount=_amount(dose.amount),
        unit=_unit(dose.unit), due_time=timestamp(dose.due_time),
        local_date=dose.local_date.isoformat(), local_time=dose.local_time.strftime("%H:%M"),
        named_time=_NAMED[dose.time_kind],
        window_start=timestamp(dose.window_start), window_end=timestamp(dose.window_end),
        dispensing_mode=_MODE[content.dispensing_mode], time_critical=dose.time_critical,
        supplementary_text=dose.supplementary_text, status=_STATUS[state.status])
    record = state.record
    if record is not None:
        out.record = names.record_name(record.facility_id, record.resident_id, record.record_id)
        out.administration_time.FromDatetime(record.administered_at.astimezone(UTC))
        out.performer = record.performer
        out.not_given_reason = convert_records.not_given_reason_to_proto(record)
    corrected = state.corrected
    if corrected is not None:
        out.corrected_record = names.record_name(corrected.facility_id,
                                                 corrected.resident_id, corrected.record_id)
    return out


def _pn_line(facility_id: str, resident_id: str, p: PnLine) -> pb.PnAllowance:
    limit = p.terms.max_count
    out = pb.PnAllowance(
        order=names.order_name(facility_id, resident_id, p.order_id),
        drug=_drug(p.drug), unit=_unit(p.unit), max_doses_per_day=limit,
        unlimited=limit is None, doses_left=p.doses_left,
        last_given_time=timestamp(p.last_given), doses_given=p.given,
        period=p.period)
    if p.terms.amount is not None:
        out.amount.CopyFrom(_amount(p.terms.amount))
    return out


def _resident_round(s: ShiftSchedule, r: ResidentRound) -> pb.ResidentRound:
    facility_id, resident = s.facility_id, r.resident
    return pb.ResidentRound(
        resident=names.resident_name(facility_id, resident.resident_id),
        display_name=resident.display_name, room=resident.room,
        doses=[dose_to_proto(d, c, r.state_of(d.dose_id)) for d, c in r.doses],
        pn_allowances=[_pn_line(facility_id, resident.resident_id, p) for p in r.pn],
        notes=[pb.OrderNote(order=names.order_name(facility_id, resident.resident_id,
                                                   n.order_id),
                            drug=_drug(n.drug), kind=_NOTE[n.kind], text=n.text)
               for n in r.notes])


def schedule_to_proto(s: ShiftSchedule) -> pb.ShiftSchedule:
    return pb.ShiftSchedule(
        name=names.shift_schedule_name(s.facility_id, s.shift_id, s.shift_date.isoformat()),
        facility=names.facility_name(s.facility_id), date=s.shift_date.isoformat(),
        shift_id=s.shift_id, start_time=timestamp(s.start), end_time=timestamp(s.end),
        residents=[_resident_round(s, r) for r in s.residents])


def _item(facility_id: str, resident_id: str, i: DispensingItem) -> pb.DispensingItem:
    return pb.DispensingItem(
        order=names.order_name(facility_id, resident_id, i.order_id), drug=_drug(i.drug),
        unit=_unit(i.unit), total_quantity=str(i.total), dose_count=i.dose_count,
        times=list(i.times), dispensing_mode=_MODE[i.mode], includes_range=i.includes_range)


_VERDICT = {Verdict.OK: pb.CHECK_VERDICT_OK, Verdict.WARN: pb.CHECK_VERDICT_WARN,
            Verdict.STOP: pb.CHECK_VERDICT_STOP}
RECORDERS = (Role.CARER, Role.SHIFT_LEAD)
_SERVICE = "/medservice.v1.RoundService/"


def _reasons(result: CheckResult) -> list[pb.CheckReason]:
    return [pb.CheckReason(code=r.code.value,
                           severity=convert.SEVERITY[r.severity], message=r.message)
            for r in result.reasons]


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
        return pb.DispensingList(
            name=names.dispensing_list_name(facility_id, shift_id, day.isoformat()),
            facility=request.facility, date=request.date, shift_id=shift_id,
            residents=[pb.ResidentDispensing(
                resident=names.resident_name(facility_id, r.resident.resident_id),
                display_name=r.resident.display_name, room=r.resident.room,
                pharmacy_dispensed=[_item(facility_id, r.resident.resident_id, i)
                                    for i in r.pharmacy_dispensed],
                staff_poured=[_item(facility_id, r.resident.resident_id, i)
                              for i in r.staff_poured]) for r in lists])

    @rpc(*ROUND_ROLES)
    def ListScheduledDoses(self, request: pb.ListScheduledDosesRequest, context: Any,
                           principal: Principal) -> pb.ListScheduledDosesResponse:
        facility_id, resident_id = names.parse_resident_name(request.parent, "parent")
        principal.require_facility(facility_id)
        missing = [FieldViolation(f, "is required") for f in ("start_time", "end_time")
                   if not request.HasField(f)]
        if missing:
            raise InvalidArgument(missing)
        page = read_page(request.page_size, request.page_token, {
            "parent": request.parent, "start": request.start_time.ToJsonString(),
            "end": request.end_time.ToJsonString()})
        with self._uow(write=False) as uow:
            items, states, token = uc.resident_doses(
                uow, facility_id, resident_id, from_timestamp(request.start_time),
                from_timestamp(request.end_time), self._clock(), page)
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
        at = from_timestamp(request.administration_time) if request.HasField(
            "administration_time") else now
        proposal = ProposedDose(facility_id, resident_id, request.drug_id, at, order_id,
                                names.parse_dose(request.dose_id, facility_id, resident_id,
                                                 "dose_id") if request.dose_id else None,
                                quantity, request.route,
                                request.as_needed)
        with self._uow(write=False) as uow:
            done = admin_uc.checked(uow, proposal, now)
        result, content = done.result, done.content
        response = pb.CheckDoseResponse(
            verdict=_VERDICT[result.verdict], reasons=_reasons(result),
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
        now = self._clock()
        record = convert_records.record_from_proto(
            request.record, facility_id, resident_id, admin_uc.new_record_id(),
            principal.subject, now)
        acknowledged = convert_records.acknowledged_reasons(request.acknowledged_reasons)

        def work(uow: UnitOfWork) -> pb.RecordDoseResponse:
            done = admin_uc.record_dose(uow, record, acknowledged, now)
            return pb.RecordDoseResponse(
                record=convert_records.record_to_proto(done.record),
                reasons=_reasons(done.check),
                discrepancies=[f"{names.facility_name(facility_id)}/discrepancies/{i}"
                               for i in done.discrepancy_ids])

        return run_idempotent(self._uow, principal, _SERVICE + "RecordDose", request,
                              request.request_id, pb.RecordDoseResponse, work, now)

    @rpc(*RECORDERS)
    def CorrectRecord(self, request: pb.CorrectRecordRequest, context: Any,
                      principal: Principal) -> pb.AdministrationRecord:
        facility_id, resident_id, record_id = names.parse_record_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.AdministrationRecord:
            return convert_records.record_to_proto(admin_uc.correct_record(
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
        start = from_timestamp(request.start_time) if request.HasField("start_time") else None
        end = from_timestamp(request.end_time) if request.HasField("end_time") else None
        page = read_page(request.page_size, request.page_token, {
            "parent": request.parent, "start": str(start), "end": str(end)})
        with self._uow(write=False) as uow:
            items, token = admin_uc.list_records(uow, facility_id, resident_id, start, end,
                                                 page)
        return pb.ListAdministrationRecordsResponse(
            records=[convert_records.record_to_proto(r) for r in items],
            next_page_token=token)
