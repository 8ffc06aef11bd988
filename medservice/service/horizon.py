"""The materialised schedule's horizon: due doses are materialised per facility a rolling
`HORIZON` ahead (what the missed-dose sweep claims once their windows close), refreshed
for a resident with every change to their orders, re-planned for a facility with every
change to its settings, and extended as time passes. Each in the caller's unit of work, so
the rows are the new plan before the change commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from medservice.domain.errors import NotFound
from medservice.domain.facility import Facility
from medservice.service.materialise import materialise_facility
from medservice.service.unit_of_work import UnitOfWork

# Doses are materialised this far ahead, and extended when less than half of it is left.
HORIZON = timedelta(hours=48)
# A refresh also rewrites this far back: doses whose window is open or just closed.
REFRESH_BACK = timedelta(hours=12)
# Swept doses are kept this long for batch reconciliation to read; a batch over an older
# range materialises it again itself.
SCHEDULE_RETENTION = timedelta(days=45)


def _facility(uow: UnitOfWork, facility_id: str) -> Facility:
    facility = uow.facilities.get(facility_id)
    if facility is None:
        raise NotFound("no such facility", reason="FACILITY_NOT_FOUND")
    return facility


def refresh_resident_doses(uow: UnitOfWork, facility_id: str, resident_id: str,
                           now: datetime) -> None:
    """Re-materialise the resident's doses after an order change: added, moved or
    cancelled doses are in the sweep's table before this unit of work commits."""
    start = now - REFRESH_BACK
    end = max(uow.schedule.horizon(facility_id) or now, now) + HORIZON
    materialise_facility(uow, _facility(uow, facility_id), start, end, now,
                         residents={resident_id})


def replan_facility(uow: UnitOfWork, facility: Facility, now: datetime) -> None:
    """After the facility's times, windows or shifts changed (`facility` as it is now):
    its doses from a little back to its horizon become the new plan in this unit of work.
    A moved dose is swept again under its new window, and a dose of the old plan that no
    longer exists is gone before any sweep can claim it."""
    facility_id = facility.facility_id
    start = now - REFRESH_BACK
    end = max(uow.schedule.horizon(facility_id) or now, now + HORIZON)
    uow.schedule.ensure_horizon(facility_id, end)
    materialise_facility(uow, facility, start, end, now)
    uow.schedule.set_horizon(facility_id, end)


def extend_horizon_once(uow: UnitOfWork, now: datetime) -> str | None:
    """Extend one facility whose materialised doses run out within HORIZON / 2."""
    for facility_id in uow.facilities.ids_without_horizon():
        uow.schedule.ensure_horizon(facility_id, now)
    claimed = uow.schedule.claim_horizon(now + HORIZON / 2)
    if claimed is None:
        return None
    facility_id, until = claimed
    start, end = max(until, now - REFRESH_BACK), now + HORIZON
    materialise_facility(uow, _facility(uow, facility_id), start, end, now)
    uow.schedule.set_horizon(facility_id, end)
    return facility_id
