"""Settings for replicas behind a load balancer (issue 17): with a maximum connection age, a
long watch stream is asked to go after it, so that clients reconnect (with their resume
token) and spread over the replicas instead of staying on the first one for ever."""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
import pytest

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
