"""Webhook rules (domain.webhooks) and the delivery use case against the in-memory unit of
work: log order, one audience, exactly once per subscription across holders of the lease,
backoff and recovery. Real HTTP, databases and replicas: tests/e2e/test_webhooks.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medservice.domain.access import Role
from medservice.domain.alerts import Alert, AlertKind, NewAlert
from medservice.domain.discrepancy import Severity
from medservice.domain.errors import InvalidArgument, NotFound
from medservice.domain.facility import Facility
from medservice.domain.webhooks import (
    WebhookSubscription,
    check_endpoint,
    check_secret,
    new_secret,
    retry_delay,
    sign,
    verify,
)
from medservice.service import facilities
from medservice.service import webhooks as uc
from medservice.service.paging import Page
from medservice.service.webhooks import DeliveryTerms, PostResult
from medservice.store.webhooks import Claim
from tests.fakes import FakeDatabase

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
F = "home"


# -- rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://care.example/hooks", "https://care.example:8443/a/b?x=1",
    "https://[2001:db8::1]/h"])
def test_https_endpoints_are_accepted(url: str) -> None:
    check_endpoint(url, allow_http_localhost=False)


@pytest.mark.parametrize("url,allowed", [
    ("http://care.example/hooks", True),  # plain http to another host: never
    ("http://127.0.0.1:9000/h", False),  # to localhost only where the setting allows it
    ("http://localhost/h", False),
    ("ftp://care.example/h", True),
    ("https://user:pw@care.example/h", True),  # credentials in a URL end up in logs
    ("https://care.example/h#frag", True),
    ("https:///nohost", True),
    ("https://care.example:99999/h", True),
    ("", True),
    ("https://care example/h", True),
    ("https://care.example/" + "a" * 2000, True),
])
def test_bad_endpoints_are_refused_naming_the_field(url: str, allowed: bool) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_endpoint(url, allow_http_localhost=allowed, field="webhook_subscription.url")
    assert e.value.violations[0].field == "webhook_subscription.url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/h", "http://localhost/h",
                                 "http://[::1]:80/h"])
def test_http_to_localhost_only_when_allowed(url: str) -> None:
    check_endpoint(url, allow_http_localhost=True)


def test_secrets_made_and_given() -> None:
    made = new_secret()
    check_secret(made)
    assert made != new_secret()
    for bad in ("short", "x" * 201, "has spaces in it " * 3, "æøå" * 20):
        with pytest.raises(InvalidArgument):
            check_secret(bad)


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    import hashlib
    import hmac
    body = b'{"alert":{}}'
    signature = sign("k" * 32, 1700000000, body)
    assert signature == "v1=" + hmac.new(b"k" * 32, b"1700000000." + body,
                                         hashlib.sha256).hexdigest()
    now = datetime.fromtimestamp(1700000000, UTC)
    assert verify("k" * 32, "1700000000", body, signature, now)
    assert not verify("k" * 32, "1700000000", body + b" ", signature, now)  # body changed
    assert not verify("j" * 32, "1700000000", body, signature, now)  # another secret
    assert not verify("k" * 32, "1700000001", body, signature, now)  # timestamp changed
    assert not verify("k" * 32, "1700000000", body, signature,
                      now + timedelta(minutes=6))  # replayed later
    assert not verify("k" * 32, "soon", body, signature, now)


def test_backoff_doubles_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=1), timedelta(seconds=60)
    assert [retry_delay(n, base, cap).total_seconds() for n in range(0, 9)] == [
        0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(10_000, base, cap) == cap


# -- use cases ------------------------------------------------------------------------------

def _alert(n: int, audience: Role = Role.SHIFT_LEAD) -> NewAlert:
    return NewAlert(source_key=f"test:{n}", facility_id=F, kind=AlertKind.MISSED_DOSE,
                    audience=audience, severity=Severity.HIGH, summary=f"alert {n}",
                    created_at=T0 + timedelta(seconds=n))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Receiver:
    """Answers 2xx unless told to fail; records what it accepted."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.attempts = 0
        self.failing = False

    def __call__(self, claim: Claim, alert: Alert) -> PostResult:
        self.attempts += 1
        if self.failing:
            return PostResult(False, "HTTP 503")
        self.accepted.append(alert.summary)
        return PostResult(True)


def _terms(holder: str = "a") -> DeliveryTerms:
    return DeliveryTerms(holder, timedelta(seconds=30), timedelta(seconds=1),
                         timedelta(seconds=60))


def _subscribed(audience: Role = Role.SHIFT_LEAD, before: int = 0
                ) -> tuple[FakeDatabase, str]:
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, Facility(F, "Home"), T0)
        u.alerts.append([_alert(n) for n in range(before)])
        view = uc.create_subscription(u, F, WebhookSubscription(
            F, "", audience, "https://care.example/h", T0), "", T0)
        u.commit()
    assert view.secret.startswith("whsec_")
    return db, view.subscription.subscription_id


