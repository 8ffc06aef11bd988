"""Properties of the dosage engine over generated dosages (hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    StructuredDosage,
    TimeKind,
    needs_manual_schedule,
    pn_allowance,
)
from medservice.domain.dosage_text import Language, short_text
from medservice.domain.facility import Facility
from medservice.domain.schedule import OrderTerms, ScheduledDose, schedule_order
from tests.dosage_slots import expand_dosage

CLOCK = FacilityClock.from_facility(Facility("home", "Home"))
UNIT = DoseUnit("tablet", "tabletter")
EPOCH = date(2026, 1, 1)
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

LANGUAGES: tuple[Language, ...] = ("da", "en")
quantities = st.sampled_from(["0", "0.025", "0.25", "0.5", "1", "1.5", "2", "10"])
clock_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@st.composite
def doses(draw: st.DrawFn, as_needed: bool | None = None) -> DosageDose:
    kind = draw(st.sampled_from(list(TimeKind)))
    at = draw(clock_times) if kind is TimeKind.CLOCK else None
    if draw(st.booleans()):
        amount = Amount.exact(draw(quantities))
    else:
        low, high = sorted([draw(quantities), draw(quantities)], key=float)
        amount = Amount.between(low, high)
    pn = draw(st.booleans()) if as_needed is None else as_needed
    return DosageDose(kind, at, amount, pn)


@st.composite
def periods(draw: st.DrawFn, start: date | None = None) -> DosagePeriod:
    start = start or EPOCH + timedelta(days=draw(st.integers(0, 60)))
    length = draw(st.one_of(st.none(), st.integers(1, 90)))
    end = None if length is None else start + timedelta(days=length - 1)
    interval = draw(st.sampled_from([0, 0, 1, 1, 2, 3, 7, 14, 28, 30]))
    limit = interval or 10
    numbers = draw(st.lists(st.integers(1, limit), max_size=5, unique=True))
    days = tuple(DosageDay(n, tuple(draw(st.lists(doses(), min_size=1, max_size=5))))
                 for n in sorted(numbers))
    if draw(st.integers(0, 9)) == 0:  # the model allows a day without doses
        days = (*days, DosageDay(limit, ()))
    if interval == 0 and draw(st.booleans()):  # an "any day" of as-needed entries
        any_day = DosageDay(0, tuple(draw(st.lists(doses(as_needed=True), min_size=1,
                                                   max_size=3))))
        days = (any_day, *days)
    text = draw(st.sampled_from(["", "ved måltid", ", 1 time før virkning ønskes"]))
    return DosagePeriod(start, end, interval, text, days)


structured = st.lists(periods(), min_size=1, max_size=3).map(
    lambda ps: StructuredDosage(UNIT, tuple(ps)))


def ruling_period(dosage: StructuredDosage, on: date) -> int | None:
    """The index of the period whose fixed doses apply on a date, by the rule as written:
    of the periods covering it that have fixed doses or none, the one starting last (then
    the later in the list)."""
    covering = [(p.start_date, i) for i, p in enumerate(dosage.periods)
                if p.covers(on) and (p.fixed_doses or p.is_empty)]
    return max(covering)[1] if covering else None


@PROPERTY
@given(structured, st.integers(0, 120), st.integers(0, 40))
def test_every_due_dose_lies_inside_its_ruling_period_and_matches_its_day(
    dosage: StructuredDosage, offset: int, span: int
) -> None:
    first = EPOCH + timedelta(days=offset)
    last = first + timedelta(days=span)
    slots = expand_dosage(dosage, first, last)
    per_date = Counter(s.local_date for s in slots)
    for on in (first + timedelta(days=n) for n in range(span + 1)):
        index = ruling_period(dosage, on)
        expected = 0
        if index is not None:
            period = dosage.periods[index]
            number = period.day_number_on(on)
            expected = sum(1 for day in period.days if day.day_number == number
                           for d in day.doses if not d.as_needed)
        assert per_date[on] == expected
    for s in slots:
        period = dosage.periods[s.period_index]
        assert first <= s.local_date <= last and period.covers(s.local_date)
        assert s.period_index == ruling_period(dosage, s.local_date)
        assert s.supplementary_text == period.supplementary_text


@PROPERTY
@given(structured, st.integers(0, 120))
def test_pn_doses_are_never_due(dosage: StructuredDosage, offset: int) -> None:
    only_pn = StructuredDosage(UNIT, tuple(
        DosagePeriod(p.start_date, p.end_date, p.iteration_interval_days, "", tuple(
            DosageDay(day.day_number, tuple(DosageDose(d.time_kind, d.clock_time, d.amount,
                                                       True) for d in day.doses))
            for day in p.days))
        for p in dosage.periods))
    first = EPOCH + timedelta(days=offset)
    assert expand_dosage(only_pn, first, first + timedelta(days=60)) == []
    assert schedule_order(OrderTerms("r", "o", only_pn), CLOCK, first,
                          first + timedelta(days=3)) == []
    allowance = pn_allowance(dosage, first)
    if allowance is not None:
        assert allowance.max_per_day is None or allowance.max_per_day >= 1


@PROPERTY
@given(periods(start=EPOCH), st.integers(1, 4))
def test_each_cycle_gives_the_structures_fixed_doses(period: DosagePeriod, cycles: int) -> None:
    assume(period.end_date is None and period.iteration_interval_days > 0)
    dosage = StructuredDosage(UNIT, (period,))
    assume(needs_manual_schedule(dosage) is None)
    interval = period.iteration_interval_days
    last = EPOCH + timedelta(days=interval * cycles - 1)
    fixed_per_cycle = len(period.fixed_doses)
    assert len(expand_dosage(dosage, EPOCH, last)) == fixed_per_cycle * cycles


@PROPERTY
@given(periods(start=EPOCH))
def test_a_non_iterated_period_gives_each_listed_day_once(period: DosagePeriod) -> None:
    assume(period.iteration_interval_days == 0)
    dosage = StructuredDosage(UNIT, (period,))
    assume(needs_manual_schedule(dosage) is None)
    last = period.end_date or EPOCH + timedelta(days=30)
    inside = sum(1 for day in period.days if day.day_number and period.covers(
        EPOCH + timedelta(days=day.day_number - 1)) for d in day.doses if not d.as_needed)
    assert len(expand_dosage(dosage, EPOCH - timedelta(days=5),
                             last + timedelta(days=30))) == inside


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 6, 1),
                        timezones=st.just(UTC))


@PROPERTY
@given(structured, st.integers(0, 90), st.integers(0, 5),
       st.one_of(st.none(), st.integers(0, 60)), st.one_of(st.none(), st.integers(0, 60)),
       st.lists(st.tuples(st.one_of(st.none(), instants), st.one_of(st.none(), instants)),
                max_size=2),
       st.one_of(st.none(), instants), st.booleans())
def test_scheduled_doses_respect_treatment_dates_pauses_and_discontinuation(
    dosage: StructuredDosage, offset: int, span: int, start_in: int | None,
    end_in: int | None, pauses: list[tuple[datetime | None, datetime | None]],
    discontinued: datetime | None, critical: bool,
) -> None:
    first = EPOCH + timedelta(days=offset)
    last = first + timedelta(days=span)
    start = None if start_in is None else EPOCH + timedelta(days=start_in)
    end = None if end_in is None else EPOCH + timedelta(days=end_in)
    terms = OrderTerms("resident", "order", dosage, treatment_start=start, treatment_end=end,
                       pauses=tuple(pauses), discontinued_at=discontinued,
                       time_critical=critical)
    found = schedule_order(terms, CLOCK, first, last)
    unfiltered = schedule_order(OrderTerms("resident", "order", dosage), CLOCK, first, last)
    for d in found:
        assert first <= d.local_date <= last
        assert start is None or d.local_date >= start
        assert end is None or d.local_date <= end
        assert discontinued is None or d.due_time < discontinued
        for p_start, p_end in pauses:
            assert not ((p_start is None or p_start <= d.due_time)
                        and (p_end is None or d.due_time < p_end))
        assert CLOCK.local_date_of(d.due_time) == d.local_date
    assert {d.dose_id for d in found} <= {d.dose_id for d in unfiltered}
    assert len({d.dose_id for d in unfiltered}) == len(unfiltered)


@PROPERTY
@given(st.sampled_from([date(2026, 3, 29), date(2026, 10, 25)]),
       st.lists(clock_times, min_size=1, max_size=8, unique=True))
def test_dst_days_give_valid_distinct_instants(day: date, times: list[time]) -> None:
    dosage = StructuredDosage(UNIT, (DosagePeriod(EPOCH, None, 1, "", (DosageDay(1, tuple(
        DosageDose(TimeKind.CLOCK, t, Amount.exact(1)) for t in times)),)),))
    found = schedule_order(OrderTerms("r", "o", dosage), CLOCK, day, day)
    assert len(found) == len(times)

    def in_gap(d: ScheduledDose) -> bool:  # set in the hour the spring night skips
        return day.month == 3 and time(2) <= time.fromisoformat(d.slot) < time(3)

    for d in found:
        assert d.due_time.tzinfo is UTC
        local = CLOCK.local(d.due_time)
        assert local.date() == day
        assert d.local_time == local.time()  # the wall-clock time the dose really has
        nominal = datetime.combine(day, time.fromisoformat(d.slot))
        expected = nominal + timedelta(hours=1) if in_gap(d) else nominal
        assert local.replace(tzinfo=None) == expected
        if day.month == 10 and time(2) <= nominal.time() < time(3):
            assert local.utcoffset() == timedelta(hours=2)  # the first occurrence
    # Distinct wall times that exist on the day give distinct instants.
    existing = [d for d in found if not in_gap(d)]
    assert len({d.due_time for d in existing}) == len(existing)


@PROPERTY
@given(structured)
def test_every_dosage_has_a_short_text(dosage: StructuredDosage) -> None:
    for lang in LANGUAGES:
        text = short_text(dosage, lang)
        assert text and text.strip() == text
