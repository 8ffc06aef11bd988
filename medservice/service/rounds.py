"""Use cases of the round: shift schedules, dispensing lists, scheduled doses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from medservice.domain import bounds
from medservice.domain.administration import AdministrationRecord
from medservice.domain.card_changes import PendingChange
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import (
    DoseState,
    DoseWithOrder,
    ResidentDispensing,
    ShiftSchedule,
    build_shift_schedule,
    dispensing_list,
    doses_between,
)
from medservice.reconcile import FacilityRules, context_range
from medservice.reconcile.ledger import Placement
from medservice.reconcile.status import pn_lines, resident_ledger
from medservice.service.card_checks import card_check_notes, facility_findings
from medservice.service.facilities import all_residents, get_facility, get_resident
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork

MAX_RANGE_DAYS = 31


def parse_date(value: str, field: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument([FieldViolation(field, "must be a date YYYY-MM-DD")]) from None
    out_of_range = bounds.date_violation(day, field)
    if out_of_range is not None:  # a shift's end or a list's next day would overflow
        raise InvalidArgument([out_of_range])
    return day


def shift_schedule(uow: UnitOfWork, facility_id: str, shift_date: date, shift_id: str,
                   now: datetime) -> ShiftSchedule:
    """The round list as of `now`: each dose with its status and the record that settled
    it, each PN line with what is used and left at now (clamped into the shift), from the
    ledger the check and reconciliation use, over the context reconciliation would use."""
    facility = get_facility(uow, facility_id)
    rules = FacilityRules.from_facility(facility)
    rules.clock.shift(shift_id)  # an unknown shift is a field error before any work
    versions = uow.cards.facility_versions(facility_id)
    histories = [h for orders in versions.values() for h in orders.values()]
    lo, hi = context_range(*rules.clock.shift_interval(shift_date, shift_id), histories)
    records: dict[str, list[AdministrationRecord]] = defaultdict(list)
    for r in uow.records.between(facility_id, None, lo, hi):
        records[r.resident_id].append(r)
    # Residents with nothing recorded around the shift need no context: each dose's state
    # is its own, and no PN dose is used.
    pending: dict[str, dict[str, PendingChange]] = defaultdict(dict)
    for change in uow.card_changes.pending(facility_id):
        pending[change.resident_id][change.order_id] = change
    schedule = build_shift_schedule(facility_id, rules.clock, shift_date, shift_id,
                                    all_residents(uow, facility_id), versions, now,
                                    context=(lo, hi), context_residents=set(records),
                                    pending=pending, language=facility.language)
    at = min(max(now, schedule.start), schedule.end)
    # The inspection checks run with every round list: the card as it is now.
    findings = facility_findings(uow, facility, versions, now)
    for entry in schedule.residents:
        entry.notes += card_check_notes(findings.get(entry.resident.resident_id, []))
        rid = entry.resident.resident_id
        entry.states, placements = resident_ledger(
            facility_id, rid, versions.get(rid, {}), entry.context_doses, records[rid], rules,
            now)
        entry.pn = pn_lines(entry.pn, placements, at, rules)
    return schedule


def shift_dispensing_list(uow: UnitOfWork, facility_id: str, shift_date: date, shift_id: str,
                          now: datetime) -> list[ResidentDispensing]:
    facility = get_facility(uow, facility_id)
    rules = FacilityRules.from_facility(facility)
    rules.clock.shift(shift_id)
    return dispensing_list(build_shift_schedule(
        facility_id, rules.clock, shift_date, shift_id, all_residents(uow, facility_id),
        uow.cards.facility_versions(facility_id), now))


def resident_doses(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
                   end: datetime, now: datetime, page: Page | None = None
                   ) -> tuple[list[DoseWithOrder], dict[str, DoseState], str]:
    """The resident's doses due in [start, end), each as ordered at its time, by (due
    time, dose id), a page at a time (keyset: the page token holds the last of the page),
    with their states as of now (dose id -> state; see `shift_schedule`)."""
    if end <= start:
        raise InvalidArgument([FieldViolation("end_time", "must be after start_time")])
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidArgument([FieldViolation("end_time",
                                              f"the range may span at most {MAX_RANGE_DAYS} days")])
    facility = get_facility(uow, facility_id)
    get_resident(uow, facility_id, resident_id)
    rules = FacilityRules.from_facility(facility)
    orders = uow.cards.resident_versions(facility_id, resident_id)
    doses: list[DoseWithOrder] = []
    for history in orders.values():
        doses += doses_between(history, rules.clock, start, end, now)
    doses.sort(key=_dose_key)
    token = ""
    if page is not None:
        after = tuple(page.after) if page.after else None
        rows = [pair for pair in doses if after is None or _dose_key(pair) > after]
        doses = rows[:page.size]
        token = next_token(page, rows, list(_dose_key(doses[-1])) if doses else None)
    states = resident_states(uow, facility_id, resident_id, orders, rules, start, end,
                             now).states
    return doses, states, token


@dataclass(frozen=True)
class ResidentStates:
    """What the ledger says about a resident's doses of a range: every dose's state (dose
    id -> state), where each active record landed, and the records (entered-in-error ones
    too) of the context range around it."""

    states: dict[str, DoseState]
    placements: list[Placement]
    records: list[AdministrationRecord]
    doses: list[DoseWithOrder]  # of the context range: a superset of [start, end)'s


def resident_states(uow: UnitOfWork, facility_id: str, resident_id: str,
                    orders: Mapping[str, list[OrderVersion]], rules: FacilityRules,
                    start: datetime, end: datetime, now: datetime) -> ResidentStates:
    """The resident's doses due in [start, end) placed with their records over the context
    reconciliation would use for that range (`context_range`), as of now."""
    lo, hi = context_range(start, end, orders.values())
    around = [pair for h in orders.values() for pair in doses_between(h, rules.clock, lo, hi, now)]
    records = uow.records.between(facility_id, resident_id, lo, hi)
    states, placements = resident_ledger(facility_id, resident_id, orders, around, records,
                                         rules, now)
    return ResidentStates(states, placements, records, around)


def _dose_key(pair: DoseWithOrder) -> tuple[str, str]:
    """A dose's place in a resident's list: its due time (ISO, UTC) and id."""
    return pair.dose.due_time.isoformat(), pair.dose.dose_id


@dataclass(frozen=True)
class EmergencyList:
    """The round list of a shift with the facility it belongs to, for paper (nødliste):
    the statuses and PN use as of `as_of` (facility-local)."""

    facility: Facility
    schedule: ShiftSchedule
    as_of: datetime


def emergency_list(uow: UnitOfWork, facility_id: str, shift_date: date, shift_id: str,
                   now: datetime) -> EmergencyList:
    """`shift_schedule` as the emergency list prints it."""
    schedule = shift_schedule(uow, facility_id, shift_date, shift_id, now)
    facility = get_facility(uow, facility_id)
    return EmergencyList(facility, schedule, now.astimezone(facility.zone))
