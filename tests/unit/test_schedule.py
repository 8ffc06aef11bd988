"""Scheduling one order on the facility clock (DOMAIN.md §2, §5, §6)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import Facility
from medservice.domain.schedule import (
    DOSE_ID_NAMESPACE,
    OrderTerms,
    ScheduledDose,
    dose_id,
    schedule_order,
)

CLOCK = FacilityClock.from_facility(Facility("home", "Home"))
UNIT = DoseUnit("tablet", "tabletter")
DAY = date(2026, 5, 4)
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def dosage(*doses: DosageDose, interval: int = 1, start: date = date(2026, 1, 1),
           end: date | None = None, text: str = "") -> StructuredDosage:
    return StructuredDosage(UNIT, (DosagePeriod(start, end, interval, text,
                                                (DosageDay(1, doses),)),))


def dose(kind: TimeKind = TimeKind.ANY, quantity: str = "1", at: time | None = None,
         pn: bool = False) -> DosageDose:
    return DosageDose(kind, at, Amount.exact(quantity), pn)


TWICE_DAILY = dosage(dose(), dose())
DAILY = dosage(dose(TimeKind.MORNING, "2"), text="med vand")


def terms(d: StructuredDosage | FreeTextDosage = TWICE_DAILY, **kwargs: Any) -> OrderTerms:
    return OrderTerms("resident-1", "order-1", d, **kwargs)


def due_times(found: list[ScheduledDose]) -> list[datetime]:
    return [d.due_time for d in found]


def test_doses_are_placed_on_the_facility_clock() -> None:
    found = schedule_order(terms(DAILY), CLOCK, DAY, DAY)
    assert found == [ScheduledDose(
        "resident-1", "order-1", DAY, "morning", time(8), TimeKind.MORNING, utc(2026, 5, 4, 6),
        utc(2026, 5, 4, 4), utc(2026, 5, 4, 8), Amount.exact(2), UNIT, "med vand", False)]
    assert [(d.local_time, d.slot) for d in schedule_order(terms(), CLOCK, DAY, DAY)] == [
        (time(8), "any-1of2"), (time(18), "any-2of2")]


def test_windows_follow_the_order_and_the_facility_rules() -> None:
    def half_width(t: OrderTerms) -> timedelta:
        d = schedule_order(t, CLOCK, DAY, DAY)[0]
        assert d.window_start is not None and d.window_end is not None
        assert d.window_end - d.due_time == d.due_time - d.window_start
        return d.window_end - d.due_time

    assert half_width(terms(DAILY)) == 120 * MINUTE  # daily or less often
    assert half_width(terms(TWICE_DAILY)) == 60 * MINUTE  # more often than daily
    assert half_width(terms(TWICE_DAILY, time_critical=True)) == 30 * MINUTE
    assert half_width(terms(DAILY, time_critical=True, window_minutes=90)) == 90 * MINUTE


def test_a_one_time_dose_has_no_window() -> None:
    once = dosage(dose(quantity="4"), interval=0, start=DAY)
    (found,) = schedule_order(terms(once, time_critical=True), CLOCK, DAY, DAY)
    assert (found.window_start, found.window_end) == (None, None)
    # Two doses on the one day are not a one-time dose.
    twice = dosage(dose(), dose(), interval=0, start=DAY)
    assert all(d.window_start for d in schedule_order(terms(twice), CLOCK, DAY, DAY))


def test_dose_ids_are_uuid5_of_resident_order_date_and_slot() -> None:
    (first, second) = schedule_order(terms(), CLOCK, DAY, DAY)
    assert first.dose_id == str(uuid.uuid5(DOSE_ID_NAMESPACE,
                                           "resident-1/order-1/2026-05-04/any-1of2"))
    assert first.dose_id == dose_id("resident-1", "order-1", DAY, "any-1of2")
    assert [d.dose_id for d in schedule_order(terms(), CLOCK, DAY, DAY)] == [
        first.dose_id, second.dose_id]
    others = [
        dose_id("resident-2", "order-1", DAY, "any-1of2"),
        dose_id("resident-1", "order-2", DAY, "any-1of2"),
        dose_id("resident-1", "order-1", DAY + timedelta(days=1), "any-1of2"),
        second.dose_id,
    ]
    assert len({first.dose_id, *others}) == 5
    assert uuid.UUID(first.dose_id).version == 5


def test_the_same_dose_keeps_its_id_in_a_new_order_version() -> None:
    before = schedule_order(terms(TWICE_DAILY), CLOCK, DAY, DAY)
    after = schedule_order(terms(dosage(dose(quantity="2"), dose(quantity="2"))), CLOCK, DAY,
                           DAY)
    assert [d.dose_id for d in before] == [d.dose_id for d in after]


def test_nothing_before_the_treatment_start_or_after_its_end() -> None:
    found = schedule_order(terms(DAILY, treatment_start=DAY + timedelta(days=1),
                                 treatment_end=DAY + timedelta(days=3)),
                           CLOCK, DAY - timedelta(days=5), DAY + timedelta(days=10))
    assert [d.local_date for d in found] == [DAY + timedelta(days=n) for n in (1, 2, 3)]
    assert schedule_order(terms(DAILY, treatment_end=DAY - timedelta(days=1)), CLOCK, DAY,
                          DAY) == []


def test_nothing_inside_a_pause() -> None:
    morning, evening = utc(2026, 5, 4, 6), utc(2026, 5, 4, 16)
    assert due_times(schedule_order(terms(pauses=((morning, evening),)), CLOCK, DAY, DAY)) == [
        evening]  # the pause ends as the evening dose falls due: [start, end)
    open_ended = terms(pauses=((morning + MINUTE, None),))
    assert due_times(schedule_order(open_ended, CLOCK, DAY, DAY + timedelta(days=3))) == [
        morning]
    from_the_start = terms(pauses=((None, utc(2026, 5, 5, 12)),))
    assert due_times(schedule_order(from_the_start, CLOCK, DAY, DAY + timedelta(days=1))) == [
        utc(2026, 5, 5, 16)]


def test_nothing_at_or_after_the_discontinuation() -> None:
    evening = utc(2026, 5, 4, 16)
    assert due_times(schedule_order(terms(discontinued_at=evening), CLOCK, DAY,
                                    DAY + timedelta(days=2))) == [utc(2026, 5, 4, 6)]
    assert len(schedule_order(terms(discontinued_at=evening + MINUTE), CLOCK, DAY, DAY)) == 2


def test_a_version_yields_only_the_doses_in_its_validity() -> None:
    version = terms(valid_from=utc(2026, 5, 4, 12), valid_until=utc(2026, 5, 5, 16))
    assert due_times(schedule_order(version, CLOCK, DAY, DAY + timedelta(days=2))) == [
        utc(2026, 5, 4, 16), utc(2026, 5, 5, 6)]


def test_a_dosage_needing_a_manual_schedule_yields_no_doses() -> None:
    assert schedule_order(terms(FreeTextDosage("efter aftale")), CLOCK, DAY, DAY) == []
    any_day = StructuredDosage(UNIT, (DosagePeriod(DAY, None, 0, "", (
        DosageDay(0, (dose(),)), DosageDay(1, (dose(),)))),))
    assert schedule_order(terms(any_day), CLOCK, DAY, DAY) == []


def test_pn_doses_are_not_scheduled() -> None:
    assert schedule_order(terms(dosage(dose(pn=True), dose(pn=True))), CLOCK, DAY, DAY) == []


def test_a_range_of_days_comes_in_time_order() -> None:
    found = schedule_order(terms(), CLOCK, DAY, DAY + timedelta(days=6))
    assert len(found) == 14 and due_times(found) == sorted(due_times(found))
    weekly = dosage(dose(), interval=7, start=date(2026, 5, 6))
    assert [d.local_date for d in schedule_order(terms(weekly), CLOCK, DAY,
                                                 DAY + timedelta(days=14))] == [
        date(2026, 5, 6), date(2026, 5, 13)]


@pytest.mark.parametrize(("day", "at", "expected", "wall"), [
    # 02:30 does not exist that night: moved to 03:30 CEST, and shown so.
    (date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 30), time(3, 30)),
    (date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30), time(2, 30)),  # the first
])
def test_clock_time_doses_on_dst_days(day: date, at: time, expected: datetime,
                                      wall: time) -> None:
    (found,) = schedule_order(terms(dosage(dose(TimeKind.CLOCK, at=at))), CLOCK, day, day)
    assert (found.local_time, found.due_time, found.slot) == (wall, expected, "02:30")
    assert found.window_end is not None and found.window_end - found.due_time == 2 * HOUR


def test_a_night_shift_on_the_autumn_night_holds_its_doses() -> None:
    hourly = dosage(*(dose(TimeKind.CLOCK, at=time(h)) for h in (0, 1, 2, 3, 4, 5, 6)))
    night = date(2026, 10, 24)
    start, end = CLOCK.shift_interval(night, "night")
    found = schedule_order(terms(hourly), CLOCK, night + timedelta(days=1),
                           night + timedelta(days=1))
    assert all(start <= d.due_time < end for d in found)
    assert len({d.due_time for d in found}) == 7
    assert {CLOCK.shift_of(d.due_time) for d in found} == {("night", night)}
