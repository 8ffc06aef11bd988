"""Alert use cases: raise the alerts newly found discrepancies call for, list and
acknowledge them, escalate the ones nobody acknowledged, and prune by retention."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from medservice.domain.access import Principal, Role
from medservice.domain.alerts import (
    Alert,
    NewAlert,
    alert_for,
    escalation_of,
    parse_resume_token,
)
from medservice.domain.clock import FacilityClock
from medservice.domain.errors import NotFound, OutOfRange, PermissionDenied
from medservice.domain.facility import Facility
from medservice.domain.orders import Drug
from medservice.reconcile import Discrepancy, FacilityRules
from medservice.service.facilities import get_facility
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store.discrepancies import discrepancy_id

# Alerts older than this leave the log; a resume token from before gets OUT_OF_RANGE.
RETENTION = timedelta(days=30)


def raise_alerts(uow: UnitOfWork, facilities: Facility | Mapping[str, Facility],
                 found: Sequence[Discrepancy], new_ids: Sequence[str], now: datetime
                 ) -> int:
    """Append an alert for each discrepancy that is new (or reopened) and calls for one,
    of a facility or of several (by id). The alert's source key makes this exactly once
    however often reconciliation finds it and whichever replica gets there first. Call it
    last in the unit of work. Returns how many were appended."""
    fresh = set(new_ids)
    if not fresh:
        return 0
    by_id = ({facilities.facility_id: facilities} if isinstance(facilities, Facility)
             else facilities)
    terms = {f_id: (FacilityRules.from_facility(f).clock,
                    timedelta(minutes=f.alert_escalation_minutes), f.language)
             for f_id, f in by_id.items()}
    raised = [(d, d_id) for d in found if (d_id := discrepancy_id(d.key)) in fresh]
    # The rooms and the orders' drugs the alerts name, read for all of them at once: a
    # national batch raises some 20,000 alerts, and two reads each took most of its time.
    rooms = uow.residents.rooms(sorted({(d.facility_id, d.resident_id) for d, _ in raised}))
    drugs = uow.cards.orders_drugs(sorted(
        {(d.facility_id, d.resident_id, d.order_id) for d, _ in raised if d.order_id}))
    new: list[NewAlert] = []
    for d, d_id in raised:
        clock, escalate_after, language = terms[d.facility_id]
        drug = _drug(drugs.get((d.facility_id, d.resident_id, d.order_id or ""), []), d)
        alert = alert_for(d, d_id, clock, now, escalate_after, language, drug,
                          rooms.get((d.facility_id, d.resident_id), ""))
        if alert is not None:
            new.append(alert)
    return uow.alerts.append(new)


def _drug(drugs: Sequence[tuple[datetime, Drug]], d: Discrepancy) -> Drug | None:
    """The drug of the discrepancy's order as in force when it occurred (else as in its
    first version), from (valid from, drug) of its versions by number, for the alert to
    name."""
    if not drugs:
        return None
    in_force = [drug for valid_from, drug in drugs if valid_from <= d.occurred_at]
    return in_force[-1] if in_force else drugs[0][1]


def may_watch(principal: Principal, audience: Role) -> None:
    """A shift lead sees shift-lead alerts, a pharmacist pharmacist alerts; an
    administrator any."""
    if principal.role is not Role.ADMIN and principal.role is not audience:
        raise PermissionDenied(f"role {principal.role.value} may not see alerts for "
                               f"{audience.value}", reason="AUDIENCE_NOT_ALLOWED")


def get_alert(uow: UnitOfWork, facility_id: str, alert_id: str) -> Alert:
    alert = uow.alerts.get(facility_id, alert_id)
    if alert is None:
        raise NotFound("no such alert", reason="ALERT_NOT_FOUND")
    return alert


def acknowledge_alert(uow: UnitOfWork, principal: Principal, facility_id: str,
                      alert_id: str, now: datetime) -> Alert:
    """Acknowledge an alert meant for the caller's role (an administrator any). The first
    acknowledgement stands; acknowledging again returns the alert unchanged."""
    get_facility(uow, facility_id)
    alert = get_alert(uow, facility_id, alert_id)
    may_watch(principal, alert.audience)
    uow.alerts.acknowledge(facility_id, alert_id, principal.subject, now)
    return get_alert(uow, facility_id, alert_id)


def escalate_due(uow: UnitOfWork, now: datetime, limit: int = 200) -> int:
    """Escalate the alerts whose time to be acknowledged has passed, exactly once: each is
    claimed in the database, and its escalation has a source key of its own. Returns how
    many were escalated."""
    overdue = uow.alerts.claim_escalations(now, limit)
    # A facility gone since its alert was raised still escalates, on the default clock.
    facilities = {f_id: uow.facilities.get(f_id) or Facility(f_id, f_id)
                  for f_id in {a.facility_id for a in overdue}}
    return uow.alerts.append([
        escalation_of(a, now, FacilityClock.from_facility(facilities[a.facility_id]),
                      facilities[a.facility_id].language) for a in overdue])


def prune_alerts(uow: UnitOfWork, now: datetime) -> int:
    return sum(uow.alerts.prune(f, now - RETENTION) for f in uow.alerts.facilities_with_logs())


def check_resumable(uow: UnitOfWork, facility_id: str, position: int) -> None:
    """OUT_OF_RANGE for a resume point the log can no longer serve."""
    pruned_through, last = uow.alerts.bounds(facility_id)
    if position < pruned_through:
        raise OutOfRange("the resume token is older than the alert log's retention; list "
                         "the alerts instead", reason="RESUME_TOKEN_EXPIRED")
    if position > last:
        raise OutOfRange("the resume token is ahead of the alert log",
                         reason="RESUME_TOKEN_UNKNOWN")


def list_alerts(uow: UnitOfWork, facility_id: str, audience: Role | None,
                unacknowledged_only: bool, page: Page) -> tuple[list[Alert], str]:
    """The facility's alerts for `audience` (None: every audience), newest first."""
    get_facility(uow, facility_id)
    items = uow.alerts.page(facility_id, audience, unacknowledged_only,
                            limit=page.size + 1, before=page.after)
    shown = items[:page.size]
    return shown, next_token(page, items, shown[-1].position if shown else None)


