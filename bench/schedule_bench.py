"""One national day of scheduled doses: medservice's expander against a dateutil.rrule
baseline, measured in the same run.

Population: 34,000 residents x 7 orders in 1,800 facilities (DOMAIN.md §1), each facility
with its own clock. Dosage shapes are drawn from the DKMA dosage proposals' FMK 1.4.4 XML
(../shared/reference), or from a built-in set of representative shapes when that folder is
absent. Each order's dosage starts 0-60 days before the day (rrule walks from its dtstart,
so older orders only make the baseline slower); a few orders are time-critical, paused,
discontinued during the day, or past their treatment end.

Both sides get the same, freshly built population per attempt (building is not timed, and
the garbage collector is told the population is long-lived) and must produce the same
number of doses; each figure is the best of three attempts. A dose's id is derived on
access, so the expander is also timed reading every dose's id.
The day is 2026-03-29, the spring DST day in Europe/Copenhagen.

    python -m bench.schedule_bench
"""

from __future__ import annotations

import gc
import json
import random
import time as clock_time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from dateutil.rrule import DAILY, rrule

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
    day_slots,
    needs_manual_schedule,
)
from medservice.domain.facility import Facility, MedicationTimes
from medservice.domain.orders import Dosage
from medservice.domain.schedule import OrderTerms, ScheduledDose, schedule_order
from medservice.imports.fmk_dosage import parse_dosage_proposal

RESIDENTS = 34_000
ORDERS_PER_RESIDENT = 7
FACILITIES = 1_800
DAY = date(2026, 3, 29)
REPEATS = 3
SEED = 20260329
MAX_START_DAYS_BACK = 60

Population = list[tuple[OrderTerms, FacilityClock]]


def reference_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


# -- dosage shapes -----------------------------------------------------------------------


def load_shapes() -> tuple[list[Dosage], str]:
    """The proposals' 1.4.4 dosages, or the built-in shapes when the reference is absent."""
    path = reference_dir() / "fmk" / "dosage-proposals" / "DosageStructures.json"
    if not path.is_file():
        return builtin_shapes(), "built-in shapes (reference folder absent)"
    proposals = json.loads(path.read_text(encoding="utf-8"))["dosageStructures"]
    shapes = [parse_dosage_proposal(p["xml"])["1.4.4"] for p in proposals]
    return shapes, f"{len(shapes)} DKMA dosage proposals (FMK 1.4.4 XML)"


def builtin_shapes() -> list[Dosage]:
    """Representative shapes: daily, times of day, weekly, every other day, on/off
    cycles, short courses, as needed, free text."""
    start, end = date(2010, 1, 1), date(2110, 1, 1)
    unit = DoseUnit("tablet", "tabletter")

    def dose(kind: TimeKind = TimeKind.ANY, quantity: str = "1", pn: bool = False
             ) -> DosageDose:
        return DosageDose(kind, None, Amount.exact(quantity), as_needed=pn)

    def shape(interval: int, *days: tuple[int, tuple[DosageDose, ...]]) -> StructuredDosage:
        period = DosagePeriod(start, end, interval, "",
                              tuple(DosageDay(n, doses) for n, doses in days))
        return StructuredDosage(unit, (period,))

    m, n, e, b = TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT
    return [
        shape(1, (1, (dose(),))),
        shape(1, (1, (dose(), dose()))),
        shape(1, (1, (dose(quantity="2"),) * 3)),
        shape(1, (1, (dose(m), dose(e)))),
        shape(1, (1, (dose(m, "2"), dose(n), dose(e), dose(b, "0.5")))),
        shape(1, (1, (dose(b),))),
        shape(7, (1, (dose(),)), (4, (dose(),))),
        shape(2, (1, (dose(),))),
        shape(28, *((d, (dose(),)) for d in range(1, 22))),
        shape(0, *((d, (dose(), dose())) for d in range(1, 6))),
        shape(1, (1, (dose(pn=True),) * 3)),
        FreeTextDosage("Dosering efter skriftlig anvisning"),
    ]


# -- the population ----------------------------------------------------------------------

_MEDICATION_TIMES = (
    MedicationTimes(),
    MedicationTimes(time(7, 30), time(12, 0), time(17, 30), time(21, 30)),
    MedicationTimes(time(8, 0), time(12, 30), time(18, 0), time(22, 30)),
)


def build_population(shapes: list[Dosage], seed: int = SEED) -> Population:
    """The same population for the same seed: facilities' clocks and orders."""
    rng = random.Random(seed)
    clocks = [
        FacilityClock.from_facility(Facility(
            facility_id=f"facility-{i}", display_name=f"Facility {i}",
            medication_times=_MEDICATION_TIMES[i % len(_MEDICATION_TIMES)],
        ))
        for i in range(FACILITIES)
    ]
    day_start = datetime.combine(DAY, time(), tzinfo=UTC)
    population: Population = []
    for resident in range(RESIDENTS):
        clock = clocks[resident % FACILITIES]
        for order in range(ORDERS_PER_RESIDENT):
            start = DAY - timedelta(days=rng.randrange(MAX_START_DAYS_BACK + 1))
            terms = OrderTerms(
                resident_id=f"resident-{resident}",
                order_id=f"{resident * ORDERS_PER_RESIDENT + order}",
                dosage=_starting(rng.choice(shapes), start),
                treatment_start=start,
                time_critical=rng.random() < 0.05,
            )
            population.append((_vary(terms, rng, day_start), clock))
    return population


def _starting(dosage: Dosage, start: date) -> Dosage:
    return dosage.starting(start) if isinstance(dosage, StructuredDosage) else dosage


