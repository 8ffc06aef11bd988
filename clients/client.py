"""A small typed client for medservice: channel, token, deadlines, and retries only on
UNAVAILABLE, reusing the request_id so a retried write is done once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from medservice.v1 import alerts_pb2 as alpb
from medservice.v1 import (
    alerts_pb2_grpc,
    audit_pb2_grpc,
    discrepancies_pb2_grpc,
    facilities_pb2_grpc,
    medicine_cards_pb2_grpc,
    reports_pb2_grpc,
    rounds_pb2_grpc,
)
from medservice.v1 import audit_pb2 as aupb
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb

T = TypeVar("T")


class MedServiceError(Exception):
    """A call failed; carries the status code, the stable reason and any field violations."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "",
                 violations: list[tuple[str, str]] | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = violations or []
        # ErrorInfo metadata, e.g. {"record": ...} for a dose that is already recorded.
        self.metadata = metadata or {}

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for field, description in self.violations:
            text += f"\n  {field}: {description}"
        for key, value in sorted(self.metadata.items()):
            text += f"\n  {key}: {value}"
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> MedServiceError:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        reason, violations, metadata = "", [], {}
        status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [(v.field, v.description) for v in bad.field_violations]
        return cls(code, message or "", reason, violations, metadata)


class _BearerAuth(grpc.AuthMetadataPlugin):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {self._token}"),), None)


def new_request_id() -> str:
    return str(uuid.uuid4())


