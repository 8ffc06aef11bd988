"""The audit trail over gRPC, on SQLite and PostgreSQL (issue 5): every authenticated call
leaves one event; the trail is append-only in the database; listing is paged, filtered and
for pharmacists and administrators of their facilities only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import DBAPIError

from clients.client import MedClient, MedServiceError
from medservice.api.auth import TokenVerifier
from medservice.api.errors import simple_status
from medservice.api.rpc import abort
from medservice.domain.access import Role
from medservice.server import build_server
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.settings import Settings
from medservice.store import tables
from medservice.store.uow import SqlUnitOfWork
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import audit_pb2 as pb
from medservice.v1 import audit_pb2_grpc, common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, K, dose, order, structured, ts
from tests.conftest import ServerFixture, TestClock, token_for

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_SYNC_1 = "7fbcd5c5-aaa4-5408-b323-3d20bc3ef34d"
RID_DOSE_1 = "f578e1cf-ac0e-53fc-90d2-1dc5a1aee823"
RID_CREATE_R4 = "d31288a5-a341-55b2-976f-dd0913106ead"

R1 = "facilities/a/residents/r1"
R2 = "facilities/b/residents/r2"
PERSON_1, PERSON_2 = "010145-1111", "020245-2222"
SECRETS = ("0101451111", "010145-1111", "0202452222", "020245-2222", "Hemmelig")
GET_RESIDENT = "/medservice.v1.FacilityService/GetResident"
CREATE_RESIDENT = "/medservice.v1.FacilityService/CreateResident"


@pytest.fixture
def home(server: ServerFixture) -> MedClient:
    """Facilities a (resident r1, with a PN order on its card) and b (resident r2). Returns
    an administrator of every facility."""
    admin = server.client(Role.ADMIN, subject="admin-1")
    for f in ("a", "b"):
        admin.create_facility(fpb.Facility(display_name=f"Home {f}"), f)
    admin.create_resident("a", fpb.Resident(person_id=PERSON_1, display_name="Hemmelig A",
                                            room="1"), "r1")
    admin.create_resident("b", fpb.Resident(person_id=PERSON_2, display_name="Hemmelig B",
                                            room="2"), "r2")
    integration = server.client(Role.INTEGRATION, "a", subject="fmk-sync")
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=1, orders=[
            order(R1, "pn", "Morfin", structured(
                [dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)] * 2),
                mode=common_pb2.DISPENSING_MODE_STAFF_POURED)]),
        valid_time=ts(CARD_VALID_FROM), request_id=RID_SYNC_1))
    return admin


def _events(c: MedClient, parent: str = "facilities/-", **kw: Any) -> list[pb.AuditEvent]:
    return list(c.audit_events(parent, **kw))


def _fails(code: grpc.StatusCode, fn: Any, *args: Any, **kw: Any) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)
    assert info.value.code == code, info.value
    return info.value


def _rows(uow: UnitOfWorkFactory) -> list[dict[str, Any]]:
    with uow(write=False) as u:
        return [dict(r._mapping) for r in sql(u).conn.execute(select(tables.audit_events))]


def test_a_read_of_a_residents_card_leaves_one_event(server: ServerFixture, home: MedClient,
                                                     server_clock: TestClock) -> None:
    carer = server.client(Role.CARER, "a", subject="nurse-1")
    before = server_clock()
    carer.get_card(R1)
    events = _events(home, method="GetMedicineCard")
    assert len(events) == 1
    e = events[0]
    assert (e.subject, e.role, e.method, e.resource, e.resident, e.outcome) == (
        "nurse-1", common_pb2.ROLE_CARER, "/medservice.v1.MedicineCardService/GetMedicineCard",
        f"{R1}/medicineCard", R1, "OK")
    assert e.name.startswith("facilities/a/auditEvents/")
    assert before - timedelta(seconds=1) <= e.event_time.ToDatetime(tzinfo=UTC) <= \
        server_clock() + timedelta(seconds=1)


def test_a_write_leaves_one_event_with_its_request_id(server: ServerFixture,
                                                      home: MedClient) -> None:
    carer = server.client(Role.CARER, "a", subject="nurse-1")
    record = rpb.AdministrationRecord(
        order=f"{R1}/orders/pn", outcome=rpb.ADMINISTRATION_OUTCOME_PN_GIVEN, quantity="5",
        route="oral", pn_reason="pain", administration_time=ts(datetime.now(UTC)))
    done = carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, record=record, request_id=RID_DOSE_1))
    assert done.record.name.startswith(f"{R1}/administrations/")
    events = _events(home, method="RecordDose")
    assert [(e.subject, e.role, e.resident, e.request_id, e.outcome) for e in events] == [
        ("nurse-1", common_pb2.ROLE_CARER, R1, RID_DOSE_1, "OK")]
    # The fixture's writes: one event each, outcome OK.
    assert [(e.resident, e.request_id) for e in _events(home, method="SyncMedicineCard")] == [
        (R1, RID_SYNC_1)]
    created = _events(home, method=CREATE_RESIDENT)
    assert sorted(e.resident for e in created) == [R1, R2]


def test_a_resident_created_with_a_generated_id_is_named(server: ServerFixture,
                                                        home: MedClient) -> None:
    made = home.create_resident("a", fpb.Resident(person_id="030345-3333",
                                                   display_name="Hemmelig C", room="3"))
    (event,) = [e for e in _events(home, "facilities/a", method=CREATE_RESIDENT)
                if e.resident not in (R1,)]
    assert (event.resource, event.resident, event.outcome) == (made.name, made.name, "OK")


def test_an_idempotent_retry_leaves_its_own_event(server: ServerFixture,
                                                  home: MedClient) -> None:
    resident = fpb.Resident(person_id="040445-4444", display_name="Hemmelig D", room="4")
    first = home.create_resident("a", resident, "r4", request_id=RID_CREATE_R4)
    assert home.create_resident("a", resident, "r4", request_id=RID_CREATE_R4) == first
    events = _events(home, resident="facilities/a/residents/r4")
    assert [(e.method, e.request_id, e.outcome) for e in events] == [
        (CREATE_RESIDENT, RID_CREATE_R4, "OK")] * 2
    assert len({e.name for e in events}) == 2


def test_a_retried_create_with_a_chosen_id_names_the_created_resource(
        server: ServerFixture) -> None:
    """The retry's work runs again (and rolls back) and chooses a new id; its event must
    still name the facility that was created, never one that does not exist."""
    admin = server.client(Role.ADMIN)
    request_id = "3b2f6c1e-7d4a-4e8b-9c51-0a6d2e9f4b17"
    first = admin.create_facility(fpb.Facility(display_name="Chosen id"), request_id=request_id)
    again = admin.create_facility(fpb.Facility(display_name="Chosen id"), request_id=request_id)
    assert again.name == first.name
    events = [e for e in _events(admin, method="CreateFacility") if e.request_id == request_id]
    assert [e.resource for e in events] == [first.name, first.name]


def test_a_denied_call_leaves_an_event_with_its_code(server: ServerFixture,
                                                     home: MedClient) -> None:
    carer = server.client(Role.CARER, "a", subject="nurse-1")
    _fails(grpc.StatusCode.PERMISSION_DENIED, carer.get_resident, R2)
    _fails(grpc.StatusCode.NOT_FOUND, carer.get_resident, "facilities/a/residents/nobody")
    _fails(grpc.StatusCode.PERMISSION_DENIED, carer.create_resident, "a",
           fpb.Resident(person_id="050545-5555", display_name="X", room="5"), "r5")
    # The attempt on facility b's resident is on b's trail.
    pharmacist_b = server.client(Role.PHARMACIST, "b")
    assert [(e.subject, e.method, e.resident, e.outcome)
            for e in _events(pharmacist_b, "facilities/b", subject="nurse-1")] == [
        ("nurse-1", GET_RESIDENT, R2, "PERMISSION_DENIED")]
    outcomes = {(e.method, e.resource, e.outcome)
                for e in _events(home, "facilities/a", subject="nurse-1")}
    assert outcomes == {(GET_RESIDENT, "facilities/a/residents/nobody", "NOT_FOUND"),
                        (CREATE_RESIDENT, "facilities/a/residents/r5", "PERMISSION_DENIED")}


def test_unauthenticated_calls_leave_no_event(server: ServerFixture, home: MedClient) -> None:
    before = len(_rows(server.uow))
    _fails(grpc.StatusCode.UNAUTHENTICATED, server.anonymous().get_resident, R1)
    assert len(_rows(server.uow)) == before


def test_calls_naming_no_facility_are_for_every_facility_tokens_only(
        server: ServerFixture, home: MedClient) -> None:
    list(home.list_facilities())
    (event,) = _events(home, method="ListFacilities")
    assert event.name.startswith("facilities/-/auditEvents/") and event.resource == ""
    admin_a = server.client(Role.ADMIN, "a")
    assert _events(admin_a, method="ListFacilities") == []


def test_listing_filters_and_pages_newest_first(server: ServerFixture, home: MedClient,
                                                server_clock: TestClock) -> None:
    carer = server.client(Role.CARER, "a", subject="nurse-1")
    start = server_clock()
    for _ in range(5):
        server_clock.advance(timedelta(seconds=1))
        carer.get_resident(R1)
    pharmacist = server.client(Role.PHARMACIST, "a", subject="pharm-1")
    everything = _events(pharmacist, "facilities/a", subject="nurse-1")
    assert len(everything) == 5
    times = [e.event_time.ToDatetime() for e in everything]
    assert times == sorted(times, reverse=True)
    stub = audit_pb2_grpc.AuditServiceStub(pharmacist.channel)
    request = pb.ListAuditEventsRequest(parent="facilities/a", subject="nurse-1", page_size=2)
    pages: list[list[str]] = []
    tokens: list[str] = []
    while True:
        resp = pharmacist.call(stub.ListAuditEvents, request)
        pages.append([e.name for e in resp.events])
        if not resp.next_page_token:
            break
        request.page_token = resp.next_page_token
        tokens.append(resp.next_page_token)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in p] == [e.name for e in everything]
    # A token is bound to its query.
    request.page_token, request.subject = tokens[0], "someone-else"
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, pharmacist.call, stub.ListAuditEvents,
                 request)
    assert err.violations[0][0] == "page_token"
    # Filters: method (full or short), resident, time.
    assert len(_events(pharmacist, "facilities/a", method=GET_RESIDENT)) == 5
    assert len(_events(pharmacist, "facilities/a", method="FacilityService/GetResident")) == 5
    assert _events(pharmacist, "facilities/a", method="GetResiden") == []
    assert {e.resident for e in _events(pharmacist, "facilities/a", resident=R1)} == {R1}
    since = _events(pharmacist, "facilities/a", subject="nurse-1",
                    since=start + timedelta(seconds=3, milliseconds=500))
    assert [e.name for e in since] == [e.name for e in everything[:2]]
    with_end = pharmacist.call(stub.ListAuditEvents, pb.ListAuditEventsRequest(
        parent="facilities/a", subject="nurse-1", start_time=ts(start),
        end_time=ts(start + timedelta(seconds=2, milliseconds=500))))
    assert [e.name for e in with_end.events] == [e.name for e in everything[3:]]


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"parent": "nonsense"}, "parent"),
    ({"parent": ""}, "parent"),
    ({"parent": "facilities/a", "resident": "r1"}, "resident"),
    ({"parent": "facilities/a", "resident": R2}, "resident"),
    ({"parent": "facilities/a", "method": "Get Resident"}, "method"),
    ({"parent": "facilities/a", "page_size": -1}, "page_size"),
    ({"parent": "facilities/a", "page_token": "garbage"}, "page_token"),
    ({"parent": "facilities/a", "start_time": ts(datetime(2026, 2, 1, tzinfo=UTC)),
      "end_time": ts(datetime(2026, 1, 1, tzinfo=UTC))}, "end_time"),
])
def test_bad_input_names_the_field(home: MedClient, request_fields: dict[str, Any],
                                   field: str) -> None:
    stub = audit_pb2_grpc.AuditServiceStub(home.channel)
    err = _fails(grpc.StatusCode.INVALID_ARGUMENT, home.call, stub.ListAuditEvents,
                 pb.ListAuditEventsRequest(**request_fields))
    assert [v[0] for v in err.violations] == [field]


@pytest.mark.parametrize("role", [Role.CARER, Role.SHIFT_LEAD, Role.INTEGRATION])
def test_only_pharmacists_and_administrators_list(server: ServerFixture, home: MedClient,
                                                  role: Role) -> None:
    c = server.client(role, "a")
    err = _fails(grpc.StatusCode.PERMISSION_DENIED, _events, c, "facilities/a")
    assert err.reason == "ROLE_NOT_ALLOWED"


def test_a_pharmacist_sees_only_the_facilities_of_the_token(server: ServerFixture,
                                                            home: MedClient) -> None:
    server.client(Role.CARER, "b").get_resident(R2)
    pharmacist_a = server.client(Role.PHARMACIST, "a")
    err = _fails(grpc.StatusCode.PERMISSION_DENIED, _events, pharmacist_a, "facilities/b")
    assert err.reason == "FACILITY_NOT_ALLOWED"
    _fails(grpc.StatusCode.PERMISSION_DENIED, _events, pharmacist_a, resident=R2)
    # Permission before existence: an unknown facility of another token is denied, not
    # missing; one's own unknown facility is missing.
    _fails(grpc.StatusCode.PERMISSION_DENIED, _events, pharmacist_a, "facilities/zz")
    _fails(grpc.StatusCode.NOT_FOUND, _events, server.client(Role.PHARMACIST, "zz"),
           "facilities/zz")
    names = {e.name.split("/auditEvents/")[0] for e in _events(pharmacist_a)}
    assert names == {"facilities/a"}
    assert {e.name.split("/auditEvents/")[0] for e in _events(home)} >= {
        "facilities/a", "facilities/b", "facilities/-"}


def test_the_database_refuses_to_change_or_remove_events(server: ServerFixture,
                                                         home: MedClient,
                                                         engine: Engine) -> None:
    before = _rows(server.uow)
    assert before
    table = tables.audit_events
    for statement in (update(table).values(outcome="OK", subject="someone-else"),
                      delete(table),
                      delete(table).where(table.c.event_id == before[0]["event_id"])):
        with pytest.raises(DBAPIError) as info, engine.begin() as conn:
            conn.execute(statement)
        assert "append-only" in str(info.value)
    assert _rows(server.uow) == before


def test_no_person_identifier_or_name_is_ever_stored(server: ServerFixture,
                                                     home: MedClient) -> None:
    carer = server.client(Role.CARER, "a")
    _fails(grpc.StatusCode.INVALID_ARGUMENT, carer.get_resident, PERSON_1)
    _fails(grpc.StatusCode.NOT_FOUND, carer.get_resident,
           f"facilities/a/residents/{PERSON_1.replace('-', '')}")
    _fails(grpc.StatusCode.INVALID_ARGUMENT, home.create_resident, "a",
           fpb.Resident(person_id="999999-9999", display_name="Hemmelig E", room="6"),
           request_id=PERSON_2)
    home.update_resident(fpb.Resident(name=R1, room="7"), ["room"])
    rows = _rows(server.uow)
    assert len(rows) > 8
    dumped = repr(rows)
    for secret in (*SECRETS, "999999"):
        assert secret not in dumped


def test_a_write_is_not_done_when_its_event_cannot_be_written(
        server: ServerFixture, home: MedClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write and its event commit together; a read's data does not go out without its
    event. The client sees INTERNAL without a trace; the log has the rest."""
    from medservice.store.audit import AuditAppender, AuditLog

    def refuse(self: object, events: object) -> None:
        raise RuntimeError("the audit store is down")

    # Both ways an event is written: with the call's work, and on its own (reads).
    monkeypatch.setattr(AuditLog, "add_all", refuse)
    monkeypatch.setattr(AuditAppender, "_append", refuse)
    for call in (lambda: home.create_resident(
            "a", fpb.Resident(person_id="060645-6666", display_name="Y", room="8"), "r8"),
                 lambda: home.get_resident(R1)):
        err = _fails(grpc.StatusCode.INTERNAL, call)
        assert "Traceback" not in err.message and "audit store" not in err.message
    monkeypatch.undo()
    _fails(grpc.StatusCode.NOT_FOUND, home.get_resident, "facilities/a/residents/r8")


