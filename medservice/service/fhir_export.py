"""A resident's documentation over a period as a FHIR R4 searchset Bundle (issue 20): every
administration record administered in it (MedicationAdministration) and every discrepancy
that occurred in it and still holds (DetectedIssue). The shapes are medservice.exports.fhir's."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from medservice.domain.clock import FacilityClock
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.orders import OrderContent
from medservice.exports.fhir import detected_issue, medication_administration, searchset
from medservice.service.facilities import get_facility, get_resident
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.discrepancies import DiscrepancyEntry, DiscrepancyFilter, Status

# More than this in one Bundle is refused: ask for a shorter period.
MAX_RESOURCES = 20_000
_PAGE = 1000


RESOURCE_TYPES = ("MedicationAdministration", "DetectedIssue")


def export_resident(uow: UnitOfWork, facility_id: str, resident_id: str, first: date,
                    until: date, resource_type: str = "") -> dict[str, Any]:
    """Local dates first (inclusive) to until (exclusive), in the facility's zone; one of
    RESOURCE_TYPES only, or both ("")."""
    if until <= first:
        raise InvalidArgument([FieldViolation("end_date", "must be after start_date")])
    if resource_type and resource_type not in RESOURCE_TYPES:
        raise InvalidArgument([FieldViolation("resource_type", "must be "
                                              + " or ".join(RESOURCE_TYPES) + ", or empty")])
    facility = get_facility(uow, facility_id)
    get_resident(uow, facility_id, resident_id)
    clock = FacilityClock.from_facility(facility)
    start, end = clock.instant(first, time(0)), clock.instant(until, time(0))
    records = (uow.records.between(facility_id, resident_id, start, end)
               if resource_type != "DetectedIssue" else [])
    issues = (_discrepancies(uow, facility_id, resident_id, start, end)
              if resource_type != "MedicationAdministration" else [])
    if len(records) + len(issues) > MAX_RESOURCES:
        raise InvalidArgument([FieldViolation("end_date", f"more than {MAX_RESOURCES} "
                                                          "resources: ask for a shorter period")])
    orders: dict[str, OrderContent] = {
        order_id: versions[-1].content
        for order_id, versions in uow.cards.resident_versions(facility_id, resident_id).items()}
    resources = [medication_administration(r, orders.get(r.order_id or ""), clock)
                 for r in sorted(records, key=lambda r: (r.administered_at, r.record_id))]
    resources += [detected_issue(e, clock) for e in issues]
    return searchset(resources)


def _discrepancies(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
                   end: datetime) -> list[DiscrepancyEntry]:
    found: list[DiscrepancyEntry] = []
    after = None
    f = DiscrepancyFilter(frozenset({facility_id}), resident_id=resident_id, start=start,
                          end=end)
    while len(found) <= MAX_RESOURCES:
        page = uow.discrepancies.page(f, limit=_PAGE, after=after)
        found += [e for e in page if e.status is not Status.WITHDRAWN]
        if len(page) < _PAGE:
            break
        after = (page[-1].discrepancy.occurred_at.isoformat(), page[-1].discrepancy_id)
    return sorted(found, key=lambda e: (e.discrepancy.occurred_at, e.discrepancy_id))