def _vary(terms: OrderTerms, rng: random.Random, day_start: datetime) -> OrderTerms:
    roll = rng.random()
    if roll < 0.03:  # paused from mid-morning, open-ended
        return replace(terms, pauses=((day_start + timedelta(hours=9), None),))
    if roll < 0.05:  # discontinued at noon
        return replace(terms, discontinued_at=day_start + timedelta(hours=11))
    if roll < 0.08:  # treatment ended yesterday
        return replace(terms, treatment_end=DAY - timedelta(days=1))
    if roll < 0.10:
        return replace(terms, window_minutes=45)
    return terms


# -- the two expanders -------------------------------------------------------------------


def expand_all(population: Population) -> int:
    doses = 0
    for terms, clock in population:
        doses += len(schedule_order(terms, clock, DAY, DAY))
    return doses


def expand_all_reading_ids(population: Population) -> int:
    """As `expand_all`, and reading every dose's id (derived on access)."""
    doses = 0
    for terms, clock in population:
        doses += len([dose.dose_id for dose in schedule_order(terms, clock, DAY, DAY)])
    return doses


def expand_all_rrule(population: Population) -> int:
    doses = 0
    for terms, clock in population:
        doses += len(rrule_schedule(terms, clock, DAY))
    return doses


def rrule_schedule(terms: OrderTerms, clock: FacilityClock, day: date) -> list[ScheduledDose]:
    """The baseline: the same doses as `schedule_order` for one day, found the
    straightforward way, with one dateutil rrule per dose time of the ruling period."""
    dosage = terms.dosage
    if not isinstance(dosage, StructuredDosage) or needs_manual_schedule(dosage):
        return []
    if terms.treatment_start and day < terms.treatment_start:
        return []
    if terms.treatment_end and day > terms.treatment_end:
        return []
    period = _ruling_period(dosage, day)
    if period is None:
        return []
    day_start, day_end = datetime.combine(day, time.min), datetime.combine(day, time.max)
    until = datetime.combine(period.end_date, time.max) if period.end_date else None
    excluded = terms.excluded_intervals()
    doses = []
    for dosage_day in period.days:
        slots = day_slots(dosage_day.doses)
        half = clock.half_width(terms.time_critical, len(slots), terms.window_minutes)
        for dose, slot, _, index, count in slots:
            local_time = clock.time_of(dose.time_kind, dose.clock_time, index, count)
            first = datetime.combine(
                period.start_date + timedelta(days=dosage_day.day_number - 1), local_time)
            if period.iteration_interval_days:
                rule = rrule(DAILY, interval=period.iteration_interval_days, dtstart=first,
                             until=until)
            else:
                rule = rrule(DAILY, dtstart=first, count=1)
            for occurrence in rule.between(day_start, day_end, inc=True):
                if until and occurrence > until:
                    continue
                due = occurrence.replace(tzinfo=clock.zone).astimezone(UTC)
                if any((s is None or s <= due) and (e is None or due < e) for s, e in excluded):
                    continue
                start, end = (None, None) if period.is_one_time else (due - half, due + half)
                doses.append(ScheduledDose(
                    terms.resident_id, terms.order_id, day, slot, local_time, dose.time_kind,
                    due, start, end, dose.amount, dosage.unit, period.supplementary_text,
                    terms.time_critical,
                ))
    return doses


def _ruling_period(dosage: StructuredDosage, day: date) -> DosagePeriod | None:
    """The period whose fixed doses apply on the day: of the periods covering it that have
    fixed doses or none at all, the one that starts last (then the later in the list)."""
    best: tuple[date, int] | None = None
    ruling = None
    for index, period in enumerate(dosage.periods):
        if not period.covers(day):
            continue
        if not period.fixed_doses and not period.is_empty:
            continue
        if best is None or (period.start_date, index) > best:
            best, ruling = (period.start_date, index), period
    return ruling


# -- measuring ---------------------------------------------------------------------------


def best_of(
    repeats: int, expand: Callable[[Population], int], shapes: list[Dosage]
) -> tuple[float, int]:
    """Best wall time over fresh populations (cold clocks each time), and the dose count."""
    best, count = float("inf"), -1
    for _ in range(repeats):
        population = build_population(shapes)
        # The population is long-lived data, like a loaded card mirror: keep the collector
        # from re-scanning its millions of objects while the expansion runs.
        gc.collect()
        gc.freeze()
        try:
            started = clock_time.perf_counter()
            produced = expand(population)
            best = min(best, clock_time.perf_counter() - started)
        finally:
            gc.unfreeze()
        if count not in (-1, produced):
            raise AssertionError("the same population gave different dose counts")
        count = produced
    return best, count


def run(repeats: int = REPEATS) -> dict[str, float | int | str]:
    shapes, source = load_shapes()
    expander_seconds, expander_doses = best_of(repeats, expand_all, shapes)
    with_ids_seconds, _ = best_of(repeats, expand_all_reading_ids, shapes)
    baseline_seconds, baseline_doses = best_of(repeats, expand_all_rrule, shapes)
    if expander_doses != baseline_doses:
        raise AssertionError(
            f"dose counts differ: expander {expander_doses}, rrule baseline {baseline_doses}")
    return {
        "benchmark": "schedule one national day",
        "day": DAY.isoformat(),
        "orders": RESIDENTS * ORDERS_PER_RESIDENT,
        "residents": RESIDENTS,
        "facilities": FACILITIES,
        "dosage_shapes": source,
        "doses": expander_doses,
        "expander_seconds": round(expander_seconds, 3),
        "expander_reading_dose_ids_seconds": round(with_ids_seconds, 3),
        "rrule_baseline_seconds": round(baseline_seconds, 3),
        "speedup": round(baseline_seconds / expander_seconds, 1),
        "repeats": repeats,
    }


def main() -> None:
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