def _append(db: FakeDatabase, *alerts: NewAlert) -> None:
    with db() as u:
        u.alerts.append(list(alerts))
        u.commit()


def test_delivers_new_alerts_of_its_audience_in_log_order() -> None:
    db, sid = _subscribed(before=2)  # alerts before the subscription are not sent
    _append(db, _alert(2), _alert(3, Role.PHARMACIST), _alert(4), _alert(5))
    receiver, clock = Receiver(), Clock()
    report = uc.deliver_once(db, receiver, clock, _terms())
    assert report is not None and report.delivered == 3
    assert receiver.accepted == ["alert 2", "alert 4", "alert 5"]
    assert uc.deliver_once(db, receiver, clock, _terms()) is None  # caught up: nothing due
    with db(write=False) as u:
        view = uc.get_subscription(u, F, sid)
    assert view.state.position == 6 and view.pending == 0
    assert view.secret == ""  # shown at creation only
    assert view.state.last_delivered_at == T0 and view.state.failing_since is None


def test_a_failing_receiver_backs_off_then_gets_everything_once() -> None:
    db, sid = _subscribed()
    _append(db, _alert(1), _alert(2))
    receiver, clock = Receiver(), Clock()
    receiver.failing = True
    report = uc.deliver_once(db, receiver, clock, _terms())
    assert report is not None and report.failed and report.delivered == 0
    assert uc.deliver_once(db, receiver, clock, _terms()) is None  # waits for its backoff
    clock.now += timedelta(seconds=1)
    uc.deliver_once(db, receiver, clock, _terms())  # the second failure: waits 2 s
    with db(write=False) as u:
        state = uc.get_subscription(u, F, sid).state
    assert state.failing_since == T0 and state.attempts == 2 and state.last_error == "HTTP 503"
    assert state.next_attempt_at == clock.now + timedelta(seconds=2)
    clock.now += timedelta(seconds=1)
    assert uc.deliver_once(db, receiver, clock, _terms()) is None
    receiver.failing = False
    clock.now += timedelta(seconds=1)
    report = uc.deliver_once(db, receiver, clock, _terms())
    assert report is not None and report.delivered == 2
    assert receiver.accepted == ["alert 1", "alert 2"]
    with db(write=False) as u:
        view = uc.get_subscription(u, F, sid)
    assert view.state.failing_since is None and view.state.attempts == 0
    assert view.state.last_error == "HTTP 503"  # what last went wrong stays readable
    assert view.pending == 0


def test_a_held_lease_keeps_other_replicas_off_until_it_runs_out() -> None:
    db, _ = _subscribed()
    _append(db, _alert(1))
    clock = Clock()
    with db() as u:  # replica a claims, then dies before any POST
        assert u.webhooks.claim("a", clock.now, clock.now + timedelta(seconds=30))
        u.commit()
    b = Receiver()
    assert uc.deliver_once(db, b, clock, _terms("b")) is None
    clock.now += timedelta(seconds=30)
    report = uc.deliver_once(db, b, clock, _terms("b"))
    assert report is not None and report.delivered == 1 and b.accepted == ["alert 1"]


def test_a_replica_that_lost_its_lease_cannot_move_the_cursor() -> None:
    db, sid = _subscribed()
    _append(db, _alert(1), _alert(2))
    clock = Clock()
    stolen: list[str] = []

    def slow(claim: Claim, alert: Alert) -> PostResult:
        # Replica a stalls past its lease; b takes over and delivers everything.
        clock.now += timedelta(seconds=31)
        if not stolen:
            stolen.append("b")
            b = Receiver()
            uc.deliver_once(db, b, clock, _terms("b"))
            assert b.accepted == ["alert 1", "alert 2"]
        return PostResult(True)

    report = uc.deliver_once(db, slow, clock, _terms("a"))
    assert report is not None and report.lost_lease and report.delivered == 0
    with db(write=False) as u:
        assert uc.get_subscription(u, F, sid).state.position == 2


def test_list_get_delete() -> None:
    db, sid = _subscribed()
    with db(write=False) as u:
        views, token = uc.list_subscriptions(u, F, Page(10, None, ""))
    assert [v.subscription.subscription_id for v in views] == [sid] and token == ""
    with db() as u:
        uc.delete_subscription(u, F, sid)
        u.commit()
    with db() as u, pytest.raises(NotFound):
        uc.delete_subscription(u, F, sid)
    with db(write=False) as u, pytest.raises(NotFound):
        uc.get_subscription(u, F, sid)
