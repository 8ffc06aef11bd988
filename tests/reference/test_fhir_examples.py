"""The FHIR importer and the Timing expander against the 40 MedicationRequest examples of the
HL7 FHIR R4 (4.0.1) specification.

The examples live beside the project, in ../shared/reference; without them these tests skip,
unless MEDSERVICE_REQUIRE_REFERENCE=1 (CI), which turns the skip into a failure. Every
example is either imported or refused with its reason, as recorded below; an imported one's
Timing must expand over a week (PN: to nothing). Where an example disagrees with its own
narrative (0302, 0303, 0309, 0310, 0317, 0321, 0339) the structured Timing counts.
"""

from __future__ import annotations

import os
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.domain.fhir_timing import TimingDosage, TimingSlot, expand_timing, timing_text
from medservice.domain.orders import OrderContent, Pause
from medservice.imports.fhir import read_fhir
from medservice.imports.result import ImportResult

pytestmark = pytest.mark.reference

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fhir-r4"
REQUIRE_ENV = "MEDSERVICE_REQUIRE_REFERENCE"
CLOCK = FacilityClock.from_facility(Facility("f", "Home"))
AUTHORED = date(2015, 1, 15)  # every example's authoredOn but example2's

IMPORTED = "imported"
_STATUS_OVER = ("status", "the timing gives no end")
_RATE_ONLY = ("dosageInstruction[0].doseAndRate", "only a rate is given")
# example -> IMPORTED, or every (location, reason fragment) it is refused with.
EXPECTED: dict[str, str | tuple[tuple[str, str], ...]] = {
    "0301": (_STATUS_OVER,),
    # Narrative "two at once, then one daily for 4 days"; structure: sequence 1 daily with no
    # end, so sequence 2 (4/day) would never begin.
    "0302": (("dosageInstruction[1]", "sequence 2 follows dosageInstruction[0] (sequence 1): "
                                      "the previous step has no end"),),
    # Narrative "7 days" steps; structure: a taper in three bounded steps (16-20, 23-30, 31-6).
    "0303": IMPORTED,
    "0304": (_STATUS_OVER,),
    "0305": IMPORTED,  # completed, PN, bounded: ends 2015-01-20
    "0306": IMPORTED,
    "0307": (_STATUS_OVER,),
    "0308": (_STATUS_OVER,),
    # Narrative "twice daily, days 1-14"; structure: once every 2 days, 2016-01-22..02-04.
    "0309": IMPORTED,
    # Narrative "at bedtime"; structure: PN at most once a day, no time of day.
    "0310": IMPORTED,
    "0312": IMPORTED,
    "0313": (_STATUS_OVER,),
    "0314": (_STATUS_OVER,),
    "0315": IMPORTED,  # PN every 15 minutes: a limit, never due
    "0316": (_STATUS_OVER,),  # every 3 weeks, 16 cycles, no start: from the first dose
    # Narrative "for up to 12 wk"; structure: each administration lasts 12 weeks, 3 a week.
    "0317": (("dosageInstruction[0].timing.repeat.duration", "as long as the time between"),
             _STATUS_OVER),
    "0318": IMPORTED,  # "q6h x 3 days" with no bounds: from the first dose given
    "0319": (_STATUS_OVER,),
    "0320": (_STATUS_OVER,),
    # Narrative "before breakfast, lunch, dinner"; structure: only the first has a time, and
    # the two of sequence 2 give different doses at the same round.
    "0321": (("dosageInstruction[1]", "differs from dosageInstruction[0] in dose"),),
    "0322": (_STATUS_OVER,),
    # An event and every 24 hours from it, with no end: completed, so refused.
    "0323": (_STATUS_OVER,),
    "0324": (_STATUS_OVER,),
    "0325": IMPORTED,  # on-hold: paused
    "0326": IMPORTED,
    "0327": (("dosageInstruction[0].timing.repeat.frequency",
              "3 per 1 wk does not fall on whole days"),),
    "0328": IMPORTED,
    "0329": IMPORTED,  # a compounded ointment, named by its ingredients
    "0330": IMPORTED,
    "0331": IMPORTED,
    "0332": IMPORTED,  # a single dose (count 1), due from the order's valid time
    "0333": IMPORTED,
    "0334": IMPORTED,
    "0335": IMPORTED,
    "0336": (_RATE_ONLY, _STATUS_OVER),
    "0337": (_RATE_ONLY, _STATUS_OVER),
    "0338": (("dosageInstruction[0].timing.repeat.duration", "continuous infusion"),
             _STATUS_OVER),
    # Narrative: a vaginal tablet and a cream; structure: two routes, the second without dose.
    "0339": (("dosageInstruction[1].route", "differs from dosageInstruction[0]'s route"),),
    "example1": IMPORTED,  # timing.code QD
    "example2": (("medicationReference", "the drug is not identified"),),
}
ON_HOLD = {"0325", "0326", "0329", "0334", "0335"}


@pytest.fixture(scope="module")
def examples() -> Path:
    if EXAMPLES.is_dir():
        return EXAMPLES
    reason = f"FHIR R4 examples not found at {EXAMPLES}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1")
    pytest.skip(f"{reason} (../shared/reference is not part of a clone)")


