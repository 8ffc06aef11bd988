"""Settings for replicas behind a load balancer (issue 17): with a maximum connection age, a
long watch stream is asked to go after it, so that clients reconnect (with their resume
token) and spread over the replicas instead of staying on the first one for ever."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import grpc
import httpx
import pytest
from sqlalchemy import Engine

from clients.client import MedClient
from medservice.api.auth import TokenVerifier
from medservice.domain.access import Role
from medservice.server import build_server, connection_options
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.v1 import facilities_pb2 as fpb
from tests.conftest import TEST_SETTINGS, token_for


def test_a_watch_stream_ends_at_the_maximum_connection_age(
        uow: UnitOfWorkFactory, verifier: TokenVerifier) -> None:
    settings = replace(TEST_SETTINGS, max_connection_age_seconds=1,
                       max_connection_age_grace_seconds=1)
    running = build_server(settings, uow, verifier)
    try:
        target = f"127.0.0.1:{running.port}"
        with MedClient(target, token_for(Role.ADMIN)) as admin:
            admin.create_facility(fpb.Facility(display_name="Home"), "f")
        with MedClient(target, token_for(Role.SHIFT_LEAD, "f")) as lead:
            call = lead.watch_alerts("f")
            started, token = time.monotonic(), ""
            with pytest.raises(grpc.RpcError) as ended:
                for event in call:
                    token = event.resume_token
                    assert time.monotonic() - started < 15, "the stream outlived its age"
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert 1 <= time.monotonic() - started < 15
            again = lead.watch_alerts("f", resume_token=token)  # the client comes back
            assert next(iter(again)).HasField("heartbeat")
            again.cancel()
    finally:
        running.stop(0)


def test_connection_options_are_off_unless_set() -> None:
    assert connection_options(TEST_SETTINGS) == []
    options = dict(connection_options(replace(TEST_SETTINGS, max_connection_age_seconds=1800,
                                              keepalive_seconds=60)))
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.keepalive_time_ms"] == 60_000


def test_a_browser_stream_ends_with_an_error_event_at_the_connection_age(
        engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier) -> None:
    """The HTTP face's own connections to the gRPC server age too: an event stream then
    ends with an `error` event (UNAVAILABLE) and the browser comes back with Last-Event-ID."""
    settings = replace(TEST_SETTINGS, max_connection_age_seconds=1,
                       max_connection_age_grace_seconds=1, http_listen="127.0.0.1:0",
                       database_url=str(engine.url))
    running = build_server(settings, uow, verifier, engine=engine)
    try:
        base = f"http://127.0.0.1:{running.http_port}"
        lead = {"authorization": f"Bearer {token_for(Role.SHIFT_LEAD, 'f')}"}
        with httpx.Client(timeout=15) as client:
            assert client.post(f"{base}/v1/facilities", params={"facility_id": "f"},
                               json={"displayName": "Home"}, headers={
                                   "authorization": f"Bearer {token_for(Role.ADMIN)}"}
                               ).status_code == 200
            started, events, last_id = time.monotonic(), [], ""
            with client.stream("GET", f"{base}/v1/facilities/f/alerts:watch",
                               headers=lead) as stream:
                fields: dict[str, str] = {}
                for line in stream.iter_lines():
                    if line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                    elif "data" in fields:
                        events.append(fields)
                        last_id = fields.get("id", last_id)
                        fields = {}
            assert time.monotonic() - started < 15
            assert events[0]["event"] == "heartbeat" and events[-1]["event"] == "error"
            assert json.loads(events[-1]["data"])["code"] == 14  # UNAVAILABLE
            with client.stream("GET", f"{base}/v1/facilities/f/alerts:watch",
                               headers={**lead, "last-event-id": last_id}) as again:
                assert again.status_code == 200
    finally:
        running.stop(0)
