"""What was given and what was found, as FHIR R4 resources (DOMAIN.md §4; issue 20).

`medication_administration` turns an administration record into a MedicationAdministration,
`detected_issue` a discrepancy into a DetectedIssue, `searchset` gathers them in a Bundle.
Each resource is checked against fhir.resources' R4B models (MedicationAdministration,
DetectedIssue and Bundle are the same in R4 and R4B; the package's default models are
R5) before it is handed out: a shape the standard does not have is a bug here, raised.

Decisions:
- Identity: a record's and a discrepancy's ids are the resources' ids and identifiers; an
  order is `MedicationRequest/{order id}` (the source's id, as the FHIR import keeps it).
- Persons: the resident is a Patient reference by the service's resident name
  (facilities/F/residents/R) and the staff member by the token's pseudonymous subject:
  never a CPR number or a name (DOMAIN.md §10).
- Status: given -> completed; not given -> not-done with `statusReason` coded: a resident
  away is the FHIR value set's "b" (Away), the other reasons the service's own code
  system. A record marked entered-in-error -> entered-in-error, with the correction's
  reason as a note and who corrected it. The record made in its place (the same
  scheduled dose) references it: R4 MedicationAdministration has no `replaces`, so an
  extension `REPLACES_EXTENSION` on the resource with a valueReference to
  MedicationAdministration/{id}.
- Time: `effectiveDateTime` is the instant with the facility's UTC offset of that moment.
- Dose: the quantity with the order's unit in the form it takes (singular up to 1, as
  staff read it everywhere), in Danish.
- DetectedIssue: code in the service's code system, severity high/moderate/low (info and
  low are low), `implicated` the record and the order, `detail` the description (it never
  names a person), status preliminary until a pharmacist's review, then final with the
  review as `mitigation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from medservice.domain import names
from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.discrepancy import Severity
from medservice.domain.orders import OrderContent
from medservice.domain.vocabulary import unit_words
from medservice.i18n import rendered
from medservice.store.discrepancies import DiscrepancyEntry

Json = dict[str, Any]

BASE = "https://medservice.dk/fhir"
RECORD_SYSTEM = f"{BASE}/administration-record"
DISCREPANCY_SYSTEM = f"{BASE}/discrepancy"
STAFF_SYSTEM = f"{BASE}/staff-subject"
RESIDENT_SYSTEM = f"{BASE}/resident"
NOT_GIVEN_SYSTEM = f"{BASE}/CodeSystem/not-given-reason"
DISCREPANCY_CODE_SYSTEM = f"{BASE}/CodeSystem/discrepancy-code"
REVIEW_SYSTEM = f"{BASE}/CodeSystem/review-decision"
# The service's own extensions on MedicationAdministration: the record a correction's
# replacement replaces (export), the check reasons a POSTed dose acknowledges (import).
REPLACES_EXTENSION = f"{BASE}/StructureDefinition/replaces-record"
ACKNOWLEDGED_EXTENSION = f"{BASE}/StructureDefinition/acknowledged-reason"
FHIR_NOT_GIVEN = "http://terminology.hl7.org/CodeSystem/reason-medication-not-given"
ATC_SYSTEM = "http://www.whocc.no/atc"
# The FHIR value set "SNOMED CT Reason Medication Not Given Codes" example codes that fit.
_FHIR_REASONS = {NotGivenReason.RESIDENT_ABSENT: ("b", "Away")}
_SEVERITY = {Severity.HIGH: "high", Severity.MEDIUM: "moderate", Severity.LOW: "low",
             Severity.INFO: "low"}


def _instant(at: datetime, clock: FacilityClock) -> str:
    """The instant with the facility's UTC offset at that moment: "2026-03-29T08:00:00+02:00"."""
    return clock.local(at).isoformat()


def _patient(facility_id: str, resident_id: str) -> Json:
    return {"identifier": {"system": RESIDENT_SYSTEM,
                           "value": names.resident_name(facility_id, resident_id)}}


def _staff(subject: str) -> Json:
    return {"identifier": {"system": STAFF_SYSTEM, "value": subject}}


def _number(value: Decimal) -> Decimal:
    return value.normalize() if value == value.to_integral_value() else value


def _unit(order: OrderContent | None, quantity: Decimal) -> str:
    """The order's unit in the form the quantity takes, as everywhere staff read it: "1
    tablet", "0,5 tablet", "2 tabletter" (vocabulary.unit_words), in Danish."""
    dose_unit = getattr(order.dosage, "unit", None) if order is not None else None
    if dose_unit is None:
        return ""
    return rendered(unit_words(dose_unit.singular, dose_unit.plural, quantity))