def _read(examples: Path, name: str) -> ImportResult:
    return read_fhir((examples / f"medicationrequest{name}.json").read_bytes())


def _week(order: OrderContent) -> list[TimingSlot]:
    assert isinstance(order.dosage, TimingDosage)
    first = order.treatment_start or AUTHORED
    # A course with no start: its first dose is due from the order's valid time.
    return expand_timing(order.dosage, CLOCK, first, first + timedelta(days=6),
                         order_start=order.treatment_start,
                         first_due=CLOCK.instant(first, time(9, 0)))


def test_every_example_is_accounted_for(examples: Path) -> None:
    found = {p.stem.removeprefix("medicationrequest")
             for p in examples.glob("medicationrequest*.json")}
    assert found == set(EXPECTED)
    assert len(found) == 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_is_imported_or_refused_with_its_reason(examples: Path, name: str) -> None:
    result = _read(examples, name)
    expected = EXPECTED[name]
    if expected == IMPORTED:
        assert result.problems == []
        assert len(result.orders) == 1
        order = result.orders[0]
        assert order.order_id.startswith("medrx")
        assert order.dosage.__class__ is TimingDosage
        assert order.pauses == ((Pause(),) if name in ON_HOLD else ())
        slots = _week(order)
        assert isinstance(order.dosage, TimingDosage)
        assert (slots == []) if order.dosage.as_needed else bool(slots)
        return
    assert result.orders == [], "nothing of a refused order is imported"
    found = [(p.location, p.reason) for p in result.problems]
    assert len(found) == len(expected), found
    for (where, why), (location, fragment) in zip(found, expected, strict=True):
        assert where == location and fragment in why, (where, why)
    assert all(p.source_order_id.startswith("medrx") for p in result.problems)


def test_the_structure_counts_over_the_narrative(examples: Path) -> None:
    capecitabine = _read(examples, "0309").orders[0]
    assert [s.local_date for s in _week(capecitabine)] == [
        date(2016, 1, 22), date(2016, 1, 24), date(2016, 1, 26), date(2016, 1, 28)]
    assert (capecitabine.treatment_start, capecitabine.treatment_end) == (
        date(2016, 1, 22), date(2016, 2, 4))
    restless_legs = _read(examples, "0310").orders[0].dosage
    assert isinstance(restless_legs, TimingDosage) and restless_legs.as_needed
    assert restless_legs.when == ()


def test_imported_examples_expand_as_their_timing_says(examples: Path) -> None:
    def week(name: str) -> list[TimingSlot]:
        return _week(_read(examples, name).orders[0])

    assert [s.local_time for s in week("example1")] == [time(8, 0)] * 7  # QD
    assert len(week("0312")) == 21  # three times daily
    assert {s.slot for s in week("0333")} == {"MORN"}
    assert [s.local_time for s in week("0335")] == [time(9, 0)] * 7
    mondays = week("0334")
    assert {s.local_date.weekday() for s in mondays} == {0} and len(mondays) == 4
    alprazolam = _read(examples, "0305").orders[0]
    assert alprazolam.treatment_end == date(2015, 1, 20)  # completed: ended there


def test_a_taper_in_sequence_expands_step_by_step(examples: Path) -> None:
    prednisone = _read(examples, "0303").orders[0]
    assert (prednisone.treatment_start, prednisone.treatment_end) == (
        date(2015, 1, 16), date(2015, 2, 6))
    assert isinstance(prednisone.dosage, TimingDosage)
    slots = expand_timing(prednisone.dosage, CLOCK, date(2015, 1, 15), date(2015, 2, 8),
                          order_start=prednisone.treatment_start)
    by_amount: dict[str, list[date]] = {}
    for s in slots:
        assert s.local_time == time(8, 0)
        by_amount.setdefault(str(s.amount.quantity), []).append(s.local_date)
    assert {k: (v[0], v[-1], len(v)) for k, v in by_amount.items()} == {
        "4": (date(2015, 1, 16), date(2015, 1, 20), 5),  # nothing on 21-22: the gap stays
        "2": (date(2015, 1, 23), date(2015, 1, 30), 8),
        "1": (date(2015, 1, 31), date(2015, 2, 6), 7)}
    assert timing_text(prednisone.dosage, "en") == (
        "4 TAB once daily, then 2 TAB once daily, then 1 TAB once daily")


def test_import_table(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for name in sorted(EXPECTED):
        result = _read(examples, name)
        for order in result.orders:
            assert isinstance(order.dosage, TimingDosage)
            rows.append((name, "imported", timing_text(order.dosage, "en")))
        for problem in result.problems:
            rows.append((name, "refused", f"{problem.location}: {problem.reason}"))
    imported = {n for n, outcome, _ in rows if outcome == "imported"}
    with capsys.disabled():
        print(f"\nFHIR R4 MedicationRequest examples: {len(imported)} imported, "
              f"{len(EXPECTED) - len(imported)} refused")
        for name, outcome, detail in rows:
            print(f"  {name:<9} {outcome:<8} {detail[:150]}")
    assert len(imported) == sum(1 for e in EXPECTED.values() if e == IMPORTED)
