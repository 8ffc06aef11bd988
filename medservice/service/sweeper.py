"""Runs the missed-dose sweep in this process, every few seconds (APScheduler with an
in-memory job store: the database, not a shared job store, makes each piece of work happen
once across replicas)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from medservice.service.sweep import SweepReport, sweep
from medservice.service.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger("medservice.sweep")


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
