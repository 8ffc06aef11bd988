"""What each call addresses, for its audit event (issue 5): the resource, facility and
resident read from every request type of the v1 API. No database, no server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.message import Message

from medservice.api.audit_capture import (
    Addressed,
    AuditRecorder,
    CallAudit,
    address_created,
    addressed,
    pending_audit,
)
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import audit_pb2 as aupb
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb

F = "facilities/f"
R = "facilities/f/residents/r1"
REQUEST_ID = "5d3b4c2a-8e1f-4f6a-9b0c-1d2e3f4a5b6c"
ORDER = f"{R}/orders/o-1"
CARD = f"{R}/medicineCard"
RECORD = f"{R}/administrations/12345678-1234-1234-1234-123456789012"
DISCREPANCY = f"{F}/discrepancies/{'a' * 32}"
WEBHOOK = f"{F}/webhookSubscriptions/{'b' * 32}"
AT_F = Addressed(F, "f", None)
AT_R = Addressed(R, "f", "r1")

# One example per RPC of the contract; test_every_rpc_has_an_example keeps it complete.
EXAMPLES: dict[str, tuple[Message, Addressed]] = {
    "FacilityService/CreateFacility": (
        fpb.CreateFacilityRequest(facility=fpb.Facility(display_name="Home"), facility_id="f"),
        AT_F),
    "FacilityService/GetFacility": (fpb.GetFacilityRequest(name=F), AT_F),
    "FacilityService/ListFacilities": (fpb.ListFacilitiesRequest(page_size=3), Addressed()),
    "FacilityService/UpdateFacility": (
        fpb.UpdateFacilityRequest(facility=fpb.Facility(name=F, display_name="x")), AT_F),
    "FacilityService/CreateResident": (
        fpb.CreateResidentRequest(parent=F, resident_id="r1", resident=fpb.Resident(
            person_id="010145-1234", display_name="Test Person")), AT_R),
    "FacilityService/GetResident": (fpb.GetResidentRequest(name=R), AT_R),
    "FacilityService/ListResidents": (fpb.ListResidentsRequest(parent=F), AT_F),
    "FacilityService/UpdateResident": (
        fpb.UpdateResidentRequest(resident=fpb.Resident(name=R, person_id="010145-1234")),
        AT_R),
    "MedicineCardService/SyncMedicineCard": (
        cpb.SyncMedicineCardRequest(card=cpb.MedicineCard(name=CARD)), Addressed(CARD, "f", "r1")),
    "MedicineCardService/GetMedicineCard": (
        cpb.GetMedicineCardRequest(name=CARD), Addressed(CARD, "f", "r1")),
    "MedicineCardService/GetOrder": (cpb.GetOrderRequest(name=ORDER),
                                     Addressed(ORDER, "f", "r1")),
    "MedicineCardService/ListOrderVersions": (
        cpb.ListOrderVersionsRequest(parent=ORDER), Addressed(ORDER, "f", "r1")),
    "MedicineCardService/PauseOrder": (cpb.PauseOrderRequest(name=ORDER),
                                       Addressed(ORDER, "f", "r1")),
    "MedicineCardService/ResumeOrder": (cpb.ResumeOrderRequest(name=ORDER),
                                        Addressed(ORDER, "f", "r1")),
    "MedicineCardService/DiscontinueOrder": (
        cpb.DiscontinueOrderRequest(name=ORDER), Addressed(ORDER, "f", "r1")),
    "MedicineCardService/ReverseDiscontinuation": (
        cpb.ReverseDiscontinuationRequest(name=ORDER), Addressed(ORDER, "f", "r1")),
    "MedicineCardService/ListCardChanges": (
        cpb.ListCardChangesRequest(parent=F, resident=R), Addressed(F, "f", "r1")),
    "MedicineCardService/ApproveCardChange": (
        cpb.ApproveCardChangeRequest(name=f"{ORDER}/changes/2", etag="1"),
        Addressed(f"{ORDER}/changes/2", "f", "r1")),
    "MedicineCardService/ImportFmkMessage": (
        cpb.ImportFmkMessageRequest(parent=CARD, content=b"<x/>"), Addressed(CARD, "f", "r1")),
    "MedicineCardService/ImportFhirMedicationRequests": (
        cpb.ImportFhirMedicationRequestsRequest(parent=CARD), Addressed(CARD, "f", "r1")),
    # A facility's findings, or one resident's: the resident is the event's resident.
    "MedicineCardService/ListCardFindings": (
        cpb.ListCardFindingsRequest(parent=F, resident=R), Addressed(F, "f", "r1")),
    "RoundService/GetShiftSchedule": (
        rpb.GetShiftScheduleRequest(facility=F, date="2026-01-01", shift_id="day"), AT_F),
    "RoundService/GetDispensingList": (
        rpb.GetDispensingListRequest(facility=F, date="2026-01-01", shift_id="day"), AT_F),
    "RoundService/ListScheduledDoses": (rpb.ListScheduledDosesRequest(parent=R), AT_R),
    "RoundService/CheckDose": (rpb.CheckDoseRequest(resident=R, order=ORDER), AT_R),
    "RoundService/RecordDose": (
        rpb.RecordDoseRequest(parent=R, record=rpb.AdministrationRecord(dose_id="d1")), AT_R),
    # The call addresses the facility; each recorded item gets its own event (item_audit).
    "RoundService/RecordDoses": (
        rpb.RecordDosesRequest(parent=F, requests=[rpb.RecordDoseRequest(parent=R)]), AT_F),
    "RoundService/EvaluatePnDose": (rpb.EvaluatePnDoseRequest(name=RECORD, etag="e"),
                                    Addressed(RECORD, "f", "r1")),
    "RoundService/CorrectRecord": (rpb.CorrectRecordRequest(name=RECORD, reason="x"),
                                   Addressed(RECORD, "f", "r1")),
    "RoundService/ListAdministrationRecords": (
        rpb.ListAdministrationRecordsRequest(parent=R), AT_R),
    "DiscrepancyService/ListDiscrepancies": (
        dpb.ListDiscrepanciesRequest(parent=F, resident=R), Addressed(F, "f", "r1")),
    "DiscrepancyService/GetDiscrepancy": (
        dpb.GetDiscrepancyRequest(name=DISCREPANCY), Addressed(DISCREPANCY, "f", None)),
    "DiscrepancyService/ListReviewQueue": (
        dpb.ListReviewQueueRequest(parent="facilities/-"), Addressed("facilities/-")),
    "DiscrepancyService/ReviewDiscrepancy": (
        dpb.ReviewDiscrepancyRequest(name=DISCREPANCY), Addressed(DISCREPANCY, "f", None)),
    "DiscrepancyService/ListDiscrepancyEvents": (
        dpb.ListDiscrepancyEventsRequest(parent=DISCREPANCY), Addressed(DISCREPANCY, "f")),
    "DiscrepancyService/ReconcileFacility": (dpb.ReconcileFacilityRequest(facility=F), AT_F),
    "DiscrepancyService/ComputeErrorRate": (dpb.ComputeErrorRateRequest(facility=F), AT_F),
    "AlertService/WatchAlerts": (apb.WatchAlertsRequest(parent=F), AT_F),
    "AlertService/ListAlerts": (apb.ListAlertsRequest(parent=F), AT_F),
    "AlertService/AcknowledgeAlert": (apb.AcknowledgeAlertRequest(name=f"{F}/alerts/a1"),
                                      Addressed(f"{F}/alerts/a1", "f")),
    "AlertService/CreateWebhookSubscription": (
        apb.CreateWebhookSubscriptionRequest(
            parent=F, webhook_subscription=apb.WebhookSubscription(
                url="https://care.example/h", secret="s" * 32)), AT_F),
    "AlertService/ListWebhookSubscriptions": (
        apb.ListWebhookSubscriptionsRequest(parent=F), AT_F),
    "AlertService/GetWebhookSubscription": (
        apb.GetWebhookSubscriptionRequest(name=WEBHOOK), Addressed(WEBHOOK, "f")),
    "AlertService/DeleteWebhookSubscription": (
        apb.DeleteWebhookSubscriptionRequest(name=WEBHOOK), Addressed(WEBHOOK, "f")),
    "AuditService/ListAuditEvents": (
        aupb.ListAuditEventsRequest(parent="facilities/-", resident=R),
        Addressed("facilities/-", "f", "r1")),
}


def test_every_rpc_has_an_example() -> None:
    every = {f"{s.name}/{m.name}"
             for module in (fpb, cpb, rpb, dpb, apb, aupb)
             for s in module.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert every == set(EXAMPLES)


@pytest.mark.parametrize("method", sorted(EXAMPLES))
def test_what_each_rpc_addresses(method: str) -> None:
    request, expected = EXAMPLES[method]
    assert addressed(request) == expected


@pytest.mark.parametrize("name", [
    "010145-1234", "0101451234", "facilities/f/residents/0101451234",
    "facilities/f/residents/010145-1234", "Facilities/F", "facilities/f/residents/r1/../x",
    "facilities/f; drop table", "x" * 400,
])
def test_malformed_or_personal_names_are_left_out(name: str) -> None:
    assert addressed(fpb.GetResidentRequest(name=name)) == Addressed()
    assert addressed(rpb.RecordDoseRequest(parent=name)) == Addressed()


def test_a_malformed_name_gives_way_to_the_next_well_formed_one() -> None:
    assert addressed(dpb.ListDiscrepanciesRequest(parent="bad name", resident=R)) == \
        Addressed(R, "f", "r1")


def test_a_resident_id_shaped_like_a_person_id_is_not_kept() -> None:
    request = fpb.CreateResidentRequest(parent=F, resident_id="0101451234")
    assert addressed(request) == AT_F


def _no_store(**_: object) -> Any:
    raise AssertionError("nothing is written here")


def _begin(request: Message) -> CallAudit:
    recorder = AuditRecorder(_no_store, lambda: datetime(2026, 1, 1, tzinfo=UTC))
    principal = Principal("admin-1", Role.ADMIN, frozenset({"*"}))
    call = recorder.begin("/medservice.v1.FacilityService/CreateResident", request, principal)
    assert call is not None and call.token is not None
    return call


def _reset(call: CallAudit) -> None:
    """Take the call's draft out of the context again (what `AuditRecorder.end` does)."""
    assert call.token is not None
    pending_audit.reset(call.token)