# Streams: a test service under medservice.v1 on the same stack as the real ones.

_STREAM_SERVICE = "medservice.v1.AuditStreamTest"


_released, _finished = threading.Event(), threading.Event()


def _stream_behavior(request: apb.WatchAlertsRequest, context: Any
                     ) -> Iterator[apb.WatchAlertsResponse]:
    """resume_token: how many messages to send, negative: OUT_OF_RANGE; an audience: then
    hold the stream open until released (a watcher that goes away meanwhile)."""
    count = int(request.resume_token or "0")
    if count < 0:
        abort(context, simple_status(code_pb2.OUT_OF_RANGE, "TOO_OLD", "too old"))
    try:
        for i in range(count):
            yield apb.WatchAlertsResponse(resume_token=str(i))
        if request.audience:
            _released.wait(10)
            yield apb.WatchAlertsResponse(resume_token="late")
    finally:
        if request.audience:
            _finished.set()


@pytest.fixture
def stream_target(engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
                  server_settings: Settings, server_clock: TestClock) -> Iterator[str]:
    handler = grpc.method_handlers_generic_handler(_STREAM_SERVICE, {
        "Watch": grpc.unary_stream_rpc_method_handler(
            _stream_behavior, request_deserializer=apb.WatchAlertsRequest.FromString,
            response_serializer=apb.WatchAlertsResponse.SerializeToString),
        # Not a generator: refuses before there is a stream to iterate.
        "Refuse": grpc.unary_stream_rpc_method_handler(
            lambda request, context: abort(context, simple_status(
                code_pb2.PERMISSION_DENIED, "ROLE_NOT_ALLOWED", "no")),
            request_deserializer=apb.WatchAlertsRequest.FromString,
            response_serializer=apb.WatchAlertsResponse.SerializeToString)})
    running = build_server(replace(server_settings, database_url=str(engine.url)), uow,
                           verifier, server_clock, extra_handlers=[handler], engine=engine)
    yield f"127.0.0.1:{running.port}"
    running.stop(0)


