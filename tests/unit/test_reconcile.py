"""The reconciliation engine: one scenario per discrepancy code (DOMAIN.md §6-8)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import OrderVersion, Pause
from medservice.domain.rounds import doses_between
from medservice.i18n import msg
from medservice.reconcile import (
    Code,
    Discrepancy,
    FacilityRules,
    Severity,
    context_range,
    reconcile,
)
from tests.unit.test_reconcile_builders import (
    CALENDAR_RULES,
    CLOCK,
    DAY,
    EPOCH,
    FACILITY,
    HOUR,
    MORNING,
    NOON_EVENING,
    PN_TWICE_DAILY,
    RESIDENT,
    RULES,
    UNIT,
    at,
    changed,
    codes,
    content,
    dosage,
    dose,
    due,
    local,
    only,
    orders_of,
    record,
    version,
)
from tests.unit.test_reconcile_builders import run as run_in

# These tests read what each finding says in English (a facility set to "en"); that the
# same messages read in Danish, the default, is tested in tests/unit/test_i18n.py.
ENGLISH = replace(RULES, language="en")


def run(orders: dict[str, list[OrderVersion]], records: Iterable[AdministrationRecord], *,
        now: datetime, start: datetime | None = None, end: datetime | None = None,
        rules: FacilityRules = ENGLISH) -> list[Discrepancy]:
    return run_in(orders, records, now=now, start=start, end=end,
                  rules=replace(rules, language="en"))

NEXT_DAY = DAY + timedelta(days=1)
EVENING = at(21)  # after the evening window closed


def plain() -> dict[str, list]:
    return orders_of([version(content())])


# -- MISSED_DOSE ----------------------------------------------------------------------------


def test_a_dose_is_missed_when_its_window_closes_without_a_record() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    assert run(orders, [], now=at(8, 59)) == []  # window 07:00-09:00 still open
    found = run(orders, [], now=at(9))
    assert codes(found) == [(Code.MISSED_DOSE, morning.dose_id)]
    missed = found[0]
    assert missed.key == f"MISSED_DOSE|home/r1|o1|{morning.dose_id}"
    assert (missed.severity, missed.is_error, missed.occurred_at) == (
        Severity.HIGH, True, morning.due_time)
    assert (missed.order_id, missed.dose_id, missed.record_id) == ("o1", morning.dose_id, None)
    assert "08:00" in missed.description


def test_a_one_time_dose_is_missed_after_a_daily_window_and_is_never_late() -> None:
    once = StructuredDosage(UNIT, (DosagePeriod(DAY, None, 0, "", (
        DosageDay(1, (dose(TimeKind.MORNING),)),)),))
    orders = orders_of([version(content(dosage_=once))])
    dose_ = due(orders, "o1", 8)
    assert dose_.window_end is None
    assert run(orders, [], now=at(9, 59)) == []
    assert codes(run(orders, [], now=at(10))) == [(Code.MISSED_DOSE, dose_.dose_id)]
    # Given an hour after that, without a dose id: it settles the dose, and has no window.
    assert run(orders, [record("r", at(11), dose_id=None)], now=at(12)) == []


def test_a_record_settles_its_dose_and_a_not_given_one_too() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    assert run(orders, [record("a", at(8, 5), dose_id=morning.dose_id)], now=at(10)) == []
    refused = record("b", at(8, 5), dose_id=morning.dose_id, outcome=Outcome.NOT_GIVEN,
                     quantity=None, reason=NotGivenReason.REFUSED)
    assert codes(run(orders, [refused], now=at(10))) == [(Code.NOT_GIVEN, "b")]


def test_a_record_without_dose_id_after_the_window_is_late_not_missed() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    found = run(orders, [record("late", at(9, 30))], now=at(10))
    late = only(found, Code.LATE_DOSE)
    assert codes(found) == [(Code.LATE_DOSE, "late")]
    assert (late.dose_id, late.severity) == (morning.dose_id, Severity.MEDIUM)


# -- EARLY_DOSE / LATE_DOSE -----------------------------------------------------------------


@pytest.mark.parametrize(("hour", "minute", "expected"), [
    (6, 59, Code.EARLY_DOSE), (7, 0, None), (9, 0, None), (9, 1, Code.LATE_DOSE)])
def test_given_outside_the_window_is_early_or_late(hour: int, minute: int,
                                                   expected: Code | None) -> None:
    orders = plain()  # twice daily: ±60 minutes
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(hour, minute), dose_id=morning.dose_id)], now=at(10))
    assert codes(found) == ([] if expected is None else [(expected, "r")])
    if expected is not None:
        assert found[0].severity is Severity.MEDIUM
        assert found[0].key == f"{expected.value}|home/r1|o1|r"


def test_early_and_late_are_high_for_a_time_critical_order() -> None:
    orders = orders_of([version(content(time_critical=True))])  # ±30 minutes
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(8, 45), dose_id=morning.dose_id)], now=at(10))
    late = only(found, Code.LATE_DOSE)
    assert late.severity is Severity.HIGH and late.is_error


def test_windows_are_real_elapsed_time_on_the_spring_dst_day() -> None:
    spring = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST
    orders = orders_of([version(content(dosage_=dosage(dose(TimeKind.CLOCK,
                                                             clock_time=time(1, 30)))))])
    d = next(x for x, _ in doses_between(orders["o1"], CLOCK, local(spring, 0),
                                         local(spring, 23), EPOCH))
    assert d.due_time == local(spring, 1, 30)
    assert d.window_end == d.due_time + timedelta(hours=2)  # 04:30 local, not 03:30
    start, end = local(spring, 0), local(spring + timedelta(days=1), 0)

    def on_spring_day(records: list[AdministrationRecord], now: datetime) -> list[Discrepancy]:
        return run(orders, records, now=now, start=start, end=end)

    # 04:00 local is 2 h 30 min of wall clock after 01:30, but only 1 h 30 min elapsed.
    assert on_spring_day([record("r", local(spring, 4), dose_id=d.dose_id)],
                         local(spring, 12)) == []
    late = on_spring_day([record("r", local(spring, 4, 45), dose_id=d.dose_id)],
                         local(spring, 12))
    assert codes(late) == [(Code.LATE_DOSE, "r")]
    assert "15 min" in late[0].description
    assert on_spring_day([], local(spring, 4, 29)) == []
    assert codes(on_spring_day([], local(spring, 4, 30))) == [(Code.MISSED_DOSE, d.dose_id)]


# -- WRONG_DOSE -----------------------------------------------------------------------------


def test_a_quantity_outside_the_ordered_one_or_range_is_a_wrong_dose() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(8), dose_id=morning.dose_id, quantity="2")],
                now=at(10))
    assert codes(found) == [(Code.WRONG_DOSE, "r")]
    assert found[0].severity is Severity.HIGH
    assert found[0].description == "quantity 2 where 1 is ordered"
    assert found[0].message is not None
    assert found[0].message.render("da") == "mængde 2, hvor 1 er ordineret"
    ranged = orders_of([version(content(dosage_=dosage(dose(
        TimeKind.MORNING, amount=Amount.between("0.5", "1")))))])
    d = due(ranged, "o1", 8)
    assert run(ranged, [record("r", at(8), dose_id=d.dose_id, quantity="0.5")],
               now=at(11)) == []
    assert codes(run(ranged, [record("r", at(8), dose_id=d.dose_id, quantity="1.5")],
                     now=at(11))) == [(Code.WRONG_DOSE, "r")]
    # No quantity recorded: nothing to compare.
    assert run(ranged, [record("r", at(8), dose_id=d.dose_id, quantity=None)],
               now=at(11)) == []


# -- EXTRA_DOSE -----------------------------------------------------------------------------


def test_the_later_of_two_records_on_one_dose_is_the_extra_one() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    first = record("zz-first", at(8), dose_id=morning.dose_id)
    second = record("aa-second", at(8, 10), dose_id=morning.dose_id)
    for records in ([first, second], [second, first]):
        found = run(orders, records, now=at(10))
        assert codes(found) == [(Code.EXTRA_DOSE, "aa-second")]
        assert found[0].severity is Severity.HIGH
        assert found[0].dose_id == morning.dose_id
    # Same administration time: the one recorded later is the extra one.
    a = record("a", at(8), dose_id=morning.dose_id, recorded_at=at(8, 5))
    b = record("b", at(8), dose_id=morning.dose_id, recorded_at=at(8, 2))
    assert codes(run(orders, [a, b], now=at(10))) == [(Code.EXTRA_DOSE, "a")]


def test_refused_then_given_on_one_dose_is_not_an_extra_dose() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    refused = record("a", at(8), dose_id=morning.dose_id, outcome=Outcome.NOT_GIVEN,
                     quantity=None, reason=NotGivenReason.REFUSED)
    given = record("b", at(8, 30), dose_id=morning.dose_id)
    assert codes(run(orders, [refused, given], now=at(10))) == [(Code.NOT_GIVEN, "a")]


def test_a_stray_record_is_extra_when_every_dose_of_the_day_is_taken() -> None:
    orders = plain()
    morning, evening = due(orders, "o1", 8), due(orders, "o1", 18)
    stray = record("stray", at(13))
    taken = [record("m", at(8), dose_id=morning.dose_id),
             record("e", at(18), dose_id=evening.dose_id)]
    found = run(orders, [*taken, stray], now=EVENING)
    assert codes(found) == [(Code.EXTRA_DOSE, "stray")]
    assert found[0].dose_id is None
    # While the evening dose is open, the stray record is that dose given early.
    early = run(orders, [taken[0], stray], now=at(14))
    assert codes(early) == [(Code.EARLY_DOSE, "stray")]
    assert early[0].dose_id == evening.dose_id


def test_a_dose_on_a_day_the_order_has_none_is_an_extra_dose() -> None:
    weekly = orders_of([version(content(dosage_=dosage(dose(TimeKind.MORNING), interval=7)))])
    assert (DAY - date(2026, 1, 1)).days % 7 != 0  # not a dose day
    assert codes(run(weekly, [record("r", at(8))], now=at(10))) == [(Code.EXTRA_DOSE, "r")]


# -- UNORDERED_DRUG -------------------------------------------------------------------------


def test_a_drug_without_an_order_in_force_is_unordered() -> None:
    orders = plain()
    found = run(orders, [record("r", at(8), order_id=None, drug_id="drug-z")], now=at(8, 30))
    assert codes(found) == [(Code.UNORDERED_DRUG, "r")]
    assert found[0].key == "UNORDERED_DRUG|home/r1||r"
    assert (found[0].order_id, found[0].severity) == (None, Severity.HIGH)
    unknown = run(orders, [record("r", at(8), order_id="nope")], now=at(8, 30))
    assert codes(unknown) == [(Code.UNORDERED_DRUG, "r")]


def test_a_record_without_order_finds_the_order_of_its_drug() -> None:
    orders = orders_of([version(content())], [version(content("o2", MORNING, drug_id="b"))])
    found = run(orders, [record("r", at(8), order_id=None, drug_id="b")], now=at(9, 30))
    # Placed on o2's morning dose; o1's morning dose is still missed.
    assert codes(found) == [(Code.MISSED_DOSE, due(orders, "o1", 8).dose_id)]


def test_a_drug_with_two_orders_goes_to_the_one_in_force() -> None:
    stopped = changed([version(content("a-old"))], EPOCH + HOUR, discontinued_at=EPOCH + HOUR)
    orders = orders_of(stopped, [version(content())])
    found = run(orders, [record("r", at(8), order_id=None)], now=at(10))
    assert codes(found) == []  # o1's morning dose, not the discontinued a-old


def test_a_due_dose_given_in_its_window_before_its_order_applied_is_in_order() -> None:
    new_order = orders_of([version(content(), valid_from=at(7, 30))])
    morning = due(new_order, "o1", 8)
    assert run(new_order, [record("r", at(7, 10), dose_id=morning.dose_id)], now=at(10)) == []


def test_an_order_removed_from_the_card_is_no_order() -> None:
    history = [version(content()), version(content(), 2, valid_from=at(7), removed=True)]
    orders = orders_of(history)
    assert codes(run(orders, [record("r", at(8))], now=at(10))) == [
        (Code.UNORDERED_DRUG, "r")]


# -- GIVEN_AFTER_DISCONTINUATION (two clocks) -----------------------------------------------


def test_a_back_dated_discontinuation_flags_the_dose_given_before_it_was_known() -> None:
    history = [version(content(dosage_=NOON_EVENING))]
    noon = due(orders_of(history), "o1", 12)
    given = record("r", at(12), dose_id=noon.dose_id, recorded_at=at(12, 5))
    # Before the mirror hears of the discontinuation, the dose is in order.
    assert run(orders_of(history), [given], now=at(13)) == []
    # Discontinued at 10:00, and the mirror learns it at 14:00.
    late_news = orders_of(changed(history, at(14), discontinued_at=at(10)))
    found = run(late_news, [given], now=at(15))
    assert codes(found) == [(Code.GIVEN_AFTER_DISCONTINUATION, "r")]
    d = found[0]
    assert (d.severity, d.is_error, d.known_at_administration) == (Severity.HIGH, True, False)
    assert "not yet known" in d.description
    # No evening dose is due after the discontinuation, so none is missed.
    assert run(late_news, [], now=EVENING) == []


def test_a_discontinuation_known_before_the_dose_says_so() -> None:
    history = [version(content(dosage_=NOON_EVENING))]
    noon = due(orders_of(history), "o1", 12)
    known = orders_of(changed(history, at(11), discontinued_at=at(10)))
    found = run(known, [record("r", at(12), dose_id=noon.dose_id)], now=at(15))
    assert codes(found) == [(Code.GIVEN_AFTER_DISCONTINUATION, "r")]
    assert found[0].known_at_administration is True


# -- GIVEN_DURING_PAUSE ---------------------------------------------------------------------


def test_a_dose_given_during_a_pause() -> None:
    history = changed([version(content())], at(6), pauses=(Pause(at(7), at(10)),))
    found = run(orders_of(history), [record("r", at(8))], now=at(11))
    # The morning dose is not due inside the pause: neither missed nor extra.
    assert codes(found) == [(Code.GIVEN_DURING_PAUSE, "r")]
    assert found[0].known_at_administration is True
    assert found[0].severity is Severity.HIGH
    back_dated = changed([version(content())], at(11), pauses=(Pause(at(7), at(10)),))
    found = run(orders_of(back_dated), [record("r", at(8))], now=at(12))
    assert found[0].known_at_administration is False


# -- OUTSIDE_TREATMENT_PERIOD ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["treatment_end", "treatment_start"])
def test_a_dose_outside_the_treatment_period(field: str) -> None:
    c = (content(treatment_end=DAY - timedelta(days=1)) if field == "treatment_end"
         else content(treatment_start=DAY + timedelta(days=1)))
    orders = orders_of([version(c)])
    found = run(orders, [record("r", at(8))], now=at(10))
    assert codes(found) == [(Code.OUTSIDE_TREATMENT_PERIOD, "r")]
    assert found[0].severity is Severity.MEDIUM and found[0].is_error


def test_the_treatment_period_is_in_local_dates() -> None:
    orders = orders_of([version(content(dosage_=dosage(dose(pn=True)), treatment_end=DAY))])
    start, end = local(DAY, 12), local(NEXT_DAY, 12)
    # 23:30 local is 21:30 UTC on the same date; 00:30 local is 22:30 UTC of the day before.
    last = record("last", local(DAY, 23, 30), outcome=Outcome.PN_GIVEN)
    after = record("after", local(NEXT_DAY, 0, 30), outcome=Outcome.PN_GIVEN)
    assert after.administered_at.date() == DAY
    found = run(orders, [last, after], now=local(NEXT_DAY, 2), start=start, end=end)
    assert codes(found) == [(Code.OUTSIDE_TREATMENT_PERIOD, "after")]
    assert found[0].description == "given on 2026-05-05; treatment 2026-01-01 to 2026-05-04"
    assert found[0].message is not None
    assert found[0].message.render("da") == (
        "givet 2026-05-05; behandling 2026-01-01 til 2026-05-04")


# -- WRONG_ROUTE ----------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "wrong"), [
    ("subcutaneous", True), (" ORAL ", False), ("", False),
    # One route whatever the source calls it (domain/vocabulary.py): FMK's code, SNOMED's
    # code and display are the order's "oral"; another route's code is not.
    ("OR", False), ("26643006", False), ("Oral Route (qualifier value)", False),
    ("SC", True), ("x-unknown", True)])
def test_a_route_other_than_the_ordered_one(route: str, wrong: bool) -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(8), dose_id=morning.dose_id, route=route)], now=at(10))
    assert codes(found) == ([(Code.WRONG_ROUTE, "r")] if wrong else [])
    if wrong:
        assert found[0].severity is Severity.HIGH
        assert found[0].description.startswith("route ")
        assert found[0].description.endswith(" where the order says oral")
        if route in ("subcutaneous", "SC"):  # one name for both
            assert found[0].description == "route subcutaneous where the order says oral"
            assert found[0].message is not None
            assert found[0].message.render("da") == (
                "adm.vej subkutan anvendelse, hvor ordinationen siger oral anvendelse")
        else:  # a value no table knows is quoted as a code
            assert found[0].description == "route 'x-unknown' where the order says oral"


# -- PN_LIMIT_EXCEEDED ----------------------------------------------------------------------


def pn(record_id: str, when: datetime, quantity: str = "1", order_id: str = "pn"
       ) -> AdministrationRecord:
    return record(record_id, when, order_id=order_id, outcome=Outcome.PN_GIVEN,
                  quantity=quantity)


def test_a_pn_count_limit_per_rolling_24_hours_or_calendar_day() -> None:
    orders = orders_of([version(content("pn", PN_TWICE_DAILY))])
    records = [pn("a", at(20)), pn("b", at(23)), pn("c", local(NEXT_DAY, 1))]
    start, end, now = local(DAY, 0), local(NEXT_DAY + timedelta(days=1), 0), local(NEXT_DAY, 12)
    rolling = run(orders, records, start=start, end=end, now=now)
    assert codes(rolling) == [(Code.PN_LIMIT_EXCEEDED, "c")]
    assert rolling[0].severity is Severity.HIGH
    assert "PN dose 3 of at most 2 per 24 hours" in rolling[0].description
    assert run(orders, records, start=start, end=end, now=now, rules=CALENDAR_RULES) == []
    same_day = [pn("a", at(8)), pn("b", at(12)), pn("c", at(20))]
    for rules in (RULES, CALENDAR_RULES):
        assert codes(run(orders, same_day, now=EVENING, rules=rules)) == [
            (Code.PN_LIMIT_EXCEEDED, "c")]


def test_pn_doses_before_the_range_count_but_are_not_reported() -> None:
    orders = orders_of([version(content("pn", PN_TWICE_DAILY))])
    records = [pn("a", local(DAY - timedelta(days=1), 23)), pn("b", at(1)), pn("c", at(2))]
    assert codes(run(orders, records, now=at(12))) == [(Code.PN_LIMIT_EXCEEDED, "c")]


def test_one_pn_entry_in_a_non_iterated_period_has_no_limit() -> None:
    unlimited = StructuredDosage(UNIT, (DosagePeriod(date(2026, 1, 1), None, 0, "", (
        DosageDay(0, (dose(pn=True),)),)),))  # "efter behov": any day, not iterated
    orders = orders_of([version(content("pn", unlimited))])
    assert run(orders, [pn(f"r{h}", at(h)) for h in range(8, 14)], now=at(15)) == []


def test_a_pn_quantity_limit_from_fhir_max_dose_per_period() -> None:
    timing = TimingDosage(unit=DoseUnit.single("mg"), amount=Amount.exact(500),
                          as_needed=True, max_dose_quantity=Decimal(1000),
                          max_dose_period=timedelta(days=1), max_dose_unit="mg")
    orders = orders_of([version(content("pn", timing))])
    found = run(orders, [pn("a", at(8), "500"), pn("b", at(12), "500"), pn("c", at(16), "500")],
                now=EVENING)
    assert codes(found) == [(Code.PN_LIMIT_EXCEEDED, "c")]
    assert "1500 mg of at most 1000 per 24 hours" in found[0].description
    # A bigger single dose is a wrong dose, and counts toward the limit.
    found = run(orders, [pn("a", at(8), "700"), pn("b", at(12), "500")], now=EVENING)
    assert codes(found) == [(Code.WRONG_DOSE, "a"), (Code.PN_LIMIT_EXCEEDED, "b")]


def test_a_pn_minimum_interval_from_fhir_frequency_per_hours() -> None:
    every_4h = TimingDosage(unit=UNIT, amount=Amount.exact(1), as_needed=True,
                            frequency=1, period=Decimal(4), period_unit="h")
    orders = orders_of([version(content("pn", every_4h))])
    found = run(orders, [pn("a", at(8)), pn("b", at(11)), pn("c", at(16))], now=EVENING)
    assert codes(found) == [(Code.PN_LIMIT_EXCEEDED, "b")]
    assert "per 4 hours" in found[0].description


def test_a_pn_record_uses_the_allowance_and_a_given_one_the_due_dose() -> None:
    mixed = dosage(dose(TimeKind.MORNING), dose(pn=True), dose(pn=True))
    orders = orders_of([version(content(dosage_=mixed))])
    morning = due(orders, "o1", 8)
    as_needed = record("r", at(8, 10), outcome=Outcome.PN_GIVEN)
    assert codes(run(orders, [as_needed], now=at(10, 30))) == [
        (Code.MISSED_DOSE, morning.dose_id)]
    assert run(orders, [replace(as_needed, outcome=Outcome.GIVEN)], now=at(10, 30)) == []


def test_a_given_record_without_dose_on_a_pn_order_counts_as_pn() -> None:
    orders = orders_of([version(content("pn", PN_TWICE_DAILY))])
    records = [record(x, at(h), order_id="pn") for x, h in (("a", 8), ("b", 9), ("c", 10))]
    assert codes(run(orders, records, now=at(12))) == [(Code.PN_LIMIT_EXCEEDED, "c")]


# -- NOT_GIVEN ------------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "severity", "is_error"), [
    (NotGivenReason.REFUSED, Severity.INFO, False),
    (NotGivenReason.CLINICAL_HOLD, Severity.INFO, False),
    (NotGivenReason.DRUG_UNAVAILABLE, Severity.MEDIUM, True),
    (NotGivenReason.RESIDENT_ABSENT, Severity.INFO, True),
    (NotGivenReason.OTHER, Severity.INFO, True)])
def test_a_documented_omission(reason: NotGivenReason, severity: Severity,
                               is_error: bool) -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(8), dose_id=morning.dose_id, outcome=Outcome.NOT_GIVEN,
                                quantity=None, reason=reason)], now=at(10))
    assert codes(found) == [(Code.NOT_GIVEN, "r")]
    assert (found[0].severity, found[0].is_error) == (severity, is_error)
    assert found[0].message is not None
    assert found[0].message.args[0] == ("reason", msg(f"not_given.{reason.value}"))
    assert found[0].description.startswith("not given (")


# -- LATE_DOCUMENTATION ---------------------------------------------------------------------


def test_a_record_made_long_after_the_dose_is_late_documentation() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    on_time = record("r", at(8), dose_id=morning.dose_id, recorded_at=at(12))  # 240 min
    assert run(orders, [on_time], now=at(13)) == []
    late = replace(on_time, recorded_at=at(12, 1))
    found = run(orders, [late], now=at(13))
    assert codes(found) == [(Code.LATE_DOCUMENTATION, "r")]
    assert found[0].severity is Severity.LOW and found[0].is_error
    assert "4 h 01 min" in found[0].description


# -- NEEDS_MANUAL_SCHEDULE ------------------------------------------------------------------


def test_an_order_that_cannot_be_scheduled_is_flagged_once_per_version() -> None:
    free = [version(content("ft", FreeTextDosage("1 tablet after need")))]
    found = run(orders_of(free), [], now=at(10))
    flag = only(found, Code.NEEDS_MANUAL_SCHEDULE)
    assert flag.key == "NEEDS_MANUAL_SCHEDULE|home/r1|ft|v1"
    assert (flag.severity, flag.occurred_at, flag.record_id) == (Severity.MEDIUM, EPOCH, None)
    next_day = run(orders_of(free), [], now=local(NEXT_DAY, 10), start=local(NEXT_DAY, 0),
                   end=local(NEXT_DAY, 23))
    assert [d.key for d in next_day] == [flag.key]
    # A dose given under such an order is not an extra dose: there is no schedule to exceed.
    assert codes(run(orders_of(free), [record("r", at(8), order_id="ft")], now=at(10))) == [
        (Code.NEEDS_MANUAL_SCHEDULE, None)]
    # Discontinued before the range: nothing to schedule.
    gone = changed(free, EPOCH + timedelta(days=1), discontinued_at=EPOCH + timedelta(days=1))
    assert run(orders_of(gone), [], now=at(10)) == []


# -- entered in error, ranges, residents ----------------------------------------------------


def test_entered_in_error_records_are_left_out() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    wrong = record("a", at(8), dose_id=morning.dose_id, route="rectal")
    again = record("b", at(8, 20), dose_id=morning.dose_id)
    assert {d.code for d in run(orders, [wrong, again], now=at(10))} == {
        Code.WRONG_ROUTE, Code.EXTRA_DOSE}
    corrected = replace(wrong, entered_in_error=True)
    assert run(orders, [corrected, again], now=at(10)) == []
    # The same record id both active and entered-in-error: the correction wins.
    assert codes(run(orders, [wrong, corrected], now=at(10))) == [
        (Code.MISSED_DOSE, morning.dose_id)]


def test_the_context_reaches_back_to_the_longest_pn_period() -> None:
    weekly = TimingDosage(unit=UNIT, amount=Amount.exact(1), as_needed=True,
                          max_dose_quantity=Decimal(5), max_dose_period=timedelta(days=7))
    start, end = at(0), local(NEXT_DAY, 0)
    assert context_range(start, end, plain().values()) == (
        start - timedelta(days=1, hours=1), end + timedelta(days=1))
    assert context_range(start, end, [[version(content("pn", weekly))]])[0] == (
        start - timedelta(days=7))


def test_only_what_occurred_in_the_range_is_reported() -> None:
    orders = plain()
    morning = due(orders, "o1", 8)
    found = run(orders, [record("r", at(8), dose_id=morning.dose_id, route="rectal")],
                now=at(18, 30), start=at(12), end=at(23))
    assert found == []  # the record and its dose are before the range; evening is open


def test_a_facility_with_two_residents_keeps_their_doses_apart() -> None:
    r1 = plain()
    r2 = {"o1": [replace(v, resident_id="r2") for v in r1["o1"]]}
    start, end = local(DAY, 0), local(NEXT_DAY, 0)
    doses = []
    for history in (r1["o1"], r2["o1"]):
        doses += doses_between(history, CLOCK, start - timedelta(days=1),
                               end + timedelta(days=1), at(10))
    r2_morning = next(d for d, _ in doses if d.resident_id == "home/r2" and d.due_time == at(8))
    # r1's record carries r2's dose id: it is r1's morning dose; r2's dose is missed.
    found = reconcile(FACILITY, start, end, doses=doses,
                      records=[record("r", at(8), dose_id=r2_morning.dose_id)],
                      orders={RESIDENT: r1, "r2": r2}, rules=RULES, now=at(10))
    assert [(d.code, d.resident_id, d.dose_id) for d in found] == [
        (Code.MISSED_DOSE, "r2", r2_morning.dose_id)]
