"""The facility clock: instants, DST, dose times, shifts and windows (DOMAIN.md §5-6).

Europe/Copenhagen in 2026: spring forward on 2026-03-29 (02:00 CET -> 03:00 CEST), fall back
on 2026-10-25 (03:00 CEST -> 02:00 CET).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from medservice.domain.clock import FacilityClock, WindowKind, window_kind
from medservice.domain.dosage import TimeKind
from medservice.domain.errors import InvalidArgument
from medservice.domain.facility import Facility, MedicationTimes, Shift, TimingWindows

CPH = ZoneInfo("Europe/Copenhagen")
CLOCK = FacilityClock.from_facility(Facility("home", "Home"))
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- instants --------------------------------------------------------------------------------


def test_local_times_become_utc_instants() -> None:
    assert CLOCK.instant(date(2026, 1, 15), time(8)) == utc(2026, 1, 15, 7)
    assert CLOCK.instant(date(2026, 7, 15), time(8)) == utc(2026, 7, 15, 6)
    assert CLOCK.instant(date(2026, 7, 15), time(8)).tzinfo is UTC


def test_a_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    moved = CLOCK.instant(SPRING, time(2, 30))
    assert moved == utc(2026, 3, 29, 1, 30)
    assert CLOCK.local(moved).time() == time(3, 30)
    assert CLOCK.instant(SPRING, time(1, 59)) == utc(2026, 3, 29, 0, 59)


def test_an_ambiguous_autumn_time_means_its_first_occurrence() -> None:
    first = CLOCK.instant(AUTUMN, time(2, 30))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, not 02:30 CET (01:30 UTC)
    assert CLOCK.local(first).utcoffset() == timedelta(hours=2)
    assert CLOCK.instant(AUTUMN, time(2, 30, fold=1)) == first


@pytest.mark.parametrize("day", [SPRING, AUTUMN])
def test_the_named_times_give_valid_distinct_instants_on_dst_days(day: date) -> None:
    instants = [CLOCK.instant(day, CLOCK.time_of(kind, None)) for kind in (
        TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT)]
    assert len(set(instants)) == 4 and instants == sorted(instants)
    assert all(CLOCK.local_date_of(i) == day for i in instants)


def test_an_instant_needs_a_zone() -> None:
    with pytest.raises(InvalidArgument):
        CLOCK.local(datetime(2026, 1, 1, 8))


def test_the_clock_takes_the_facilitys_settings() -> None:
    facility = Facility("home", "Home", time_zone="Europe/London",
                        medication_times=MedicationTimes(time(7), time(11), time(17), time(21)),
                        timing_windows=TimingWindows(time_critical_minutes=15))
    clock = FacilityClock.from_facility(facility)
    assert clock.zone == ZoneInfo("Europe/London")
    assert clock.shifts == facility.shifts and clock.windows == facility.timing_windows
    assert clock.instant(date(2026, 1, 15), clock.time_of(TimeKind.MORNING, None)) == utc(
        2026, 1, 15, 7)


# -- dose times --------------------------------------------------------------------------------


def test_named_times_are_the_facility_times_and_clock_times_their_own() -> None:
    assert [CLOCK.time_of(k, None) for k in (TimeKind.MORNING, TimeKind.NOON,
                                             TimeKind.EVENING, TimeKind.NIGHT)] == [
        time(8), time(12), time(18), time(22)]
    assert CLOCK.time_of(TimeKind.CLOCK, time(14, 45)) == time(14, 45)
    with pytest.raises(InvalidArgument):
        CLOCK.time_of(TimeKind.CLOCK, None)


@pytest.mark.parametrize(("count", "expected"), [
    (1, ["08:00"]),
    (2, ["08:00", "18:00"]),
    (3, ["08:00", "12:00", "18:00"]),
    (4, ["08:00", "12:00", "18:00", "22:00"]),
    (5, ["08:00", "11:30", "15:00", "18:30", "22:00"]),
    (12, ["08:00", "09:16", "10:32", "11:49", "13:05", "14:21", "15:38", "16:54", "18:10",
          "19:27", "20:43", "22:00"]),
])
def test_any_time_doses_spread_over_the_day_by_the_house_rule(
    count: int, expected: list[str]
) -> None:
    spread = [CLOCK.time_of(TimeKind.ANY, None, i, count).strftime("%H:%M")
              for i in range(count)]
    assert spread == expected


def test_spreading_wraps_past_midnight_when_night_is_not_after_morning() -> None:
    late = FacilityClock(CPH, MedicationTimes(time(20), time(22), time(23), time(2)))
    assert [late.time_of(TimeKind.ANY, None, i, 5) for i in range(5)] == [
        time(20), time(21, 30), time(23), time(0, 30), time(2)]


def test_dose_time_is_time_of_then_instant_with_the_wall_clock_time_it_shows() -> None:
    assert CLOCK.dose_time(SPRING, "any-1of2") == (time(8), CLOCK.instant(SPRING, time(8)))
    # 02:30 does not exist on the spring night: the dose is at 03:30, and says so.
    assert CLOCK.dose_time(SPRING, "02:30") == (time(3, 30), utc(2026, 3, 29, 1, 30))
    assert CLOCK.dose_time(AUTUMN, "night") == (time(22), utc(2026, 10, 25, 21))


# -- shifts ------------------------------------------------------------------------------------


def test_a_night_shift_belongs_to_the_date_it_starts_and_lasts_8_hours() -> None:
    start, end = CLOCK.shift_interval(date(2026, 1, 15), "night")
    assert (start, end) == (utc(2026, 1, 15, 22), utc(2026, 1, 16, 6))


def test_the_night_shift_lasts_7_hours_on_the_spring_night_and_9_on_the_autumn_night() -> None:
    spring_start, spring_end = CLOCK.shift_interval(SPRING - timedelta(days=1), "night")
    autumn_start, autumn_end = CLOCK.shift_interval(AUTUMN - timedelta(days=1), "night")
    assert spring_end - spring_start == 7 * HOUR
    assert autumn_end - autumn_start == 9 * HOUR
    day_start, day_end = CLOCK.shift_interval(SPRING, "day")
    assert (day_start, day_end - day_start) == (utc(2026, 3, 29, 5), 8 * HOUR)


def test_shift_of_finds_the_shift_holding_an_instant() -> None:
    assert CLOCK.shift_of(CLOCK.instant(SPRING, time(3, 30))) == ("night", SPRING - timedelta(1))
    assert CLOCK.shift_of(CLOCK.instant(SPRING, time(6, 59))) == ("night", SPRING - timedelta(1))
    assert CLOCK.shift_of(CLOCK.instant(SPRING, time(7))) == ("day", SPRING)
    assert CLOCK.shift_of(CLOCK.instant(SPRING, time(23, 30))) == ("night", SPRING)
    # Both 02:30s of the autumn night are in that night's shift.
    assert CLOCK.shift_of(utc(2026, 10, 25, 0, 30)) == ("night", AUTUMN - timedelta(1))
    assert CLOCK.shift_of(utc(2026, 10, 25, 1, 30)) == ("night", AUTUMN - timedelta(1))


def test_shift_of_is_none_where_the_shifts_leave_a_gap() -> None:
    days_only = FacilityClock(CPH, shifts=(Shift("day", "Day", time(7), time(15)),))
    assert days_only.shift_of(days_only.instant(SPRING, time(16))) is None
    with pytest.raises(InvalidArgument):
        days_only.shift_interval(SPRING, "night")


def test_an_unknown_shift_is_refused_naming_the_facility_s_shifts() -> None:
    with pytest.raises(InvalidArgument) as info:
        CLOCK.shift("brunch")
    [v] = info.value.violations
    assert (v.field, v.description) == (
        "shift_id", "is not a shift of this facility; its shifts are day, evening, night")


# -- windows -----------------------------------------------------------------------------------


def test_window_kinds_follow_the_ismp_rules() -> None:
    assert window_kind(True, 1) is WindowKind.TIME_CRITICAL
    assert window_kind(False, 3) is WindowKind.MORE_THAN_DAILY
    assert window_kind(False, 1) is WindowKind.DAILY_OR_LESS
    assert [CLOCK.window_minutes(k) for k in WindowKind] == [30, 60, 120]
    assert CLOCK.half_width(True, 5) == timedelta(minutes=30)
    assert CLOCK.half_width(False, 2) == timedelta(minutes=60)
    assert CLOCK.half_width(False, 1, override_minutes=45) == timedelta(minutes=45)


def test_a_window_is_measured_in_real_elapsed_time_across_dst() -> None:
    half = CLOCK.half_width(False, 1)
    due = CLOCK.instant(AUTUMN, time(2, 30))  # the first 02:30
    start, end = due - half, due + half  # as the scheduler places every window
    assert (start, end) == (due - 2 * HOUR, due + 2 * HOUR)
    # On the wall clock the same window spans 00:30 CEST to 03:30 CET: 3 hours apart.
    assert (CLOCK.local(start).time(), CLOCK.local(end).time()) == (time(0, 30), time(3, 30))
    assert CLOCK.half_width(True, 1, override_minutes=10) == timedelta(minutes=10)
