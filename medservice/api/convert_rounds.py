"""Proto <-> domain for the round: scheduled doses with their status, shift schedules,
dispensing lists, check results and administration records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from medservice.api import convert
from medservice.api.convert import enum_value, instant, timestamp
from medservice.domain import names
from medservice.domain.administration import (
    AdministrationRecord,
    DoseSource,
    NotGivenReason,
    Outcome,
    PnEffect,
    PnEvaluation,
)
from medservice.domain.dosage import Amount, DoseUnit, TimeKind
from medservice.domain.errors import FieldViolation, require
from medservice.domain.orders import DispensingMode, Drug, OrderContent
from medservice.domain.rounds import (
    DispensingItem,
    DoseState,
    DoseStatus,
    NoteKind,
    PnLine,
    ResidentDispensing,
    ResidentRound,
    ShiftSchedule,
)
from medservice.domain.schedule import ScheduledDose
from medservice.i18n import call_language, rendered
from medservice.reconcile import REASON_CODES, CheckResult, Verdict
from medservice.v1 import common_pb2
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb

_OUTCOME = {Outcome.GIVEN: pb.ADMINISTRATION_OUTCOME_GIVEN,
            Outcome.NOT_GIVEN: pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
            Outcome.PN_GIVEN: pb.ADMINISTRATION_OUTCOME_PN_GIVEN}
_OUTCOME_BACK = {v: k for k, v in _OUTCOME.items()}
_REASON = {r: getattr(pb, f"NOT_GIVEN_REASON_{r.name}") for r in NotGivenReason}
_REASON_BACK = {v: k for k, v in _REASON.items()}
_SOURCE = {DoseSource.POUCH: pb.DOSE_SOURCE_POUCH, DoseSource.POURED: pb.DOSE_SOURCE_POURED}
_SOURCE_BACK = {v: k for k, v in _SOURCE.items()}
PN_EFFECT = {e: getattr(pb, f"PN_EFFECT_{e.name}") for e in PnEffect}
PN_EFFECT_BACK = {v: k for k, v in PN_EFFECT.items()}


def not_given_reason_to_proto(r: AdministrationRecord) -> pb.NotGivenReason.ValueType:
    return _REASON[r.not_given_reason] if r.not_given_reason \
        else pb.NOT_GIVEN_REASON_UNSPECIFIED


def record_to_proto(r: AdministrationRecord) -> pb.AdministrationRecord:
    return pb.AdministrationRecord(
        name=names.record_name(r.facility_id, r.resident_id, r.record_id),
        dose_id=r.dose_id or "",
        order=names.order_name(r.facility_id, r.resident_id, r.order_id) if r.order_id
        else "",
        drug_id=r.drug_id, outcome=_OUTCOME[r.outcome],
        quantity=str(r.quantity) if r.quantity is not None else "", route=r.route,
        administration_time=timestamp(r.administered_at), record_time=timestamp(r.recorded_at),
        performer=r.performer, source=_SOURCE.get(r.source, pb.DOSE_SOURCE_UNSPECIFIED)
        if r.source else pb.DOSE_SOURCE_UNSPECIFIED,
        not_given_reason=not_given_reason_to_proto(r),
        reason_text=r.reason_text, pn_reason=r.pn_reason,
        state=pb.RECORD_STATE_ENTERED_IN_ERROR if r.entered_in_error
        else pb.RECORD_STATE_ACTIVE,
        correction_reason=r.correction_reason, corrected_by=r.corrected_by,
        correction_time=timestamp(r.corrected_at), etag=r.etag,
        pn_evaluation=evaluation_to_proto(r.evaluation),
        replaces_record=names.record_name(r.facility_id, r.resident_id, r.replaces_record_id)
        if r.replaces_record_id else "")


def evaluation_to_proto(e: PnEvaluation | None) -> pb.PnEvaluation | None:
    if e is None:
        return None
    return pb.PnEvaluation(effect=PN_EFFECT[e.effect], note=e.note,
                           evaluated_by=e.evaluated_by, evaluate_time=timestamp(e.evaluated_at),
                           first_evaluate_time=timestamp(e.first_evaluated_at))


def record_from_proto(p: pb.AdministrationRecord, facility_id: str, resident_id: str,
                      record_id: str, performer: str, now: datetime) -> AdministrationRecord:
    """A record as a caller sends it, checked field by field (prefix "record.")."""
    v: list[FieldViolation] = []
    outcome = enum_value(p, "outcome", _OUTCOME_BACK, path="record.outcome")
    if outcome is None:
        v.append(FieldViolation("record.outcome", "is required: given, not given or PN given"))
    quantity = None
    if p.quantity:
        try:
            quantity = Decimal(p.quantity)
            if not quantity.is_finite() or quantity < 0:
                raise InvalidOperation
        except InvalidOperation:
            v.append(FieldViolation("record.quantity", "must be a decimal number, such as 0.5"))
    elif outcome in (Outcome.GIVEN, Outcome.PN_GIVEN):
        v.append(FieldViolation("record.quantity", "is required when the dose was given"))
    reason = enum_value(p, "not_given_reason", _REASON_BACK, path="record.not_given_reason")
    if outcome is Outcome.NOT_GIVEN and reason is None:
        v.append(FieldViolation("record.not_given_reason", "is required when not given"))
    if reason is NotGivenReason.OTHER and not p.reason_text.strip():
        v.append(FieldViolation("record.reason_text", "is required for the reason other"))
    order_id = None
    if p.order:
        f, r, order_id = names.parse_order_name(p.order, "record.order")
        if (f, r) != (facility_id, resident_id):
            v.append(FieldViolation("record.order", "names an order of another resident"))
    if not (p.order or p.drug_id or p.dose_id):
        v.append(FieldViolation("record.order", "give the order, the drug_id or the dose_id"))
    administered = instant(p, "administration_time", now, path="record.administration_time")
    require(v)
    assert outcome is not None
    return AdministrationRecord(
        record_id=record_id, facility_id=facility_id, resident_id=resident_id,
        order_id=order_id, drug_id=p.drug_id, outcome=outcome, administered_at=administered,
        recorded_at=now, performer=performer,
        dose_id=names.parse_dose(p.dose_id, facility_id, resident_id, "record.dose_id")
        if p.dose_id else None, quantity=quantity,
        route=p.route, source=enum_value(p, "source", _SOURCE_BACK, path="record.source"),
        not_given_reason=reason,
        reason_text=p.reason_text, pn_reason=p.pn_reason)


def acknowledged_reasons(codes: Sequence[str]) -> set[str]:
    require([FieldViolation(f"acknowledged_reasons[{i}]", "is not a check reason code")
             for i, c in enumerate(codes) if c not in REASON_CODES])
    return set(codes)


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
        out.not_given_reason = not_given_reason_to_proto(record)
    corrected = state.corrected
    if corrected is not None:
        out.corrected_record = names.record_name(corrected.facility_id,
                                                 corrected.resident_id, corrected.record_id)
    return out


def _pn_line(facility_id: str, resident_id: str, p: PnLine, language: str) -> pb.PnAllowance:
    limit = p.terms.max_count
    out = pb.PnAllowance(
        order=names.order_name(facility_id, resident_id, p.order_id),
        drug=_drug(p.drug), unit=_unit(p.unit), max_doses_per_day=limit,
        unlimited=limit is None, doses_left=p.doses_left,
        last_given_time=timestamp(p.last_given), doses_given=p.given,
        period=p.period.render(language) if p.period is not None else "",
        last_record=record_to_proto(p.last_record) if p.last_record is not None else None)
    if p.terms.amount is not None:
        out.amount.CopyFrom(_amount(p.terms.amount))
    return out


def _resident_round(s: ShiftSchedule, r: ResidentRound) -> pb.ResidentRound:
    facility_id, resident = s.facility_id, r.resident
    return pb.ResidentRound(
        resident=names.resident_name(facility_id, resident.resident_id),
        display_name=resident.display_name, room=resident.room,
        doses=[dose_to_proto(d, c, r.state_of(d.dose_id)) for d, c in r.doses],
        pn_allowances=[_pn_line(facility_id, resident.resident_id, p, call_language(s.language))
                       for p in r.pn],
        notes=[pb.OrderNote(order=names.order_name(facility_id, resident.resident_id,
                                                   n.order_id),
                            drug=_drug(n.drug), kind=_NOTE[n.kind],
                            text=rendered(n.text, call_language(s.language)))
               for n in r.notes])


def schedule_to_proto(s: ShiftSchedule) -> pb.ShiftSchedule:
    return pb.ShiftSchedule(
        name=names.shift_schedule_name(s.facility_id, s.shift_id, s.shift_date.isoformat()),
        facility=names.facility_name(s.facility_id), date=s.shift_date.isoformat(),
        shift_id=s.shift_id, start_time=timestamp(s.start), end_time=timestamp(s.end),
        residents=[_resident_round(s, r) for r in s.residents])


def dispensing_item_to_proto(facility_id: str, resident_id: str, i: DispensingItem
                             ) -> pb.DispensingItem:
    return pb.DispensingItem(
        order=names.order_name(facility_id, resident_id, i.order_id), drug=_drug(i.drug),
        unit=_unit(i.unit), total_quantity=str(i.total), dose_count=i.dose_count,
        times=list(i.times), dispensing_mode=_MODE[i.mode], includes_range=i.includes_range)


VERDICT = {Verdict.OK: pb.CHECK_VERDICT_OK, Verdict.WARN: pb.CHECK_VERDICT_WARN,
            Verdict.STOP: pb.CHECK_VERDICT_STOP}


def reasons_to_proto(result: CheckResult) -> list[pb.CheckReason]:
    return [pb.CheckReason(code=r.code.value,
                           severity=convert.SEVERITY[r.severity],
                           message=r.message.render(call_language(result.language)))
            for r in result.reasons]


def dispensing_list_to_proto(facility_id: str, day: date, shift_id: str,
                             lists: list[ResidentDispensing]) -> pb.DispensingList:
    return pb.DispensingList(
        name=names.dispensing_list_name(facility_id, shift_id, day.isoformat()),
        facility=names.facility_name(facility_id), date=day.isoformat(), shift_id=shift_id,
        residents=[pb.ResidentDispensing(
            resident=names.resident_name(facility_id, r.resident.resident_id),
            display_name=r.resident.display_name, room=r.resident.room,
            pharmacy_dispensed=[dispensing_item_to_proto(facility_id, r.resident.resident_id, i)
                                for i in r.pharmacy_dispensed],
            staff_poured=[dispensing_item_to_proto(facility_id, r.resident.resident_id, i)
                          for i in r.staff_poured]) for r in lists])
