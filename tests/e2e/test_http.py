"""The HTTP/JSON face of the API on a real server, on SQLite and PostgreSQL (issue 17):
JSON calls with good and bad input answer as gRPC does (same tokens, roles, facility scope,
validation, idempotency, audit and google.rpc.Status, as JSON), the alert watch as
Server-Sent Events resumable with Last-Event-ID, /metrics and /openapi.json."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy import Engine

from clients.client import MedClient
from medservice.api.auth import TokenVerifier
from medservice.domain.access import Role
from medservice.server import RunningServer, build_server
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.v1 import medicine_cards_pb2 as cpb
from tests.builders import CARD_VALID_FROM, morning_evening, order, ts
from tests.conftest import TEST_SETTINGS, TestClock, token_for
from tests.e2e.test_alerts import ZONE, set_now, tomorrow_at
from tests.e2e.test_operations import MEDSERVICE, ROOT, _free_port, _self_signed

R1 = "facilities/f/residents/r1"
R2 = "facilities/f/residents/r2"


@dataclass
class Http:
    running: RunningServer
    base: str
    client: httpx.Client  # one, as a front end keeps (a new one per call costs ~100 ms)

    def call(self, verb: str, path: str, token: str | None = None, *,
             body: Any = None, content: bytes | None = None,
             params: dict[str, str] | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.client.request(verb, self.base + path, headers=headers, json=body,
                                   content=content, params=params)

    def grpc_client(self, role: Role, *facilities: str) -> MedClient:
        return MedClient(f"127.0.0.1:{self.running.port}", token_for(role, *facilities),
                         timeout=10)


@pytest.fixture
def http(engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
         server_clock: TestClock) -> Iterator[Http]:
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=str(engine.url))
    running = build_server(settings, uow, verifier, server_clock, engine=engine)
    with httpx.Client(timeout=10) as client:
        yield Http(running, f"http://127.0.0.1:{running.http_port}", client)
    running.stop(0)


ADMIN = token_for(Role.ADMIN)
INTEGRATION = token_for(Role.INTEGRATION, "f")
CARER = token_for(Role.CARER, "f", subject="nurse-1")
LEAD = token_for(Role.SHIFT_LEAD, "f", subject="lead-1")


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def refused(response: httpx.Response, http_code: int, grpc_code: int) -> dict[str, Any]:
    """A JSON google.rpc.Status with the HTTP code usual for its gRPC code."""
    assert response.status_code == http_code, response.text
    assert response.headers["content-type"].startswith("application/json")
    status: dict[str, Any] = response.json()
    assert status["code"] == grpc_code and status["message"], status
    return status


def violations(status: dict[str, Any]) -> list[str]:
    return [v["field"] for d in status["details"] if d["@type"].endswith("BadRequest")
            for v in d["fieldViolations"]]


def reason(status: dict[str, Any]) -> str:
    return str(next(d["reason"] for d in status["details"]
                    if d["@type"].endswith("ErrorInfo")))


@pytest.fixture
def ward(http: Http, server_clock: TestClock) -> Http:
    return make_ward(http, server_clock)


def make_ward(http: Http, server_clock: TestClock) -> Http:
    """A facility with two residents and their cards, all made over HTTP/JSON."""
    server_clock.to_late_evening(ZONE)
    ok(http.call("POST", "/v1/facilities", ADMIN, body={"displayName": "Home"},
                 params={"facility_id": "f", "request_id": str(uuid.uuid4())}))
    for rid, pid, room in (("r1", "010145-1111", "1"), ("r2", "020245-2222", "2")):
        ok(http.call("POST", "/v1/facilities/f/residents", ADMIN,
                     body={"personId": pid, "displayName": rid, "room": room},
                     params={"resident_id": rid}))
    for resident in (R1, R2):
        sync = cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(card_version=1, orders=[
                order(resident, "para", "Paracetamol", morning_evening("2"))]),
            valid_time=ts(CARD_VALID_FROM))
        ok(http.call("POST", f"/v1/{resident}/medicineCard:sync", INTEGRATION,
                     body=json_format.MessageToDict(sync)))
    return http


def test_json_calls_answer_as_the_grpc_api_does(ward: Http, server_clock: TestClock) -> None:
    http = ward
    facility = ok(http.call("GET", "/v1/facilities/f", CARER))
    assert facility["name"] == "facilities/f" and facility["displayName"] == "Home"
    page = ok(http.call("GET", "/v1/facilities/f/residents", CARER, params={"page_size": "1"}))
    assert [r["name"] for r in page["residents"]] == [R1] and page["nextPageToken"]
    rest = ok(http.call("GET", "/v1/facilities/f/residents", CARER,
                        params={"page_size": "1", "page_token": page["nextPageToken"]}))
    assert [r["name"] for r in rest["residents"]] == [R2]
    start = tomorrow_at(server_clock, 0)
    set_now(server_clock, tomorrow_at(server_clock, 8, 5))
    doses = ok(http.call("GET", f"/v1/{R1}/doses", CARER, params={
        "start_time": start.isoformat(), "end_time": (start + timedelta(hours=12)).isoformat()}))
    morning = doses["doses"][0]
    check = ok(http.call("POST", f"/v1/{R1}:checkDose", CARER, body={
        "doseId": morning["doseId"], "quantity": "2", "route": "oral",
        "administrationTime": morning["dueTime"]}))
    assert check["verdict"] == "CHECK_VERDICT_OK", check
    assert check["matchedDose"]["doseId"] == morning["doseId"]
    # An update: the body is the resource, the mask a query parameter.
    updated = ok(http.call("PATCH", "/v1/facilities/f", ADMIN, body={"displayName": "Høj"},
                           params={"update_mask": "displayName"}))
    assert updated["displayName"] == "Høj" and updated["timeZone"] == "Europe/Copenhagen"


def test_bad_calls_answer_json_statuses(ward: Http) -> None:
    http = ward
    # Who is asking comes first: no or a bad token is 401, whatever the rest says.
    assert reason(refused(http.call("GET", "/v1/facilities/f"), 401, 16)) == "MISSING_TOKEN"
    refused(http.call("GET", "/v1/facilities/f", "not-a-token"), 401, 16)
    refused(http.call("POST", "/v1/facilities", content=b"{not json"), 401, 16)
    expired = token_for(Role.ADMIN, ttl=timedelta(seconds=-60))
    refused(http.call("GET", "/v1/facilities/f", expired), 401, 16)
    # Roles and facility scope.
    refused(http.call("POST", "/v1/facilities", CARER, body={"displayName": "X"}), 403, 7)
    elsewhere = token_for(Role.SHIFT_LEAD, "g")
    refused(http.call("GET", "/v1/facilities/f/alerts", elsewhere), 403, 7)
    # Not there.
    assert reason(refused(http.call("GET", "/v1/facilities/nope", ADMIN), 404, 5))
    refused(http.call("GET", "/v1/nothing/here", ADMIN), 404, 5)
    wrong_verb = http.call("DELETE", "/v1/facilities/f", ADMIN)
    refused(wrong_verb, 405, 12)
    assert "GET" in wrong_verb.headers["allow"] and "PATCH" in wrong_verb.headers["allow"]
    # Bad input names the field, from the HTTP mapping and from the servicer alike.
    assert violations(refused(http.call("POST", "/v1/facilities", ADMIN, content=b"{x"),
                              400, 3)) == ["body"]
    assert violations(refused(http.call("GET", "/v1/facilities/f/residents", ADMIN,
                                        params={"page_size": "many"}), 400, 3)) == ["page_size"]
    assert violations(refused(http.call("GET", "/v1/facilities/f/residents", ADMIN,
                                        params={"colour": "red"}), 400, 3)) == ["colour"]
    assert violations(refused(http.call("POST", f"/v1/{R1}:checkDose", CARER,
                                        body={"quantityy": "2"}), 400, 3)) == ["quantityy"]
    assert violations(refused(http.call("GET", "/v1/facilities/f/alerts", LEAD,
                                        params={"unacknowledged_only": "maybe"}), 400, 3)) \
        == ["unacknowledged_only"]
    missing = refused(http.call("POST", "/v1/facilities/f/residents", ADMIN,
                                body={"displayName": "No id"}), 400, 3)
    assert "resident.person_id" in violations(missing)
    assert "010145" not in json.dumps(missing)
    # A token never travels in a URL.
    assert violations(refused(http.call("GET", "/v1/facilities/f/residents", ADMIN,
                                        params={"access_token": ADMIN}), 400, 3)) \
        == ["access_token"]


def test_a_retried_write_over_http_is_done_once_and_audited(ward: Http) -> None:
    http = ward
    request_id = str(uuid.uuid4())
    body = {"personId": "030345-3333", "displayName": "r3", "room": "3"}
    first = ok(http.call("POST", "/v1/facilities/f/residents", ADMIN, body=body,
                         params={"request_id": request_id}))
    again = ok(http.call("POST", "/v1/facilities/f/residents", ADMIN, body=body,
                         params={"request_id": request_id}))
    assert again == first
    listed = ok(http.call("GET", "/v1/facilities/f/residents", ADMIN))["residents"]
    assert [r["name"] for r in listed].count(first["name"]) == 1 and len(listed) == 3
    # The same request id on a different request is refused, not silently answered.
    other = http.call("POST", "/v1/facilities/f/residents", ADMIN,
                      body={**body, "room": "4"}, params={"request_id": request_id})
    assert other.status_code in (400, 409), other.text
    # HTTP calls leave the same audit trail as gRPC calls.
    events = ok(http.call("GET", "/v1/facilities/f/auditEvents", ADMIN, params={
        "method": "/medservice.v1.FacilityService/CreateResident"}))["events"]
    mine = [(e["resource"], e["subject"], e["outcome"]) for e in events
            if e.get("requestId") == request_id]
    assert (first["name"], "test-admin", "OK") in mine, events
    assert mine[0][2] != "OK", mine  # newest first: the refused retry, audited as such


class SseWatcher:
    """A browser's EventSource, read on its own thread: (id, event, data) per event."""

    def __init__(self, http: Http, token: str, last_event_id: str = "") -> None:
        self.events: queue.Queue[tuple[str, str, dict[str, Any]] | Exception] = queue.Queue()
        self.last_id = last_event_id
        self.stop = threading.Event()
        headers = {"authorization": f"Bearer {token}"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        self.thread = threading.Thread(target=self._read, args=(http, headers), daemon=True)
        self.thread.start()
        first = self.next(5)
        assert first[1] == "heartbeat", first  # the opening heartbeat: the stream is live

    def _read(self, http: Http, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", http.base + "/v1/facilities/f/alerts:watch",
                              headers=headers, timeout=10) as response:
                assert response.status_code == 200, response.read()
                assert response.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line:
                        key, _, value = line.partition(":")
                        fields[key] = value.removeprefix(" ")
                    elif "data" in fields:
                        self.events.put((fields.get("id", ""), fields.get("event", ""),
                                         json.loads(fields["data"])))
                        fields = {}
                    if self.stop.is_set():
                        return
        except Exception as e:  # reported to the test through the queue
            self.events.put(e)

    def next(self, timeout: float) -> tuple[str, str, dict[str, Any]]:
        event = self.events.get(timeout=timeout)
        if isinstance(event, Exception):
            raise event
        if event[0]:
            self.last_id = event[0]
        return event

    def alerts(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"got {len(got)} of {count} alerts"
            event_id, kind, data = self.next(left)
            assert data["resumeToken"] == event_id
            if kind == "alert":
                got.append(data["alert"])
        return got

    def quiet(self, seconds: float) -> int:
        """No alert for a while; the heartbeats seen meanwhile."""
        beats, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, kind, data = self.next(left)
            except queue.Empty:
                break
            assert kind == "heartbeat", data
            beats += 1
        return beats

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def test_alerts_stream_to_a_browser_and_resume_with_last_event_id(
        ward: Http, server_clock: TestClock) -> None:
    http = ward
    first = SseWatcher(http, LEAD)
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))  # the morning doses were missed
    http.running.sweeper.run_once()
    morning = first.alerts(2)
    assert sorted(a["resident"] for a in morning) == [R1, R2]
    assert all(a["kind"] == "ALERT_KIND_MISSED_DOSE" and "010145" not in a["summary"]
               for a in morning)
    assert first.quiet(1.2) >= 1  # heartbeats keep the stream (and proxies) alive
    last_seen = first.last_id
    first.close()
    set_now(server_clock, tomorrow_at(server_clock, 19, 30))  # and the evening ones
    http.running.sweeper.run_once()
    # The browser reconnects with Last-Event-ID: only what it missed, once, in log order.
    again = SseWatcher(http, LEAD, last_event_id=last_seen)
    evening = again.alerts(2)
    again.quiet(1.0)
    assert {a["name"] for a in morning}.isdisjoint(a["name"] for a in evening)
    assert all(a["shiftId"] == "evening" for a in evening)
    assert [int(a["position"]) for a in evening] == sorted(int(a["position"]) for a in evening)
    again.close()
    # The same alerts as the gRPC watch and the list give.
    listed = ok(http.call("GET", "/v1/facilities/f/alerts", LEAD))["alerts"]
    assert sorted(a["name"] for a in listed) == sorted(a["name"] for a in morning + evening)