def test_a_created_resource_named_only_in_the_response_is_taken() -> None:
    call = _begin(fpb.CreateResidentRequest(parent=F, request_id=REQUEST_ID))
    try:
        draft = pending_audit.get()
        assert draft is not None and draft.event.resident_id is None
        assert draft.event.request_id == REQUEST_ID
        # A response outside what the request addressed is not taken ...
        address_created(fpb.Resident(name="facilities/g/residents/r9"))
        assert draft.event.resident_id is None
        # ... one under it is.
        address_created(fpb.Resident(name=R, person_id="010145-1234"))
        assert (draft.event.resource, draft.event.facility_id, draft.event.resident_id) == \
            (R, "f", "r1")
    finally:
        _reset(call)


def test_request_ids_that_are_not_uuids_are_not_kept() -> None:
    for request_id, kept in [("0b7f3c1e-2f7b-4a57-9a39-4d1b8c3f2e10", True),
                             ("010145-1234", False), ("a b", False), ("x" * 101, False),
                             ("req-1", False)]:
        call = _begin(fpb.CreateResidentRequest(parent=F, request_id=request_id))
        draft = pending_audit.get()
        assert draft is not None
        assert draft.event.request_id == (request_id if kept else "")
        _reset(call)


def test_calls_outside_the_v1_api_are_not_audited() -> None:
    recorder = AuditRecorder(_no_store, lambda: datetime.now(UTC))
    principal = Principal("bench", Role.CARER, frozenset({"f"}))
    assert recorder.begin("/medservice.bench.Echo/Echo", b"x", principal) is None
    assert pending_audit.get() is None


