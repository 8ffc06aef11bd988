"""Webhook subscriptions and their delivery cursors.

A cursor row is a lease: `claim` takes one whose lease is free or ran out (SKIP LOCKED on
PostgreSQL, so replicas claiming at once take different rows; SQLite has one writer) and
writes the holder and the lease's end in a short transaction of its own. The deliverer then
POSTs with no transaction open, and each `advance` or `fail` applies only while the row still
names it as the holder, so a replica that lost its lease (stalled past it) cannot move a
cursor another replica now holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from medservice.domain.access import Role
from medservice.domain.webhooks import DeliveryState, WebhookSubscription
from medservice.store import tables as t
from medservice.store.repositories import _utc

_S = t.webhook_subscriptions.c
_C = t.webhook_cursors.c
_L = t.alert_logs.c
_A = t.alerts.c


@dataclass(frozen=True)
class Claim:
    """A subscription this replica holds the lease of, with what delivering needs."""

    subscription: WebhookSubscription
    secret: str
    state: DeliveryState


def _subscription(row: Any) -> WebhookSubscription:
    return WebhookSubscription(
        facility_id=row.facility_id, subscription_id=row.subscription_id,
        audience=Role(row.audience), url=row.url, created_at=_utc(row.create_time))


def _state(row: Any) -> DeliveryState:
    def at(value: datetime | None) -> datetime | None:
        return _utc(value) if value is not None else None

    return DeliveryState(
        position=int(row.position), last_delivered_alert=row.last_delivered_alert,
        last_delivered_at=at(row.last_delivered_at), failing_since=at(row.failing_since),
        last_error=row.last_error, attempts=int(row.attempts),
        next_attempt_at=at(row.next_attempt_at))


_JOINED = t.webhook_subscriptions.join(
    t.webhook_cursors, _S.subscription_id == _C.subscription_id)


class WebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, s: WebhookSubscription, secret: str, position: int) -> None:
        self._conn.execute(t.webhook_subscriptions.insert().values(
            subscription_id=s.subscription_id, facility_id=s.facility_id,
            audience=s.audience.value, url=s.url, secret=secret, create_time=s.created_at))
        self._conn.execute(t.webhook_cursors.insert().values(
            subscription_id=s.subscription_id, position=position, lease_holder=None,
            lease_until=None, next_attempt_at=s.created_at, attempts=0,
            last_delivered_alert=None, last_delivered_at=None, failing_since=None,
            last_error=""))

    def get(self, facility_id: str, subscription_id: str
            ) -> tuple[WebhookSubscription, DeliveryState] | None:
        row = self._conn.execute(select(_JOINED).where(
            _S.facility_id == facility_id, _S.subscription_id == subscription_id)).first()
        return (_subscription(row), _state(row)) if row else None

    def page(self, facility_id: str, *, limit: int, after: str | None
             ) -> list[tuple[WebhookSubscription, DeliveryState]]:
        q = select(_JOINED).where(_S.facility_id == facility_id)
        if after is not None:
            q = q.where(_S.subscription_id > after)
        return [(_subscription(r), _state(r)) for r in self._conn.execute(
            q.order_by(_S.subscription_id).limit(limit))]

    def delete(self, facility_id: str, subscription_id: str) -> bool:
        found = self._conn.execute(select(_S.subscription_id).where(
            _S.facility_id == facility_id, _S.subscription_id == subscription_id)).first()
        if found is None:
            return False
        # Both rows explicitly: SQLite enforces no foreign keys here.
        self._conn.execute(delete(t.webhook_cursors).where(
            _C.subscription_id == subscription_id))
        self._conn.execute(delete(t.webhook_subscriptions).where(
            _S.subscription_id == subscription_id))
        return True

    def pending(self, subscription_id: str) -> int:
        """Alerts of the subscription's audience in its log after its cursor."""
        return int(self._conn.execute(
            select(func.count()).select_from(t.alerts).join(
                _JOINED, and_(_A.facility_id == _S.facility_id, _A.audience == _S.audience,
                              _A.position > _C.position))
            .where(_S.subscription_id == subscription_id)).scalar() or 0)

    def _due(self, now: datetime) -> Any:
        return (select(_C.subscription_id).select_from(t.webhook_cursors.join(
                t.webhook_subscriptions, _S.subscription_id == _C.subscription_id).join(
                t.alert_logs, _L.facility_id == _S.facility_id))
                .where(_L.last_position > _C.position, _C.next_attempt_at <= now,
                       or_(_C.lease_until.is_(None), _C.lease_until <= now)))

    def any_due(self, now: datetime) -> bool:
        """Whether `claim` would find one: a read, so that looking for work when there is
        none takes no write lock (SQLite has one writer)."""
        return self._conn.execute(self._due(now).limit(1)).first() is not None

    def claim(self, holder: str, now: datetime, lease_until: datetime
              ) -> Claim | None:
        """One subscription with alerts after its cursor, due to be tried, whose lease is
        free or ran out: leased to `holder` until `lease_until`. Call in its own
        transaction and commit at once (the lease, not the transaction, holds it)."""
        row = self._conn.execute(
            self._due(now).order_by(_C.next_attempt_at, _C.subscription_id).limit(1)
            .with_for_update(skip_locked=True, of=t.webhook_cursors)).first()
        if row is None:
            return None
        self._conn.execute(update(t.webhook_cursors).where(
            _C.subscription_id == row.subscription_id).values(
                lease_holder=holder, lease_until=lease_until))
        full = self._conn.execute(select(_JOINED).where(
            _S.subscription_id == row.subscription_id)).one()
        return Claim(_subscription(full), full.secret, _state(full))

    def advance(self, subscription_id: str, holder: str, position: int,
                delivered: tuple[str, datetime] | None, lease_until: datetime) -> bool:
        """Move the cursor to `position` (after the receiver's 2xx for `delivered`, the alert
        id and when, if any), clear the failure and extend the lease; False when `holder`
        no longer holds the lease (nothing changed)."""
        values: dict[str, Any] = dict(position=position, lease_until=lease_until)
        if delivered is not None:
            # next_attempt_at: when it was last served, so claims (oldest first) go round
            # the subscriptions instead of serving a busy one again and again.
            values.update(last_delivered_alert=delivered[0], last_delivered_at=delivered[1],
                          failing_since=None, attempts=0, next_attempt_at=delivered[1])
        done = self._conn.execute(update(t.webhook_cursors).where(
            _C.subscription_id == subscription_id, _C.lease_holder == holder,
            _C.position <= position).values(**values))
        return done.rowcount == 1

    def fail(self, subscription_id: str, holder: str, error: str, now: datetime,
             next_attempt_at: datetime) -> bool:
        """Record a failed attempt and give the lease up until the next attempt."""
        done = self._conn.execute(update(t.webhook_cursors).where(
            _C.subscription_id == subscription_id, _C.lease_holder == holder).values(
                attempts=_C.attempts + 1, last_error=error[:200],
                failing_since=func.coalesce(_C.failing_since, now),
                next_attempt_at=next_attempt_at, lease_holder=None, lease_until=None))
        return done.rowcount == 1

    def release(self, subscription_id: str, holder: str) -> None:
        self._conn.execute(update(t.webhook_cursors).where(
            _C.subscription_id == subscription_id, _C.lease_holder == holder).values(
                lease_holder=None, lease_until=None))

    def oldest_pending(self) -> list[tuple[str, str, datetime | None]]:
        """(facility, subscription, creation of its oldest alert not yet delivered; None
        when caught up) of every subscription: the delivery lag the metrics report."""
        oldest = (select(func.min(_A.created_at)).where(
            _A.facility_id == _S.facility_id, _A.audience == _S.audience,
            _A.position > _C.position).scalar_subquery())
        return [(r[0], r[1], _utc(r[2]) if r[2] is not None else None)
                for r in self._conn.execute(
                    select(_S.facility_id, _S.subscription_id, oldest).select_from(_JOINED))]
