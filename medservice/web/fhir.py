"""FHIR R4 search on the HTTP front end (issue 20): `GET /fhir/R4/MedicationAdministration`
and `GET /fhir/R4/DetectedIssue` with `subject` (the resident's name, facilities/F/
residents/R, or `Patient/` before it) and `date=geYYYY-MM-DD` / `date=ltYYYY-MM-DD` (both
required: a period of facility-local dates). Each search is the ReportService.ExportFhir
call with that resource type, made over this process's gRPC server like every other route:
the same token, role, facility scope and audit event. Errors answer as an OperationOutcome.
"""

from __future__ import annotations

from typing import Any

from google.rpc import code_pb2, status_pb2

from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.service.fhir_export import RESOURCE_TYPES
from medservice.v1 import reports_pb2 as pb

PREFIX = "/fhir/R4/"
EXPORT_METHOD = "/medservice.v1.ReportService/ExportFhir"
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
