"""FacilityService: thin methods over medservice.service.facilities."""

from __future__ import annotations

from typing import Any

from medservice.api import convert
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc, run_idempotent
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import PermissionDenied
from medservice.service import facilities as uc
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.v1 import facilities_pb2 as pb
from medservice.v1 import facilities_pb2_grpc

EVERY_ROLE = tuple(Role)
_SERVICE = "/medservice.v1.FacilityService/"


class FacilityServicer(facilities_pb2_grpc.FacilityServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    @rpc(Role.ADMIN)
    def CreateFacility(self, request: pb.CreateFacilityRequest, context: Any,
                       principal: Principal) -> pb.Facility:
        if request.facility_id:
            principal.require_facility(request.facility_id)
        elif not principal.all_facilities:
            raise PermissionDenied("only a token for every facility may create one without "
                                   "naming its id", reason="FACILITY_NOT_ALLOWED")
        facility = convert.facility_from_proto(request.facility, request.facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Facility:
            return convert.facility_to_proto(uc.create_facility(uow, facility, now))

        return run_idempotent(self._uow, principal, _SERVICE + "CreateFacility", request,
                              request.request_id, pb.Facility, work, now)

    @rpc(*EVERY_ROLE)
    def GetFacility(self, request: pb.GetFacilityRequest, context: Any,
                    principal: Principal) -> pb.Facility:
        facility_id = names.parse_facility_name(request.name)
        principal.require_facility(facility_id)
        with self._uow(write=False) as uow:
            return convert.facility_to_proto(uc.get_facility(uow, facility_id))

    @rpc(*EVERY_ROLE)
    def ListFacilities(self, request: pb.ListFacilitiesRequest, context: Any,
                       principal: Principal) -> pb.ListFacilitiesResponse:
        page = read_page(request.page_size, request.page_token)
        with self._uow(write=False) as uow:
            items, token = uc.list_facilities(uow, page, principal.visible_facilities())
        return pb.ListFacilitiesResponse(
            facilities=[convert.facility_to_proto(f) for f in items], next_page_token=token)

    @rpc(Role.ADMIN)
    def UpdateFacility(self, request: pb.UpdateFacilityRequest, context: Any,
                       principal: Principal) -> pb.Facility:
        facility_id = names.parse_facility_name(request.facility.name, "facility.name")
        principal.require_facility(facility_id)
        patch = convert.masked_patch(convert.facility_fields(request.facility),
                                     request.update_mask)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Facility:
            return convert.facility_to_proto(
                uc.update_facility(uow, facility_id, patch, request.facility.etag, now))

        return run_idempotent(self._uow, principal, _SERVICE + "UpdateFacility", request,
                              request.request_id, pb.Facility, work, now)

    @rpc(Role.ADMIN)
    def CreateResident(self, request: pb.CreateResidentRequest, context: Any,
                       principal: Principal) -> pb.Resident:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        resident = convert.resident_from_proto(request.resident, facility_id,
                                               request.resident_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Resident:
            return convert.resident_to_proto(uc.create_resident(uow, resident, now))

        return run_idempotent(self._uow, principal, _SERVICE + "CreateResident", request,
                              request.request_id, pb.Resident, work, now)

    @rpc(*EVERY_ROLE)
    def GetResident(self, request: pb.GetResidentRequest, context: Any,
                    principal: Principal) -> pb.Resident:
        facility_id, resident_id = names.parse_resident_name(request.name)
        principal.require_facility(facility_id)
        with self._uow(write=False) as uow:
            return convert.resident_to_proto(uc.get_resident(uow, facility_id, resident_id))

    @rpc(*EVERY_ROLE)
    def ListResidents(self, request: pb.ListResidentsRequest, context: Any,
                      principal: Principal) -> pb.ListResidentsResponse:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        page = read_page(request.page_size, request.page_token, {"parent": request.parent})
        with self._uow(write=False) as uow:
            items, token = uc.list_residents(uow, facility_id, page)
        return pb.ListResidentsResponse(
            residents=[convert.resident_to_proto(r) for r in items], next_page_token=token)

    @rpc(Role.ADMIN)
    def UpdateResident(self, request: pb.UpdateResidentRequest, context: Any,
                       principal: Principal) -> pb.Resident:
        facility_id, resident_id = names.parse_resident_name(request.resident.name,
                                                             "resident.name")
        principal.require_facility(facility_id)
        patch = convert.masked_patch(convert.resident_fields(request.resident),
                                     request.update_mask)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Resident:
            return convert.resident_to_proto(uc.update_resident(
                uow, facility_id, resident_id, patch, request.resident.etag, now))

        return run_idempotent(self._uow, principal, _SERVICE + "UpdateResident", request,
                              request.request_id, pb.Resident, work, now)
