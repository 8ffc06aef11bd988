"""The edge of the service over a real server, on SQLite and PostgreSQL (issue 13): the
caller is known before the body is decoded, per-caller rates, per-method sizes, and what a
caller puts in request_id never reaching the log.

Decided: a body larger than its method accepts is RESOURCE_EXHAUSTED (REQUEST_TOO_LARGE),
the code gRPC itself gives a message over the server's maximum, so a caller sees one code
for "too large" wherever it is caught. A request_id that is not a UUID is INVALID_ARGUMENT
naming request_id, and is never logged.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.client import MedServiceError
from medservice.domain.access import Role
from medservice.logs import configure_logging
from medservice.settings import Settings
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as mpb
from medservice.v1 import rounds_pb2 as rpb
from tests.conftest import TEST_SETTINGS, ServerFixture, token_for

CHECK_DOSE = "/medservice.v1.RoundService/CheckDose"
IMPORT_FMK = "/medservice.v1.MedicineCardService/ImportFmkMessage"
# Not a protobuf message: field 31 with wire type 7, which does not exist.
GARBAGE = b"\xff\xff\xff\xff\xff"
CPR = "010145-1234"
DOCUMENT_LIMIT = 200_000


@pytest.fixture
def server_settings() -> Settings:
    # A small document limit, so that "over the server's maximum" needs no 10 MB body.
    return replace(TEST_SETTINGS, max_document_request_bytes=DOCUMENT_LIMIT)


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the server logs during the test, as JSON lines."""
    captured = io.StringIO()
    saved = sys.stderr
    sys.stderr = captured
    try:
        configure_logging("json", "info")  # binds the stream it finds now
    finally:
        sys.stderr = saved
    yield captured
    configure_logging("console", "info")


def _records(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]


def _raw(server: ServerFixture, method: str, token: str | None = None) -> Any:
    channel = grpc.insecure_channel(server.target)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    call = channel.unary_unary(method)

    def send(body: bytes) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            call(body, metadata=metadata, timeout=10)
        return info.value

    return send


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def _retry_delay(error: grpc.RpcError) -> float | None:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            return retry.retry_delay.ToTimedelta().total_seconds()
    return None


def test_garbage_is_refused_by_who_sent_it_without_a_traceback(
        server: ServerFixture, log_text: io.StringIO) -> None:
    anonymous = _raw(server, CHECK_DOSE)
    for _ in range(50):  # a small flood
        error = anonymous(GARBAGE)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _reason(error) == "MISSING_TOKEN"
    bad_token = _raw(server, CHECK_DOSE, "not-a-jwt")(GARBAGE)
    assert bad_token.code() == grpc.StatusCode.UNAUTHENTICATED
    carer = _raw(server, CHECK_DOSE, token_for(Role.CARER, "f"))
    error = carer(GARBAGE)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(error) == "MALFORMED_REQUEST"
    assert "Exception" not in (error.details() or "")

    text = log_text.getvalue()
    assert "Traceback" not in text and "Exception deserializing" not in text
    records = _records(log_text)
    assert records, "the refusals are logged"
    assert not [r for r in records if r.get("level") in ("error", "critical")]
    refused = [r for r in records if r.get("event") == "call refused"]
    # One line per kind, however many calls: the flood of 50 is one line.
    assert sorted(r["reason"] for r in refused) == [
        "INVALID_TOKEN", "MALFORMED_REQUEST", "MISSING_TOKEN"]
    assert all(r["level"] == "warning" for r in refused)


def test_an_authenticated_malformed_call_leaves_its_audit_event(
        server: ServerFixture) -> None:
    _raw(server, CHECK_DOSE, token_for(Role.CARER, "f", subject="carer-x"))(GARBAGE)
    admin = server.client(Role.ADMIN)
    events = list(admin.audit_events("facilities/-", subject="carer-x"))
    assert [(e.method, e.outcome) for e in events] == [
        ("/medservice.v1.RoundService/CheckDose", "INVALID_ARGUMENT")]


@pytest.mark.parametrize("server_settings", [
    replace(TEST_SETTINGS, rate_limit_per_second=0.5, rate_limit_burst=5)])
def test_a_flooding_caller_is_limited_and_others_are_still_served(
        server: ServerFixture) -> None:
    flooder = server.client(Role.ADMIN, subject="flooder")
    for _ in range(5):  # the burst
        list(flooder.list_facilities())
    with pytest.raises(MedServiceError) as info:
        list(flooder.list_facilities())
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.reason == "RATE_LIMITED"
    # RetryInfo says when: one call's worth of refill at 0.5 per second is up to 2 s.
    raw = _raw(server, "/medservice.v1.FacilityService/ListFacilities",
               token_for(Role.ADMIN, subject="flooder"))(b"")
    assert raw.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    delay = _retry_delay(raw)
    assert delay is not None and 0 < delay <= 2.0
    # Another subject has its own bucket, even with the same role.
    other = server.client(Role.ADMIN, subject="someone-else")
    for _ in range(5):
        list(other.list_facilities())
    # Without a token nothing is taken from anyone's bucket: UNAUTHENTICATED, not limited.
    assert _raw(server, "/medservice.v1.FacilityService/ListFacilities")(b"").code() == \
        grpc.StatusCode.UNAUTHENTICATED


