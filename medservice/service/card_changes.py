"""Use cases of the approval of card changes (issue 16 part 1): note what a sync or an
import changed, list the changes waiting for approval, approve one.

The rules are `domain.card_changes`: what is clinical, how later versions join a pending
change. Here: which versions are compared, the alert, the etag-guarded approval."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from medservice.domain.alerts import card_change_alert, card_change_alert_ids
from medservice.domain.card_changes import (
    ChangeStatus,
    PendingChange,
    pending_after,
)
from medservice.domain.clock import FacilityClock
from medservice.domain.errors import Aborted, FailedPrecondition, FieldViolation, NotFound, require
from medservice.domain.orders import OrderVersion
from medservice.service.facilities import get_facility
from medservice.service.unit_of_work import UnitOfWork


def note_changes(uow: UnitOfWork, facility_id: str, resident_id: str,
                 history: dict[str, list[OrderVersion]], new: Sequence[OrderVersion],
                 now: datetime) -> list[PendingChange]:
    """Classify each new order version against the order's version before it (`history`:
    the order's versions before these, by order id) and keep the resident's pending
    changes up to date; alert the shift lead of each new clinical version. Returns the
    changes that wait for approval after it."""
    if not new:
        return []
    facility = get_facility(uow, facility_id)
    clock = FacilityClock.from_facility(facility)
    current = {c.order_id: c for c in uow.card_changes.pending(facility_id, resident_id)}
    alerts = []
    out = []
    for version in new:
        versions = history.get(version.order_id, [])
        previous = max(versions, key=lambda v: v.version, default=None)
        pending = current.get(version.order_id)
        base = None
        if pending is not None and pending.base_version:
            base_version = next((v for v in versions if v.version == pending.base_version),
                                None)
            base = (None if base_version is None or base_version.removed
                    else base_version.content)
        after = pending_after(pending, base, previous, version, clock, now)
        if after is None:
            continue
        uow.card_changes.save(after)
        current[version.order_id] = after
        if after.status is ChangeStatus.PENDING and (pending is None or after.etag
                                                     != pending.etag):
            alerts.append(card_change_alert(after, version.version, clock, now,
                                            facility.language))
        if after.status is ChangeStatus.PENDING:
            out.append(after)
    uow.alerts.append(alerts)
    return out


def pending_changes(uow: UnitOfWork, facility_id: str, resident_id: str | None = None
                    ) -> tuple[str, list[PendingChange]]:
    """The facility's (or a resident's) changes waiting for approval, oldest first, with
    the facility's time zone (the one their texts are in)."""
    zone = get_facility(uow, facility_id).time_zone
    return zone, uow.card_changes.pending(facility_id, resident_id)


def approve_change(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
                   first_version: int, etag: str, by: str, now: datetime
                   ) -> tuple[str, PendingChange]:
    """Approve a clinical change as read (its etag): a compare-and-set, so a change that
    took in a later version since it was read, or that another nurse approved, is refused
    (ABORTED, ETAG_MISMATCH) and must be read again. Returns the facility's time zone
    and the approved change."""
    require([FieldViolation("etag", "is required: the change's etag as read")] if not etag
            else [])
    zone = get_facility(uow, facility_id).time_zone
    change = uow.card_changes.get(facility_id, resident_id, order_id, first_version)
    if change is None:
        raise NotFound("no such card change", reason="CARD_CHANGE_NOT_FOUND")
    if change.status is ChangeStatus.APPROVED:
        raise FailedPrecondition("the change was approved already",
                                 reason="CHANGE_ALREADY_APPROVED")
    if change.status is ChangeStatus.WITHDRAWN:
        raise FailedPrecondition("the order is back as it was approved: nothing to approve",
                                 reason="CHANGE_WITHDRAWN")
    if not uow.card_changes.approve(change, etag, by, now):
        raise Aborted("the change was updated since it was read; read it again",
                      reason="ETAG_MISMATCH")
    approved = uow.card_changes.get(facility_id, resident_id, order_id, first_version)
    assert approved is not None
    # The shift lead's alerts for it are answered by the approval: off the board and lists.
    for alert_id in card_change_alert_ids(approved):
        uow.alerts.acknowledge(facility_id, alert_id, by, now)
    return zone, approved