class MedClient:
    """One channel to the service. Every call has a deadline (`timeout` seconds)."""

    def __init__(self, target: str, token: str = "", *, tls: bool = False,
                 root_certificates: bytes | None = None, timeout: float = 10.0,
                 retries: int = 3, options: Sequence[tuple[str, Any]] = (),
                 language: str = "") -> None:
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates)
            if token:
                creds = grpc.composite_channel_credentials(
                    creds, grpc.metadata_call_credentials(_BearerAuth(token)))
            self.channel = grpc.secure_channel(target, creds, options=options)
            self._metadata: tuple[tuple[str, str], ...] = ()
        else:
            self.channel = grpc.insecure_channel(target, options=options)
            self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if language:  # the staff-facing texts of the answers in this language (issue 15)
            self._metadata += (("accept-language", language),)
        self.timeout = timeout
        self.retries = retries
        self.facilities = facilities_pb2_grpc.FacilityServiceStub(self.channel)
        self.cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(self.channel)
        self.rounds = rounds_pb2_grpc.RoundServiceStub(self.channel)
        self.discrepancies = discrepancies_pb2_grpc.DiscrepancyServiceStub(self.channel)
        self.alerts = alerts_pb2_grpc.AlertServiceStub(self.channel)
        self.reports = reports_pb2_grpc.ReportServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> MedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: Callable[..., T], request: Any, *, timeout: float | None = None
             ) -> T:
        """Call with the token and a deadline. Retry on UNAVAILABLE only: the request, and so
        its request_id, is the same object every time."""
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise MedServiceError.from_rpc_error(e) from None
        raise AssertionError("unreachable")

    def stream(self, method: Callable[..., Iterator[T]], request: Any) -> Iterator[T]:
        try:
            yield from method(request, metadata=self._metadata)
        except grpc.RpcError as e:
            raise MedServiceError.from_rpc_error(e) from None

    # Facilities and residents

    def create_facility(self, facility: fpb.Facility, facility_id: str = "",
                        request_id: str | None = None) -> fpb.Facility:
        return self.call(self.facilities.CreateFacility, fpb.CreateFacilityRequest(
            facility=facility, facility_id=facility_id,
            request_id=request_id or new_request_id()))

    def get_facility(self, facility_id: str) -> fpb.Facility:
        return self.call(self.facilities.GetFacility,
                         fpb.GetFacilityRequest(name=f"facilities/{facility_id}"))

    def list_facilities(self, page_size: int = 0) -> Iterator[fpb.Facility]:
        token = ""
        while True:
            resp = self.call(self.facilities.ListFacilities, fpb.ListFacilitiesRequest(
                page_size=page_size, page_token=token))
            yield from resp.facilities
            token = resp.next_page_token
            if not token:
                return

    def update_facility(self, facility: fpb.Facility, paths: list[str],
                        request_id: str | None = None) -> fpb.Facility:
        return self.call(self.facilities.UpdateFacility, fpb.UpdateFacilityRequest(
            facility=facility, update_mask=FieldMask(paths=paths),
            request_id=request_id or new_request_id()))

    def create_resident(self, facility_id: str, resident: fpb.Resident, resident_id: str = "",
                        request_id: str | None = None) -> fpb.Resident:
        return self.call(self.facilities.CreateResident, fpb.CreateResidentRequest(
            parent=f"facilities/{facility_id}", resident=resident, resident_id=resident_id,
            request_id=request_id or new_request_id()))

    def get_resident(self, name: str) -> fpb.Resident:
        return self.call(self.facilities.GetResident, fpb.GetResidentRequest(name=name))

    def list_residents(self, facility_id: str, page_size: int = 0) -> Iterator[fpb.Resident]:
        token = ""
        while True:
            resp = self.call(self.facilities.ListResidents, fpb.ListResidentsRequest(
                parent=f"facilities/{facility_id}", page_size=page_size, page_token=token))
            yield from resp.residents
            token = resp.next_page_token
            if not token:
                return

    def update_resident(self, resident: fpb.Resident, paths: list[str],
                        request_id: str | None = None) -> fpb.Resident:
        return self.call(self.facilities.UpdateResident, fpb.UpdateResidentRequest(
            resident=resident, update_mask=FieldMask(paths=paths),
            request_id=request_id or new_request_id()))

    # Medicine cards

    def get_card(self, resident: str) -> cpb.MedicineCard:
        return self.call(self.cards.GetMedicineCard,
                         cpb.GetMedicineCardRequest(name=f"{resident}/medicineCard"))

    def import_fmk(self, resident: str, content: bytes, request_id: str | None = None,
                   timeout: float | None = None) -> cpb.ImportMedicineCardResponse:
        return self.call(self.cards.ImportFmkMessage, cpb.ImportFmkMessageRequest(
            parent=f"{resident}/medicineCard", content=content,
            request_id=request_id or new_request_id()), timeout=timeout)

    def import_fhir(self, resident: str, content: bytes, request_id: str | None = None,
                    timeout: float | None = None, *, unidentified: bool = False
                    ) -> cpb.ImportMedicineCardResponse:
        return self.call(self.cards.ImportFhirMedicationRequests,
                         cpb.ImportFhirMedicationRequestsRequest(
                             parent=f"{resident}/medicineCard", content=content,
                             request_id=request_id or new_request_id(),
                             unidentified=unidentified), timeout=timeout)

    def list_card_changes(self, facility_id: str, resident: str = "", page_size: int = 0
                          ) -> Iterator[cpb.CardChange]:
        """The facility's clinical card changes waiting for approval, oldest first."""
        token = ""
        while True:
            page = self.call(self.cards.ListCardChanges, cpb.ListCardChangesRequest(
                parent=f"facilities/{facility_id}", resident=resident, page_size=page_size,
                page_token=token))
            yield from page.changes
            token = page.next_page_token
            if not token:
                return

    def approve_card_change(self, name: str, etag: str, request_id: str | None = None
                            ) -> cpb.CardChange:
        return self.call(self.cards.ApproveCardChange, cpb.ApproveCardChangeRequest(
            name=name, etag=etag, request_id=request_id or new_request_id()))

    # Rounds

    def shift_schedule(self, facility_id: str, day: str, shift_id: str) -> rpb.ShiftSchedule:
        return self.call(self.rounds.GetShiftSchedule, rpb.GetShiftScheduleRequest(
            facility=f"facilities/{facility_id}", date=day, shift_id=shift_id))

    def dispensing_list(self, facility_id: str, day: str, shift_id: str
                        ) -> rpb.DispensingList:
        return self.call(self.rounds.GetDispensingList, rpb.GetDispensingListRequest(
            facility=f"facilities/{facility_id}", date=day, shift_id=shift_id))

    def record_doses(self, facility_id: str, items: list[rpb.RecordDoseRequest], *,
                     chunk: int = 200, timeout: float | None = None
                     ) -> list[rpb.RecordDoseResult]:
        """RecordDoses in parts of `chunk` items, each part retried as a whole while it runs
        out of time or the service is unavailable: every item carries its own request_id,
        so what a lost part recorded is answered, not recorded again."""
        results: list[rpb.RecordDoseResult] = []
        for i in range(0, len(items), chunk):
            request = rpb.RecordDosesRequest(parent=f"facilities/{facility_id}",
                                             requests=items[i:i + chunk])
            for attempt in range(self.retries + 1):
                try:
                    results += self.call(self.rounds.RecordDoses, request,
                                         timeout=timeout).results
                    break
                except MedServiceError as e:
                    if e.code != grpc.StatusCode.DEADLINE_EXCEEDED or attempt == self.retries:
                        raise
        return results

    # The audit trail

    def audit_events(self, parent: str = "facilities/-", *, subject: str = "",
                     resident: str = "", method: str = "", since: datetime | None = None,
                     page_size: int = 0) -> Iterator[aupb.AuditEvent]:
        """Newest first, fetching page after page as the caller reads on."""
        stub = audit_pb2_grpc.AuditServiceStub(self.channel)
        request = aupb.ListAuditEventsRequest(parent=parent, subject=subject,
                                              resident=resident, method=method,
                                              page_size=page_size)
        if since is not None:
            request.start_time.FromDatetime(since.astimezone(UTC))
        while True:
            resp = self.call(stub.ListAuditEvents, request)
            yield from resp.events
            if not resp.next_page_token:
                return
            request.page_token = resp.next_page_token

    # Discrepancies and their review

    def get_discrepancy(self, name: str) -> dpb.Discrepancy:
        return self.call(self.discrepancies.GetDiscrepancy,
                         dpb.GetDiscrepancyRequest(name=name))

    def review_queue(self, parent: str = "facilities/-", page_size: int = 0
                     ) -> Iterator[dpb.Discrepancy]:
        token = ""
        while True:
            resp = self.call(self.discrepancies.ListReviewQueue, dpb.ListReviewQueueRequest(
                parent=parent, page_size=page_size, page_token=token))
            yield from resp.discrepancies
            token = resp.next_page_token
            if not token:
                return

    def review_discrepancy(self, name: str, decision: dpb.ReviewDecision.ValueType, note: str,
                           etag: str, request_id: str | None = None) -> dpb.Discrepancy:
        return self.call(self.discrepancies.ReviewDiscrepancy, dpb.ReviewDiscrepancyRequest(
            name=name, decision=decision, note=note, etag=etag,
            request_id=request_id or new_request_id()))

    def discrepancy_events(self, name: str, page_size: int = 0
                           ) -> Iterator[dpb.DiscrepancyEvent]:
        token = ""
        while True:
            resp = self.call(self.discrepancies.ListDiscrepancyEvents,
                             dpb.ListDiscrepancyEventsRequest(parent=name, page_size=page_size,
                                                              page_token=token))
            yield from resp.events
            token = resp.next_page_token
            if not token:
                return

    # Alerts

    def watch_alerts(self, facility_id: str, resume_token: str = "", audience: int = 0
                     ) -> Any:
        """The open stream (iterate it; `.cancel()` ends it): no deadline, it is long-lived."""
        return self.alerts.WatchAlerts(alpb.WatchAlertsRequest(
            parent=f"facilities/{facility_id}", resume_token=resume_token,
            audience=audience), metadata=self._metadata)  # type: ignore[arg-type]

    def list_alerts(self, facility_id: str, *, unacknowledged_only: bool = False,
                    audience: int = 0, page_size: int = 0) -> Iterator[alpb.Alert]:
        token = ""
        while True:
            page = self.call(self.alerts.ListAlerts, alpb.ListAlertsRequest(
                parent=f"facilities/{facility_id}", audience=audience,  # type: ignore[arg-type]
                unacknowledged_only=unacknowledged_only, page_size=page_size,
                page_token=token))
            yield from page.alerts
            token = page.next_page_token
            if not token:
                return

    def acknowledge_alert(self, name: str, request_id: str | None = None) -> alpb.Alert:
        return self.call(self.alerts.AcknowledgeAlert, alpb.AcknowledgeAlertRequest(
            name=name, request_id=request_id or new_request_id()))
