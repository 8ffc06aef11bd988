"""The webhook cursors' leases in the real store, on SQLite and PostgreSQL: claimers racing
for subscriptions take each at most once; a held lease keeps others off until it runs out;
only the holder moves the cursor; the delivery lag reads per subscription."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from medservice.domain.access import Role
from medservice.domain.alerts import AlertKind, NewAlert
from medservice.domain.discrepancy import Severity
from medservice.domain.facility import Facility
from medservice.domain.webhooks import WebhookSubscription
from medservice.service import facilities
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.uow import SqlUnitOfWork

NOW = datetime.now(UTC).replace(microsecond=0)
SUBSCRIPTIONS = 6


def _setup(uow: UnitOfWorkFactory) -> list[str]:
    ids = [f"{i:032x}" for i in range(1, SUBSCRIPTIONS + 1)]
    with uow() as u:
        facilities.create_facility(u, Facility("f", "F"), NOW)
        for sid in ids:
            u.webhooks.add(WebhookSubscription("f", sid, Role.SHIFT_LEAD,
                                               "https://care.example/h", NOW), "s" * 32, 0)
        u.alerts.append([NewAlert("store-test:1", "f", AlertKind.MISSED_DOSE, Role.SHIFT_LEAD,
                                  Severity.HIGH, "one", NOW - timedelta(seconds=30))])
        u.commit()
    return ids


def test_racing_claimers_take_each_subscription_once(uow: UnitOfWorkFactory) -> None:
    ids = _setup(uow)
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        start.wait()
        while True:
            with uow() as u:
                claim = u.webhooks.claim(name, NOW, NOW + timedelta(seconds=30))
                u.commit()
            if claim is None:
                return
            with lock:
                claimed.append(claim.subscription.subscription_id)

    threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed) == ids  # each once, none left


def test_only_the_holder_moves_the_cursor_and_a_lease_runs_out(
        uow: UnitOfWorkFactory) -> None:
    sid = _setup(uow)[0]
    with uow() as u:
        claims = [u.webhooks.claim("a", NOW, NOW + timedelta(seconds=30))
                  for _ in range(SUBSCRIPTIONS)]
        u.commit()
    assert {c.subscription.subscription_id for c in claims if c} == set(_ids())
    with uow() as u:  # all held: nothing for b until the leases run out
        assert not u.webhooks.any_due(NOW + timedelta(seconds=29))
        assert u.webhooks.claim("b", NOW + timedelta(seconds=29), NOW) is None
        assert not u.webhooks.advance(sid, "b", 1, ("x", NOW), NOW)
        assert u.webhooks.any_due(NOW + timedelta(seconds=30))
        got = u.webhooks.claim("b", NOW + timedelta(seconds=30), NOW + timedelta(seconds=60))
        u.commit()
    assert got is not None
    taken = got.subscription.subscription_id
    with uow() as u:
        assert not u.webhooks.advance(taken, "a", 1, ("x", NOW), NOW)  # a lost it
        assert u.webhooks.advance(taken, "b", 1, ("x", NOW), NOW + timedelta(seconds=60))
        assert u.webhooks.fail(sid if sid != taken else _ids()[1], "a", "HTTP 500", NOW,
                               NOW + timedelta(seconds=1))
        u.commit()
    with uow(write=False) as u:
        found = u.webhooks.get("f", taken)
        assert found is not None and found[1].position == 1
        assert found[1].last_delivered_alert == "x" and u.webhooks.pending(taken) == 0
        assert isinstance(u, SqlUnitOfWork)
        lag = {s: oldest for _, s, oldest in u.webhooks.oldest_pending()}
    assert lag[taken] is None
    assert sum(1 for v in lag.values() if v == NOW - timedelta(seconds=30)) == SUBSCRIPTIONS - 1


def _ids() -> list[str]:
    return [f"{i:032x}" for i in range(1, SUBSCRIPTIONS + 1)]


def test_claims_go_round_the_subscriptions(uow: UnitOfWorkFactory) -> None:
    """The least recently served first: a busy subscription does not starve the others."""
    ids = _setup(uow)
    served: list[str] = []
    for n in range(SUBSCRIPTIONS * 2):
        at = NOW + timedelta(seconds=n + 1)
        with uow() as u:
            claim = u.webhooks.claim("a", at, at + timedelta(seconds=30))
            assert claim is not None
            sid = claim.subscription.subscription_id
            served.append(sid)
            # Delivered, then a new alert comes: every subscription is due again.
            assert u.webhooks.advance(sid, "a", claim.state.position + 1, ("x", at), at)
            u.webhooks.release(sid, "a")
            u.alerts.append([NewAlert(f"store-test:round:{n}", "f", AlertKind.MISSED_DOSE,
                                      Role.SHIFT_LEAD, Severity.HIGH, "more", at)])
            u.commit()
    assert served == ids + ids
