"""FHIR Timing expanded by the house rules (DOMAIN.md §4-5): named times, literal times,
codes, weekdays, bounds, counts, intervals in real time across DST, PN, refusals, texts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount, DoseUnit, TimeKind
from medservice.domain.errors import InvalidArgument
from medservice.domain.facility import Facility, MedicationTimes
from medservice.domain.fhir_timing import (
    TimingDosage,
    TimingSlot,
    expand_timing,
    timing_problem,
    timing_text,
    timing_violation,
)

CLOCK = FacilityClock.from_facility(Facility("f", "Home"))
CPH = ZoneInfo("Europe/Copenhagen")
TABLET = DoseUnit("tablet", "tabletter")
SPRING = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST
AUTUMN = date(2026, 10, 25)  # 03:00 CEST -> 02:00 CET
MONDAY = date(2026, 3, 2)


def timing(**fields: Any) -> TimingDosage:
    fields.setdefault("amount", Amount.exact(1))
    return TimingDosage(unit=TABLET, **fields)


def daily(n: int, **fields: Any) -> TimingDosage:
    return timing(frequency=n, period=Decimal(1), period_unit="d", **fields)


def every(n: int, unit: str, **fields: Any) -> TimingDosage:
    return timing(frequency=1, period=Decimal(n), period_unit=unit, **fields)


def expand(t: TimingDosage, first: date, last: date | None = None, *,
           order_start: date | None = None, clock: FacilityClock = CLOCK) -> list[TimingSlot]:
    return expand_timing(t, clock, first, last or first, order_start=order_start)


def times(slots: list[TimingSlot]) -> list[str]:
    return [s.local_time.strftime("%H:%M") for s in slots]


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def refusal(t: TimingDosage, order_start: date | None = None) -> str:
    problem = timing_problem(t, order_start=order_start)
    assert problem is not None
    with pytest.raises(InvalidArgument) as raised:
        expand(t, MONDAY, order_start=order_start)
    assert problem.split(": ", 1)[1] in str(raised.value)
    return problem


# -- frequency per period, codes, named and literal times ---------------------------------


@pytest.mark.parametrize(("n", "expected"), [
    (1, ["08:00"]),
    (2, ["08:00", "18:00"]),
    (3, ["08:00", "12:00", "18:00"]),
    (4, ["08:00", "12:00", "18:00", "22:00"]),
    (5, ["08:00", "11:30", "15:00", "18:30", "22:00"]),
])
def test_n_times_daily_follows_the_house_rule(n: int, expected: list[str]) -> None:
    slots = expand(daily(n), MONDAY)
    assert times(slots) == expected
    assert [s.slot for s in slots] == [f"any-{i}of{n}" for i in range(1, n + 1)]
    assert all(s.doses_that_day == n and s.time_kind is TimeKind.ANY for s in slots)


@pytest.mark.parametrize(("code", "expected"), [
    ("MORN", ["08:00"]), ("MORN.early", ["08:00"]), ("WAKE", ["08:00"]), ("CM", ["08:00"]),
    ("ACM", ["08:00"]), ("PCM", ["08:00"]), ("NOON", ["12:00"]), ("CD", ["12:00"]),
    ("ACD", ["12:00"]), ("EVE", ["18:00"]), ("CV", ["18:00"]), ("PCV", ["18:00"]),
    ("NIGHT", ["22:00"]), ("HS", ["22:00"]),
    ("C", ["08:00", "12:00", "18:00"]), ("AC", ["08:00", "12:00", "18:00"]),
])
def test_when_codes_map_to_the_facility_times(code: str, expected: list[str]) -> None:
    assert times(expand(timing(when=(code,)), MONDAY)) == expected


def test_when_codes_follow_the_facility_configuration() -> None:
    clock = FacilityClock.from_facility(Facility(
        "f", "Home", medication_times=MedicationTimes(time(7, 30), time(11, 45), time(17, 0),
                                                      time(21, 0))))
    slots = expand(timing(when=("HS", "CM", "CD", "EVE")), MONDAY, clock=clock)
    assert times(slots) == ["07:30", "11:45", "17:00", "21:00"]
    assert [s.slot for s in slots] == ["CM", "CD", "EVE", "HS"]
    assert [s.time_kind for s in slots] == [TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING,
                                            TimeKind.NIGHT]


def test_meal_codes_label_each_meal() -> None:
    assert [s.slot for s in expand(timing(when=("PC",)), MONDAY)] == [
        "PC.morning", "PC.noon", "PC.evening"]


@pytest.mark.parametrize(("code", "expected"), [
    ("QD", ["08:00"]), ("BID", ["08:00", "18:00"]), ("TID", ["08:00", "12:00", "18:00"]),
    ("QID", ["08:00", "12:00", "18:00", "22:00"]), ("AM", ["08:00"]), ("PM", ["18:00"]),
    ("BED", ["22:00"]),
])
def test_timing_abbreviations(code: str, expected: list[str]) -> None:
    assert times(expand(timing(code=code), MONDAY)) == expected


def test_the_repeat_wins_over_the_code() -> None:
    assert times(expand(daily(1, code="BID"), MONDAY)) == ["08:00"]


def test_qod_wk_and_q6h_codes_anchor_at_the_start() -> None:
    qod = expand(timing(code="QOD"), MONDAY, MONDAY + timedelta(days=5), order_start=MONDAY)
    assert [s.local_date.day for s in qod] == [2, 4, 6]
    wk = expand(timing(code="WK"), MONDAY, MONDAY + timedelta(days=20), order_start=MONDAY)
    assert [s.local_date.day for s in wk] == [2, 9, 16]
    q6h = expand(timing(code="Q6H"), MONDAY, order_start=MONDAY)
    assert times(q6h) == ["00:00", "06:00", "12:00", "18:00"]


def test_time_of_day_is_literal() -> None:
    slots = expand(timing(time_of_day=(time(21, 30), time(9, 0))), MONDAY)
    assert times(slots) == ["09:00", "21:30"]
    assert [s.slot for s in slots] == ["09:00", "21:30"]
    assert all(s.time_kind is TimeKind.CLOCK and s.doses_that_day == 2 for s in slots)


def test_frequency_must_match_the_times_given() -> None:
    assert times(expand(daily(2, when=("MORN", "EVE")), MONDAY)) == ["08:00", "18:00"]
    assert "which is meant is not clear" in refusal(daily(1, when=("MORN", "EVE")))
    assert "not both" in refusal(timing(when=("MORN",), time_of_day=(time(9, 0),)))


def test_offset_moves_before_or_after_the_event() -> None:
    before = expand(daily(1, when=("ACM",), offset_minutes=10), MONDAY)
    after = expand(daily(1, when=("PCV",), offset_minutes=30), MONDAY)
    assert times(before) == ["07:50"] and times(after) == ["18:30"]
    assert "needs a when code" in refusal(daily(1, offset_minutes=10))
    assert "more than 2 hours" in refusal(daily(1, when=("CM",), offset_minutes=121))


def test_an_offset_keeps_the_dose_on_its_date() -> None:
    clock = FacilityClock.from_facility(Facility(
        "f", "Home", medication_times=MedicationTimes(night=time(23, 30))))
    slots = expand(timing(when=("HS",), offset_minutes=60), MONDAY, clock=clock)
    assert [(s.local_date, s.local_time) for s in slots] == [(MONDAY, time(23, 59))]


# -- days: every N days, weekdays ---------------------------------------------------------


def test_every_n_days_anchors_at_the_bounds_start() -> None:
    t = every(3, "d", bounds_first_date=MONDAY + timedelta(days=1))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=9))
    assert [s.local_date.day for s in slots] == [3, 6, 9]


def test_several_per_several_days() -> None:
    assert len(expand(timing(frequency=4, period=Decimal(2), period_unit="d"), MONDAY)) == 2
    assert "does not fall on whole days" in refusal(
        timing(frequency=2, period=Decimal(3), period_unit="d"), order_start=MONDAY)
    assert "3 per 1 wk does not fall on whole days" in refusal(
        timing(frequency=3, period=Decimal(1), period_unit="wk"), order_start=MONDAY)
    assert "not whole days" in refusal(timing(frequency=1, period=Decimal("1.5"), period_unit="d"))


def test_day_of_week_filters_days() -> None:
    t = daily(4, day_of_week=("mon",))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=13))
    assert {s.local_date for s in slots} == {MONDAY, MONDAY + timedelta(days=7)}
    assert len(slots) == 8


def test_weekly_on_listed_weekdays() -> None:
    t = timing(frequency=2, period=Decimal(1), period_unit="wk", day_of_week=("mon", "thu"))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=13))
    assert [s.local_date.strftime("%a %d") for s in slots] == [
        "Mon 02", "Thu 05", "Mon 09", "Thu 12"]
    assert "not the same number of doses each day" in refusal(
        timing(frequency=3, period=Decimal(1), period_unit="wk", day_of_week=("mon", "thu")))


def test_every_other_week_counts_calendar_weeks_from_the_start() -> None:
    t = timing(frequency=1, period=Decimal(2), period_unit="wk", day_of_week=("fri",),
               bounds_first_date=MONDAY + timedelta(days=1))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=27))
    assert [s.local_date.day for s in slots] == [6, 20]


def test_months_and_years_are_refused() -> None:
    assert "months and years have no fixed length" in refusal(every(1, "mo"))
    assert "monthly" in refusal(timing(code="MO"))


# -- bounds and count ---------------------------------------------------------------------


def test_date_bounds_are_whole_local_days() -> None:
    t = daily(2, bounds_first_date=MONDAY + timedelta(days=1),
              bounds_last_date=MONDAY + timedelta(days=2))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=6))
    assert [(s.local_date.day, s.slot) for s in slots] == [
        (3, "any-1of2"), (3, "any-2of2"), (4, "any-1of2"), (4, "any-2of2")]


def test_instant_bounds_cut_inside_a_day() -> None:
    t = daily(2, bounds_start=datetime(2026, 3, 2, 14, 0, tzinfo=CPH),
              bounds_end=datetime(2026, 3, 3, 18, 0, tzinfo=CPH))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=6))
    assert [(s.local_date.day, times([s])[0]) for s in slots] == [
        (2, "18:00"), (3, "08:00"), (3, "18:00")]  # the end is inclusive, as in FHIR


def test_order_start_starts_the_course_without_bounds() -> None:
    slots = expand(daily(1), MONDAY, MONDAY + timedelta(days=3),
                   order_start=MONDAY + timedelta(days=2))
    assert [s.local_date.day for s in slots] == [4, 5]


def test_bounds_duration_counts_from_the_order_start() -> None:
    days = timing(frequency=1, period=Decimal(1), period_unit="d",
                  bounds_duration=Decimal(3), bounds_duration_unit="d")
    assert [s.local_date.day for s in expand(days, MONDAY, MONDAY + timedelta(days=9),
                                             order_start=MONDAY)] == [2, 3, 4]
    hours = every(6, "h", bounds_duration=Decimal(36), bounds_duration_unit="h")
    slots = expand(hours, MONDAY, MONDAY + timedelta(days=3), order_start=MONDAY)
    assert len(slots) == 6  # 00, 06, 12, 18, 00, 06; 12:00 is 36 hours: the end, excluded
    assert "counts from the order's start" in refusal(days)
    assert "no fixed length" in refusal(
        timing(frequency=1, period=Decimal(1), period_unit="d", bounds_duration=Decimal(1),
               bounds_duration_unit="mo"), order_start=MONDAY)


def test_count_caps_the_course_from_its_start() -> None:
    t = daily(2, count=5, bounds_first_date=MONDAY)
    assert len(expand(t, MONDAY, MONDAY + timedelta(days=9))) == 5
    # A later window sees what is left of the course, not a fresh count.
    later = expand(t, MONDAY + timedelta(days=2), MONDAY + timedelta(days=9))
    assert [(s.local_date.day, s.slot) for s in later] == [(4, "any-1of2")]
    assert expand(t, MONDAY + timedelta(days=3), MONDAY + timedelta(days=9)) == []


def test_count_needs_a_start_or_its_first_administration() -> None:
    assert "course of 5 dose(s)" in (timing_problem(daily(1, count=5), order_start=None) or "")
    assert expand(daily(1, count=5), MONDAY) == []  # awaits its first dose, none known
    assert len(expand(daily(1, count=5), MONDAY, MONDAY + timedelta(days=9),
                      order_start=MONDAY)) == 5


def test_a_count_of_one_is_a_one_time_dose() -> None:
    slots = expand(timing(count=1), MONDAY, MONDAY + timedelta(days=9),
                   order_start=MONDAY + timedelta(days=1))
    assert [(s.local_date.day, times([s])[0], s.one_time) for s in slots] == [(3, "08:00", True)]
    assert not any(s.one_time for s in expand(daily(1), MONDAY))


def test_count_caps_an_interval() -> None:
    t = every(8, "h", count=4, bounds_start=datetime(2026, 3, 2, 9, 0, tzinfo=CPH))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=5))
    assert [(s.local_date.day, times([s])[0]) for s in slots] == [
        (2, "09:00"), (2, "17:00"), (3, "01:00"), (3, "09:00")]


# -- intervals ----------------------------------------------------------------------------


def test_interval_anchors_at_the_bounds_start() -> None:
    t = every(6, "h", bounds_start=datetime(2026, 3, 2, 9, 15, tzinfo=CPH))
    slots = expand(t, MONDAY, MONDAY + timedelta(days=1))
    assert times(slots) == ["09:15", "15:15", "21:15", "03:15", "09:15", "15:15", "21:15"]
    assert all(s.time_kind is TimeKind.CLOCK for s in slots)


def test_interval_needs_a_start_or_its_first_administration() -> None:
    assert "interval schedule (every 6 hours)" in (timing_problem(every(6, "h")) or "")
    assert expand(every(6, "h"), MONDAY) == []  # awaits its first dose, none known
    assert times(expand(every(8, "h"), MONDAY, order_start=MONDAY)) == [
        "00:00", "08:00", "16:00"]


@pytest.mark.parametrize(("t", "reason"), [
    (every(30, "min"), "is an infusion, not a round"),
    (timing(frequency=7, period=Decimal(1), period_unit="h"), "whole minutes"),
    (every(6, "h", when=("MORN",)), "give one or the other"),
])
def test_unschedulable_intervals(t: TimingDosage, reason: str) -> None:
    assert reason in refusal(t, order_start=MONDAY)


def test_ninety_minutes_is_an_interval() -> None:
    slots = expand(every(90, "min"), MONDAY, order_start=MONDAY)
    assert len(slots) == 16 and times(slots)[:3] == ["00:00", "01:30", "03:00"]


# -- DST (Europe/Copenhagen) --------------------------------------------------------------


def test_named_times_on_the_dst_days() -> None:
    spring = expand(daily(2), SPRING - timedelta(days=1), SPRING)
    assert [s.due_time for s in spring] == [utc(2026, 3, 28, 7), utc(2026, 3, 28, 17),
                                           utc(2026, 3, 29, 6), utc(2026, 3, 29, 16)]
    autumn = expand(daily(2), AUTUMN - timedelta(days=1), AUTUMN)
    assert [s.due_time for s in autumn] == [utc(2026, 10, 24, 6), utc(2026, 10, 24, 16),
                                           utc(2026, 10, 25, 7), utc(2026, 10, 25, 17)]


def test_clock_times_in_the_changed_hour() -> None:
    t = timing(time_of_day=(time(2, 30),))
    # Spring: 02:30 does not exist and moves forward by the gap, to 03:30 CEST.
    assert [s.due_time for s in expand(t, SPRING)] == [utc(2026, 3, 29, 1, 30)]
    # Autumn: 02:30 happens twice; the first occurrence (CEST) is meant.
    assert [s.due_time for s in expand(t, AUTUMN)] == [utc(2026, 10, 25, 0, 30)]


def test_every_six_hours_over_the_spring_change_is_real_time() -> None:
    t = every(6, "h", bounds_first_date=SPRING - timedelta(days=1))
    slots = expand(t, SPRING, SPRING)
    assert times(slots) == ["00:00", "07:00", "13:00", "19:00"]
    assert [s.due_time for s in slots] == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 5),
                                           utc(2026, 3, 29, 11), utc(2026, 3, 29, 17)]


def test_every_six_hours_over_the_autumn_change_is_real_time() -> None:
    t = every(6, "h", bounds_first_date=AUTUMN - timedelta(days=1))
    slots = expand(t, AUTUMN, AUTUMN)
    assert times(slots) == ["00:00", "05:00", "11:00", "17:00", "23:00"]
    assert all(s.doses_that_day == 5 for s in slots)  # a 25-hour day
    assert [s.due_time - slots[0].due_time for s in slots] == [
        timedelta(hours=6 * i) for i in range(5)]


def test_hourly_doses_through_the_repeated_hour_are_told_apart() -> None:
    t = every(1, "h", bounds_first_date=AUTUMN)
    slots = expand(t, AUTUMN)
    assert len(slots) == 25
    labels = [s.slot for s in slots]
    assert labels[2:5] == ["02:00", "02:00-2", "03:00"]
    assert len(set(labels)) == 25
    assert slots[3].due_time - slots[2].due_time == timedelta(hours=1)
    spring = expand(every(1, "h", bounds_first_date=SPRING), SPRING)
    assert len(spring) == 23 and "02:00" not in [s.slot for s in spring]


# -- as needed (PN) -----------------------------------------------------------------------


def test_pn_is_never_due() -> None:
    pn = every(4, "h", as_needed=True, max_dose_quantity=Decimal(3),
               max_dose_period=timedelta(days=1))
    assert timing_violation(pn) is None  # no start needed: nothing is anchored
    assert expand(pn, MONDAY, MONDAY + timedelta(days=30)) == []
    assert expand(timing(as_needed=True, amount=None), MONDAY) == []


# -- refusals and shape -------------------------------------------------------------------


@pytest.mark.parametrize(("t", "field", "reason"), [
    (timing(when=("AFT",)), "timing.repeat.when", "not one of the facility's times"),
    (timing(when=("PHS",)), "timing.repeat.when", "not one of the facility's times"),
    (timing(when=("LUNCH",)), "timing.repeat.when", "not an EventTiming code"),
    (timing(when=("MORN", "CM")), "timing.repeat.when", "fall at the same time"),
    (timing(time_of_day=(time(9, 0), time(9, 0))), "timing.repeat.timeOfDay", "twice"),
    (timing(code="Q5H"), "timing.code", "not a timing abbreviation"),
    (timing(), "timing.repeat", "neither how often nor when"),
    (timing(frequency=2), "timing.repeat.period", "needs a period"),
    (timing(period=Decimal(1)), "timing.repeat.periodUnit", "needs a unit"),
    (every(1, "fortnight"), "timing.repeat.periodUnit", "not a FHIR period unit"),
    (daily(25), "timing.repeat.frequency", "not a round schedule"),
    (daily(1, amount=None), "doseAndRate", "needs a dose quantity"),
])
def test_refused_timings_say_why(t: TimingDosage, field: str, reason: str) -> None:
    violation = timing_violation(t, order_start=MONDAY)
    assert violation is not None
    assert violation.field == field and reason in violation.description
    with pytest.raises(InvalidArgument):
        expand(t, MONDAY, order_start=MONDAY)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"frequency": -1}, "must not be negative"),
    ({"period": Decimal(0)}, "positive"),
    ({"count": 0}, "at least 1"),
    ({"day_of_week": ("monday",)}, "not a weekday code"),
    ({"bounds_start": datetime(2026, 3, 2, 8, 0)}, "needs a time zone"),
    ({"bounds_start": datetime(2026, 3, 2, tzinfo=UTC), "bounds_first_date": MONDAY},
     "an instant or a date"),
    ({"bounds_first_date": MONDAY, "bounds_last_date": MONDAY - timedelta(days=1)},
     "before the start"),
    ({"bounds_duration": Decimal(1), "bounds_first_date": MONDAY}, "not both"),
])
def test_impossible_timings_cannot_be_built(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason):
        timing(**fields)


# -- texts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "da", "en"), [
    (daily(2), "1 tablet 2 gange daglig", "1 tablet twice daily"),
    (daily(1), "1 tablet 1 gang daglig", "1 tablet once daily"),
    (daily(3, amount=Amount.exact(2)), "2 tabletter 3 gange daglig", "2 tabletter 3 times daily"),
    (timing(code="BID", amount=Amount.exact("0.5")), "0,5 tablet 2 gange daglig",
     "0.5 tablet twice daily"),
    (timing(when=("MORN", "EVE")), "1 tablet morgen og aften", "1 tablet morning and evening"),
    (timing(when=("MORN", "NOON", "EVE")), "1 tablet morgen, middag og aften",
     "1 tablet morning, noon and evening"),
    (timing(when=("HS",)), "1 tablet før sengetid", "1 tablet at bedtime"),
    (timing(time_of_day=(time(9, 0),)), "1 tablet kl. 09:00", "1 tablet at 09:00"),
    (every(6, "h"), "1 tablet hver 6. time", "1 tablet every 6 hours"),
    (every(2, "d"), "1 tablet hver 2. dag", "1 tablet every 2 days"),
    (timing(frequency=1, period=Decimal(1), period_unit="wk", day_of_week=("mon",),
            amount=Amount.exact(6)), "6 tabletter mandag hver uge",
     "6 tabletter on Monday every week"),
    (timing(count=1), "1 tablet 1 gang", "1 tablet once"),
    (daily(1, count=5), "1 tablet 1 gang daglig, i alt 5 gange",
     "1 tablet once daily, 5 times in total"),
    (timing(as_needed=True), "1 tablet efter behov", "1 tablet as needed"),
    (daily(3, as_needed=True, amount=Amount.between(1, 2)),
     "1-2 tabletter efter behov, højst 3 gange daglig",
     "1-2 tabletter as needed, at most 3 times daily"),
    (every(4, "h", as_needed=True, max_dose_quantity=Decimal(720), max_dose_unit="mg",
           max_dose_period=timedelta(days=1)),
     "1 tablet efter behov, højst hver 4. time, højst 720 mg pr. døgn",
     "1 tablet as needed, at most every 4 hours, at most 720 mg per day"),
])
def test_texts(t: TimingDosage, da: str, en: str) -> None:
    assert timing_text(t, "da") == da
    assert timing_text(t, "en") == en


def test_text_language_is_checked() -> None:
    with pytest.raises(InvalidArgument, match="lang"):
        timing_text(daily(1), "de")


# -- properties ---------------------------------------------------------------------------

_DAYS = st.integers(min_value=0, max_value=40)
_BASE = date(2026, 3, 20)  # the spring change lies inside the range the strategies cover
_AUTUMN_BASE = date(2026, 10, 16)


@st.composite
def rhythms(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["daily", "when", "clock", "days", "interval", "weekly"]))
    if kind == "daily":
        return {"frequency": draw(st.integers(1, 6)), "period": Decimal(1), "period_unit": "d"}
    if kind == "when":
        codes = draw(st.lists(st.sampled_from(["MORN", "CD", "EVE", "HS"]),
                              min_size=1, max_size=4, unique=True))
        return {"when": tuple(codes)}
    if kind == "clock":
        at = draw(st.lists(st.times().map(lambda t: t.replace(second=0, microsecond=0)),
                           min_size=1, max_size=4, unique=True))
        return {"time_of_day": tuple(at)}
    if kind == "days":
        return {"frequency": 1, "period": Decimal(draw(st.integers(2, 5))), "period_unit": "d"}
    if kind == "weekly":
        days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                             min_size=1, max_size=3, unique=True))
        return {"frequency": len(days), "period": Decimal(draw(st.integers(1, 2))),
                "period_unit": "wk", "day_of_week": tuple(days)}
    minutes = draw(st.sampled_from([60, 90, 240, 360, 480, 720, 1440, 2160]))
    return {"frequency": 1, "period": Decimal(minutes), "period_unit": "min"}


@st.composite
def courses(draw: st.DrawFn) -> tuple[TimingDosage, date, date]:
    base = draw(st.sampled_from([_BASE, _AUTUMN_BASE]))
    fields = draw(rhythms())
    start_day = base + timedelta(days=draw(st.integers(0, 10)))
    if draw(st.booleans()):
        hour = draw(st.integers(0, 23))
        minute = draw(st.sampled_from([0, 15, 30, 45]))
        fields["bounds_start"] = datetime.combine(start_day, time(hour, minute), CPH)
    else:
        fields["bounds_first_date"] = start_day
    if draw(st.booleans()):
        end_day = start_day + timedelta(days=draw(st.integers(0, 15)))
        if "bounds_start" in fields and draw(st.booleans()):
            fields["bounds_end"] = max(fields["bounds_start"], datetime.combine(
                end_day, time(draw(st.integers(0, 23))), CPH))
        else:
            fields["bounds_last_date"] = end_day
    if draw(st.booleans()):
        fields["count"] = draw(st.integers(1, 30))
    if fields.get("period_unit") == "d" and draw(st.booleans()):
        fields["day_of_week"] = tuple(draw(st.lists(
            st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
            min_size=1, max_size=7, unique=True)))
    first = base + timedelta(days=draw(_DAYS) - 5)
    last = first + timedelta(days=draw(st.integers(0, 30)))
    return timing(**fields), first, last


def _in_course(t: TimingDosage, s: TimingSlot) -> bool:
    start_day = t.bounds_first_date or (t.bounds_start.astimezone(CPH).date()
                                        if t.bounds_start else None)
    end_day = t.bounds_last_date or (t.bounds_end.astimezone(CPH).date() if t.bounds_end
                                     else None)
    return ((start_day is None or s.local_date >= start_day)
            and (end_day is None or s.local_date <= end_day)
            and (t.bounds_start is None or s.due_time >= t.bounds_start)
            and (t.bounds_end is None or s.due_time <= t.bounds_end))


_PROPERTY = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(courses())
def test_slots_lie_within_bounds_and_window_and_count(case: tuple[TimingDosage, date, date]
                                                      ) -> None:
    t, first, last = case
    assert timing_violation(t) is None
    slots = expand(t, first, last)
    assert all(first <= s.local_date <= last for s in slots)
    assert all(_in_course(t, s) for s in slots)
    assert all(CLOCK.local_date_of(s.due_time) == s.local_date for s in slots)
    assert len({(s.local_date, s.slot) for s in slots}) == len(slots)
    if t.count is not None:
        assert len(slots) <= t.count
    if t.day_of_week:
        allowed = {["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index(d)
                   for d in t.day_of_week}
        assert all(s.local_date.weekday() in allowed for s in slots)


@_PROPERTY
@given(courses(), st.integers(0, 30))
def test_expanding_in_pieces_gives_the_same_doses(case: tuple[TimingDosage, date, date],
                                                  cut: int) -> None:
    t, first, last = case
    middle = min(first + timedelta(days=cut), last)
    pieces = expand(t, first, middle) + expand(t, middle + timedelta(days=1), last)
    assert pieces == expand(t, first, last)


@_PROPERTY
@given(courses())
def test_a_count_is_reached_when_the_course_is_open(case: tuple[TimingDosage, date, date]
                                                    ) -> None:
    t, _, _ = case
    if t.count is None or t.bounds_end or t.bounds_last_date:
        return
    if t.bounds_first_date is not None:
        start = t.bounds_first_date
    else:
        assert t.bounds_start is not None  # courses() always draws one of the two
        start = CLOCK.local_date_of(t.bounds_start)
    # The sparsest rhythm drawn (every 5 days on one weekday) spaces doses 35 days apart.
    assert len(expand(t, start, start + timedelta(days=35 * 30))) == t.count


@_PROPERTY
@given(st.sampled_from([60, 90, 240, 360, 480, 600, 1440, 2160]),
       st.datetimes(min_value=datetime(2026, 3, 20), max_value=datetime(2026, 11, 5),
                    timezones=st.just(CPH)),
       st.integers(1, 20))
def test_interval_doses_are_exactly_the_period_apart(minutes: int, start: datetime,
                                                     days: int) -> None:
    start = start.replace(second=0, microsecond=0)
    t = every(minutes, "min", bounds_start=start)
    first = start.date()
    slots = expand(t, first, first + timedelta(days=days))
    assert slots and slots[0].due_time == start.astimezone(UTC)
    gaps = {b.due_time - a.due_time for a, b in pairwise(slots)}
    assert gaps <= {timedelta(minutes=minutes)}


# -- a course that begins at its first administration (issue 20) -------------------------

def _from_first(t: TimingDosage, first: date, last: date, *, given: datetime | None = None,
                due: datetime | None = None) -> list[tuple[str, str]]:
    return [(s.due_time.isoformat(), s.slot) for s in expand_timing(
        t, CLOCK, first, last, order_start=None, first_given=given, first_due=due)]


def test_an_interval_without_a_start_awaits_its_first_dose() -> None:
    from medservice.domain.fhir_timing import awaits_first_dose

    q6h = every(6, "h")
    assert awaits_first_dose(q6h, order_start=None)
    assert not awaits_first_dose(q6h, order_start=MONDAY)  # the order's start anchors it
    assert not awaits_first_dose(daily(2), order_start=None)  # a daily rhythm needs none
    # Until given: one dose, due from the order's valid time, a one-time dose (no window).
    [first] = expand_timing(q6h, CLOCK, MONDAY, MONDAY + timedelta(days=2), order_start=None,
                            first_due=utc(2026, 3, 2, 9, 17))
    assert (first.due_time, first.slot, first.one_time, first.open_ended) == (
        utc(2026, 3, 2, 9, 17), "first", True, True)
    assert _from_first(q6h, MONDAY, MONDAY) == []  # neither known: nothing is due
    # Open until given: a later run of dates holds it too, and, once given, those up to
    # the date it was given, not later ones.
    due = utc(2026, 3, 2, 9, 17)
    later = MONDAY + timedelta(days=3)
    assert _from_first(q6h, later, later, due=due) == [("2026-03-02T09:17:00+00:00", "first")]
    given = utc(2026, 3, 5, 7, 0)
    assert ("2026-03-02T09:17:00+00:00", "first") in _from_first(q6h, later, later, due=due,
                                                                  given=given)
    assert ("2026-03-02T09:17:00+00:00", "first") not in _from_first(
        q6h, later + timedelta(days=1), later + timedelta(days=1), due=due, given=given)
    assert _from_first(q6h, MONDAY - timedelta(days=2), MONDAY - timedelta(days=1),
                       due=due) == []  # not before its time


def test_an_interval_follows_the_first_dose_in_real_time_across_spring_dst() -> None:
    # Given at 23:40 CET on 28 March; 02:00 CET -> 03:00 CEST that night.
    given = datetime(2026, 3, 28, 23, 40, tzinfo=CPH)
    slots = expand_timing(every(6, "h"), CLOCK, date(2026, 3, 28), SPRING, order_start=None,
                          first_given=given)
    assert [(s.due_time, s.local_time.strftime("%H:%M")) for s in slots] == [
        (utc(2026, 3, 28, 22, 40), "23:40"),  # the first dose: the one given
        (utc(2026, 3, 29, 4, 40), "06:40"),  # six real hours later: 05:40 CET is 06:40 CEST
        (utc(2026, 3, 29, 10, 40), "12:40"), (utc(2026, 3, 29, 16, 40), "18:40")]


def test_a_course_of_n_doses_has_n_doses_from_the_first_one() -> None:
    course = every(8, "h", count=3)
    given = utc(2026, 3, 2, 13, 5)
    assert _from_first(course, MONDAY, MONDAY + timedelta(days=3), given=given) == [
        ("2026-03-02T13:05:00+00:00", "14:05"), ("2026-03-02T21:05:00+00:00", "22:05"),
        ("2026-03-03T05:05:00+00:00", "06:05")]
    # Expanding from a later date still counts from the first dose.
    assert _from_first(course, MONDAY + timedelta(days=1), MONDAY + timedelta(days=3),
                       given=given) == [("2026-03-03T05:05:00+00:00", "06:05")]
    single = timing(count=1)  # "a single dose", no time given: the one given is all
    assert _from_first(single, MONDAY, MONDAY + timedelta(days=5), given=given) == [
        ("2026-03-02T13:05:00+00:00", "14:05")]


def test_every_few_days_keeps_the_wall_time_it_was_given_at_across_dst() -> None:
    every_3_weeks = every(3, "wk", count=3)  # 0316: every 3 weeks for 16 cycles, shortened
    given = datetime(2026, 3, 20, 9, 30, tzinfo=CPH)  # CET; the next ones are in CEST
    assert _from_first(every_3_weeks, date(2026, 3, 1), date(2026, 6, 1), given=given) == [
        ("2026-03-20T08:30:00+00:00", "09:30"), ("2026-04-10T07:30:00+00:00", "09:30"),
        ("2026-05-01T07:30:00+00:00", "09:30")]


def test_a_count_at_times_of_day_without_a_start_is_still_refused() -> None:
    bid = daily(2, count=6)
    problem = timing_violation(bid, order_start=None, first_dose_anchors=True)
    assert problem is not None and "which of the day's times" in problem.description
    with pytest.raises(InvalidArgument):
        expand_timing(bid, CLOCK, MONDAY, MONDAY, order_start=None, first_given=utc(2026, 3, 2, 9))


def test_steps_of_a_sequence_are_checked_each_and_in_order() -> None:
    first = daily(1, bounds_first_date=MONDAY, bounds_last_date=MONDAY + timedelta(days=2))
    second = daily(2, bounds_first_date=MONDAY + timedelta(days=3))
    assert timing_violation(_chained(first, second)) is None
    overlapping = daily(2, bounds_first_date=MONDAY + timedelta(days=2))
    problem = timing_violation(_chained(first, overlapping))
    assert problem is not None and problem.field == "then[0].timing.repeat.boundsPeriod.start"
    bad_step = daily(1, bounds_first_date=MONDAY + timedelta(days=3), when=("AFT",))
    problem = timing_violation(_chained(first, bad_step))
    assert problem is not None and problem.field == "then[0].timing.repeat.when"
    pn = timing(as_needed=True, bounds_first_date=MONDAY + timedelta(days=3))
    problem = timing_violation(_chained(first, pn))
    assert problem is not None and problem.field == "then[0].asNeeded"


def _chained(first: TimingDosage, *steps: TimingDosage) -> TimingDosage:
    from dataclasses import replace

    return replace(first, then=steps)