def watch_from(uow: UnitOfWork, facility_id: str, token: str) -> int:
    """Where a watch starts: after the resume token's point (OUT_OF_RANGE if the log can
    no longer serve it), or with no token at the end of the log."""
    get_facility(uow, facility_id)
    if not token:
        return uow.alerts.bounds(facility_id)[1]
    position = parse_resume_token(token, facility_id).position
    check_resumable(uow, facility_id, position)
    return position


class Feed(Protocol):
    """What the watch needs of this process's alert feed (alerts.feed.AlertFeed)."""

    def wait_after(self, facility_id: str, position: int, timeout: float
                   ) -> list[Alert] | None: ...
    def base(self, facility_id: str) -> int: ...


@dataclass(frozen=True)
class WatchEvent:
    """An alert for the watcher, or (alert None) a heartbeat; `position` is where to
    resume after it."""

    alert: Alert | None
    position: int


def watch(uow_factory: UnitOfWorkFactory, feed: Feed, facility_id: str,
          audience: Role | None, position: int, heartbeat_seconds: float,
          ended: threading.Event | Callable[[], bool]) -> Iterator[WatchEvent]:
    """Replay what follows `position`, then stream live: each alert of `audience` (None:
    all) once, in log order, and a heartbeat when nothing was sent for a heartbeat
    interval (and first, to say where the watch stands). The feed holds the recent log
    in memory for every watcher of this process; what it no longer holds is read from
    the log. Ends when `ended` is set."""
    is_ended = ended.is_set if isinstance(ended, threading.Event) else ended
    yield WatchEvent(None, position)  # open: here is where you are
    beat_at = time.monotonic() + heartbeat_seconds
    while not is_ended():
        alerts = feed.wait_after(facility_id, position,
                                 max(0.0, beat_at - time.monotonic()))
        if alerts is None:  # older than this process keeps: replay from the log
            with uow_factory(write=False) as uow:
                alerts = uow.alerts.after(facility_id, position, 500)
            if not alerts:  # nothing up to what the feed holds (pruned)
                position = max(position, feed.base(facility_id))
        for a in alerts:
            position = a.position
            if audience is None or a.audience is audience:
                yield WatchEvent(a, position)
                beat_at = time.monotonic() + heartbeat_seconds
        if time.monotonic() >= beat_at:
            yield WatchEvent(None, position)
            beat_at = time.monotonic() + heartbeat_seconds
