"""Webhooks end to end (issue 17): an administrator subscribes a real HTTP receiver on this
machine; alerts appended to the log arrive POSTed, signed (checked with the snippet in
docs/webhooks.md), in log order, once each; a receiver that fails and recovers gets
everything once and the subscription's state shows it; on PostgreSQL two replica processes
share the deliveries and the one delivering is killed mid-POST; on SQLite a single replica
is killed mid-POST and restarted.

Alerts are appended to the log directly (as the sweep and reconciliation do): what is under
test is their delivery. How they are raised is tests/e2e/test_alerts.py's.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import Engine, text

from clients.client import MedClient, MedServiceError
from medservice.api.auth import TokenVerifier
from medservice.domain.access import Role
from medservice.domain.alerts import AlertKind, NewAlert
from medservice.domain.discrepancy import Severity
from medservice.server import build_server
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.settings import Settings
from medservice.store.db import make_engine
from medservice.store.uow import uow_factory
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from tests.conftest import TEST_SECRET, TEST_SETTINGS, ServerFixture, _truncate, token_for
from tests.e2e.test_operations import (
    MEDSERVICE,
    ROOT,
    _free_port,
    _self_signed,
    _wait_serving,
)

ROOT_DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "a-receivers-secret-of-at-least-32-characters"
LEAD = common_pb2.ROLE_SHIFT_LEAD


def _doc_verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """The verification snippet of docs/webhooks.md, run as written."""
    snippet = re.search(r"```python\n(.*?)```", ROOT_DOCS.read_text(), re.S)
    assert snippet is not None
    scope: dict[str, Any] = {}
    exec(snippet.group(1), scope)
    verify: Callable[[str, dict[str, str], bytes], bool] = scope["verify_medservice_webhook"]
    return verify


@dataclass
class Delivery:
    path: str
    alert_id: str
    position: int
    summary: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the receiver answered; 0: nothing (held, then dropped)


@dataclass
class Receiver:
    """A care system's endpoint on this machine: records every POST and what it answered.
    `fail_with` answers that status instead of 2xx; `hold` keeps a request of a path
    unanswered until `release` is set (then answers 503: not accepted)."""

    server: ThreadingHTTPServer
    deliveries: list[Delivery] = field(default_factory=list)
    fail_with: int = 0
    hold: str = ""
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def accepted(self, path: str | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries
                    if 200 <= d.status < 300 and (path is None or d.path == path)]

    def all(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)


def _start_receiver(tls: tuple[Path, Path] | None = None) -> Receiver:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = box[0]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            alert = json.loads(body)["alert"]
            d = Delivery(self.path, alert["name"].rsplit("/", 1)[1], int(alert["position"]),
                         alert["summary"], dict(self.headers.items()), body)
            with rec.lock:
                rec.deliveries.append(d)
                hold = rec.hold and rec.hold == self.path and not rec.held.is_set()
                if hold:
                    rec.held.set()
            if hold:
                rec.release.wait(60)
                status = 503
            else:
                status = rec.fail_with or 200
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                return  # the sender is gone (killed): nothing was answered
            if not hold:
                d.status = status

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    box.append(Receiver(server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return box[0]


def _stop_receiver(receiver: Receiver) -> None:
    receiver.release.set()
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = _start_receiver()
    yield started
    _stop_receiver(started)


def _alerts(facility: str, numbers: range, audience: Role = Role.SHIFT_LEAD
            ) -> list[NewAlert]:
    now = datetime.now(UTC)
    return [NewAlert(source_key=f"webhook-test:{facility}:{n}", facility_id=facility,
                     kind=AlertKind.MISSED_DOSE, audience=audience, severity=Severity.HIGH,
                     summary=f"alert {n}", created_at=now) for n in numbers]


def _append(uow: UnitOfWorkFactory, alerts: list[NewAlert]) -> None:
    with uow() as u:
        u.alerts.append(alerts)
        u.commit()


def _wait(condition: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _subscribe(admin: MedClient, url: str, *, facility: str = "f", secret: str = SECRET,
               audience: common_pb2.Role.ValueType = LEAD) -> apb.WebhookSubscription:
    return admin.call(admin.alerts.CreateWebhookSubscription,
                      apb.CreateWebhookSubscriptionRequest(
                          parent=f"facilities/{facility}",
                          webhook_subscription=apb.WebhookSubscription(
                              audience=audience, url=url, secret=secret)))


def _get(admin: MedClient, name: str) -> apb.WebhookSubscription:
    return admin.call(admin.alerts.GetWebhookSubscription,
                      apb.GetWebhookSubscriptionRequest(name=name))


WEBHOOK_SETTINGS = replace(TEST_SETTINGS, webhook_workers=2,
                           webhook_allow_http_localhost=True, webhook_poll_seconds=0.1,
                           webhook_retry_base_seconds=0.2, webhook_retry_max_seconds=0.4,
                           webhook_timeout_seconds=2, webhook_lease_seconds=5)


@pytest.fixture
def server_settings() -> Settings:
    return WEBHOOK_SETTINGS


def _facility(admin: MedClient, facility: str = "f") -> None:
    admin.create_facility(fpb.Facility(display_name="Webhooks"), facility)


def test_alerts_arrive_signed_in_log_order_once_for_the_audience(
        server: ServerFixture, receiver: Receiver, capfd: pytest.CaptureFixture[str]) -> None:
    admin = server.client(Role.ADMIN)
    _facility(admin)
    _append(server.uow, _alerts("f", range(0, 2)))  # before the subscription: not sent
    made = _subscribe(admin, receiver.url(), secret="")  # the server makes the secret
    given = _subscribe(admin, receiver.url("/given"))
    assert made.secret.startswith("whsec_") and given.secret == SECRET
    _append(server.uow, _alerts("f", range(2, 5)) + _alerts("f", range(5, 7), Role.PHARMACIST)
            + _alerts("f", range(7, 9)))
    _wait(lambda: len(receiver.accepted()) == 10, what="ten deliveries")
    time.sleep(0.5)  # nothing further may come
    verify = _doc_verifier()
    for path, secret in (("/hook", made.secret), ("/given", SECRET)):
        got = receiver.accepted(path)
        assert [d.summary for d in got] == [f"alert {n}" for n in (2, 3, 4, 7, 8)]
        assert [d.position for d in got] == sorted(d.position for d in got)
        for d in got:
            assert verify(secret, d.headers, d.body)
            assert not verify(secret, d.headers, d.body + b" ")
            assert d.headers["Medservice-Webhook-Id"] == d.alert_id
            assert json.loads(d.body)["alert"]["audience"] == "ROLE_SHIFT_LEAD"
        assert not verify("another-secret-of-at-least-32-characters!", got[0].headers,
                          got[0].body)
    assert len(receiver.all()) == 10  # no attempt beyond the ten accepted
    state = _get(admin, given.name)
    assert state.secret == ""  # shown in the create's answer only
    assert state.last_delivered_alert.endswith(receiver.accepted("/given")[-1].alert_id)
    assert state.pending_alerts == 0 and not state.HasField("failing_since")
    assert state.last_error == "" and state.failed_attempts == 0
    listed = admin.call(admin.alerts.ListWebhookSubscriptions,
                        apb.ListWebhookSubscriptionsRequest(parent="facilities/f"))
    assert sorted(s.name for s in listed.webhook_subscriptions) == sorted(
        [made.name, given.name])
    assert all(s.secret == "" for s in listed.webhook_subscriptions)
    out, err = capfd.readouterr()
    assert made.secret not in out + err and SECRET not in out + err  # never logged


def test_a_receiver_that_fails_then_recovers_gets_everything_once(
        engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
        receiver: Receiver) -> None:
    settings = replace(WEBHOOK_SETTINGS, http_listen="127.0.0.1:0",
                       database_url=str(engine.url))
    running = build_server(settings, uow, verifier, engine=engine)
    metrics = f"http://127.0.0.1:{running.http_port}/metrics"
    try:
        admin = MedClient(f"127.0.0.1:{running.port}", token_for(Role.ADMIN), timeout=10)
        _facility(admin)
        # Subscribed over HTTP/JSON, as a care system's administrator might.
        base = f"http://127.0.0.1:{running.http_port}/v1/facilities/f/webhookSubscriptions"
        auth = {"authorization": f"Bearer {token_for(Role.ADMIN)}"}
        bad = httpx.post(base, headers=auth, json={"audience": "ROLE_SHIFT_LEAD",
                                                   "url": "http://care.example/h"})
        assert bad.status_code == 400 and "webhook_subscription.url" in bad.text
        assert httpx.post(base, json={"url": receiver.url()}).status_code == 401
        created = httpx.post(base, headers=auth, json={"audience": "ROLE_SHIFT_LEAD",
                                                       "url": receiver.url()})
        assert created.status_code == 200, created.text
        assert created.json()["secret"].startswith("whsec_")
        sub = apb.WebhookSubscription(name=created.json()["name"])
        shown = httpx.get(f"http://127.0.0.1:{running.http_port}/v1/{sub.name}", headers=auth)
        assert shown.status_code == 200 and "secret" not in shown.json()
        receiver.fail_with = 503
        _append(uow, _alerts("f", range(3)))
        _wait(lambda: _get(admin, sub.name).failed_attempts >= 3, what="three failures")
        failing = _get(admin, sub.name)
        assert failing.HasField("failing_since") and failing.last_error == "HTTP 503"
        assert failing.pending_alerts == 3 and failing.last_delivered_alert == ""
        assert failing.HasField("next_attempt_time")
        # Nothing after the first alert is tried while it fails (log order).
        assert {d.summary for d in receiver.all()} == {"alert 0"}
        lag = _lag(metrics, sub.name)
        assert lag is not None and lag > 0
        receiver.fail_with = 0
        _wait(lambda: _get(admin, sub.name).pending_alerts == 0, what="caught up")
        caught_up = _get(admin, sub.name)
        assert [d.summary for d in receiver.accepted()] == ["alert 0", "alert 1", "alert 2"]
        assert not caught_up.HasField("failing_since") and caught_up.failed_attempts == 0
        assert caught_up.last_error == "HTTP 503"  # what last went wrong stays readable
        assert caught_up.last_delivered_alert.endswith(receiver.accepted()[-1].alert_id)
        assert _lag(metrics, sub.name) == 0
        gone = httpx.delete(f"http://127.0.0.1:{running.http_port}/v1/{sub.name}",
                            headers=auth)
        assert gone.status_code == 200 and gone.json() == {}
        assert _lag(metrics, sub.name) is None
        body = httpx.get(metrics).text
        assert re.search(r'medservice_alert_delivery_lag_seconds_count\{via="webhook"\} 3',
                         body), body
        admin.close()
    finally:
        running.stop(0)


def test_https_receivers_must_have_a_trusted_certificate(
        engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
        tmp_path: Path) -> None:
    """Delivery over real TLS: a self-signed receiver fails (the certificate is verified)
    until its CA is trusted (MEDSERVICE_WEBHOOK_CA_FILE); the retry waits in the database,
    so the restarted server delivers it."""
    cert, key = _self_signed(tmp_path)
    receiver = _start_receiver((cert, key))
    url = f"https://localhost:{receiver.server.server_address[1]}/hook"
    settings = replace(WEBHOOK_SETTINGS, database_url=str(engine.url),
                       webhook_allow_http_localhost=False)
    try:
        running = build_server(settings, uow, verifier)
        try:
            with MedClient(f"127.0.0.1:{running.port}", token_for(Role.ADMIN),
                           timeout=10) as admin:
                _facility(admin)
                sub = _subscribe(admin, url)
                _append(uow, _alerts("f", range(1)))
                _wait(lambda: _get(admin, sub.name).failed_attempts >= 1, what="a failure")
                assert _get(admin, sub.name).last_error.startswith(
                    "TLS: certificate not trusted")
        finally:
            running.stop(0)
        assert receiver.accepted() == []
        running = build_server(replace(settings, webhook_ca_file=str(cert)), uow, verifier)
        try:
            _wait(lambda: len(receiver.accepted()) == 1, what="the delivery over TLS")
            verify = _doc_verifier()
            d = receiver.accepted()[0]
            assert d.summary == "alert 0" and verify(SECRET, d.headers, d.body)
        finally:
            running.stop(0)
    finally:
        _stop_receiver(receiver)


@pytest.mark.parametrize("server_settings", [replace(WEBHOOK_SETTINGS, webhook_workers=1,
                                                     webhook_retry_base_seconds=0.5,
                                                     webhook_retry_max_seconds=0.5)])
def test_a_failing_receiver_holds_up_only_its_own_subscription(
        server: ServerFixture) -> None:
    good, bad = _start_receiver(), _start_receiver()
    bad.fail_with = 500
    try:
        admin = server.client(Role.ADMIN)
        _facility(admin)
        failing = _subscribe(admin, bad.url())
        _subscribe(admin, good.url())
        for n in range(1, 6):  # one deliverer thread, alerts coming while the other fails
            _append(server.uow, _alerts("f", range(n - 1, n)))
            _wait(functools.partial(_has, good, n), timeout=5,
                  what=f"alert {n} to the good receiver")
        state = _get(admin, failing.name)
        assert state.HasField("failing_since") and state.last_error == "HTTP 500"
        assert state.pending_alerts == 5
        assert {d.summary for d in bad.all()} == {"alert 0"}  # retried, in order
    finally:
        _stop_receiver(good)
        _stop_receiver(bad)


def _has(receiver: Receiver, count: int) -> bool:
    return len(receiver.accepted()) == count


def _lag(metrics_url: str, name: str) -> float | None:
    body = httpx.get(metrics_url).text
    m = re.search(r'medservice_webhook_delivery_lag_seconds\{subscription="'
                  + re.escape(name) + r'"\} (\S+)', body)
    return float(m.group(1)) if m else None


def test_bad_subscriptions_are_refused_naming_the_field(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    _facility(admin)
    _facility(admin, "g")

    def refused(code: grpc.StatusCode, call: Callable[[], object]) -> MedServiceError:
        with pytest.raises(MedServiceError) as e:
            call()
        assert e.value.code == code, e.value
        return e.value

    for url, why in (("http://care.example/h", "http to another host"),
                     ("https://user:pw@care.example/h", "credentials"),
                     ("ftp://care.example/h", "scheme"), ("", "missing")):
        e = refused(grpc.StatusCode.INVALID_ARGUMENT, functools.partial(_subscribe, admin, url))
        assert [f for f, _ in e.violations] == ["webhook_subscription.url"], why
    e = refused(grpc.StatusCode.INVALID_ARGUMENT,
                lambda: _subscribe(admin, "https://care.example/h", secret="short"))
    assert [f for f, _ in e.violations] == ["webhook_subscription.secret"]
    for audience in (common_pb2.ROLE_UNSPECIFIED, common_pb2.ROLE_CARER):
        e = refused(grpc.StatusCode.INVALID_ARGUMENT, functools.partial(
            _subscribe, admin, "https://care.example/h", audience=audience))
        assert [f for f, _ in e.violations] == ["webhook_subscription.audience"]
    refused(grpc.StatusCode.NOT_FOUND,
            lambda: _subscribe(admin, "https://care.example/h", facility="nowhere"))
    lead = server.client(Role.SHIFT_LEAD, "f")
    refused(grpc.StatusCode.PERMISSION_DENIED,
            lambda: _subscribe(lead, "https://care.example/h"))
    other_admin = server.client(Role.ADMIN, "g")
    sub = _subscribe(admin, "https://care.example/h")
    refused(grpc.StatusCode.PERMISSION_DENIED, lambda: _get(other_admin, sub.name))
    refused(grpc.StatusCode.PERMISSION_DENIED, lambda: _get(lead, sub.name))
    refused(grpc.StatusCode.INVALID_ARGUMENT, lambda: _get(admin, "facilities/f/webhooks/x"))
    refused(grpc.StatusCode.NOT_FOUND,
            lambda: _get(admin, "facilities/g/" + sub.name.split("/", 2)[2]))
    admin.call(admin.alerts.DeleteWebhookSubscription,
               apb.DeleteWebhookSubscriptionRequest(name=sub.name))
    refused(grpc.StatusCode.NOT_FOUND, lambda: _get(admin, sub.name))
    refused(grpc.StatusCode.NOT_FOUND, lambda: admin.call(
        admin.alerts.DeleteWebhookSubscription,
        apb.DeleteWebhookSubscriptionRequest(name=sub.name)))
    # A retried create (same request_id) is the first one, secret and all.
    request = apb.CreateWebhookSubscriptionRequest(
        parent="facilities/f", request_id="0b8a3a4e-2f4e-4a61-9d0e-0e7b5a3c0c11",
        webhook_subscription=apb.WebhookSubscription(audience=LEAD,
                                                     url="https://care.example/h"))
    first = admin.call(admin.alerts.CreateWebhookSubscription, request)
    assert admin.call(admin.alerts.CreateWebhookSubscription, request) == first


def test_medctl_webhooks(server: ServerFixture, receiver: Receiver,
                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from clients.medctl import main

    _facility(server.client(Role.ADMIN))
    base = ["--target", server.target, "--token", token_for(Role.ADMIN)]
    (tmp_path / "secret").write_text(SECRET + "\n")
    assert main([*base, "webhooks", "create", "--facility", "f", "--audience", "shift-lead",
                 "--url", receiver.url(), "--secret-file", str(tmp_path / "secret")]) == 0
    out = capsys.readouterr().out
    assert f"hemmelighed (vises kun denne ene gang): {SECRET}" in out
    name = out.split()[0]
    _append(server.uow, _alerts("f", range(2)))
    _wait(lambda: len(receiver.accepted()) == 2, what="two deliveries")
    _wait(lambda: _get(server.client(Role.ADMIN), name).pending_alerts == 0, what="caught up")
    assert main([*base, "webhooks", "list", "--facility", "f"]) == 0
    out = capsys.readouterr().out
    assert name in out and "ajour; 0 venter; sidst leveret" in out and SECRET not in out
    # Times on the facility's clock with its zone (Europe/Copenhagen: CET or CEST).
    assert re.search(r"\d{2}:\d{2}:\d{2} CES?T", out), out
    short = name.rsplit("/", 1)[-1]
    assert main([*base, "--json", "webhooks", "get", short, "--facility", "f"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == name and "secret" not in shown
    assert main([*base, "webhooks", "delete", name]) == 0
    assert main([*base, "webhooks", "get", name]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert main([*base, "webhooks", "create", "--facility", "f", "--audience", "pharmacist",
                 "--url", "http://care.example/h"]) == 1
    assert "webhook_subscription.url" in capsys.readouterr().err


@pytest.mark.parametrize("server_settings", [replace(WEBHOOK_SETTINGS,
                                                     webhook_allow_http_localhost=False)])
def test_http_to_localhost_is_refused_unless_allowed(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    _facility(admin)
    with pytest.raises(MedServiceError) as e:
        _subscribe(admin, "http://127.0.0.1:9/hook")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in e.value.violations] == ["webhook_subscription.url"]


# -- replicas: separate processes, one killed mid-delivery --------------------------------

class Replica:
    def __init__(self, url: str, tmp: Path, name: str) -> None:
        self.target = f"127.0.0.1:{_free_port()}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_DATABASE_URL": url,
               "MEDSERVICE_LISTEN": self.target, "MEDSERVICE_JWT_SECRET": TEST_SECRET,
               "MEDSERVICE_HTTP_LISTEN": "", "MEDSERVICE_SWEEP_INTERVAL_SECONDS": "0",
               "MEDSERVICE_LOG_LEVEL": "warning", "MEDSERVICE_VAR_DIR": str(tmp / name),
               "MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST": "true",
               "MEDSERVICE_WEBHOOK_POLL_SECONDS": "0.2",
               "MEDSERVICE_WEBHOOK_TIMEOUT_SECONDS": "5",
               "MEDSERVICE_WEBHOOK_LEASE_SECONDS": "6"}
        self.log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*MEDSERVICE, "serve"], cwd=tmp, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def _holder_pid(engine: Engine, subscription: str) -> int:
    with engine.connect() as conn:
        holder = conn.execute(text(
            "SELECT lease_holder FROM webhook_cursors WHERE subscription_id = :s"),
            {"s": subscription.rsplit("/", 1)[1]}).scalar()
    assert holder, "nobody holds the subscription mid-delivery"
    return int(holder.split(":")[1])


@pytest.fixture
def replica_db(db_url: str) -> Iterator[tuple[str, Engine]]:
    engine = make_engine(db_url)
    yield engine.url.render_as_string(hide_password=False), engine
    if engine.dialect.name == "postgresql":
        _truncate(engine)
    engine.dispose()


def _cursor(engine: Engine, subscription: str) -> tuple[int, str | None]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT position, lease_holder FROM webhook_cursors WHERE subscription_id = :s"),
            {"s": subscription.rsplit("/", 1)[1]}).one()
    return int(row[0]), row[1]


@pytest.mark.timeout(240)
def test_exactly_once_when_the_delivering_replica_is_killed_mid_delivery(
        replica_db: tuple[str, Engine], receiver: Receiver, tmp_path: Path) -> None:
    """PostgreSQL: two replicas share two subscriptions; the one delivering /a is killed
    while the receiver holds its POST, and the other goes on with both. SQLite (one
    process): the replica is killed so, and a new one started.

    The kill lands while the victim's only delivery in flight is the held one (/b caught
    up and committed): a kill between a receiver's 2xx and the cursor's commit would have
    that alert sent again with the same Medservice-Webhook-Id, which docs/webhooks.md tells
    receivers to drop; this test shows the rest is exact."""
    url, engine = replica_db
    postgres = engine.dialect.name == "postgresql"
    uow = uow_factory(engine)
    replicas = [Replica(url, tmp_path, name) for name in (("a", "b") if postgres else ("a",))]
    try:
        for r in replicas:
            _wait_serving(r.target)
        with MedClient(replicas[0].target, token_for(Role.ADMIN), timeout=10) as admin:
            _facility(admin)
            sub_a = _subscribe(admin, receiver.url("/a"))
            sub_b = _subscribe(admin, receiver.url("/b"))
        receiver.hold = "/a"
        _append(uow, _alerts("f", range(0, 10)))
        assert receiver.held.wait(30), "the first delivery to /a never came"
        _wait(lambda: _cursor(engine, sub_b.name) == (10, None), what="/b caught up")
        pid = _holder_pid(engine, sub_a.name)
        [victim] = [r for r in replicas if r.proc.pid == pid]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        receiver.release.set()  # the held POST now gets 503: it was never accepted
        if not postgres:
            replicas.append(Replica(url, tmp_path, "a2"))
            _wait_serving(replicas[-1].target)
        _append(uow, _alerts("f", range(10, 20)))
        try:
            _wait(lambda: len(receiver.accepted("/a")) == 20
                  and len(receiver.accepted("/b")) == 20,
                  timeout=60, what="every alert to both subscriptions")
        except AssertionError:
            logs = {p.name: p.read_text()[-3000:] for p in tmp_path.glob("*.log")}
            raise AssertionError(([(d.path, d.summary, d.status) for d in receiver.all()],
                                  logs)) from None
        time.sleep(1)  # nothing further may come
    finally:
        for r in replicas:
            r.stop()
    for path in ("/a", "/b"):
        got = receiver.accepted(path)
        assert [d.summary for d in got] == [f"alert {n}" for n in range(20)], path
        assert len({d.alert_id for d in got}) == 20  # none accepted twice
    attempts = [d for d in receiver.all() if d.path == "/a"]
    assert len(attempts) == 21  # the held one was sent again by the survivor, same id
    assert attempts[0].status == 0 and attempts[1].alert_id == attempts[0].alert_id
    assert len(receiver.all()) == 41
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT position, lease_holder, failing_since FROM webhook_cursors")).all()
    assert {r[0] for r in rows} == {20} and all(r[1] is None for r in rows)