def test_the_default_rate_never_hinders_a_round(server: ServerFixture) -> None:
    """Settings() defaults: a burst of 200 calls from one carer all answer."""
    assert (Settings().rate_limit_per_second, Settings().rate_limit_burst) == (50.0, 200.0)
    carer = server.client(Role.CARER, "f")
    for _ in range(150):
        with pytest.raises(MedServiceError) as info:
            carer.get_resident("facilities/f/residents/r1")
        assert info.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


def test_request_sizes_are_per_method(server: ServerFixture, log_text: io.StringIO) -> None:
    token = token_for(Role.INTEGRATION, "f")
    # A small method: a CheckDose of 100 KB is refused before it is decoded.
    big_check = rpb.CheckDoseRequest(resident="facilities/f/residents/r1",
                                     dose_id="d" * 100_000).SerializeToString()
    error = _raw(server, CHECK_DOSE, token)(big_check)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _reason(error) == "REQUEST_TOO_LARGE"
    assert _retry_delay(error) is None  # retrying the same body will not help
    # A document method takes the same 100 KB: it reaches the importer, which answers.
    client = server.client(Role.INTEGRATION, "f")
    with pytest.raises(MedServiceError) as info:
        client.import_fmk("facilities/f/residents/r1", b"<x>" + b" " * 100_000 + b"</x>")
    assert info.value.code != grpc.StatusCode.RESOURCE_EXHAUSTED
    # Over the server's maximum (the largest method limit) gRPC itself refuses, likewise.
    huge = mpb.ImportFmkMessageRequest(parent="facilities/f/residents/r1/medicineCard",
                                       content=b" " * (DOCUMENT_LIMIT + 1)).SerializeToString()
    assert _raw(server, IMPORT_FMK, token)(huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Without a token the body is not even received: the caller is refused for who it is.
    assert _raw(server, IMPORT_FMK)(huge).code() == grpc.StatusCode.UNAUTHENTICATED
    assert _raw(server, CHECK_DOSE, "not-a-jwt")(big_check).code() == \
        grpc.StatusCode.UNAUTHENTICATED
    refused = [r for r in _records(log_text) if r.get("event") == "call refused"]
    assert [(r["reason"], r.get("size")) for r in refused] == [
        ("REQUEST_TOO_LARGE", len(big_check)), ("MISSING_TOKEN", None), ("INVALID_TOKEN", None)]


def test_a_request_id_that_is_not_a_uuid_is_refused_and_never_logged(
        server: ServerFixture, log_text: io.StringIO) -> None:
    admin = server.client(Role.ADMIN)
    facility = admin.create_facility(fpb.Facility(display_name="Solhaven"))
    for request_id in (CPR, CPR.replace("-", ""), "Test Person", "req-1"):
        with pytest.raises(MedServiceError) as info:
            admin.create_resident(facility.name.split("/")[1], fpb.Resident(
                display_name="Test Person", room="1", person_id="020245-2222"),
                request_id=request_id)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in info.value.violations] == ["request_id"]
    assert list(admin.list_residents(facility.name.split("/")[1])) == []
    # A UUID in any case is accepted, and logged (it names the call in the log).
    created = admin.create_resident(facility.name.split("/")[1], fpb.Resident(
        display_name="Test Person", room="1", person_id="020245-2222"),
        request_id="0B7F3C1E-2F7B-4A57-9A39-4D1B8C3F2E10")
    assert created.name
    text = log_text.getvalue()
    assert CPR not in text and CPR.replace("-", "") not in text and "Test Person" not in text
    assert "0B7F3C1E-2F7B-4A57-9A39-4D1B8C3F2E10" in text


def test_the_document_limit_holds_the_largest_document_the_importers_take() -> None:
    from medservice.imports import fhir, fmk

    settings = Settings()
    for largest in (fmk.MAX_DOCUMENT_BYTES, fhir.MAX_DOCUMENT_BYTES):
        assert settings.max_document_request_bytes > largest
    assert settings.max_request_bytes >= 16 * 1024


def test_a_call_with_no_message_is_refused_as_malformed(
        server: ServerFixture, log_text: io.StringIO) -> None:
    """A client that opens a call and sends no body is told so, and it is logged; a body
    gRPC refuses as too large is not (see test_request_sizes_are_per_method)."""
    channel = grpc.insecure_channel(server.target)
    call = channel.stream_stream(CHECK_DOSE)
    metadata = (("authorization", f"Bearer {token_for(Role.INTEGRATION, 'f')}"),)
    with pytest.raises(grpc.RpcError) as info:
        list(call(iter(()), metadata=metadata, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(info.value) == "MALFORMED_REQUEST"
    refused = [r for r in _records(log_text) if r.get("event") == "call refused"]
    assert [(r["reason"], r.get("size")) for r in refused] == [("MALFORMED_REQUEST", 0)]
