"""MedicineCardService: thin methods over medservice.service.cards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medservice.api import convert_cards as cc
from medservice.api.audit_capture import note_audit
from medservice.api.convert import instant
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc, run_idempotent
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.card_changes import PendingChange
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.imports.result import ImportResult
from medservice.service import card_changes as uc_changes
from medservice.service import cards as uc
from medservice.service.card_checks import card_checks, page_of
from medservice.service.paging import Page, next_token, read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.v1 import medicine_cards_pb2 as pb
from medservice.v1 import medicine_cards_pb2_grpc

READERS = (Role.INTEGRATION, Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)
WRITERS = (Role.INTEGRATION,)
# Who reads the inspection checks: whoever reads the round list, where they show as notes.
CHECK_READERS = (Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)

# Who approves a clinical card change: the home's nurse (the pharmacist-in-charge role,
# "or the home's medicine-responsible nurse") and the shift lead.
APPROVERS = (Role.PHARMACIST, Role.SHIFT_LEAD)
_SERVICE = "/medservice.v1.MedicineCardService/"
# The audit detail of an import of a document naming no patient by CPR number.
UNIDENTIFIED = "unidentified"


class MedicineCardServicer(medicine_cards_pb2_grpc.MedicineCardServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    @rpc(*WRITERS)
    def SyncMedicineCard(self, request: pb.SyncMedicineCardRequest, context: Any,
                         principal: Principal) -> pb.SyncMedicineCardResponse:
        facility_id, resident_id = names.parse_card_name(request.card.name, "card.name")
        principal.require_facility(facility_id)
        if request.card.card_version < 0:
            raise InvalidArgument([FieldViolation("card.card_version", "must not be negative")])
        orders = [cc.order_content_from_proto(o, facility_id, resident_id, f"card.orders[{i}]")
                  for i, o in enumerate(request.card.orders)]
        now = self._clock()
        valid_from = instant(request, "valid_time", now)

        def work(uow: UnitOfWork) -> pb.SyncMedicineCardResponse:
            card, changes = uc.sync_card(uow, facility_id, resident_id,
                                         request.card.card_version, orders, valid_from, now)
            return pb.SyncMedicineCardResponse(
                card=cc.card_to_proto(card),
                changes=cc.changes_to_proto(facility_id, resident_id, changes))

        return run_idempotent(self._uow, principal, _SERVICE + "SyncMedicineCard", request,
                              request.request_id, pb.SyncMedicineCardResponse, work, now)

    @rpc(*READERS)
    def GetMedicineCard(self, request: pb.GetMedicineCardRequest, context: Any,
                        principal: Principal) -> pb.MedicineCard:
        facility_id, resident_id = names.parse_card_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()
        valid_at = instant(request, "valid_time", now)
        known_at = instant(request, "recorded_time", now)
        with self._uow(write=False) as uow:
            return cc.card_to_proto(uc.get_card(uow, facility_id, resident_id, valid_at,
                                                known_at))

    @rpc(*READERS)
    def GetOrder(self, request: pb.GetOrderRequest, context: Any,
                 principal: Principal) -> pb.Order:
        facility_id, resident_id, order_id = names.parse_order_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()
        valid_at = instant(request, "valid_time", now)
        known_at = instant(request, "recorded_time", now)
        with self._uow(write=False) as uow:
            return cc.order_view_to_proto(uc.get_order(uow, facility_id, resident_id, order_id,
                                                       valid_at, known_at))

    @rpc(*READERS)
    def ListOrderVersions(self, request: pb.ListOrderVersionsRequest, context: Any,
                          principal: Principal) -> pb.ListOrderVersionsResponse:
        facility_id, resident_id, order_id = names.parse_order_name(request.parent, "parent")
        principal.require_facility(facility_id)
        page = read_page(request.page_size, request.page_token, {"parent": request.parent})
        with self._uow(write=False) as uow:
            versions = uc.list_order_versions(uow, facility_id, resident_id, order_id)
        after = int(page.after or 0)
        rows = [v for v in versions if v.version > after][: page.size + 1]
        items = rows[: page.size]
        return pb.ListOrderVersionsResponse(
            versions=[cc.order_to_proto(v, v.content, None) for v in items],
            next_page_token=next_token(page, rows, items[-1].version if items else None))

    def _import(self, principal: Principal, request: Any, method: str,
                read: Callable[[bytes], ImportResult]) -> pb.ImportMedicineCardResponse:
        facility_id, resident_id = names.parse_card_name(request.parent, "parent")
        principal.require_facility(facility_id)
        if not request.content:
            raise InvalidArgument([FieldViolation("content", "is empty")])
        result = read(request.content)
        # Only FHIR requests have the flag: an FMK document names its person or is refused.
        unidentified = bool(getattr(request, "unidentified", False))
        if unidentified and result.person_unidentified:
            note_audit(UNIDENTIFIED)  # who imported a document naming nobody
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.ImportMedicineCardResponse:
            card, changes = uc.import_card(uow, facility_id, resident_id, result, now,
                                           unidentified=unidentified)
            return cc.import_response(card, changes, result.problems)

        return run_idempotent(self._uow, principal, _SERVICE + method, request,
                              request.request_id, pb.ImportMedicineCardResponse, work, now)

    @rpc(*WRITERS)
    def ImportFmkMessage(self, request: pb.ImportFmkMessageRequest, context: Any,
                         principal: Principal) -> pb.ImportMedicineCardResponse:
        from medservice.imports.fmk import read_fmk

        return self._import(principal, request, "ImportFmkMessage", read_fmk)

    @rpc(*WRITERS)
    def ImportFhirMedicationRequests(self, request: pb.ImportFhirMedicationRequestsRequest,
                                     context: Any, principal: Principal
                                     ) -> pb.ImportMedicineCardResponse:
        from medservice.imports.fhir import read_fhir

        return self._import(principal, request, "ImportFhirMedicationRequests", read_fhir)

    def _state_change(self, principal: Principal, request: Any, method: str,
                      change: Any) -> pb.Order:
        facility_id, resident_id, order_id = names.parse_order_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Order:
            return cc.order_view_to_proto(change(uow, facility_id, resident_id, order_id, now))

        return run_idempotent(self._uow, principal, _SERVICE + method, request,
                              request.request_id, pb.Order, work, now)

    @rpc(*WRITERS)
    def PauseOrder(self, request: pb.PauseOrderRequest, context: Any,
                   principal: Principal) -> pb.Order:
        start = instant(request, "pause_start", None)
        end = instant(request, "pause_end", None)
        return self._state_change(principal, request, "PauseOrder",
                                  lambda uow, f, r, o, now: uc.pause_order(
                                      uow, f, r, o, start, end, now))

    @rpc(*WRITERS)
    def ResumeOrder(self, request: pb.ResumeOrderRequest, context: Any,
                    principal: Principal) -> pb.Order:
        at = instant(request, "resume_time", None)
        return self._state_change(principal, request, "ResumeOrder",
                                  lambda uow, f, r, o, now: uc.resume_order(
                                      uow, f, r, o, at, now))

    @rpc(*WRITERS)
    def DiscontinueOrder(self, request: pb.DiscontinueOrderRequest, context: Any,
                         principal: Principal) -> pb.Order:
        at = instant(request, "discontinue_time", None)
        return self._state_change(principal, request, "DiscontinueOrder",
                                  lambda uow, f, r, o, now: uc.discontinue_order(
                                      uow, f, r, o, at, now))

    @rpc(*WRITERS)
    def ReverseDiscontinuation(self, request: pb.ReverseDiscontinuationRequest, context: Any,
                               principal: Principal) -> pb.Order:
        return self._state_change(principal, request, "ReverseDiscontinuation",
                                  uc.reverse_discontinuation)

    @rpc(*CHECK_READERS)
    def ListCardFindings(self, request: pb.ListCardFindingsRequest, context: Any,
                         principal: Principal) -> pb.ListCardFindingsResponse:
        facility_id, resident_id, page = _facility_listing(request, principal)
        with self._uow(write=False) as uow:
            checks = card_checks(uow, facility_id, self._clock(), resident_id=resident_id)
        items, token = page_of(checks, page)
        return pb.ListCardFindingsResponse(
            findings=[cc.card_finding_to_proto(facility_id, rf) for rf in items],
            next_page_token=token, residents_checked=checks.residents_checked)

    @rpc(*READERS)
    def ListCardChanges(self, request: pb.ListCardChangesRequest, context: Any,
                        principal: Principal) -> pb.ListCardChangesResponse:
        facility_id, resident_id, page = _facility_listing(request, principal)
        with self._uow(write=False) as uow:
            zone, pending = uc_changes.pending_changes(uow, facility_id, resident_id)
        after = _page_key(page.after)
        rows = [c for c in pending if after is None or _change_key(c) > after][: page.size + 1]
        items = rows[: page.size]
        return pb.ListCardChangesResponse(
            changes=[cc.card_change_to_proto(c, zone) for c in items],
            next_page_token=next_token(page, rows, list(_change_key(items[-1]))
                                       if items else None))

    @rpc(*APPROVERS)
    def ApproveCardChange(self, request: pb.ApproveCardChangeRequest, context: Any,
                          principal: Principal) -> pb.CardChange:
        facility_id, resident_id, order_id, first = names.parse_card_change_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.CardChange:
            zone, approved = uc_changes.approve_change(
                uow, facility_id, resident_id, order_id, first, request.etag,
                principal.subject, now)
            return cc.card_change_to_proto(approved, zone)

        return run_idempotent(self._uow, principal, _SERVICE + "ApproveCardChange", request,
                              request.request_id, pb.CardChange, work, now)


def _facility_listing(request: pb.ListCardFindingsRequest | pb.ListCardChangesRequest,
                      principal: Principal) -> tuple[str, str | None, Page]:
    """A facility-wide list, optionally of one of its residents: the facility (in the
    caller's scope), the resident and the page asked for."""
    facility_id = names.parse_facility_name(request.parent, "parent")
    principal.require_facility(facility_id)
    resident_id = None
    if request.resident:
        f, resident_id = names.parse_resident_name(request.resident, "resident")
        if f != facility_id:
            raise InvalidArgument([FieldViolation("resident",
                                                  "names a resident of another facility")])
    page = read_page(request.page_size, request.page_token,
                     {"parent": request.parent, "resident": request.resident})
    return facility_id, resident_id, page


def _page_key(after: Any) -> tuple[str, str, str, int] | None:
    """The key a page token holds (INVALID_ARGUMENT for one it cannot hold)."""
    if after is None:
        return None
    if not (isinstance(after, list) and len(after) == 4
            and all(isinstance(x, str) for x in after[:3]) and isinstance(after[3], int)):
        raise InvalidArgument([FieldViolation("page_token", "is not a valid page token")])
    return after[0], after[1], after[2], after[3]


def _change_key(c: PendingChange) -> tuple[str, str, str, int]:
    """The list's order (oldest first) as a page token can hold it."""
    return (c.detected_at.isoformat(), c.resident_id, c.order_id, c.first_version)
