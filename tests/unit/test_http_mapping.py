"""The HTTP mapping read from the protos' google.api.http annotations (issue 17): paths,
the transcoding of path, body and query into the request message, and the status codes."""

from __future__ import annotations

import socket

import pytest
from google.rpc import code_pb2

from medservice.domain.errors import InvalidArgument
from medservice.v1 import alerts_pb2, common_pb2, facilities_pb2
from medservice.web import status
from medservice.web.routes import Route, api_routes, build_request, compile_template
from medservice.web.server import HttpListenError, _bind

ROUTES = api_routes()


def route(method: str) -> Route:
    return next(r for r in ROUTES if r.method.name == method)


def find(verb: str, path: str) -> tuple[str, dict[str, str]] | None:
    for r in ROUTES:
        values = r.match(path)
        if values is not None and r.verb == verb:
            return r.method.name, values
    return None


def test_templates_become_patterns_over_whole_segments() -> None:
    pattern, variables = compile_template("/v1/{name=facilities/*/alerts/*}:acknowledge")
    assert variables == ("name",)
    assert pattern.fullmatch("/v1/facilities/f/alerts/a1:acknowledge")
    assert not pattern.fullmatch("/v1/facilities/f/x/alerts/a1:acknowledge")
    pattern, variables = compile_template("/v1/{facility=facilities/*}/shifts/{shift_id}/"
                                          "schedules/{date}")
    assert variables == ("facility", "shift_id", "date")
    assert pattern.fullmatch("/v1/facilities/f/shifts/day/schedules/2026-03-01")


@pytest.mark.parametrize(("verb", "path", "expected"), [
    ("GET", "/v1/facilities/demo", ("GetFacility", {"name": "facilities/demo"})),
    ("GET", "/v1/facilities/demo/alerts:watch",
     ("WatchAlerts", {"parent": "facilities/demo"})),
    ("GET", "/v1/facilities/demo/alerts", ("ListAlerts", {"parent": "facilities/demo"})),
    ("POST", "/v1/facilities/demo/residents/r1:checkDose",
     ("CheckDose", {"resident": "facilities/demo/residents/r1"})),
    ("PATCH", "/v1/facilities/demo", ("UpdateFacility", {"facility.name": "facilities/demo"})),
    ("GET", "/v1/facilities/a%20b", ("GetFacility", {"name": "facilities/a b"})),
    ("POST", "/v1/facilities/demo", None),
    ("GET", "/v1/facilities/demo/alerts:nothing", None),
])
def test_paths_find_their_rpc(verb: str, path: str,
                              expected: tuple[str, dict[str, str]] | None) -> None:
    assert find(verb, path) == expected


def test_every_rpc_is_mapped() -> None:
    from medservice.web.routes import API_FILES

    mapped = {r.grpc_path for r in ROUTES}
    assert mapped == {f"/{s.full_name}/{m.name}" for f in API_FILES
                      for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert route("WatchAlerts").streaming and not route("ListAlerts").streaming


def test_body_path_and_query_fill_the_request() -> None:
    r = route("UpdateFacility")
    request = build_request(r, {"facility.name": "facilities/f"},
                            [("update_mask", "displayName,timeZone"), ("request_id", "x")],
                            b'{"name": "facilities/other", "displayName": "Home"}')
    assert isinstance(request, facilities_pb2.UpdateFacilityRequest)
    assert request.facility.name == "facilities/f"  # the path wins over the body
    assert request.facility.display_name == "Home"
    assert list(request.update_mask.paths) == ["display_name", "time_zone"]
    listed = build_request(route("ListAlerts"), {"parent": "facilities/f"}, [
        ("audience", "ROLE_PHARMACIST"), ("unacknowledged_only", "true"), ("page_size", "5")],
        b"")
    assert listed == alerts_pb2.ListAlertsRequest(
        parent="facilities/f", audience=common_pb2.ROLE_PHARMACIST, unacknowledged_only=True,
        page_size=5)


@pytest.mark.parametrize(("method", "query", "body", "field"), [
    ("ListAlerts", [("page_size", "ten")], b"", "page_size"),
    ("ListAlerts", [("unacknowledged_only", "yes please")], b"", "unacknowledged_only"),
    ("ListAlerts", [("colour", "red")], b"", "colour"),
    ("ListAlerts", [], b'{"x": 1}', "body"),  # a GET takes no body
    ("CheckDose", [], b"[1, 2]", "body"),
    ("CheckDose", [], b"{not json", "body"),
    ("CheckDose", [], b'{"quantity": "2", "asNeeded": "often"}', "asNeeded"),
    ("CheckDose", [], b'{"unknownField": 1}', "unknownField"),
    ("CreateFacility", [("access_token", "t")], b"{}", "access_token"),
])
def test_what_does_not_fit_is_refused_naming_the_field(
        method: str, query: list[tuple[str, str]], body: bytes, field: str) -> None:
    r = route(method)
    values = {v: "facilities/f/residents/r1" if v == "resident" else "facilities/f"
              for v in r.variables}
    with pytest.raises(InvalidArgument) as info:
        build_request(r, values, query, body)
    assert [v.field for v in info.value.violations] == [field]


@pytest.mark.parametrize(("code", "http"), [
    (code_pb2.UNAUTHENTICATED, 401), (code_pb2.PERMISSION_DENIED, 403),
    (code_pb2.NOT_FOUND, 404), (code_pb2.INVALID_ARGUMENT, 400),
    (code_pb2.ALREADY_EXISTS, 409), (code_pb2.ABORTED, 409),
    (code_pb2.FAILED_PRECONDITION, 400), (code_pb2.RESOURCE_EXHAUSTED, 429),
    (code_pb2.UNAVAILABLE, 503), (code_pb2.INTERNAL, 500), (code_pb2.UNKNOWN, 500),
])
def test_grpc_codes_map_to_the_usual_http_codes(code: int, http: int) -> None:
    assert status.http_code(status.simple(code, "x")) == http


def test_the_http_socket_sends_small_writes_at_once() -> None:
    sock = _bind("127.0.0.1:0")
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
    with pytest.raises(HttpListenError, match="HOST:PORT"):
        _bind("8080")
