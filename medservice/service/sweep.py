"""The missed-dose sweep and the materialised due doses it works from.

Due doses are materialised per facility over a rolling horizon (`HORIZON` ahead) and
refreshed for a resident in the same unit of work as every change to their orders, so the
sweep sees every due dose. Every replica runs the sweep; each unit of work is claimed in the
database (SKIP LOCKED on PostgreSQL, the single writer on SQLite), so it happens once
whichever replica gets there first. A claimed dose is not trusted as it stands: the
resident is reconciled against the order history as known now, which decides whether the
dose was missed (an order changed just before the window closed is respected), and the
discrepancy's stable key and the alert's source key make raising it exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError

from medservice.service.alerts import escalate_due, prune_alerts
from medservice.service.facilities import get_facility
from medservice.service.materialise import materialise_facility
from medservice.service.reconciliation import reconcile_resident
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("medservice.sweep")

T = TypeVar("T")

# Doses are materialised this far ahead, and extended when less than half of it is left.
HORIZON = timedelta(hours=48)
# A refresh also rewrites this far back: doses whose window is open or just closed.
REFRESH_BACK = timedelta(hours=12)
# Swept doses are kept this long for batch reconciliation to read; a batch over an older
# range materialises it again itself.
SCHEDULE_RETENTION = timedelta(days=45)


def refresh_resident_doses(uow: UnitOfWork, facility_id: str, resident_id: str,
                           now: datetime) -> None:
    """Re-materialise the resident's doses after an order change: added, moved or
    cancelled doses are in the sweep's table before this unit of work commits."""
    facility = get_facility(uow, facility_id)
    start = now - REFRESH_BACK
    end = max(uow.schedule.horizon(facility_id) or now, now) + HORIZON
    materialise_facility(uow, facility, start, end, now, residents={resident_id})


def reset_facility_doses(uow: UnitOfWork, facility_id: str, now: datetime) -> None:
    """After the facility's times, windows or shifts change: forget its unswept doses from
    a little back and let the next sweep materialise them again under the new settings
    (the stamps name the old settings, so batch reconciliation no longer trusts them)."""
    start = now - REFRESH_BACK
    uow.schedule.forget_unswept(facility_id, start)
    uow.schedule.ensure_horizon(facility_id, start)
    uow.schedule.set_horizon(facility_id, start)


def extend_horizon_once(uow: UnitOfWork, now: datetime) -> str | None:
    """Extend one facility whose materialised doses run out within HORIZON / 2."""
    for facility_id in uow.facilities.ids_without_horizon():
        uow.schedule.ensure_horizon(facility_id, now)
    claimed = uow.schedule.claim_horizon(now + HORIZON / 2)
    if claimed is None:
        return None
    facility_id, until = claimed
    facility = get_facility(uow, facility_id)
    start, end = max(until, now - REFRESH_BACK), now + HORIZON
    materialise_facility(uow, facility, start, end, now)
    uow.schedule.set_horizon(facility_id, end)
    return facility_id


def sweep_resident_once(uow: UnitOfWork, now: datetime, skip: set[tuple[str, str]],
                        attempt: list[tuple[str, str]]) -> int | None:
    """Claim the closed, unswept doses of one resident (not one in `skip`) and reconcile
    that resident: a missed one raises MISSED_DOSE and its alert. Returns the doses swept,
    None when there was nothing to claim. `attempt` gets the resident before the work, so
    that a failure can be skipped for the rest of the pass instead of blocking it."""
    candidates = uow.schedule.claim_closed(now, len(skip) + 1)
    first = next((d for d in candidates if (d.facility_id, d.resident_id) not in skip), None)
    if first is None:
        return None
    facility_id, resident_id = first.facility_id, first.resident_id
    attempt[:] = [(facility_id, resident_id)]
    claimed = uow.schedule.claim_closed(now, 10_000, facility_id=facility_id,
                                        resident_id=resident_id)
    start = min(d.due_at for d in claimed)
    end = max(d.due_at for d in claimed)
    reconcile_resident(uow, facility_id, resident_id, start, end, now)
    uow.schedule.mark_swept([d.dose_id for d in claimed], now)
    return len(claimed)


@dataclass
class SweepReport:
    extended: int = 0
    swept: int = 0
    escalated: int = 0
    failed: int = 0


def sweep(uow_factory: UnitOfWorkFactory, now: datetime, *, prune: bool = False,
          max_units: int = 10_000) -> SweepReport:
    """One pass: extend horizons, sweep closed doses resident by resident, escalate what
    nobody acknowledged; each step its own short transaction. A failed unit (a deadlock
    a replica lost, say) is rolled back and left for the next pass; a resident that
    failed is passed over for the rest of this one."""
    report = SweepReport()
    for _ in range(max_units):
        if _unit(uow_factory, report, lambda u: extend_horizon_once(u, now)) is None:
            break
        report.extended += 1
    skip: set[tuple[str, str]] = set()
    attempt: list[tuple[str, str]] = []
    for _ in range(max_units):
        failed = report.failed
        swept = _unit(uow_factory, report,
                      lambda u: sweep_resident_once(u, now, skip, attempt))
        if report.failed > failed and attempt:
            skip.add(attempt[0])  # left unswept: the next pass tries this resident again
            continue
        if swept is None:
            break
        report.swept += swept
    while True:
        escalated = _unit(uow_factory, report, lambda u: escalate_due(u, now)) or 0
        report.escalated += escalated
        if escalated < 200:
            break
    if prune:
        _unit(uow_factory, report, lambda u: prune_alerts(u, now))
        _unit(uow_factory, report,
              lambda u: u.schedule.prune(now - SCHEDULE_RETENTION))
    return report


def _unit(uow_factory: UnitOfWorkFactory, report: SweepReport,
             work: Callable[[UnitOfWork], T]) -> T | None:
    try:
        with uow_factory() as uow:
            result = work(uow)
            uow.commit()
            return result
    except DBAPIError as e:  # a deadlock lost to another replica, a lost connection
        report.failed += 1
        log.warning("sweep unit rolled back", error=type(e.orig).__name__)
        return None
    except Exception:  # a resident whose reconciliation fails must not stop the sweep
        report.failed += 1
        log.exception("sweep unit failed")
        return None


class Sweeper:
    """Runs `sweep` every `interval` seconds in this process (APScheduler, in-memory job
    store: the database, not a shared job store, makes the work happen once)."""

    PRUNE_EVERY = timedelta(hours=1)

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime],
                 interval_seconds: float) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._last_prune: datetime | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        self._scheduler.add_job(self.run_once, "interval", seconds=self._interval,
                                id="missed-dose-sweep", max_instances=1, coalesce=True,
                                misfire_grace_time=None, next_run_time=datetime.now(UTC))
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run_once(self) -> SweepReport:
        """One sweep now (the scheduler's job; tests call it directly)."""
        with self._lock:
            now = self._clock()
            prune = self._last_prune is None or now - self._last_prune >= self.PRUNE_EVERY
            try:
                report = sweep(self._uow, now, prune=prune)
            except Exception:
                log.exception("sweep failed")
                return SweepReport(failed=1)
            if prune:
                self._last_prune = now
            if report.swept or report.escalated or report.failed:
                log.info("swept", extended=report.extended, swept=report.swept,
                         escalated=report.escalated, failed=report.failed)
            return report