class _FakeUnit:
    """A unit of work that keeps what was added and committed."""

    def __init__(self, store: list[tuple[str, str]], fail: bool) -> None:
        self._store, self._fail = store, fail
        self._added: list[tuple[str, str]] = []
        self.audit = self

    def __enter__(self) -> _FakeUnit:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add(self, event: Any) -> None:
        if self._fail:
            raise RuntimeError("store down")
        self._added.append((event.method, event.outcome))

    def add_all(self, events: list[Any]) -> None:
        for event in events:
            self.add(event)

    def commit(self) -> None:
        # What UnitOfWork.commit does: the pending draft, unless written, goes along.
        draft = pending_audit.get()
        if draft is not None and not draft.written:
            self._added.append((draft.event.method, "OK (pending)"))
        self._store += self._added


def _recorder(store: list[tuple[str, str]], fail: bool = False) -> AuditRecorder:
    # A unit with only what the recorder's group commit touches (audit.add_all, commit): not a
    # whole UnitOfWork on purpose, hence the ignore.
    return AuditRecorder(lambda **_: _FakeUnit(store, fail),  # type: ignore[arg-type]
                         lambda: datetime(2026, 1, 1, tzinfo=UTC))


_ADMIN = Principal("admin-1", Role.ADMIN, frozenset({"*"}))
_GET = "/medservice.v1.FacilityService/GetResident"