def test_a_refused_watch_answers_a_status_not_a_stream(ward: Http) -> None:
    http = ward
    refused(http.call("GET", "/v1/facilities/f/alerts:watch"), 401, 16)
    refused(http.call("GET", "/v1/facilities/f/alerts:watch", CARER), 403, 7)
    refused(http.call("GET", "/v1/facilities/g/alerts:watch", token_for(Role.SHIFT_LEAD, "g")),
            404, 5)
    bad = http.call("GET", "/v1/facilities/f/alerts:watch", LEAD,
                    params={"resume_token": "garbage"})
    assert bad.status_code == 400 and violations(bad.json()) == ["resume_token"], bad.text


def _series(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        found = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if found is None or found.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(found.group(3))
    return 0.0


def test_metrics_move_with_the_calls(ward: Http, server_clock: TestClock) -> None:
    http = ward
    get = "/medservice.v1.FacilityService/GetFacility"
    before = http.call("GET", "/metrics").text
    ok(http.call("GET", "/v1/facilities/f", CARER))
    ok(http.call("GET", "/v1/facilities/f", CARER))
    http.call("GET", "/v1/facilities/f")  # 401
    client = http.grpc_client(Role.CARER, "f")
    client.get_facility("f")
    client.close()
    watcher = SseWatcher(http, LEAD)
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))  # windows closed, not swept
    after = http.call("GET", "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert _series(text, "medservice_rpc_calls_total", method=get, code="OK") \
        - _series(before, "medservice_rpc_calls_total", method=get, code="OK") == 3
    assert _series(text, "medservice_rpc_calls_total", method=get, code="UNAUTHENTICATED") \
        - _series(before, "medservice_rpc_calls_total", method=get,
                  code="UNAUTHENTICATED") == 1
    assert _series(text, "medservice_rpc_duration_seconds_count", method=get) \
        - _series(before, "medservice_rpc_duration_seconds_count", method=get) == 4
    assert _series(text, "medservice_alert_watchers_open") == 1
    assert _series(text, "medservice_sweep_lag_seconds") >= 60  # the 09:00 window waits
    assert "medservice_db_pool_connections_in_use" in text
    assert "medservice_audit_write_failures_total 0.0" in text
    http.running.sweeper.run_once()
    watcher.alerts(2)
    watcher.close()
    text = http.call("GET", "/metrics").text
    for via in ("watch", "sse"):  # handed to the stream, and written to the browser
        assert _series(text, "medservice_alert_delivery_lag_seconds_count", via=via) == 2
        assert _series(text, "medservice_alert_delivery_lag_seconds_bucket", via=via,
                       le="10.0") == 2  # swept just now: seconds old, not hours
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = http.call("GET", "/metrics").text
        if _series(text, "medservice_alert_watchers_open") == 0:
            break
        time.sleep(0.1)
    assert _series(text, "medservice_alert_watchers_open") == 0
    assert _series(text, "medservice_sweep_lag_seconds") == 0


def test_openapi_is_made_from_the_protos(http: Http) -> None:
    document = ok(http.call("GET", "/openapi.json"))
    assert document["openapi"].startswith("3.")
    operations = {op["operationId"]: (path, verb) for path, item in document["paths"].items()
                  for verb, op in item.items()}
    assert operations["FacilityService_GetFacility"] == ("/v1/facilities/{facility}", "get")
    assert operations["AlertService_WatchAlerts"] == (
        "/v1/facilities/{facility}/alerts:watch", "get")
    watch = document["paths"]["/v1/facilities/{facility}/alerts:watch"]["get"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]
    from medservice.web.routes import API_FILES

    rpcs = {f"{s.name}_{m.name}" for f in API_FILES
            for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert set(operations) == rpcs  # every RPC has its HTTP mapping
    schema = document["components"]["schemas"]["medservice.v1.Facility"]
    assert schema["properties"]["displayName"] == {"type": "string"}
    assert schema["properties"]["createTime"]["format"] == "date-time"


def test_no_http_when_the_setting_is_empty(engine: Engine, uow: UnitOfWorkFactory,
                                           verifier: TokenVerifier) -> None:
    running = build_server(replace(TEST_SETTINGS, database_url=str(engine.url)), uow, verifier)
    try:
        assert running.http is None and running.http_port == 0
    finally:
        running.stop(0)



def test_stopping_the_server_ends_open_event_streams(engine: Engine, uow: UnitOfWorkFactory,
                                                     verifier: TokenVerifier) -> None:
    """A replica going away closes its browsers' streams (they reconnect elsewhere with
    Last-Event-ID) instead of holding its shutdown."""
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=str(engine.url),
                       shutdown_grace_seconds=1)
    running = build_server(settings, uow, verifier, engine=engine)
    with httpx.Client(timeout=10) as client:
        http = Http(running, f"http://127.0.0.1:{running.http_port}", client)
        ok(http.call("POST", "/v1/facilities", ADMIN, body={"displayName": "Home"},
                     params={"facility_id": "f"}))
        watcher = SseWatcher(http, LEAD)
        started = time.monotonic()
        running.stop(1)
        assert time.monotonic() - started < 5
        watcher.thread.join(5)
        assert not watcher.thread.is_alive()  # the stream ended
        with pytest.raises(httpx.TransportError):
            client.get(http.base + "/healthz")


def test_make_run_serves_http_and_prints_its_address(tmp_path: Path) -> None:
    """`medservice serve --demo` (what `make run` starts) serves HTTP too and says where."""
    http_port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "MEDSERVICE_LISTEN": f"127.0.0.1:{_free_port()}",
           "MEDSERVICE_HTTP_LISTEN": f"127.0.0.1:{http_port}"}
    env.pop("MEDSERVICE_DATABASE_URL", None)
    env.pop("MEDSERVICE_JWT_SECRET", None)
    proc = subprocess.Popen([*MEDSERVICE, "serve", "--demo"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        printed = ""
        while "Demo tokens" not in printed and proc.poll() is None:
            printed += proc.stdout.readline()
        assert f"HTTP/JSON on http://localhost:{http_port}" in printed, printed
        assert f"http://localhost:{http_port}/board?facility=demo" in printed, printed
        token = subprocess.run([*MEDSERVICE, "token", "--role", "carer", "--facility", "demo"],
                               cwd=tmp_path, env=env, capture_output=True, text=True,
                               check=True).stdout.strip()
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(timeout=10) as client:
            got = client.get(f"{base}/v1/facilities/demo",
                             headers={"authorization": f"Bearer {token}"})
            assert got.status_code == 200 and got.json()["name"] == "facilities/demo"
            assert client.get(f"{base}/v1/facilities/demo").status_code == 401
            assert client.get(f"{base}/openapi.json").json()["paths"]
            assert client.get(f"{base}/board").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.postgres
def test_a_browser_watches_any_replica_and_resumes_on_another(
        postgres_database: str | None, verifier: TokenVerifier, server_clock: TestClock) -> None:
    """Two replicas on one PostgreSQL: alerts swept on one reach a browser on the other
    (LISTEN/NOTIFY), and a browser moving to the first with Last-Event-ID gets what it
    missed, once."""
    if postgres_database is None:
        pytest.skip("PostgreSQL tests need MEDSERVICE_TEST_POSTGRES_URL")
    from medservice.store.db import make_engine
    from medservice.store.uow import uow_factory
    from tests.conftest import _truncate

    engines = [make_engine(postgres_database) for _ in range(2)]
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=postgres_database)
    replicas = [build_server(settings, uow_factory(e), verifier, server_clock, engine=e)
                for e in engines]
    try:
        with httpx.Client(timeout=10) as client:
            a, b = (Http(r, f"http://127.0.0.1:{r.http_port}", client) for r in replicas)
            make_ward(a, server_clock)
            on_b = SseWatcher(b, LEAD)
            set_now(server_clock, tomorrow_at(server_clock, 9, 5))
            a.running.sweeper.run_once()
            morning = on_b.alerts(2)
            last_seen = on_b.last_id
            on_b.close()
            set_now(server_clock, tomorrow_at(server_clock, 19, 30))
            b.running.sweeper.run_once()
            on_a = SseWatcher(a, LEAD, last_event_id=last_seen)
            evening = on_a.alerts(2)
            on_a.quiet(1.0)
            on_a.close()
            assert {x["name"] for x in morning}.isdisjoint(x["name"] for x in evening)
            assert all(x["shiftId"] == "evening" for x in evening)
    finally:
        for r in replicas:
            r.stop(0)
        _truncate(engines[0])
        for e in engines:
            e.dispose()


def test_https_when_the_grpc_port_has_tls(tmp_path: Path, engine: Engine,
                                          uow: UnitOfWorkFactory,
                                          verifier: TokenVerifier) -> None:
    """The certificate of the gRPC port serves HTTPS as well: a bearer token is never sent
    in clear to a server that was given one."""
    cert, key = _self_signed(tmp_path)
    settings = replace(TEST_SETTINGS, listen="localhost:0", http_listen="localhost:0",
                       tls_cert_file=str(cert), tls_key_file=str(key),
                       database_url=str(engine.url))
    running = build_server(settings, uow, verifier, engine=engine)
    try:
        base = f"localhost:{running.http_port}"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)),
                          timeout=10) as client:
            got = client.get(f"https://{base}/v1/facilities", headers={
                "authorization": f"Bearer {ADMIN}"})
            assert got.status_code == 200 and got.json() == {}
        with httpx.Client(timeout=5) as plain, pytest.raises(httpx.HTTPError):
            plain.get(f"http://{base}/v1/facilities")
    finally:
        running.stop(0)


