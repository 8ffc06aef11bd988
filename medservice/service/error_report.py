"""The monthly error rate of a facility over a range of months: `facility_error_rate`
(the one rule, `reconcile.rate`) of each facility-local calendar month. Rendering is
`medservice.reports.error_rate`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.facility import Facility
from medservice.reconcile.ledger import FacilityRules
from medservice.reconcile.rate import ErrorRate
from medservice.service.charts import next_month
from medservice.service.facilities import get_facility
from medservice.service.reconciliation import facility_error_rate
from medservice.service.unit_of_work import UnitOfWork

MAX_MONTHS = 24


@dataclass(frozen=True)
class ErrorRateReport:
    facility: Facility
    months: list[tuple[date, ErrorRate]]  # first day of each month, oldest first
    as_of: datetime  # facility-local


def month_range(first: date, last: date) -> list[date]:
    """The months first..last (first days); a field error on `to_month` when empty or
    longer than MAX_MONTHS."""
    if last < first:
        raise InvalidArgument([FieldViolation("to_month", "must not be before from_month")])
    months = [first]
    while months[-1] < last:
        months.append(next_month(months[-1]))
    if len(months) > MAX_MONTHS:
        raise InvalidArgument([FieldViolation(
            "to_month", f"the range may span at most {MAX_MONTHS} months")])
    return months


def monthly_error_rates(uow: UnitOfWork, facility_id: str, first: date, last: date,
                        now: datetime) -> ErrorRateReport:
    """The error rate of each local month first..last, from the stored discrepancies as
    ComputeErrorRate reads them (months to come count nothing yet)."""
    months = month_range(first, last)
    facility = get_facility(uow, facility_id)
    clock = FacilityRules.from_facility(facility).clock
    rates = [(m, facility_error_rate(uow, facility_id, clock.instant(m, time(0)),
                                     clock.instant(next_month(m), time(0))))
             for m in months]
    return ErrorRateReport(facility, rates, clock.local(now))
