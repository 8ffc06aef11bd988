"""Servicer-level tests with grpcio-testing: the servicers without a network, on both
stores. They check what the transport layer owes callers: status codes and messages that
name the field, permission before existence, and no stack trace on an unexpected failure.
(grpcio-testing drops trailing metadata on abort, so the google.rpc.Status details are
asserted in the end-to-end tests instead.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import grpc_testing

from medservice.alerts.feed import AlertFeed
from medservice.api.alerts import AlertServicer
from medservice.api.facilities import FacilityServicer
from medservice.domain.access import Principal, Role
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.v1 import alerts_pb2, facilities_pb2

SERVICE = facilities_pb2.DESCRIPTOR.services_by_name["FacilityService"]
ALERTS = alerts_pb2.DESCRIPTOR.services_by_name["AlertService"]
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _server(uow: UnitOfWorkFactory, principal: Principal) -> Any:
    servicer = FacilityServicer(uow, lambda: NOW, authenticate=lambda _ctx: principal)
    return grpc_testing.server_from_dictionary({SERVICE: servicer},
                                               grpc_testing.strict_real_time())


def _call(server: Any, method: str, request: Any) -> tuple[Any, Any, grpc.StatusCode, str]:
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], (), request, None)
    response, trailing, code, details = rpc.termination()
    return response, trailing, code, details


ADMIN = Principal("admin-1", Role.ADMIN, frozenset({"*"}))


def test_field_violations_name_the_field(uow: UnitOfWorkFactory) -> None:
    server = _server(uow, ADMIN)
    request = facilities_pb2.CreateFacilityRequest(
        facility=facilities_pb2.Facility(display_name="", time_zone="Nowhere/Town"))
    _, _, code, details = _call(server, "CreateFacility", request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "facility.display_name: is required" in details
    assert "facility.time_zone: is not a known IANA time zone" in details
    assert "Traceback" not in details


def test_permission_is_decided_before_existence(uow: UnitOfWorkFactory) -> None:
    carer = Principal("carer-1", Role.CARER, frozenset({"a"}))
    _, _, code, details = _call(_server(uow, carer), "GetFacility",
                                facilities_pb2.GetFacilityRequest(name="facilities/b"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "does not grant access to this facility" in details
    _, _, code, _ = _call(_server(uow, ADMIN), "GetFacility",
                          facilities_pb2.GetFacilityRequest(name="facilities/b"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_an_unexpected_failure_is_internal_without_a_trace() -> None:
    def broken(*, write: bool = True) -> Any:
        raise RuntimeError("database password is hunter2 in /etc/secret")

    _, _, code, details = _call(_server(broken, ADMIN), "ListFacilities",
                                facilities_pb2.ListFacilitiesRequest())
    assert code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in details and "Traceback" not in details


def _alert_server(uow: UnitOfWorkFactory, principal: Principal) -> Any:
    servicer = AlertServicer(uow, lambda: NOW, AlertFeed(uow),
                             authenticate=lambda _ctx: principal)
    return grpc_testing.server_from_dictionary({ALERTS: servicer},
                                               grpc_testing.strict_real_time())


def test_alert_calls_name_the_bad_field_and_check_the_role(uow: UnitOfWorkFactory) -> None:
    lead = Principal("lead-1", Role.SHIFT_LEAD, frozenset({"a"}))
    rpc = _alert_server(uow, lead).invoke_unary_unary(
        ALERTS.methods_by_name["AcknowledgeAlert"], (),
        alerts_pb2.AcknowledgeAlertRequest(name="facilities/a/oops"), None)
    _, _, code, details = rpc.termination()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("name:")
    carer = Principal("carer-1", Role.CARER, frozenset({"a"}))
    rpc = _alert_server(uow, carer).invoke_unary_unary(
        ALERTS.methods_by_name["ListAlerts"], (),
        alerts_pb2.ListAlertsRequest(parent="facilities/a"), None)
    assert rpc.termination()[2] == grpc.StatusCode.PERMISSION_DENIED
