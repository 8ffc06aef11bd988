"""The dosage model and its expansion over local dates (DOMAIN.md §3)."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    LocalSchemaDosage,
    PnAllowance,
    StructuredDosage,
    TimeKind,
    needs_manual_schedule,
    parse_time_key,
    pn_allowance,
    time_key,
)
from medservice.domain.errors import InvalidArgument
from tests.dosage_slots import DueDoseSlot, expand_dosage

UNIT = DoseUnit("tablet", "tabletter")
MON = date(2026, 3, 2)  # a Monday
ANY, MORNING, NOON, EVENING, NIGHT, CLOCK = (
    TimeKind.ANY, TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT,
    TimeKind.CLOCK,
)


def dose(kind: TimeKind = ANY, quantity: str = "1", *, pn: bool = False,
         at: time | None = None) -> DosageDose:
    return DosageDose(kind, at, Amount.exact(quantity), as_needed=pn)


def period(start: date, end: date | None, interval: int, *days: tuple[int, list[DosageDose]],
           text: str = "") -> DosagePeriod:
    return DosagePeriod(start, end, interval, text,
                        tuple(DosageDay(n, tuple(doses)) for n, doses in days))


def structured(*periods: DosagePeriod) -> StructuredDosage:
    return StructuredDosage(UNIT, periods)


def due_dates(dosage: StructuredDosage, first: date, last: date) -> list[date]:
    return [s.local_date for s in expand_dosage(dosage, first, last)]


def days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(count)]


# -- the model ---------------------------------------------------------------------------


def test_amount_is_a_quantity_or_a_range() -> None:
    assert Amount.exact("0.025").quantity == Decimal("0.025")
    assert Amount.exact(0).quantity == 0  # warfarin schedules have doses of 0
    r = Amount.between("1", "2")
    assert (r.is_range, r.low, r.high) == (True, 1, 2)
    assert r.allows(Decimal("1.5")) and not r.allows(Decimal("2.5"))
    assert Amount.exact("0.5").allows(Decimal("0.50"))


@pytest.mark.parametrize("kwargs", [
    {},
    {"quantity": Decimal(1), "min_quantity": Decimal(1), "max_quantity": Decimal(2)},
    {"min_quantity": Decimal(1)},
    {"min_quantity": Decimal(3), "max_quantity": Decimal(2)},
    {"quantity": Decimal(-1)},
    {"quantity": Decimal("NaN")},
])
def test_an_amount_must_be_exactly_one_valid_form(kwargs: dict[str, Decimal]) -> None:
    with pytest.raises(InvalidArgument):
        Amount(**kwargs)


def test_clock_time_goes_with_the_clock_kind_only() -> None:
    with pytest.raises(InvalidArgument):
        DosageDose(CLOCK, None, Amount.exact(1))
    with pytest.raises(InvalidArgument):
        DosageDose(MORNING, time(8), Amount.exact(1))


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(InvalidArgument, match="end_date"):
        DosagePeriod(MON, MON - timedelta(days=1))
    with pytest.raises(InvalidArgument):
        DosageDay(-1, ())


# -- days and iteration --------------------------------------------------------------------


def test_day_n_falls_on_start_plus_n_minus_one() -> None:
    taper = structured(period(MON, None, 0, (1, [dose()]), (3, [dose(), dose()]), (4, [dose()])))
    assert due_dates(taper, MON - timedelta(days=3), MON + timedelta(days=10)) == [
        MON, MON + timedelta(days=2), MON + timedelta(days=2), MON + timedelta(days=3)]


def test_an_iterated_day_recurs_every_interval_days() -> None:
    every_other_day = structured(period(MON, None, 2, (1, [dose()])))
    assert due_dates(every_other_day, MON, MON + timedelta(days=6)) == days(MON, 7)[::2]


def test_the_weekday_comes_from_the_start_date_not_the_calendar_week() -> None:
    wednesday = MON + timedelta(days=2)
    weekly = structured(period(wednesday, None, 7, (1, [dose()]), (3, [dose()])))
    found = due_dates(weekly, MON, MON + timedelta(days=20))
    assert [d.strftime("%a") for d in found] == ["Wed", "Fri"] * 3


def test_the_cycle_position_is_date_minus_start_mod_interval() -> None:
    # 3 weeks on, 1 week off: day 22-28 of each 28-day cycle give nothing.
    on_off = structured(period(MON, None, 28, *((n, [dose()]) for n in range(1, 22))))
    found = set(due_dates(on_off, MON, MON + timedelta(days=56 * 2)))
    for offset in range(56 * 2):
        assert ((MON + timedelta(days=offset)) in found) == (offset % 28 < 21)


def test_an_interval_longer_than_the_period_behaves_as_not_iterated() -> None:
    short = structured(period(MON, MON + timedelta(days=9), 30, (1, [dose()]), (5, [dose()])))
    assert due_dates(short, MON - timedelta(days=40), MON + timedelta(days=90)) == [
        MON, MON + timedelta(days=4)]
    assert needs_manual_schedule(short) is None


def test_nothing_is_due_outside_the_period() -> None:
    daily = structured(period(MON, MON + timedelta(days=2), 1, (1, [dose()])))
    assert due_dates(daily, MON - timedelta(days=5), MON + timedelta(days=5)) == days(MON, 3)


# -- periods: empty, abutting, overlapping -------------------------------------------------


def test_an_empty_period_gives_nothing_and_hides_an_earlier_period() -> None:
    pause_mid_week = structured(
        period(MON, None, 1, (1, [dose()])),
        DosagePeriod(MON + timedelta(days=2), MON + timedelta(days=3)),
    )
    assert due_dates(pause_mid_week, MON, MON + timedelta(days=5)) == [
        MON, MON + timedelta(days=1), MON + timedelta(days=4), MON + timedelta(days=5)]


def test_on_a_shared_boundary_day_the_period_starting_that_day_wins() -> None:
    boundary = MON + timedelta(days=3)
    stepped = structured(
        period(MON, boundary, 1, (1, [dose(quantity="1")])),
        period(boundary, None, 1, (1, [dose(quantity="2"), dose(quantity="2")])),
    )
    slots = expand_dosage(stepped, boundary - timedelta(days=1), boundary)
    assert [(s.local_date, s.amount.quantity, s.period_index) for s in slots] == [
        (boundary - timedelta(days=1), 1, 0), (boundary, 2, 1), (boundary, 2, 1)]


def test_periods_starting_the_same_day_the_later_in_the_list_wins() -> None:
    twice = structured(period(MON, None, 1, (1, [dose()])),
                       period(MON, None, 1, (1, [dose(MORNING), dose(EVENING)])))
    assert [s.slot for s in expand_dosage(twice, MON, MON)] == ["morning", "evening"]


def test_a_pn_only_period_does_not_hide_fixed_doses_nor_the_other_way_round() -> None:
    # FMK 1.4.6 sends fixed and as-needed structures as separate, overlapping lists.
    both = structured(period(MON, None, 1, (1, [dose(MORNING)])),
                      period(MON + timedelta(days=1), None, 1, (1, [dose(pn=True)] * 3)))
    assert due_dates(both, MON, MON + timedelta(days=2)) == days(MON, 3)
    assert pn_allowance(both, MON + timedelta(days=2)) == PnAllowance(
        Amount.exact(1), 3, 1, "")
    assert pn_allowance(both, MON) is None


# -- PN --------------------------------------------------------------------------------------


def test_pn_doses_are_never_due() -> None:
    mixed = structured(period(MON, None, 1, (1, [dose(MORNING), dose(pn=True), dose(pn=True)])))
    assert [s.slot for s in expand_dosage(mixed, MON, MON + timedelta(days=1))] == [
        "morning", "morning"]
    only_pn = structured(period(MON, None, 0, (0, [dose(pn=True)])))
    assert expand_dosage(only_pn, MON, MON + timedelta(days=30)) == []


def test_the_pn_daily_maximum_is_the_number_of_pn_entries_on_the_day() -> None:
    three_a_day = structured(period(MON, None, 1, (1, [dose(pn=True, quantity="2")] * 3)))
    assert pn_allowance(three_a_day, MON + timedelta(days=100)) == PnAllowance(
        Amount.exact(2), 3, 0, "")
    once_a_day = structured(period(MON, None, 1, (1, [dose(pn=True)])))
    allowance = pn_allowance(once_a_day, MON)
    assert allowance is not None and allowance.max_per_day == 1


def test_one_pn_entry_in_a_non_iterated_period_means_no_limit() -> None:
    as_needed = structured(period(MON, None, 0, (0, [dose(pn=True)]), text="ved smerter"))
    allowance = pn_allowance(as_needed, MON + timedelta(days=400))
    assert allowance == PnAllowance(Amount.exact(1), None, 0, "ved smerter")
    assert pn_allowance(as_needed, MON - timedelta(days=1)) is None


def test_pn_entries_of_different_sizes_allow_the_covering_range() -> None:
    varied = structured(period(MON, None, 1, (1, [dose(pn=True, quantity="1"),
                                                   dose(pn=True, quantity="2")])))
    allowance = pn_allowance(varied, MON)
    assert allowance is not None
    assert (allowance.amount, allowance.max_per_day) == (Amount.between(1, 2), 2)


def test_any_day_pn_entries_count_on_every_day_of_a_non_iterated_period() -> None:
    taper_with_pn = structured(period(MON, None, 0, (0, [dose(pn=True)]),
                                      (1, [dose(pn=True), dose(MORNING)])))
    first_day, later = pn_allowance(taper_with_pn, MON), pn_allowance(taper_with_pn,
                                                                       MON + timedelta(days=5))
    assert first_day is not None and first_day.max_per_day == 2
    assert later is not None and later.max_per_day == 1


# -- what cannot be scheduled ------------------------------------------------------------------


def test_free_text_and_local_schemas_need_a_manual_schedule() -> None:
    assert needs_manual_schedule(FreeTextDosage("efter skriftlig anvisning")) is not None
    assert needs_manual_schedule(LocalSchemaDosage()) is not None
    assert needs_manual_schedule(structured(period(MON, None, 1, (1, [dose()])))) is None


@pytest.mark.parametrize(("dosage", "reason"), [
    (structured(period(MON, None, 0, (0, [dose()]))), "any day"),
    (structured(period(MON, None, 7, (1, [dose()]), (9, [dose()]))), "beyond its 7-day cycle"),
    (StructuredDosage(UNIT, ()), "no periods"),
])
def test_structures_that_cannot_be_placed_on_dates_need_a_manual_schedule(
    dosage: StructuredDosage, reason: str
) -> None:
    found = needs_manual_schedule(dosage)
    assert found is not None and reason in found.render("en")


# -- slots -------------------------------------------------------------------------------------


def test_slots_label_doses_stably_within_their_day() -> None:
    day = [dose(MORNING), dose(CLOCK, at=time(12, 30)), dose(), dose(), dose(), dose(NIGHT),
           dose(MORNING, "2")]
    slots = expand_dosage(structured(period(MON, None, 1, (1, day), text="med vand")), MON, MON)
    assert [s.slot for s in slots] == [
        "morning", "12:30", "any-1of3", "any-2of3", "any-3of3", "night", "morning-2"]
    assert [(s.any_index, s.any_count) for s in slots if s.time_kind is ANY] == [
        (0, 3), (1, 3), (2, 3)]
    assert slots[-1] == DueDoseSlot(MON, MORNING, None, Amount.exact(2), "morning-2", 0,
                                    "med vand", 7, 0, 3, "morning")
    assert slots == expand_dosage(structured(period(MON, None, 1, (1, day), text="med vand")),
                                  MON, MON)


@pytest.mark.parametrize(("kind", "at", "index", "count", "key"), [
    (MORNING, None, 0, 1, "morning"),
    (NIGHT, None, 0, 1, "night"),
    (CLOCK, time(7, 5), 0, 1, "07:05"),
    (ANY, None, 1, 3, "any-2of3"),
])
def test_time_keys_name_a_dose_time_and_read_back(
    kind: TimeKind, at: time | None, index: int, count: int, key: str
) -> None:
    assert time_key(kind, at, index, count) == key
    assert parse_time_key(key) == (kind, at, index if kind is ANY else 0,
                                   count if kind is ANY else 1)
    with pytest.raises(InvalidArgument):
        parse_time_key("sometimes")


def test_a_dosage_can_be_moved_to_another_start_date() -> None:
    two = structured(period(MON, MON + timedelta(days=6), 1, (1, [dose()])),
                     period(MON + timedelta(days=7), None, 7, (1, [dose()])))
    moved = two.starting(MON + timedelta(days=1))
    assert [(p.start_date, p.end_date) for p in moved.periods] == [
        (MON + timedelta(days=1), MON + timedelta(days=7)), (MON + timedelta(days=8), None)]
    assert moved.periods[1].days == two.periods[1].days
