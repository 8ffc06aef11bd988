"""Use cases of the round: shift schedules, dispensing lists, scheduled doses."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from medservice.domain.clock import FacilityClock
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.facility import Facility, PnDayMode, Resident
from medservice.domain.rounds import (
    DoseWithOrder,
    PnGiven,
    ResidentDispensing,
    ShiftSchedule,
    build_shift_schedule,
    dispensing_list,
    doses_between,
    pn_used,
)
from medservice.service.facilities import get_facility, get_resident
from medservice.store.uow import UnitOfWork

MAX_RANGE_DAYS = 31


def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument([FieldViolation(field, "must be a date YYYY-MM-DD")]) from None


def _all_residents(uow: UnitOfWork, facility_id: str) -> list[Resident]:
    residents: list[Resident] = []
    after: tuple[str, str] | None = None
    while True:
        page = uow.residents.list(facility_id, limit=1000, after=after)
        residents += page
        if len(page) < 1000:
            return residents
        after = (page[-1].room, page[-1].resident_id)


def shift_schedule(uow: UnitOfWork, facility_id: str, shift_date: date, shift_id: str,
                   now: datetime) -> ShiftSchedule:
    facility = get_facility(uow, facility_id)
    clock = FacilityClock.from_facility(facility)
    clock.shift(shift_id)  # an unknown shift is a field error before any work
    return build_shift_schedule(facility_id, clock, shift_date, shift_id,
                                _all_residents(uow, facility_id),
                                uow.cards.facility_versions(facility_id), now,
                                pn_given=_pn_given(uow, facility, clock, shift_date, shift_id,
                                                   now))


def _pn_given(uow: UnitOfWork, facility: Facility, clock: FacilityClock, shift_date: date,
              shift_id: str, now: datetime) -> PnGiven:
    """PN used so far, as of now (clamped into the shift): in the last 24 hours, or since
    local midnight when the facility counts PN per calendar day."""
    start, end = clock.shift_interval(shift_date, shift_id)
    at = min(max(now, start), end)
    if facility.pn_day_mode is PnDayMode.CALENDAR_DAY:
        local = clock.local_date_of(at)
        day_start = clock.instant(local, time(0, 0))
    else:
        day_start = at - timedelta(hours=24)
    return pn_used(uow.records.between(facility.facility_id, None, day_start, at), at,
                   day_start)


def shift_dispensing_list(uow: UnitOfWork, facility_id: str, shift_date: date, shift_id: str,
                          now: datetime) -> list[ResidentDispensing]:
    return dispensing_list(shift_schedule(uow, facility_id, shift_date, shift_id, now))


def resident_doses(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
                   end: datetime, now: datetime) -> list[DoseWithOrder]:
    """The resident's doses due in [start, end), each as ordered at its time."""
    if end <= start:
        raise InvalidArgument([FieldViolation("end_time", "must be after start_time")])
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidArgument([FieldViolation("end_time",
                                              f"the range may span at most {MAX_RANGE_DAYS} days")])
    facility = get_facility(uow, facility_id)
    get_resident(uow, facility_id, resident_id)
    clock = FacilityClock.from_facility(facility)
    doses: list[DoseWithOrder] = []
    for history in uow.cards.resident_versions(facility_id, resident_id).values():
        doses += doses_between(history, clock, start, end, now)
    doses.sort(key=lambda pair: (pair[0].due_time, pair[0].dose_id))
    return doses
