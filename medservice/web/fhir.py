"""FHIR R4 on the HTTP front end (issue 20): search with `GET /fhir/R4/MedicationAdministration`
and `GET /fhir/R4/DetectedIssue` with `subject` (the resident's name, facilities/F/
residents/R, or `Patient/` before it) and `date=geYYYY-MM-DD` / `date=ltYYYY-MM-DD` (both
required: a period of facility-local dates). Each search is the ReportService.ExportFhir
call with that resource type, made over this process's gRPC server like every other route:
the same token, role, facility scope and audit event. Errors answer as an OperationOutcome.

`POST /fhir/R4/MedicationAdministration` records a dose from a front end that speaks only
FHIR: the resource becomes a RoundService.RecordDose call (the same use case, check and
errors). The resident is `subject.identifier` in the service's resident system (as the
export writes it); the order `request` MedicationRequest/{order id}; completed is given,
not-done not given with its `statusReason` (the service's code, or FHIR's "b" Away);
`effectiveDateTime`, `dosage.dose.value` and `dosage.route.text` as recorded. The
resource's first identifier names the request (a UUID derived from system|value), so a
resend records once and is answered with the first record. A dose whose check says STOP is
recorded as RecordDose records it, with each reason acknowledged: the extension
`shapes.ACKNOWLEDGED_EXTENSION` on the resource, once per reason, its valueCode a
CheckReason code (RecordDose's `acknowledged_reasons`).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from google.rpc import code_pb2, status_pb2
from pydantic import ValidationError

from medservice.domain import names
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.exports import fhir as shapes
from medservice.reconcile import REASON_CODES
from medservice.service.fhir_export import RESOURCE_TYPES
from medservice.v1 import reports_pb2 as pb
from medservice.v1 import rounds_pb2 as rpb

PREFIX = "/fhir/R4/"
EXPORT_METHOD = "/medservice.v1.ReportService/ExportFhir"
RECORD_METHOD = "/medservice.v1.RoundService/RecordDose"
RECORD_PATH = PREFIX + "MedicationAdministration"
# Never change: request ids of POSTed resources are derived from it.
_REQUEST_NAMESPACE = uuid.UUID("0b7f3f0e-5d7a-5c55-9b1e-6c1f0a2d9e41")
CONTENT_TYPE = "application/fhir+json"
# google.rpc codes -> OperationOutcome issue codes (FHIR value set issue-type).
_ISSUE = {code_pb2.INVALID_ARGUMENT: "invalid", code_pb2.UNAUTHENTICATED: "login",
          code_pb2.PERMISSION_DENIED: "forbidden", code_pb2.NOT_FOUND: "not-found",
          code_pb2.FAILED_PRECONDITION: "business-rule", code_pb2.ALREADY_EXISTS: "duplicate",
          code_pb2.RESOURCE_EXHAUSTED: "throttled", code_pb2.UNAVAILABLE: "transient"}


def search_type(path: str) -> str | None:
    """The resource type a FHIR search path names, or None when it is not one."""
    if not path.startswith(PREFIX):
        return None
    kind = path[len(PREFIX):]
    return kind if kind in RESOURCE_TYPES else None


def search_request(kind: str, query: list[tuple[str, str]]) -> pb.ExportFhirRequest:
    """The ExportFhir request of a search; InvalidArgument naming the parameter."""
    subjects = [v for k, v in query if k in ("subject", "patient")]
    if len(subjects) != 1:
        raise InvalidArgument([FieldViolation("subject", "give one subject: the resident's "
                                                         "name, facilities/F/residents/R")])
    subject = subjects[0].removeprefix("Patient/")
    bounds: dict[str, str] = {}
    for key, value in query:
        if key != "date":
            continue
        prefix, day = value[:2], value[2:]
        if prefix not in ("ge", "lt") or prefix in bounds or len(day) != 10:
            raise InvalidArgument([FieldViolation("date", "give date=geYYYY-MM-DD and "
                                                          "date=ltYYYY-MM-DD, once each")])
        bounds[prefix] = day
    if set(bounds) != {"ge", "lt"}:
        raise InvalidArgument([FieldViolation("date", "give date=geYYYY-MM-DD and "
                                                      "date=ltYYYY-MM-DD, once each")])
    return pb.ExportFhirRequest(resident=subject, start_date=bounds["ge"],
                                end_date=bounds["lt"], resource_type=kind)


def bundle_of(document: pb.Document) -> bytes:
    return document.content


def operation_outcome(status: status_pb2.Status) -> dict[str, Any]:
    """A refusal as an OperationOutcome: its code, and the message as diagnostics."""
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": _ISSUE.get(status.code, "exception"),
        "diagnostics": status.message}]}


def record_request(body: bytes) -> rpb.RecordDoseRequest:
    """The RecordDose request of a POSTed MedicationAdministration (see the module
    docstring); InvalidArgument naming the element."""
    try:
        resource = json.loads(body)
    except ValueError:
        raise InvalidArgument([FieldViolation("MedicationAdministration", "is not JSON")]
                              ) from None
    if not isinstance(resource, dict) or resource.get("resourceType") != \
            "MedicationAdministration":
        raise InvalidArgument([FieldViolation("resourceType",
                                              "a MedicationAdministration is expected")])
    # The model loads with the first POST, not with every server (issue 19).
    from fhir.resources.R4B.medicationadministration import MedicationAdministration

    try:
        MedicationAdministration.model_validate(resource)
    except (ValidationError, ValueError, TypeError) as e:
        where = ""
        if isinstance(e, ValidationError) and e.errors():
            where = ".".join(str(x) for x in e.errors()[0]["loc"])
        raise InvalidArgument([FieldViolation(where or "MedicationAdministration",
                                              "not valid FHIR R4")]) from None
    identifiers = [i for i in resource.get("identifier", []) if i.get("value")]
    if not identifiers:
        raise InvalidArgument([FieldViolation("identifier", "is required: it names the "
                                                            "request, so a resend records once")])
    key = f"{identifiers[0].get('system', '')}|{identifiers[0]['value']}"
    parent = _resident(resource)
    record = rpb.AdministrationRecord(outcome=_outcome(resource))
    effective = resource.get("effectiveDateTime")
    if not isinstance(effective, str):
        raise InvalidArgument([FieldViolation("effectiveDateTime", "is required")])
    record.administration_time.FromDatetime(datetime.fromisoformat(effective))
    if record.outcome == rpb.ADMINISTRATION_OUTCOME_NOT_GIVEN:
        record.not_given_reason = _not_given(resource)
    request = resource.get("request", {}).get("reference", "")
    if request:
        if not request.startswith("MedicationRequest/"):
            raise InvalidArgument([FieldViolation("request", "must be MedicationRequest/{id}")])
        facility_id, resident_id = names.parse_resident_name(parent, "subject")
        record.order = names.order_name(facility_id, resident_id,
                                        request.removeprefix("MedicationRequest/"))
    dosage = resource.get("dosage", {})
    dose = dosage.get("dose", {}).get("value")
    if dose is not None:
        record.quantity = str(dose)
    route = dosage.get("route", {}).get("text", "")
    if route:
        record.route = route
    return rpb.RecordDoseRequest(parent=parent, record=record,
                                 acknowledged_reasons=_acknowledged(resource),
                                 request_id=str(uuid.uuid5(_REQUEST_NAMESPACE, key)))


def _acknowledged(resource: dict[str, Any]) -> list[str]:
    """The check reasons the resource acknowledges: the valueCode of each acknowledgement
    extension; InvalidArgument naming each one that is no check reason code (as RecordDose
    names acknowledged_reasons[i])."""
    codes: list[str] = []
    violations: list[FieldViolation] = []
    for i, extension in enumerate(resource.get("extension", [])):
        if extension.get("url") != shapes.ACKNOWLEDGED_EXTENSION:
            continue  # another extension: not ours to read
        code = extension.get("valueCode")
        if isinstance(code, str) and code in REASON_CODES:
            codes.append(code)
        else:
            violations.append(FieldViolation(f"extension[{i}].valueCode",
                                             "is not a check reason code"))
    if violations:
        raise InvalidArgument(violations)
    return codes


def _resident(resource: dict[str, Any]) -> str:
    identifier = resource.get("subject", {}).get("identifier", {})
    if identifier.get("system") != shapes.RESIDENT_SYSTEM or not identifier.get("value"):
        raise InvalidArgument([FieldViolation("subject", "give subject.identifier with system "
                                                         f"{shapes.RESIDENT_SYSTEM} and the "
                                                         "resident's name")])
    return str(identifier["value"])


def _outcome(resource: dict[str, Any]) -> rpb.AdministrationOutcome.ValueType:
    status = resource.get("status")
    if status == "completed":
        return rpb.ADMINISTRATION_OUTCOME_GIVEN
    if status == "not-done":
        return rpb.ADMINISTRATION_OUTCOME_NOT_GIVEN
    raise InvalidArgument([FieldViolation("status", "completed or not-done is recorded")])


def _not_given(resource: dict[str, Any]) -> rpb.NotGivenReason.ValueType:
    for concept in resource.get("statusReason", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == shapes.NOT_GIVEN_SYSTEM:
                name = f"NOT_GIVEN_REASON_{str(coding.get('code')).upper()}"
                if name in rpb.NotGivenReason.keys():  # noqa: SIM118  (an enum wrapper)
                    return rpb.NotGivenReason.Value(name)
            if coding.get("system") == shapes.FHIR_NOT_GIVEN and coding.get("code") == "b":
                return rpb.NOT_GIVEN_REASON_RESIDENT_ABSENT
    raise InvalidArgument([FieldViolation("statusReason", "a dose not given needs its reason "
                                                          f"in {shapes.NOT_GIVEN_SYSTEM}")])