def test_a_stream_leaves_one_event(stream_target: str, uow: UnitOfWorkFactory) -> None:
    _released.clear()
    _finished.clear()
    channel = grpc.insecure_channel(stream_target)
    watch = channel.unary_stream(f"/{_STREAM_SERVICE}/Watch",
                                 request_serializer=apb.WatchAlertsRequest.SerializeToString,
                                 response_deserializer=apb.WatchAlertsResponse.FromString)
    md = (("authorization", f"Bearer {token_for(Role.SHIFT_LEAD, 'a', subject='lead-1')}"),)
    parent = "facilities/a"
    assert len(list(watch(apb.WatchAlertsRequest(parent=parent, resume_token="3"),
                          metadata=md, timeout=10))) == 3
    with pytest.raises(grpc.RpcError) as info:
        list(watch(apb.WatchAlertsRequest(parent=parent, resume_token="-1"), metadata=md,
                   timeout=10))
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert list(watch(apb.WatchAlertsRequest(parent=parent), metadata=md, timeout=10)) == []
    refuse = channel.unary_stream(f"/{_STREAM_SERVICE}/Refuse",
                                  request_serializer=apb.WatchAlertsRequest.SerializeToString,
                                  response_deserializer=apb.WatchAlertsResponse.FromString)
    with pytest.raises(grpc.RpcError) as info:
        list(refuse(apb.WatchAlertsRequest(parent=parent), metadata=md, timeout=10))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A watcher that reads one message and goes away.
    live = watch(apb.WatchAlertsRequest(parent=parent, resume_token="1",
                                        audience=common_pb2.ROLE_SHIFT_LEAD), metadata=md,
                 timeout=10)
    next(live)
    live.cancel()
    _released.set()
    assert _finished.wait(10)
    channel.close()
    # One event per stream: at its first message, or at its end when it sent nothing; the
    # watcher that went away after its first message has no second (CANCELLED) one.
    rows = sorted(_rows(uow), key=lambda r: r["event_time"])
    assert [(r["subject"], r["method"], r["resource"], r["outcome"]) for r in rows] == [
        ("lead-1", f"/{_STREAM_SERVICE}/{m}", parent, outcome)
        for m, outcome in (("Watch", "OK"), ("Watch", "OUT_OF_RANGE"), ("Watch", "OK"),
                           ("Refuse", "PERMISSION_DENIED"), ("Watch", "OK"))]



def test_medctl_audit_list(server: ServerFixture, home: MedClient,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    server.client(Role.CARER, "a", subject="nurse-1").get_resident(R1)
    base = ["--target", server.target, "--token", token_for(Role.PHARMACIST, "a")]
    assert main([*base, "audit", "list", "--facility", "a", "--resident", "r1",
                 "--method", "GetResident"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TIDSPUNKT", "BRUGER", "ROLLE", "METODE", "RESSOURCE",
                                "REQUEST-ID", "UDFALD"]
    assert len(lines) == 2
    # One facility: its clock, with the zone.
    assert lines[1].split()[2] in ("CET", "CEST")
    assert lines[1].split()[3:] == ["nurse-1", "plejer", "FacilityService/GetResident", R1,
                                    "-", "OK"]
    assert main([*base, "--json", "audit", "list", "--limit", "3", "--since",
                 "2000-01-01"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main([*base, "audit", "list", "--facility", "b"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def sql(u: UnitOfWork) -> SqlUnitOfWork:
    """The SQL unit of work behind the fixture, for a test that reads a table directly."""
    assert isinstance(u, SqlUnitOfWork)
    return u
