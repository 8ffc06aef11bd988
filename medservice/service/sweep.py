"""The missed-dose sweep, over the materialised due doses (`horizon`).

Every replica runs the sweep (`sweeper.Sweeper`); each unit of work is claimed in the
database (SKIP LOCKED on PostgreSQL, the single writer on SQLite), so it happens once
whichever replica gets there first. A claimed dose is not trusted as it stands: the
resident is reconciled against the order history as known now, which decides whether the
dose was missed (an order changed just before the window closed is respected), and the
discrepancy's stable key and the alert's source key make raising it exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

from medservice.service.alerts import escalate_due, prune_alerts
from medservice.service.horizon import SCHEDULE_RETENTION, extend_horizon_once
from medservice.service.reconciliation import reconcile_resident
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("medservice.sweep")

T = TypeVar("T")


class ResidentSweepFailed(Exception):
    """Sweeping one resident failed: the pass goes on without them (the next pass tries
    again, the claim having been rolled back)."""

    def __init__(self, resident: tuple[str, str]) -> None:
        super().__init__("sweeping a resident failed")
        self.resident = resident


def sweep_resident_once(uow: UnitOfWork, now: datetime, skip: set[tuple[str, str]]
                        ) -> int | None:
    """Claim the closed, unswept doses of one resident (not one in `skip`) and reconcile
    that resident: a missed one raises MISSED_DOSE and its alert. Returns the doses swept,
    None when there was nothing to claim; ResidentSweepFailed names a resident whose
    work failed."""
    candidates = uow.schedule.claim_closed(now, len(skip) + 1)
    first = next((d for d in candidates if (d.facility_id, d.resident_id) not in skip), None)
    if first is None:
        return None
    facility_id, resident_id = first.facility_id, first.resident_id
    try:
        claimed = uow.schedule.claim_closed(now, 10_000, facility_id=facility_id,
                                            resident_id=resident_id)
        start = min(d.due_at for d in claimed)
        end = max(d.due_at for d in claimed)
        reconcile_resident(uow, facility_id, resident_id, start, end, now)
        uow.schedule.mark_swept([d.dose_id for d in claimed], now)
    except Exception as e:
        raise ResidentSweepFailed((facility_id, resident_id)) from e
    return len(claimed)


def sweep_followups_once(uow: UnitOfWork, now: datetime, skip: set[tuple[str, str]]
                         ) -> int | None:
    """Claim the records of one resident (not one in `skip`) whose PN evaluation deadline
    has passed unswept, and reconcile that resident: a PN dose not evaluated in time raises
    PN_NOT_EVALUATED and its alert, once (issue 16). Returns the records swept, None when
    there was nothing to claim."""
    candidates = uow.records.claim_followups(now, len(skip) + 1)
    first = next((c for c in candidates if (c[0], c[1]) not in skip), None)
    if first is None:
        return None
    facility_id, resident_id = first[0], first[1]
    try:
        claimed = uow.records.claim_followups(now, 10_000, facility_id=facility_id,
                                              resident_id=resident_id)
        start = min(c[3] for c in claimed)
        end = max(c[3] for c in claimed)
        reconcile_resident(uow, facility_id, resident_id, start, end, now)
        uow.records.mark_followups_swept([c[2] for c in claimed])
    except Exception as e:
        raise ResidentSweepFailed((facility_id, resident_id)) from e
    return len(claimed)


@dataclass
class SweepReport:
    extended: int = 0
    swept: int = 0
    followups: int = 0
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
        if not isinstance(_unit(uow_factory, report, lambda u: extend_horizon_once(u, now)),
                          str):
            break
        report.extended += 1
    skip: set[tuple[str, str]] = set()
    for _ in range(max_units):
        swept = _unit(uow_factory, report, lambda u: sweep_resident_once(u, now, skip))
        if isinstance(swept, ResidentSweepFailed):
            skip.add(swept.resident)  # left unswept: the next pass tries them again
            continue
        if swept is None:
            break
        report.swept += swept
    for _ in range(max_units):
        done = _unit(uow_factory, report, lambda u: sweep_followups_once(u, now, skip))
        if isinstance(done, ResidentSweepFailed):
            skip.add(done.resident)
            continue
        if done is None:
            break
        report.followups += done
    while True:
        escalated = _unit(uow_factory, report, lambda u: escalate_due(u, now))
        escalated = escalated if isinstance(escalated, int) else 0
        report.escalated += escalated
        if escalated < 200:
            break
    if prune:
        _unit(uow_factory, report, lambda u: prune_alerts(u, now))
        _unit(uow_factory, report,
              lambda u: u.schedule.prune(now - SCHEDULE_RETENTION))
    return report


def _unit(uow_factory: UnitOfWorkFactory, report: SweepReport,
          work: Callable[[UnitOfWork], T]) -> T | ResidentSweepFailed | None:
    """`work` in its own unit of work, committed; a failure is rolled back, counted and
    logged, and returns None (or the resident that failed)."""
    try:
        with uow_factory() as uow:
            result = work(uow)
            uow.commit()
            return result
    except ResidentSweepFailed as e:
        report.failed += 1
        _log_failure(e.__cause__ or e)
        return e
    except Exception as e:
        report.failed += 1
        _log_failure(e)
        return None


def _log_failure(error: BaseException) -> None:
    if isinstance(error, DBAPIError):  # a deadlock lost to another replica, a lost connection
        log.warning("sweep unit rolled back", error=type(error.orig).__name__)
    else:  # a resident whose reconciliation fails must not stop the sweep
        log.error("sweep unit failed", exc_info=error)
