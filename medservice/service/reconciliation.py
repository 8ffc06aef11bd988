"""Reconciliation as the service runs it: incrementally, one resident around every record,
correction and order change (and the sweep's closed doses); in batch, facilities over a
range (`batch`); and the error rate from what is stored. The rules are the engine's
(`reconcile.reconcile`); this module saves what is found by key, withdraws what is no
longer found and raises the alerts, in the caller's unit of work."""

from __future__ import annotations

from datetime import datetime, timedelta

from medservice.domain.administration import AdministrationRecord
from medservice.reconcile import Discrepancy, context_range, reconcile
from medservice.reconcile.rate import ErrorRate, dose_counts, error_rate
from medservice.service.alerts import raise_alerts
from medservice.service.batch import reconcile_facilities
from medservice.service.facilities import get_facility
from medservice.service.round_context import ResidentOrders, doses_around, resident_orders
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.discrepancies import DiscrepancyFilter, Status


def reconcile_resident(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
                       end: datetime, now: datetime) -> list[Discrepancy]:
    """Reconcile one resident over [start, end] widened by a day either side (a record can
    move what is extra, late or over a PN limit around it), save what is found by key and
    withdraw what is no longer found. Records are reconciled whenever they were made;
    only a dose due before the mirror first knew its order is never missed (the engine's
    rule, per order). Returns what was found."""
    base = resident_orders(uow, facility_id, resident_id)
    lo, hi = reconciled_range(start, end)
    wide = context_range(lo, hi, base.orders.values())
    return reconcile_around(uow, base, resident_id, lo, hi, wide,
                      uow.records.between(facility_id, resident_id, *wide), now)


_DAY = timedelta(days=1)


def reconciled_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The range reconcile_resident reconciles for [start, end]."""
    return start - _DAY, end + _DAY


def reconcile_around(uow: UnitOfWork, base: ResidentOrders, resident_id: str, lo: datetime,
               hi: datetime, context: tuple[datetime, datetime],
               records: list[AdministrationRecord], now: datetime) -> list[Discrepancy]:
    """reconcile_resident's work over [lo, hi), given the records of its context range
    (RecordDose passes what it has read already)."""
    facility_id = base.facility.facility_id
    doses = doses_around(uow, base, resident_id, *context, now, None)
    found = reconcile(facility_id, lo, hi, doses=doses, records=records,
                      orders={resident_id: base.orders}, rules=base.rules, now=now)
    new = uow.discrepancies.save_and_withdraw(found, facility_id, resident_id, lo, hi, now)
    raise_alerts(uow, base.facility, found, new, now)
    return found


def reconcile_facility(uow: UnitOfWork, facility_id: str, start: datetime, end: datetime,
                       now: datetime) -> tuple[int, int, list[Discrepancy], int]:
    """Batch reconciliation of a facility over [start, end): (doses examined, records
    examined, discrepancies found, of which new). See `service.batch`."""
    done = reconcile_facilities(uow, [facility_id], start, end, now)
    return done.doses, done.records, done.found, done.new


def facility_error_rate(uow: UnitOfWork, facility_id: str, start: datetime, end: datetime
                        ) -> ErrorRate:
    """Errors / (doses given + doses ordered but not given) x 100 over [start, end), from
    the stored discrepancies (reconcile first for an up-to-date figure)."""
    get_facility(uow, facility_id)
    entries = uow.discrepancies.page(
        DiscrepancyFilter(frozenset({facility_id}), start=start, end=end),
        limit=1_000_000, after=None)
    found = [e.discrepancy for e in entries if e.status is not Status.WITHDRAWN]
    records = uow.records.between(facility_id, None, start, end)
    counts = dose_counts(records, found, start, end)
    return error_rate(found, counts.given, counts.not_given)
