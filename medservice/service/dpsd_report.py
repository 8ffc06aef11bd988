"""The DPSD monthly collective report of one facility and facility-local month: the
stored discrepancies of the month with the pharmacist's decisions, counted by the one rule
`reconcile.dpsd.dpsd_counts`. Rendering (CSV, PDF) is `medservice.reports.dpsd`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from medservice.domain.discrepancy import Discrepancy
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import OrderVersion, version_at
from medservice.reconcile.dpsd import Category, DpsdCounts, Reviewed, dpsd_category, dpsd_counts
from medservice.reconcile.ledger import FacilityRules
from medservice.service.charts import next_month
from medservice.service.facilities import get_facility
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.discrepancies import DiscrepancyEntry, DiscrepancyFilter, Status

ALL = 1_000_000  # a month of one facility: what the error rate reads too


@dataclass(frozen=True)
class Individual:
    """A confirmed error of high severity, with what the home needs to report it."""

    entry: DiscrepancyEntry
    category: Category | None
    resident: Resident | None
    drug: str  # "Name strength"; empty when unknown


@dataclass(frozen=True)
class DpsdReport:
    facility: Facility
    month: date  # its first day
    start: datetime  # local midnight of the first day, as an instant
    end: datetime  # local midnight of the next month's first day
    counts: DpsdCounts
    individual: list[Individual]
    as_of: datetime  # facility-local


def dpsd_report(uow: UnitOfWork, facility_id: str, month: date, now: datetime) -> DpsdReport:
    """The month's incidents from what is stored now (reconcile first for an up-to-date
    report; months to come count nothing yet)."""
    facility = get_facility(uow, facility_id)
    clock = FacilityRules.from_facility(facility).clock
    start, end = clock.instant(month, time(0)), clock.instant(next_month(month), time(0))
    entries = [e for e in uow.discrepancies.page(
        DiscrepancyFilter(frozenset({facility_id}), start=start, end=end), limit=ALL,
        after=None) if e.status is not Status.WITHDRAWN]
    counts = dpsd_counts(Reviewed(e.discrepancy, e.decision) for e in entries)
    by_key = {e.discrepancy.key: e for e in entries}
    residents: dict[str, Resident | None] = {}
    orders: dict[tuple[str, str], list[OrderVersion]] = {}
    individual = []
    for r in counts.individual:  # a resident and an order read once each
        d = r.discrepancy
        if d.resident_id not in residents:
            residents[d.resident_id] = uow.residents.get(facility_id, d.resident_id)
        individual.append(Individual(by_key[d.key], dpsd_category(d, r.decision),
                                     residents[d.resident_id], _drug(uow, d, orders)))
    return DpsdReport(facility, month, start, end, counts, individual, clock.local(now))


def _drug(uow: UnitOfWork, d: Discrepancy,
          orders: dict[tuple[str, str], list[OrderVersion]]) -> str:
    """The drug of the order in force when it happened, else the record's drug id (an
    unordered drug has no order)."""
    if d.order_id:
        key = (d.resident_id, d.order_id)
        if key not in orders:
            orders[key] = uow.cards.order_versions(d.facility_id, d.resident_id, d.order_id)
        v = version_at(orders[key], d.occurred_at)
        if v is not None:
            return f"{v.content.drug.name} {v.content.drug.strength}".strip()
    if d.record_id:
        record = uow.records.get(d.facility_id, d.resident_id, d.record_id)
        if record is not None:
            return record.drug_id
    return ""
