"""Proto <-> domain for administration records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from medservice.api.convert import from_timestamp, timestamp
from medservice.domain import names
from medservice.domain.administration import (
    AdministrationRecord,
    DoseSource,
    NotGivenReason,
    Outcome,
)
from medservice.domain.discrepancy import Code
from medservice.domain.errors import FieldViolation, require
from medservice.reconcile import CheckCode
from medservice.v1 import rounds_pb2 as pb

_OUTCOME = {Outcome.GIVEN: pb.ADMINISTRATION_OUTCOME_GIVEN,
            Outcome.NOT_GIVEN: pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
            Outcome.PN_GIVEN: pb.ADMINISTRATION_OUTCOME_PN_GIVEN}
_OUTCOME_BACK = {v: k for k, v in _OUTCOME.items()}
_REASON = {r: getattr(pb, f"NOT_GIVEN_REASON_{r.name}") for r in NotGivenReason}
_REASON_BACK = {v: k for k, v in _REASON.items()}
_SOURCE = {DoseSource.POUCH: pb.DOSE_SOURCE_POUCH, DoseSource.POURED: pb.DOSE_SOURCE_POURED}
_SOURCE_BACK = {v: k for k, v in _SOURCE.items()}


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
        correction_time=timestamp(r.corrected_at))


def record_from_proto(p: pb.AdministrationRecord, facility_id: str, resident_id: str,
                      record_id: str, performer: str, now: datetime) -> AdministrationRecord:
    """A record as a caller sends it, checked field by field (prefix "record.")."""
    v: list[FieldViolation] = []
    outcome = _OUTCOME_BACK.get(p.outcome)
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
    reason = _REASON_BACK.get(p.not_given_reason)
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
    administered = from_timestamp(p.administration_time) if p.HasField(
        "administration_time") else now
    require(v)
    assert outcome is not None
    return AdministrationRecord(
        record_id=record_id, facility_id=facility_id, resident_id=resident_id,
        order_id=order_id, drug_id=p.drug_id, outcome=outcome, administered_at=administered,
        recorded_at=now, performer=performer,
        dose_id=names.parse_dose(p.dose_id, facility_id, resident_id, "record.dose_id")
        if p.dose_id else None, quantity=quantity,
        route=p.route, source=_SOURCE_BACK.get(p.source), not_given_reason=reason,
        reason_text=p.reason_text, pn_reason=p.pn_reason)


# What acknowledged_reasons may name: every code a check can give (CheckReason.code).
_REASON_CODES = frozenset(c.value for c in Code) | frozenset(c.value for c in CheckCode)


def acknowledged_reasons(codes: Sequence[str]) -> set[str]:
    require([FieldViolation(f"acknowledged_reasons[{i}]", "is not a check reason code")
             for i, c in enumerate(codes) if c not in _REASON_CODES])
    return set(codes)
