"""Webhook use cases: an administrator subscribes an endpoint to a facility's alerts for one
audience, lists, reads and deletes subscriptions; every replica delivers (`deliver_once`).

Delivery is exactly once per subscription across replicas: a replica claims the
subscription's cursor row as a lease (store.webhooks), POSTs the alerts after the cursor in
log order with no transaction open, and commits the cursor past each alert after the
receiver's 2xx, only while it still holds the lease. A replica that dies mid-delivery
leaves the cursor where the last 2xx put it; when its lease runs out another replica goes on
from there, so the receiver gets the unanswered alert again (never one it answered 2xx,
unless the replica died between that 2xx and its commit: `Medservice-Webhook-Id` lets the
receiver drop that repeat).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from medservice.domain.alerts import Alert
from medservice.domain.errors import NotFound
from medservice.domain.webhooks import (
    DeliveryState,
    WebhookSubscription,
    check_secret,
    new_secret,
    retry_delay,
)
from medservice.service.facilities import get_facility
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store.webhooks import Claim


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription as the API shows it: its state, how many alerts wait, and (only
    in a create's answer) its secret."""

    subscription: WebhookSubscription
    state: DeliveryState
    pending: int
    secret: str = ""


def create_subscription(uow: UnitOfWork, facility_id: str, draft: WebhookSubscription,
                        secret: str, now: datetime) -> SubscriptionView:
    """Subscribe `draft.url` (checked by the caller: check_endpoint) to the facility's
    alerts for `draft.audience` from now on: the cursor starts at the end of the log, so a
    new receiver is not flooded with the past. `secret` empty: the server makes one."""
    get_facility(uow, facility_id)
    if secret:
        check_secret(secret, "webhook_subscription.secret")
    else:
        secret = new_secret()
    subscription = WebhookSubscription(
        facility_id=facility_id, subscription_id=uuid.uuid4().hex, audience=draft.audience,
        url=draft.url, created_at=now)
    position = uow.alerts.bounds(facility_id)[1]
    uow.webhooks.add(subscription, secret, position)
    return SubscriptionView(subscription, DeliveryState(position, next_attempt_at=now), 0,
                            secret)


def get_subscription(uow: UnitOfWork, facility_id: str, subscription_id: str
                     ) -> SubscriptionView:
    found = uow.webhooks.get(facility_id, subscription_id)
    if found is None:
        raise NotFound("no such webhook subscription", reason="WEBHOOK_SUBSCRIPTION_NOT_FOUND")
    return SubscriptionView(found[0], found[1], uow.webhooks.pending(subscription_id))


def list_subscriptions(uow: UnitOfWork, facility_id: str, page: Page
                       ) -> tuple[list[SubscriptionView], str]:
    get_facility(uow, facility_id)
    items = uow.webhooks.page(facility_id, limit=page.size + 1, after=page.after)
    shown = items[:page.size]
    views = [SubscriptionView(s, st, uow.webhooks.pending(s.subscription_id))
             for s, st in shown]
    return views, next_token(page, items, shown[-1][0].subscription_id if shown else None)


def delete_subscription(uow: UnitOfWork, facility_id: str, subscription_id: str) -> None:
    """Stop delivering; a delivery in flight may still arrive (its cursor is gone, so
    nothing follows it)."""
    if not uow.webhooks.delete(facility_id, subscription_id):
        raise NotFound("no such webhook subscription", reason="WEBHOOK_SUBSCRIPTION_NOT_FOUND")


@dataclass(frozen=True)
class DeliveryTerms:
    """How this process delivers (settings): the lease outlasts a POST's timeout, so a
    lease held by a live replica never runs out mid-POST."""

    holder: str
    lease: timedelta
    retry_base: timedelta
    retry_cap: timedelta
    batch: int = 100


@dataclass(frozen=True)
class PostResult:
    """The receiver's answer: ok for a 2xx, else what went wrong (domain.failure_text)."""

    ok: bool
    error: str = ""


# POSTs one alert of a subscription, signed with its secret; never raises.
Post = Callable[[Claim, Alert], PostResult]
# Told of each alert a receiver accepted (metrics: its age).
Delivered = Callable[[Claim, Alert], None]


@dataclass
class DeliveryReport:
    delivered: int = 0
    moved: bool = False  # the cursor moved (delivered, or passed other audiences' alerts)
    failed: bool = False
    lost_lease: bool = False


def deliver_once(uow_factory: UnitOfWorkFactory, post: Post, clock: Callable[[], datetime],
                 terms: DeliveryTerms, delivered: Delivered | None = None
                 ) -> DeliveryReport | None:
    """Claim one subscription that has alerts to deliver and deliver them in log order
    until caught up (or a batch is done), a POST fails (then back off), or the lease is
    lost. None when no subscription was due."""
    with uow_factory(write=False) as uow:
        if not uow.webhooks.any_due(clock()):
            return None
    with uow_factory() as uow:
        now = clock()
        claim = uow.webhooks.claim(terms.holder, now, now + terms.lease)
        uow.commit()
    if claim is None:
        return None
    report = DeliveryReport()
    sub = claim.subscription
    position = committed = claim.state.position
    attempts = claim.state.attempts
    try:
        with uow_factory(write=False) as uow:
            pruned_through, _ = uow.alerts.bounds(sub.facility_id)
            alerts = uow.alerts.after(sub.facility_id, max(position, pruned_through),
                                      terms.batch)
        if not alerts and pruned_through > position:  # what waited was pruned (retention)
            report.moved = _advance(uow_factory, claim, terms, pruned_through, None, clock)
            return report
        for alert in alerts:
            if alert.audience is not sub.audience:
                position = alert.position  # passed over with the next commit
                continue
            result = post(claim, alert)
            if not result.ok:
                now = clock()
                with uow_factory() as uow:
                    if position > committed:  # keep what was passed over
                        uow.webhooks.advance(sub.subscription_id, terms.holder, position, None,
                                             now + terms.lease)
                    attempts += 1
                    report.lost_lease = not uow.webhooks.fail(
                        sub.subscription_id, terms.holder, result.error, now,
                        now + retry_delay(attempts, terms.retry_base, terms.retry_cap))
                    uow.commit()
                report.failed = True
                return report
            if not _advance(uow_factory, claim, terms, alert.position,
                            (alert.alert_id, clock()), clock):
                report.lost_lease = True
                return report
            position = committed = alert.position
            report.delivered += 1
            report.moved = True
            if delivered is not None:
                delivered(claim, alert)
        if position > committed:
            report.moved = _advance(uow_factory, claim, terms, position, None, clock)
            report.lost_lease = not report.moved
        return report
    finally:
        if not report.failed and not report.lost_lease:
            with uow_factory() as uow:
                uow.webhooks.release(sub.subscription_id, terms.holder)
                uow.commit()


def _advance(uow_factory: UnitOfWorkFactory, claim: Claim, terms: DeliveryTerms,
             position: int, delivered: tuple[str, datetime] | None,
             clock: Callable[[], datetime]) -> bool:
    with uow_factory() as uow:
        ok = uow.webhooks.advance(claim.subscription.subscription_id, terms.holder, position,
                                  delivered, clock() + terms.lease)
        uow.commit()
    return ok
