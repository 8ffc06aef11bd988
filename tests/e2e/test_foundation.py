"""The foundation over a real gRPC server, on SQLite and PostgreSQL: auth, permissions,
idempotent writes, field errors, paging, health and reflection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.server import SERVICE_NAMES
from medservice.v1 import facilities_pb2 as fpb
from tests.conftest import ServerFixture, token_for

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_REQ_1 = "adf4123d-bf8c-592d-9b3f-4934cd3a5184"
RID_REQ_2 = "35b35356-fbc7-58a2-8c54-62f6cf87e8bd"
RID_TWIN = "9f14f2e4-9d4f-50bd-b7fe-4f317d14f44a"

P = ParamSpec("P")


def _facility(name: str = "Solhaven", time_zone: str = "") -> fpb.Facility:
    return fpb.Facility(display_name=name, time_zone=time_zone)


def _resident(person_id: str = "010145-1234", name: str = "Test Person",
              room: str = "101") -> fpb.Resident:
    return fpb.Resident(person_id=person_id, display_name=name, room=room)


def _fails(code: grpc.StatusCode, fn: Callable[P, object], *args: P.args, **kw: P.kwargs
           ) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)
    assert info.value.code == code, str(info.value)
    return info.value


def test_health_serving_and_reflection_lists_all_seven_services(server: ServerFixture) -> None:
    channel = grpc.insecure_channel(server.target)
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == \
        health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")]))
    listed = {s.name for r in responses for s in r.list_services_response.service}
    assert set(SERVICE_NAMES) <= listed
    assert len([s for s in listed if s.startswith("medservice.v1.")]) == 7  # + ReportService
    channel.close()


def test_no_token_or_a_bad_one_is_unauthenticated(server: ServerFixture) -> None:
    err = _fails(grpc.StatusCode.UNAUTHENTICATED, lambda: list(server.anonymous()
                                                               .list_facilities()))
    assert err.reason == "MISSING_TOKEN"
    wrong_key = MedClient(server.target, "not-a-jwt")
    _fails(grpc.StatusCode.UNAUTHENTICATED, lambda: list(wrong_key.list_facilities()))
    expired = MedClient(server.target, token_for(Role.ADMIN, ttl=timedelta(hours=-1)))
    err = _fails(grpc.StatusCode.UNAUTHENTICATED, lambda: list(expired.list_facilities()))
    assert err.reason == "TOKEN_EXPIRED"
    # Authentication comes before anything else.
    _fails(grpc.StatusCode.UNAUTHENTICATED, server.anonymous().get_facility, "x")
    wrong_key.close()
    expired.close()


def test_carer_of_one_facility_is_denied_another(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility("A"), "a")
    admin.create_facility(_facility("B"), "b")
    admin.create_resident("b", _resident(), "r1")
    carer = server.client(Role.CARER, "a")
    assert carer.get_facility("a").display_name == "A"
    err = _fails(grpc.StatusCode.PERMISSION_DENIED, carer.get_facility, "b")
    assert err.reason == "FACILITY_NOT_ALLOWED"
    # Denied before existence: a facility that does not exist is not revealed either.
    _fails(grpc.StatusCode.PERMISSION_DENIED, carer.get_facility, "nope")
    _fails(grpc.StatusCode.PERMISSION_DENIED, carer.get_resident, "facilities/b/residents/r1")
    _fails(grpc.StatusCode.PERMISSION_DENIED, lambda: list(carer.list_residents("b")))
    assert [f.name for f in carer.list_facilities()] == ["facilities/a"]
    # Wrong role: a carer may not create or update.
    err = _fails(grpc.StatusCode.PERMISSION_DENIED, carer.create_resident, "a", _resident())
    assert err.reason == "ROLE_NOT_ALLOWED"
    # The admin of facility a only may not reach b.
    admin_a = server.client(Role.ADMIN, "a")
    _fails(grpc.StatusCode.PERMISSION_DENIED, admin_a.create_resident, "b",
           _resident("020202-2222"))
    assert admin.get_facility("a").display_name == "A"
    _fails(grpc.StatusCode.NOT_FOUND, admin.get_facility, "nope")


def test_retried_create_returns_the_first_result_and_creates_nothing(
        server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    first = admin.create_facility(_facility(), request_id=RID_REQ_1)
    again = admin.create_facility(_facility(), request_id=RID_REQ_1)
    assert again == first
    assert len(list(admin.list_facilities())) == 1
    r1 = admin.create_resident(first.name.split("/")[1], _resident(), request_id=RID_REQ_2)
    r2 = admin.create_resident(first.name.split("/")[1], _resident(), request_id=RID_REQ_2)
    assert r1 == r2
    assert len(list(admin.list_residents(first.name.split("/")[1]))) == 1
    # The same request_id for a different request is refused, not silently answered.
    err = _fails(grpc.StatusCode.FAILED_PRECONDITION, admin.create_facility,
                 _facility("Other"), request_id=RID_REQ_1)
    assert err.reason == "REQUEST_ID_REUSED"


def test_concurrent_twins_with_one_request_id_create_one_resource(
        server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    results: list[fpb.Facility] = []
    errors: list[Exception] = []

    def create() -> None:
        try:
            results.append(admin.create_facility(_facility(), request_id=RID_TWIN))
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({r.name for r in results}) == 1
    assert len(list(admin.list_facilities())) == 1


@pytest.mark.parametrize(("facility", "field"), [
    (fpb.Facility(display_name=""), "facility.display_name"),
    (fpb.Facility(display_name="x", time_zone="Mars/Olympus"), "facility.time_zone"),
    (fpb.Facility(display_name="x", medication_times=fpb.MedicationTimes(morning="8")),
     "facility.medication_times.morning"),
    (fpb.Facility(display_name="x", shifts=[
        fpb.Shift(shift_id="day", start_time="07:00", end_time="16:00"),
        fpb.Shift(shift_id="late", start_time="15:00", end_time="23:00")]),
     "facility.shifts"),
])
def test_bad_facility_fields_name_the_field_and_store_nothing(
        server: ServerFixture, facility: fpb.Facility, field: str) -> None:
    admin = server.client(Role.ADMIN)
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.create_facility, facility, "f1")
    assert field in [f for f, _ in err.violations]
    assert list(admin.list_facilities()) == []


def test_bad_facility_id_and_page_size(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.create_facility, _facility(),
                 "Bad_ID")
    assert [f for f, _ in err.violations] == ["facility_id"]
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT,
                 lambda: list(admin.list_facilities(page_size=-1)))
    assert [f for f, _ in err.violations] == ["page_size"]
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.call, admin.facilities.ListFacilities,
                 fpb.ListFacilitiesRequest(page_token="garbage!"))
    assert [f for f, _ in err.violations] == ["page_token"]


def test_invalid_person_identifier_is_refused_without_echoing_it(
        server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility(), "f")
    for bad in ("12345", "320145-1234", "010145-12345", "abcdef-1234"):
        err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.create_resident, "f",
                     _resident(person_id=bad))
        assert [f for f, _ in err.violations] == ["resident.person_id"]
        assert bad not in str(err)
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.create_resident, "f",
                 _resident(name=""))
    assert "resident.display_name" in [f for f, _ in err.violations]
    assert list(admin.list_residents("f")) == []


def test_person_identifier_is_unique_and_normalised(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility(), "f")
    r = admin.create_resident("f", _resident(person_id="010145-1234"))
    assert r.person_id == "0101451234"
    err = _fails(grpc.StatusCode.ALREADY_EXISTS, admin.create_resident, "f",
                 _resident(person_id="0101451234", name="Other"))
    assert err.reason == "PERSON_ID_EXISTS"


def test_rejected_update_loses_nothing(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    created = admin.create_facility(_facility("Before", time_zone="Europe/Oslo"), "f")
    bad = fpb.Facility(name="facilities/f", display_name="After", time_zone="Nowhere/City")
    _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.update_facility, bad,
           ["display_name", "time_zone"])
    assert admin.get_facility("f") == created
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.update_facility, bad, ["no_such"])
    assert err.violations[0][0] == "update_mask"


def test_update_replaces_only_masked_fields_and_guards_the_etag(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    created = admin.create_facility(_facility("Before", time_zone="Europe/Oslo"), "f")
    updated = admin.update_facility(fpb.Facility(name="facilities/f", display_name="After"),
                                    ["display_name"])
    assert updated.display_name == "After"
    assert updated.time_zone == "Europe/Oslo"
    assert updated.etag != created.etag
    stale = fpb.Facility(name="facilities/f", display_name="Stale", etag=created.etag)
    err = _fails(grpc.StatusCode.ABORTED, admin.update_facility, stale, ["display_name"])
    assert err.reason == "ETAG_MISMATCH"
    assert admin.get_facility("f").display_name == "After"


def test_defaults_of_a_new_facility(server: ServerFixture) -> None:
    f = server.client(Role.ADMIN).create_facility(_facility(), "f")
    assert f.time_zone == "Europe/Copenhagen"
    assert [(s.shift_id, s.start_time, s.end_time) for s in f.shifts] == [
        ("day", "07:00", "15:00"), ("evening", "15:00", "23:00"), ("night", "23:00", "07:00")]
    assert (f.medication_times.morning, f.medication_times.night) == ("08:00", "22:00")
    w = f.timing_windows
    assert (w.time_critical_minutes, w.more_than_daily_minutes, w.daily_or_less_minutes) == \
        (30, 60, 120)
    assert f.alert_escalation_minutes == 15


def test_residents_page_in_room_order(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility(), "f")
    rooms = ["305", "101", "204", "101", "110", "999", "001"]
    for i, room in enumerate(rooms):
        admin.create_resident("f", _resident(person_id=f"0101{45 + i:02d}-1234", room=room),
                              f"r{i}")
    seen, token, pages = [], "", 0
    while True:
        resp = admin.call(admin.facilities.ListResidents, fpb.ListResidentsRequest(
            parent="facilities/f", page_size=3, page_token=token))
        seen += [r.room for r in resp.residents]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert seen == sorted(rooms)
    assert pages == 3
    # A token is bound to its query.
    first = admin.call(admin.facilities.ListResidents, fpb.ListResidentsRequest(
        parent="facilities/f", page_size=3))
    admin.create_facility(_facility(), "g")
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.call, admin.facilities.ListResidents,
                 fpb.ListResidentsRequest(parent="facilities/g",
                                          page_token=first.next_page_token))
    assert err.violations[0][0] == "page_token"


def test_resident_update_cannot_touch_the_person_identifier(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility(), "f")
    r = admin.create_resident("f", _resident(), "r1")
    moved = admin.update_resident(fpb.Resident(name=r.name, room="202"), ["room"])
    assert (moved.room, moved.display_name, moved.person_id) == ("202", r.display_name,
                                                                 r.person_id)
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.update_resident,
                 fpb.Resident(name=r.name, person_id="020202-2222"), ["person_id"])
    assert err.violations[0][0] == "update_mask"


def test_logs_carry_no_person_identifier_or_name(server: ServerFixture,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(_facility(), "f")
    admin.create_resident("f", _resident(person_id="150362-4321", name="Hemmelig Navnesen"))
    _fails(grpc.StatusCode.INVALID_ARGUMENT, admin.create_resident, "f",
           _resident(person_id="999999-9999", name="Anden Hemmelig"))
    out, err = capfd.readouterr()
    for secret in ("1503624321", "150362-4321", "Hemmelig", "999999"):
        assert secret not in out + err