def test_pool_use_and_audit_failures_move_on_metrics(ward: Http, engine: Engine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    http = ward
    before = http.call("GET", "/metrics").text
    with engine.connect():  # a connection out of the pool while scraped
        held = http.call("GET", "/metrics").text
    assert _series(held, "medservice_db_pool_connections_in_use") \
        == _series(before, "medservice_db_pool_connections_in_use") + 1
    from medservice.api.audit_capture import AuditRecorder
    from medservice.store.uow import SqlUnitOfWork

    # The audit store refuses: on PostgreSQL a read's event is first tried in the read's
    # own transaction, then written at the call's end; both fail here.
    monkeypatch.setattr(SqlUnitOfWork, "_commit_read_audit", lambda self, conn: None)
    monkeypatch.setattr(AuditRecorder, "_write", lambda self, draft, outcome: False)
    failed = refused(http.call("GET", "/v1/facilities/f", CARER), 500, 13)  # no data out
    assert "Traceback" not in json.dumps(failed) and "facility" not in failed["message"]
    monkeypatch.undo()
    after = http.call("GET", "/metrics").text
    assert _series(after, "medservice_audit_write_failures_total") \
        == _series(before, "medservice_audit_write_failures_total") + 1
    assert _series(after, "medservice_rpc_calls_total",
                   method="/medservice.v1.FacilityService/GetFacility", code="INTERNAL") == 1