@pytest.mark.parametrize(("committed", "outcome", "expected"), [
    (False, "OK", [(_GET, "OK")]),  # a read, or a retry answered from the request log
    (False, "NOT_FOUND", [(_GET, "NOT_FOUND")]),
    (True, "OK", []),  # the write's event went with its work
    (True, "INTERNAL", [(_GET, "INTERNAL")]),  # committed, then failed: a second event
])
def test_one_event_per_call_unless_a_committed_write_then_failed(
        committed: bool, outcome: str, expected: list[tuple[str, str]]) -> None:
    store: list[tuple[str, str]] = []
    recorder = _recorder(store)
    call = recorder.begin(_GET, fpb.GetResidentRequest(name=R), _ADMIN)
    assert call is not None
    call.draft.written = committed
    assert recorder.end(call, outcome)
    assert store == expected
    assert pending_audit.get() is None


def test_a_stream_is_audited_at_its_first_message_only() -> None:
    store: list[tuple[str, str]] = []
    recorder = _recorder(store)
    call = recorder.begin(_GET, fpb.GetResidentRequest(name=R), _ADMIN)
    assert recorder.first_message(call) and recorder.first_message(call)
    assert recorder.end(call, "CANCELLED")
    assert store == [(_GET, "OK")]


def test_a_failed_write_of_the_event_is_reported_not_raised() -> None:
    store: list[tuple[str, str]] = []
    recorder = _recorder(store, fail=True)
    call = recorder.begin(_GET, fpb.GetResidentRequest(name=R), _ADMIN)
    assert call is not None
    assert recorder.end(call, "OK") is False
    assert store == [] and not call.draft.written


def test_event_ids_are_uuid7_in_time_order(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([1_790_000_000_000_000_000 + k * 1_000_000 for k in range(50)])
    monkeypatch.setattr(names.time, "time_ns", lambda: next(clock))
    ids = [names.time_ordered_id() for _ in range(50)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [u.int >> 80 for u in parsed] == [1_790_000_000_000 + k for k in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50  # later milliseconds sort later