def medication_administration(record: AdministrationRecord, order: OrderContent | None,
                              clock: FacilityClock) -> Json:
    """One administration record as a MedicationAdministration (see the module docstring)."""
    resource: Json = {
        "resourceType": "MedicationAdministration",
        "id": record.record_id,
        **({"extension": [{"url": REPLACES_EXTENSION, "valueReference": {
            "reference": f"MedicationAdministration/{record.replaces_record_id}"}}]}
           if record.replaces_record_id else {}),
        "identifier": [{"system": RECORD_SYSTEM, "value": record.record_id}],
        "status": ("entered-in-error" if record.entered_in_error
                   else "completed" if record.was_given else "not-done"),
        "medicationCodeableConcept": _medication(record, order),
        "subject": _patient(record.facility_id, record.resident_id),
        "effectiveDateTime": _instant(record.administered_at, clock),
        "performer": [{"actor": _staff(record.performer)}],
    }
    if record.outcome is Outcome.NOT_GIVEN and record.not_given_reason is not None:
        resource["statusReason"] = [_not_given(record)]
    if record.order_id:
        resource["request"] = {"reference": f"MedicationRequest/{record.order_id}"}
    dosage: Json = {}
    if record.route:
        dosage["route"] = {"text": record.route}
    if record.quantity is not None:
        unit = _unit(order, record.quantity)
        dosage["dose"] = {"value": _number(record.quantity), **({"unit": unit} if unit else {})}
    if dosage:
        resource["dosage"] = dosage
    notes = []
    if record.entered_in_error:
        notes.append({"text": f"entered in error: {record.correction_reason}",
                      **({"authorReference": _staff(record.corrected_by)}
                         if record.corrected_by else {}),
                      **({"time": _instant(record.corrected_at, clock)}
                         if record.corrected_at else {})})
    if record.reason_text:
        notes.append({"text": record.reason_text})
    if notes:
        resource["note"] = notes
    return _valid(resource)


def _medication(record: AdministrationRecord, order: OrderContent | None) -> Json:
    if order is None:
        return {"text": record.drug_id or "unknown"}
    drug = order.drug
    codings = []
    if drug.atc_code:
        codings.append({"system": ATC_SYSTEM, "code": drug.atc_code})
    return {"text": drug.name, **({"coding": codings} if codings else {})}


def _not_given(record: AdministrationRecord) -> Json:
    reason = record.not_given_reason
    assert reason is not None
    own = {"system": NOT_GIVEN_SYSTEM, "code": reason.value}
    fhir = _FHIR_REASONS.get(reason)
    codings = [{"system": FHIR_NOT_GIVEN, "code": fhir[0], "display": fhir[1]}] if fhir else []
    return {"coding": [*codings, own], **({"text": record.reason_text}
                                          if record.reason_text else {})}


def detected_issue(entry: DiscrepancyEntry, clock: FacilityClock) -> Json:
    """One discrepancy as a DetectedIssue (see the module docstring)."""
    d = entry.discrepancy
    implicated = []
    if d.record_id:
        implicated.append({"reference": f"MedicationAdministration/{d.record_id}"})
    if d.order_id:
        implicated.append({"reference": f"MedicationRequest/{d.order_id}"})
    resource: Json = {
        "resourceType": "DetectedIssue",
        "id": entry.discrepancy_id,
        "identifier": [{"system": DISCREPANCY_SYSTEM, "value": entry.discrepancy_id}],
        "status": "final" if entry.decision is not None else "preliminary",
        "code": {"coding": [{"system": DISCREPANCY_CODE_SYSTEM, "code": d.code.value}]},
        "severity": _SEVERITY[d.severity],
        "patient": _patient(d.facility_id, d.resident_id),
        "identifiedDateTime": _instant(d.occurred_at, clock),
        "detail": d.description,
    }
    if implicated:
        resource["implicated"] = implicated
    if entry.decision is not None:
        mitigation: Json = {"action": {
            "coding": [{"system": REVIEW_SYSTEM, "code": entry.decision.value}],
            **({"text": entry.review_note} if entry.review_note else {})}}
        if entry.reviewed_at is not None:
            mitigation["date"] = _instant(entry.reviewed_at, clock)
        if entry.reviewer:
            mitigation["author"] = _staff(entry.reviewer)
        resource["mitigation"] = [mitigation]
    return _valid(resource)


def searchset(resources: Sequence[Json]) -> Json:
    """A searchset Bundle of the resources, each a match."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
              "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
                         "search": {"mode": "match"}} for r in resources]}
    return _valid(bundle)


def _valid(resource: Json) -> Json:
    """The resource as JSON, once the R4 model of its type accepts it (a failure is a bug
    here). The models load with the first FHIR document: they are some 20 MB that a server
    doing rounds only never needs (issue 19)."""
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource["resourceType"])
    return dict(model.model_validate(resource).model_dump(mode="json", exclude_none=True))
