"""Emergency lists written ahead of time, so they are on disk when the network is not
(MEDSERVICE_EMERGENCY_DIR; empty: off). Every `interval` seconds this replica writes, for
each facility, the current shift's list and the next ones' to
`{dir}/{facility}/{date}-{shift}.pdf`: each file whole (a temporary file in the same folder,
renamed over the old one), so a reader never finds half a list. They are written again on
every run, so a card changed since shows; lists of shifts that ended two days ago go.
Replicas sharing the folder write the same content; the last rename wins."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time as timer
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from medservice.domain.clock import FacilityClock
from medservice.reconcile.ledger import FacilityRules
from medservice.reports.emergency import emergency_pdf
from medservice.service import rounds
from medservice.service.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger("medservice.emergency_lists")

KEEP = timedelta(days=2)


def coming_shifts(clock: FacilityClock, now: datetime, count: int
                  ) -> list[tuple[date, str]]:
    """The shift running at `now` (if any) and the ones after it: `count` in all, by
    start, as (shift date, shift id)."""
    today = clock.local_date_of(now)
    found = []
    for day in (today - timedelta(days=1), today, today + timedelta(days=1),
                today + timedelta(days=2)):
        for s in clock.shifts:
            start, end = clock.shift_interval(day, s.shift_id)
            if end > now:
                found.append((start, day, s.shift_id))
    found.sort()
    return [(day, shift_id) for _, day, shift_id in found[:count]]


def write_atomically(path: Path, content: bytes) -> None:
    """`path` holds `content` whole or keeps what it held: a temporary file in the same
    folder, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class WriteReport:
    written: int = 0
    removed: int = 0
    failed: int = 0


def write_emergency_lists(uow: UnitOfWorkFactory, folder: Path, now: datetime,
                          shifts: int = 3) -> WriteReport:
    """One run: every facility's coming `shifts` lists, and old lists removed. A facility
    that fails is logged and counted; the others are still written."""
    report = WriteReport()
    with uow(write=False) as u:
        facilities, after = [], None
        while True:
            page = u.facilities.list(limit=500, after=after, only=None)
            facilities += page
            if len(page) < 500:
                break
            after = page[-1].facility_id
    for facility in facilities:
        clock = FacilityRules.from_facility(facility).clock
        for day, shift_id in coming_shifts(clock, now, shifts):
            try:
                with uow(write=False) as u:
                    lst = rounds.emergency_list(u, facility.facility_id, day, shift_id, now)
                path = folder / facility.facility_id / f"{day.isoformat()}-{shift_id}.pdf"
                write_atomically(path, emergency_pdf(lst).content)
                report.written += 1
            except Exception:
                log.exception("emergency list not written", facility=facility.facility_id,
                              shift=shift_id, date=day.isoformat())
                report.failed += 1
    cutoff = timer.time() - KEEP.total_seconds()
    for old in folder.glob("*/*.pdf"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
            report.removed += 1
    return report


class EmergencyListWriter:
    """Runs `write_emergency_lists` every `interval` seconds in this process (APScheduler,
    in-memory job store, as the sweep)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime],
                 folder: Path, interval_seconds: float) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.folder = folder
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        self._scheduler.add_job(self.run_once, "interval", seconds=self._interval,
                                id="emergency-lists", max_instances=1, coalesce=True,
                                misfire_grace_time=None, next_run_time=datetime.now(UTC))
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run_once(self) -> WriteReport:
        with self._lock:
            try:
                report = write_emergency_lists(self._uow, self.folder, self._clock())
            except Exception:
                log.exception("emergency lists not written")
                return WriteReport(failed=1)
            log.info("emergency lists written", written=report.written,
                     removed=report.removed, failed=report.failed)
            return report
