"""FHIR R4 Timing (a MedicationRequest's Dosage.timing) expanded by the house rules
(DOMAIN.md §4-5).

`TimingDosage` keeps a timing as the source sent it (proto TimingDosage); `expand_timing`
places its doses on the facility clock; `timing_violation` says why a timing cannot be
scheduled, before anything is imported. The house rules:

Named times. `when` codes and the timing abbreviations map to the facility's medication
times (morning, noon, evening, night):

    MORN, MORN.early, MORN.late, WAKE, CM, ACM, PCM  -> morning
    NOON, CD, ACD, PCD                               -> noon
    EVE, EVE.early, EVE.late, CV, ACV, PCV           -> evening
    NIGHT, HS                                        -> night
    C, AC, PC (each main meal)                       -> morning, noon and evening
    AFT, AFT.early, AFT.late, PHS                    -> refused: the facility has no such time

    QD = 1 per day, BID = 2, TID = 3, QID = 4 per day, QOD = 1 per 2 days, WK = 1 per week,
    AM = when MORN, PM = when EVE, BED = when HS, Q1H..Q8H = every 1..8 hours;
    MO (monthly) is refused. The code is used only when `repeat` gives no rhythm of its own
    (FHIR: either may be used; bounds still apply).

`offset` (minutes, only with `when`) moves the time before the event for AC* codes and
after it otherwise (FHIR's default); at most 2 hours, and the dose keeps its local date.

Rhythm. `frequency` per `period` `periodUnit` (frequency 0 = not given):
- periodUnit d or wk: F doses per P days place F/P doses on every day when P divides F,
  else one dose every P/F days when F divides P, anchored at the start of the course;
  anything else (3 per week without dayOfWeek) is refused: which days is not said.
  The doses of a day are the `when`/`timeOfDay` times, which must then number F/P (a
  frequency of 1 with two `when` codes is ambiguous and refused); without them, the
  "N times daily" house rule of `FacilityClock.time_of` places them (1: morning;
  2: morning, evening; 3: + noon; 4: + night; more: evenly from morning to night).
- periodUnit h, min, s: an interval schedule (every period/frequency), real elapsed time
  anchored at the start of the course, never shorter than an hour (shorter is an
  infusion, not a round); `when`/`timeOfDay` are refused with it.
- periodUnit mo, a: refused (no fixed length; "every 30 days" is what can be scheduled).
- `timeOfDay` alone, or `when` alone, means daily at those times; `count` 1 alone is a
  one-time dose in the morning of the start date.
- `dayOfWeek` filters days (calendar weekdays in the facility's zone). With periodUnit wk
  it says which days: F per P weeks on D listed days is F/D doses on each listed day,
  every P-th calendar week (Monday-based) counted from the start of the course.

Course. The course starts at boundsPeriod.start (an instant, or a date meaning its local
day from 00:00), else at the order's start date; it ends at boundsPeriod.end (an instant,
inclusive, or a date meaning through that local day) or after boundsDuration counted from
the order's start (d and wk: whole local days; h and min: real elapsed time). Dates stay
dates here; only the expander, which has the clock, turns them into instants. `count`
caps the doses of the whole course, counted from its start whatever range is expanded, so
a course needs a start when it has a count, an every-N-days rhythm or an interval. Without
one from the timing or the order it begins at its first administration
(`awaits_first_dose`; issue 20): until given, one dose is due from the order's valid time;
then the doses follow from the instant given (VistA BCMA schedules so). A count at several
times of day is refused without a start: which time comes next is not said.

Events. `timing.event` lists instants: a dose at each. With an interval repeat (a period in
h or min) the rhythm runs from each event until the next one (the last: until the course
ends); a repeat in days or with times of day next to events is refused (which rules is not
said). A single event is a one-time dose (no window); `count` caps them all, in time order.

Sequence. `then` holds the dosage instructions that follow this one (FHIR Dosage.sequence:
increasing numbers one after the other), each a TimingDosage with its own dose and bounds.
`chain_steps` places them: a step without a start begins on the local day after the
previous step's last day, which must therefore be known (boundsPeriod.end, or a
boundsDuration in days or weeks from a known start); a step must not begin before the
previous one has ended. Instructions with the same sequence number run together; the
importer combines them (same dose and course, different times of day). PN steps in a
sequence are refused: an allowance has no course to follow.

As needed. `as_needed` is PN: never due. frequency per period and maxDosePerPeriod
(`max_dose_quantity` per `max_dose_period`) are the PN limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount, DoseUnit, TimeKind
from medservice.domain.errors import FieldViolation, InvalidArgument

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# FHIR period units with a fixed length; months ("mo") and years ("a") have none.
UNIT_LENGTHS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "wk": timedelta(weeks=1),
}
PERIOD_UNITS = frozenset({*UNIT_LENGTHS, "mo", "a"})
MIN_INTERVAL = timedelta(hours=1)
MAX_DOSES_PER_DAY = 24
MAX_OFFSET_MINUTES = 120
_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)
_LAST_MINUTE = 24 * 60 - 1


class _When(NamedTuple):
    kind: TimeKind
    before: bool  # an offset counts back from the event (AC*: before a meal)


_M, _N, _E, _NI = TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT
_MEALS = (_M, _N, _E)
WHEN_TIMES: dict[str, tuple[_When, ...]] = {
    **{c: (_When(_M, False),) for c in ("MORN", "MORN.early", "MORN.late", "WAKE", "CM", "PCM")},
    "ACM": (_When(_M, True),),
    **{c: (_When(_N, False),) for c in ("NOON", "CD", "PCD")},
    "ACD": (_When(_N, True),),
    **{c: (_When(_E, False),) for c in ("EVE", "EVE.early", "EVE.late", "CV", "PCV")},
    "ACV": (_When(_E, True),),
    **{c: (_When(_NI, False),) for c in ("NIGHT", "HS")},
    "C": tuple(_When(k, False) for k in _MEALS),
    "PC": tuple(_When(k, False) for k in _MEALS),
    "AC": tuple(_When(k, True) for k in _MEALS),
}
_UNPLACED_WHEN = {
    "AFT": "afternoon", "AFT.early": "early afternoon", "AFT.late": "late afternoon",
    "PHS": "after sleep",
}


class _Rhythm(NamedTuple):
    frequency: int
    period: Decimal | None
    period_unit: str
    when: tuple[str, ...] = ()


# HL7 timing abbreviations (v3-GTSAbbreviation), as the repeat they abbreviate.
TIMING_CODES: dict[str, _Rhythm] = {
    "QD": _Rhythm(1, Decimal(1), "d"),
    "BID": _Rhythm(2, Decimal(1), "d"),
    "TID": _Rhythm(3, Decimal(1), "d"),
    "QID": _Rhythm(4, Decimal(1), "d"),
    "QOD": _Rhythm(1, Decimal(2), "d"),
    "WK": _Rhythm(1, Decimal(1), "wk"),
    "AM": _Rhythm(0, None, "", ("MORN",)),
    "PM": _Rhythm(0, None, "", ("EVE",)),
    "BED": _Rhythm(0, None, "", ("HS",)),
    **{f"Q{n}H": _Rhythm(1, Decimal(n), "h") for n in (1, 2, 3, 4, 6, 8)},
}


@dataclass(frozen=True)
class TimingDosage:
    """A FHIR Dosage with its Timing, as the source sent it (proto TimingDosage).

    Fields beyond the proto message: `offset_minutes` (repeat.offset), the date-only
    bounds `bounds_first_date`/`bounds_last_date` (a FHIR date bound is a whole local day,
    which needs the facility's zone to become an instant), `bounds_duration` with its
    unit (boundsDuration, counted from the order's start), and `max_dose_unit` (the
    numerator unit of maxDosePerPeriod). `frequency` 0 means not given. `bounds_start`/
    `bounds_end` are timezone-aware and both inclusive, as in FHIR.
    """

    unit: DoseUnit
    amount: Amount | None
    frequency: int = 0
    period: Decimal | None = None
    period_unit: str = ""
    when: tuple[str, ...] = ()
    time_of_day: tuple[time, ...] = ()
    day_of_week: tuple[str, ...] = ()
    bounds_start: datetime | None = None
    bounds_end: datetime | None = None
    bounds_first_date: date | None = None
    bounds_last_date: date | None = None
    bounds_duration: Decimal | None = None
    bounds_duration_unit: str = ""
    count: int | None = None
    offset_minutes: int = 0
    code: str = ""
    as_needed: bool = False
    max_dose_quantity: Decimal | None = None
    max_dose_unit: str = ""
    max_dose_period: timedelta | None = None
    events: tuple[datetime, ...] = ()  # timing.event: timezone-aware instants
    then: tuple[TimingDosage, ...] = ()  # the steps that follow this one (see chain_steps)
    # Instructions given together with this one, each with its own dose at its own times
    # of day (FHIR: the same sequence number, different doses); see `together_conflict`.
    also: tuple[TimingDosage, ...] = ()

    def __post_init__(self) -> None:
        problems = _shape_violations(self)
        if problems:
            raise InvalidArgument(problems)

    @cached_property
    def rhythm(self) -> _Rhythm:
        """The repeat's own rhythm, or the one its code abbreviates when it has none."""
        own = _Rhythm(self.frequency, self.period, self.period_unit, self.when)
        return own if _has_own_rhythm(self) else TIMING_CODES.get(self.code, own)

    @cached_property
    def plan(self) -> _Plan | FieldViolation:
        """The fixed-dose rhythm compiled once, or why it cannot be scheduled."""
        return _compile(self)

    @property
    def has_start(self) -> bool:
        return self.bounds_start is not None or self.bounds_first_date is not None

    @property
    def steps(self) -> tuple[TimingDosage, ...]:
        """This instruction alone (without `then`), then each step that follows it."""
        return (replace(self, then=()), *self.then) if self.then else (self,)

    @property
    def parts(self) -> tuple[TimingDosage, ...]:
        """This instruction alone (without `also`), then each given together with it."""
        return (replace(self, also=()), *self.also) if self.also else (self,)

    @property
    def first_date(self) -> date | None:
        """The course's first local date as the source wrote it, if it says."""
        if self.bounds_first_date is not None:
            return self.bounds_first_date
        if self.bounds_start is not None:
            return self.bounds_start.date()
        return min(e.date() for e in self.events) if self.events else None

    @property
    def last_date(self) -> date | None:
        """The course's last local date as the source wrote it, if it says: its bounds, or
        the last event when events alone make the doses."""
        if self.bounds_last_date is not None:
            return self.bounds_last_date
        if self.bounds_end is not None:
            return self.bounds_end.date()
        if (self.bounds_duration is not None and self.bounds_duration_unit in ("d", "wk")
                and self.first_date is not None):
            days = int(self.bounds_duration) * (7 if self.bounds_duration_unit == "wk" else 1)
            return self.first_date + timedelta(days=days - 1)
        if self.events and not _has_own_rhythm(self) and not self.code:
            return max(e.date() for e in self.events)
        return None


class TimingSlot(NamedTuple):
    """A dose due on a local date. `slot` labels it within the day, stable for a given
    timing ("MORN", "any-1of2", "09:00"; an interval dose in the repeated hour of the
    autumn DST night gets "02:00-2"). `due_time` is the UTC instant: use it rather than
    clock.instant(local_date, local_time), which cannot tell the two 02:00s of that night
    apart. `one_time` marks a course of one dose (no window, DOMAIN.md §6); `open_ended`
    the first dose of a course that begins at its first administration: due until given."""

    local_date: date
    local_time: time
    slot: str
    amount: Amount
    doses_that_day: int
    time_kind: TimeKind
    due_time: datetime
    one_time: bool
    open_ended: bool = False


class _DayTime(NamedTuple):
    """A dose time of a day rhythm, before a clock gives it a wall time."""

    slot: str
    kind: TimeKind
    clock_time: time | None
    any_index: int  # place among the day's "N times daily" doses
    any_count: int
    offset: int  # signed minutes


@dataclass(frozen=True)
class _Plan:
    times: tuple[_DayTime, ...]  # a day rhythm's doses of a day; empty for an interval
    step_days: int  # a day rhythm: every step_days days from the course start
    week_cycle: int  # > 0: listed weekdays of every week_cycle-th calendar week
    weekdays: frozenset[int]  # 0 = Monday; empty: every day
    interval: timedelta | None  # an interval rhythm

    @property
    def needs_anchor(self) -> bool:
        return self.interval is not None or self.step_days > 1 or self.week_cycle > 1


# -- validation ---------------------------------------------------------------------------

_CODE_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,29}$")


def shown(value: object) -> str:
    """A value quoted for a message when it looks like a code; anything else (it could be a
    person identifier sent in the wrong place) is not repeated (DOMAIN.md §10)."""
    text = str(value)
    return f"'{text}'" if _CODE_LIKE.match(text) else "the value given"


def _shape_violations(t: TimingDosage) -> list[FieldViolation]:
    """What no timing may be, schedulable or not (FHIR's own constraints)."""
    v: list[FieldViolation] = []
    if t.frequency < 0:
        v.append(FieldViolation("timing.repeat.frequency", "must not be negative"))
    if t.period is not None and not (t.period.is_finite() and t.period > 0):
        v.append(FieldViolation("timing.repeat.period", "must be a positive decimal"))
    if t.count is not None and t.count < 1:
        v.append(FieldViolation("timing.repeat.count", "must be at least 1"))
    if t.offset_minutes < 0:
        v.append(FieldViolation("timing.repeat.offset", "must not be negative"))
    for day in t.day_of_week:
        if day not in WEEKDAYS:
            v.append(FieldViolation("timing.repeat.dayOfWeek",
                                    f"{shown(day)} is not a weekday code"))
    for name in ("bounds_start", "bounds_end"):
        value = getattr(t, name)
        if value is not None and value.utcoffset() is None:
            v.append(FieldViolation(f"timing.repeat.boundsPeriod.{name[7:]}",
                                    "a time needs a time zone"))
    for i, event in enumerate(t.events):
        if event.utcoffset() is None:
            v.append(FieldViolation(f"timing.event[{i}]", "a time needs a time zone"))
    for i, step in enumerate(t.then):
        if step.then:
            v.append(FieldViolation(f"then[{i}].then", "a step has no steps of its own"))
    for i, part in enumerate(t.also):
        if part.also or part.then:
            v.append(FieldViolation(f"also[{i}]", "a part given together has no parts or "
                                                  "steps of its own"))
    if v:
        return v
    if t.bounds_start is not None and t.bounds_first_date is not None:
        v.append(FieldViolation("timing.repeat.boundsPeriod.start", "give an instant or a date"))
    if t.bounds_end is not None and t.bounds_last_date is not None:
        v.append(FieldViolation("timing.repeat.boundsPeriod.end", "give an instant or a date"))
    if t.bounds_duration is not None and (t.has_start or t.bounds_end or t.bounds_last_date):
        v.append(FieldViolation("timing.repeat.boundsDuration",
                                "bounds are a period or a duration, not both"))
    if t.bounds_start and t.bounds_end and (t.bounds_end.astimezone(UTC)
                                            < t.bounds_start.astimezone(UTC)):
        v.append(FieldViolation("timing.repeat.boundsPeriod.end", "is before the start"))
    start_day = t.bounds_first_date or (t.bounds_start.date() if t.bounds_start else None)
    end_day = t.bounds_last_date or (t.bounds_end.date() if t.bounds_end else None)
    if start_day and end_day and end_day < start_day and not (t.bounds_start and t.bounds_end):
        v.append(FieldViolation("timing.repeat.boundsPeriod.end", "is before the start"))
    if t.max_dose_quantity is not None and t.max_dose_quantity < 0:
        v.append(FieldViolation("maxDosePerPeriod", "must not be negative"))
    return v


def timing_violation(timing: TimingDosage, *, order_start: date | None = None,
                     first_dose_anchors: bool = False) -> FieldViolation | None:
    """Why the timing cannot be scheduled by the house rules, or None.

    The field is a FHIR path relative to the Dosage ("timing.repeat.periodUnit"). PN
    timings are never due, so only their limit must make sense. A step that follows
    (`then`) is named "then[i]." before its field. `first_dose_anchors`: a course with no
    start may begin at its first administration (`awaits_first_dose`); otherwise it needs a
    start from the timing or the order."""
    if timing.then:
        return _chain_violation(timing, order_start, first_dose_anchors)
    if timing.also:
        return _together_violation(timing, order_start)
    if timing.as_needed:
        return _limit_violation(timing)
    if timing.amount is None:
        return FieldViolation("doseAndRate", "a dose that falls due needs a dose quantity "
                                             "(doseQuantity or doseRange)")
    plan = timing.plan
    if isinstance(plan, FieldViolation):
        return plan
    return _course_violation(timing, plan, order_start, first_dose_anchors)


def _chain_violation(timing: TimingDosage, order_start: date | None,
                     first_dose_anchors: bool) -> FieldViolation | None:
    steps = timing.steps
    for i, step in enumerate(steps):
        prefix = f"then[{i - 1}]." if i else ""
        if step.as_needed:
            return FieldViolation(f"{prefix}asNeeded", "a step of a sequence must fall due: an "
                                                       "allowance (PN) has no course to follow")
        violation = timing_violation(step, order_start=order_start if i == 0 else None,
                                     first_dose_anchors=first_dose_anchors)
        if violation is not None:
            return FieldViolation(prefix + violation.field, violation.description)
    conflict = chain_conflict(steps)
    if conflict is not None:
        return FieldViolation(f"then[{conflict.later - 1}].timing.repeat.boundsPeriod.start",
                              conflict.reason)
    return None


def _together_violation(timing: TimingDosage, order_start: date | None
                        ) -> FieldViolation | None:
    parts = timing.parts
    for i, part in enumerate(parts):
        violation = timing_violation(part, order_start=order_start)
        if violation is not None:
            return FieldViolation((f"also[{i - 1}]." if i else "") + violation.field,
                                  violation.description)
    conflict = together_conflict(parts)
    if conflict is not None:
        return FieldViolation(f"also[{conflict.later - 1}]", conflict.reason)
    return None


def together_conflict(parts: tuple[TimingDosage, ...]) -> StepConflict | None:
    """The first part that cannot be given together with an earlier one: another dose
    unit, PN, no times of day of its own (when/timeOfDay: its doses could not be told
    apart), or a time of day an earlier part has too."""
    seen: dict[tuple[object, ...], int] = {}
    for i, part in enumerate(parts):
        if i and part.unit != parts[0].unit:
            return StepConflict(0, i, "another dose unit: doses given together share one")
        if part.as_needed or (not part.when and not part.time_of_day):
            return StepConflict(max(i - 1, 0), i, "gives no time of day of its own (when or "
                                                  "timeOfDay), so its doses cannot be told "
                                                  "apart from the others'")
        plan = part.plan
        if isinstance(plan, FieldViolation) or plan.interval is not None:
            continue  # its own violation says why
        for d in plan.times:
            key = (d.clock_time,) if d.clock_time is not None else (d.kind, d.offset)
            if key in seen:
                return StepConflict(seen[key], i, "has a dose at the same time of day")
            seen[key] = i
    return None


class StepConflict(NamedTuple):
    """Why step `later` cannot follow step `earlier` of a sequence (indexes into steps)."""

    earlier: int
    later: int
    reason: str


def chain_steps(steps: tuple[TimingDosage, ...]) -> tuple[TimingDosage, ...] | StepConflict:
    """FHIR sequence: the steps one after the other (see the module docstring). A step
    without a start gets one: the local day after the previous step's last day."""
    placed = [steps[0]]
    for i, step in enumerate(steps[1:], start=1):
        if not step.has_start and not step.events:
            last = placed[-1].last_date
            if last is None:
                return StepConflict(i - 1, i, "the previous step has no end (boundsPeriod.end, "
                                              "or a boundsDuration in days or weeks), so this "
                                              "one would never begin")
            if step.bounds_duration is not None and step.bounds_duration_unit not in ("d", "wk"):
                return StepConflict(i - 1, i, "a step that follows another lasts whole days "
                                              "(boundsDuration in d or wk)")
            first, last_day = last + _DAY, step.bounds_last_date
            if step.bounds_duration is not None:
                days = int(step.bounds_duration) * (7 if step.bounds_duration_unit == "wk" else 1)
                last_day = first + timedelta(days=days - 1)
            step = replace(step, bounds_first_date=first, bounds_last_date=last_day,
                           bounds_duration=None, bounds_duration_unit="")
        placed.append(step)
    conflict = chain_conflict(tuple(placed))
    return conflict if conflict is not None else tuple(placed)


def chain_conflict(steps: tuple[TimingDosage, ...]) -> StepConflict | None:
    """The first step that begins before the previous one has ended (by local dates as the
    source wrote them; instants when both are instants), or that has no start."""
    for i in range(1, len(steps)):
        before, after = steps[i - 1], steps[i]
        if after.first_date is None:
            return StepConflict(i - 1, i, "a step that follows another needs a start")
        if before.last_date is None:
            return StepConflict(i - 1, i, "the previous step has no end, so they would run "
                                          "at the same time")
        if before.bounds_end is not None and after.bounds_start is not None:
            overlap = after.bounds_start.astimezone(UTC) <= before.bounds_end.astimezone(UTC)
        else:
            overlap = after.first_date <= before.last_date
        if overlap:
            return StepConflict(i - 1, i, "begins before the previous step has ended")
    return None


def timing_problem(timing: TimingDosage, *, order_start: date | None = None,
                   first_dose_anchors: bool = False) -> str | None:
    """`timing_violation` as a sentence, or None when the timing can be scheduled."""
    violation = timing_violation(timing, order_start=order_start,
                                 first_dose_anchors=first_dose_anchors)
    return None if violation is None else f"{violation.field}: {violation.description}"


def _limit_violation(t: TimingDosage) -> FieldViolation | None:
    if t.period_unit and t.period_unit not in PERIOD_UNITS:
        return FieldViolation("timing.repeat.periodUnit",
                              f"{shown(t.period_unit)} is not a FHIR period unit")
    if t.frequency and t.period is None:
        return FieldViolation("timing.repeat.period", "a frequency needs a period")
    return None


def _course_violation(t: TimingDosage, plan: _Plan, order_start: date | None,
                      first_dose_anchors: bool) -> FieldViolation | None:
    if t.bounds_duration is not None:
        unit = t.bounds_duration_unit
        if unit not in UNIT_LENGTHS:
            return FieldViolation("timing.repeat.boundsDuration",
                                  f"a course in {shown(unit)} has no fixed length")
        if unit in ("d", "wk") and t.bounds_duration != t.bounds_duration.to_integral_value():
            return FieldViolation("timing.repeat.boundsDuration",
                                  "a course in days or weeks must be whole days")
        if t.bounds_duration <= 0:
            return FieldViolation("timing.repeat.boundsDuration", "must be positive")
        if (t.bounds_duration * int(UNIT_LENGTHS[unit].total_seconds())) % 60:
            return FieldViolation("timing.repeat.boundsDuration", "must be whole minutes")
        if order_start is None:
            return FieldViolation("timing.repeat.boundsDuration",
                                  "counts from the order's start, and the order has none")
    if t.has_start or t.events or order_start is not None:
        return None
    if plan.interval is not None:
        what = f"an interval schedule (every {_duration_text(plan.interval)})"
    elif plan.needs_anchor:
        what = "a rhythm of every few days or weeks"
    elif t.count is not None:
        what = f"a course of {t.count} dose(s) (count)"
    else:
        return None
    if first_dose_anchors and _anchorable(plan):
        return None
    if first_dose_anchors:
        return FieldViolation("timing.repeat.boundsPeriod.start",
                              f"{what} at times of day needs a start: from its first "
                              "administration, which of the day's times comes next is not "
                              "said")
    return FieldViolation("timing.repeat.boundsPeriod.start",
                          f"{what} is anchored at the start of the course, and neither the "
                          "timing (boundsPeriod.start) nor the order gives one")


def _anchorable(plan: _Plan) -> bool:
    """Whether a course without a start can begin at its first administration: an interval,
    or one dose every few days or weeks, or a course of doses with no rhythm of its own."""
    if plan.interval is not None:
        return True
    return len(plan.times) == 1 and plan.times[0].kind is TimeKind.ANY and not plan.weekdays


def awaits_first_dose(timing: TimingDosage, *, order_start: date | None) -> bool:
    """Whether the course begins at its first administration (DOMAIN.md §4, issue 20): an
    interval or count schedule, or one every few days, with no start from the timing
    (boundsPeriod.start, events) or the order. Its first dose is due from the order's valid
    time until given; later doses follow from the instant it was given (`expand_timing`'s
    `first_given`), as VistA BCMA schedules the next dose from the last administration."""
    plan = timing.plan
    if (isinstance(plan, FieldViolation) or timing.as_needed or timing.then or timing.has_start
            or timing.events or order_start is not None or not _anchorable(plan)):
        return False
    return plan.needs_anchor or timing.count is not None


def _compile(t: TimingDosage) -> _Plan | FieldViolation:
    """The fixed-dose rhythm of a timing (see the module docstring), or why not."""
    if t.code and not _has_own_rhythm(t) and t.code not in TIMING_CODES:
        reason = ("monthly: the day of the month is not given" if t.code == "MO"
                  else "is not a timing abbreviation the house rules know")
        return FieldViolation("timing.code", f"{shown(t.code)} {reason}")
    if t.events:
        return _event_plan(t)
    r = t.rhythm
    if t.when and t.time_of_day:
        return FieldViolation("timing.repeat.timeOfDay", "give when or timeOfDay, not both")
    if t.offset_minutes and not r.when:
        return FieldViolation("timing.repeat.offset", "an offset needs a when code")
    if t.offset_minutes > MAX_OFFSET_MINUTES:
        return FieldViolation("timing.repeat.offset", "more than 2 hours from the event "
                                                      "is not a round time")
    if r.period is None and (r.frequency or r.period_unit):
        return FieldViolation("timing.repeat.period", "a frequency needs a period and unit")
    if r.period is not None and not r.period_unit:
        return FieldViolation("timing.repeat.periodUnit", "a period needs a unit")
    if r.period is None and not r.when and not t.time_of_day:
        if t.count == 1:  # a one-time dose
            r = _Rhythm(1, Decimal(1), "d")
        else:
            return FieldViolation("timing.repeat", "says neither how often nor when")
    unit = r.period_unit or "d"
    if unit not in PERIOD_UNITS:
        return FieldViolation("timing.repeat.periodUnit",
                              f"{shown(unit)} is not a FHIR period unit")
    if unit not in UNIT_LENGTHS:
        return FieldViolation("timing.repeat.periodUnit",
                              f"every {r.period} {unit}: months and years have no fixed "
                              "length; give the period in days or weeks")
    weekdays = frozenset(WEEKDAYS.index(d) for d in t.day_of_week)
    if UNIT_LENGTHS[unit] < _DAY:
        return _interval_plan(t, r, unit, weekdays)
    return _day_plan(t, r, unit, weekdays)


def _event_plan(t: TimingDosage) -> _Plan | FieldViolation:
    """Listed instants, and an interval repeat from each (see the module docstring)."""
    weekdays = frozenset(WEEKDAYS.index(d) for d in t.day_of_week)
    if not _has_own_rhythm(t) and not t.code:
        return _Plan((), 1, 0, weekdays, None)
    r = t.rhythm
    if (r.when or t.time_of_day or r.period is None or r.period_unit not in UNIT_LENGTHS
            or UNIT_LENGTHS[r.period_unit] >= _DAY):
        return FieldViolation("timing.event", "listed instants go with no repeat or with an "
                                              "interval in hours or minutes, not with times of "
                                              "day or a rhythm of days: which one rules is not "
                                              "said")
    return _interval_plan(t, r, r.period_unit, weekdays)


def _has_own_rhythm(t: TimingDosage) -> bool:
    return bool(t.frequency or t.period is not None or t.when or t.time_of_day)


def _interval_plan(t: TimingDosage, r: _Rhythm, unit: str, weekdays: frozenset[int]
                   ) -> _Plan | FieldViolation:
    if r.when or t.time_of_day:
        return FieldViolation("timing.repeat.when", f"times of day with a period in {unit}: "
                                                    "give one or the other")
    assert r.period is not None  # _compile makes sure
    seconds = r.period * int(UNIT_LENGTHS[unit].total_seconds()) / (r.frequency or 1)
    if seconds % 60:
        return FieldViolation("timing.repeat.period", "the time between doses must be "
                                                      "whole minutes")
    step = timedelta(seconds=int(seconds))
    if step < MIN_INTERVAL:
        return FieldViolation("timing.repeat.period",
                              f"a dose every {_duration_text(step)} is an infusion, not a "
                              "round: at most one dose an hour is scheduled")
    return _Plan((), 1, 0, weekdays, step)


def _day_plan(t: TimingDosage, r: _Rhythm, unit: str, weekdays: frozenset[int]
              ) -> _Plan | FieldViolation:
    assert r.period is not None or r.when or t.time_of_day
    period = r.period if r.period is not None else Decimal(1)
    if period != period.to_integral_value():
        return FieldViolation("timing.repeat.period", f"every {period} {unit} is not whole "
                                                      f"{'days' if unit == 'd' else 'weeks'}")
    listed = len(r.when) + len(t.time_of_day)
    week_cycle = 0
    if unit == "wk" and weekdays:  # the listed weekdays of every week_cycle-th week
        week_cycle, step, per_day = int(period), 1, listed or 1
        if r.frequency:
            if r.frequency % len(weekdays):
                return FieldViolation("timing.repeat.frequency",
                                      f"{r.frequency} per {period} wk on {len(weekdays)} "
                                      "weekdays is not the same number of doses each day")
            per_day = r.frequency // len(weekdays)
    else:
        days = int(period) * (7 if unit == "wk" else 1)
        freq = r.frequency or listed or 1
        if not r.frequency and listed:
            step, per_day = days, listed
        elif freq % days == 0:
            step, per_day = 1, freq // days
        elif days % freq == 0:
            step, per_day = days // freq, 1
        else:
            return FieldViolation("timing.repeat.frequency",
                                  f"{freq} per {period} {unit} does not fall on whole days; "
                                  "say which days (dayOfWeek) or when")
    if listed and per_day != listed:
        return FieldViolation("timing.repeat.frequency",
                              f"{per_day} dose(s) a day, but {listed} times of day are given "
                              "(when/timeOfDay): which is meant is not clear")
    if per_day > MAX_DOSES_PER_DAY:
        return FieldViolation("timing.repeat.frequency",
                              f"{per_day} doses a day is not a round schedule")
    times = _day_times(t, r, per_day)
    if isinstance(times, FieldViolation):
        return times
    return _Plan(times, step, week_cycle, weekdays, None)


def _day_times(t: TimingDosage, r: _Rhythm, per_day: int
               ) -> tuple[_DayTime, ...] | FieldViolation:
    if t.time_of_day:
        if len(set(t.time_of_day)) != len(t.time_of_day):
            return FieldViolation("timing.repeat.timeOfDay", "lists a time twice")
        return tuple(_DayTime(_clock_label(at), TimeKind.CLOCK, at, 0, 1, 0)
                     for at in sorted(t.time_of_day))
    if not r.when:
        return tuple(_DayTime(f"any-{i + 1}of{per_day}", TimeKind.ANY, None, i, per_day, 0)
                     for i in range(per_day))
    times: list[_DayTime] = []
    seen: dict[tuple[TimeKind, int], str] = {}
    for code in r.when:
        if code in _UNPLACED_WHEN:
            return FieldViolation("timing.repeat.when", f"{shown(code)} ({_UNPLACED_WHEN[code]}) "
                                                        "is not one of the facility's times")
        places = WHEN_TIMES.get(code)
        if places is None:
            return FieldViolation("timing.repeat.when", f"{shown(code)} is not an EventTiming code")
        for place in places:
            offset = -t.offset_minutes if place.before else t.offset_minutes
            key = (place.kind, offset)
            if key in seen:
                return FieldViolation("timing.repeat.when",
                                      f"{shown(seen[key])} and {shown(code)} fall at the "
                                      "same time")
            seen[key] = code
            label = code if len(places) == 1 else f"{code}.{place.kind.value}"
            times.append(_DayTime(label, place.kind, None, 0, 1, offset))
    return tuple(times)


def _clock_label(at: time) -> str:
    return at.strftime("%H:%M:%S" if at.second else "%H:%M")


# -- expansion ----------------------------------------------------------------------------


class _Course(NamedTuple):
    """Where a timing's doses may fall: local dates, then instants."""

    first_date: date | None
    last_date: date | None  # inclusive
    start: datetime | None  # inclusive
    end: datetime | None  # inclusive
    end_before: datetime | None  # exclusive (a duration in hours or minutes)
    anchor: datetime | None  # where an interval schedule starts

    def holds(self, on: date, due: datetime) -> bool:
        return ((self.first_date is None or self.first_date <= on)
                and (self.last_date is None or on <= self.last_date)
                and (self.start is None or self.start <= due)
                and (self.end is None or due <= self.end)
                and (self.end_before is None or due < self.end_before))

    def over_after(self, due: datetime, on: date) -> bool:
        """No dose at or after `due` (on local date `on`) can be in the course."""
        return ((self.last_date is not None and on > self.last_date)
                or (self.end is not None and due > self.end)
                or (self.end_before is not None and due >= self.end_before))


def expand_timing(timing: TimingDosage, clock: FacilityClock, first: date, last: date, *,
                  order_start: date | None, first_given: datetime | None = None,
                  first_due: datetime | None = None, first_due_until: datetime | None = None
                  ) -> list[TimingSlot]:
    """The fixed doses of a timing due on local dates first..last (inclusive), by date and
    local time.

    A course that `awaits_first_dose`: once given (`first_given`, the instant of its first
    recorded administration) its doses follow from that instant, the first of them that
    one; until then one dose is due, at `first_due` (the order's valid time), open-ended
    (`TimingSlot.open_ended`: no window closes it; it stays due until given). That dose is
    in the expansion of every range of dates its open span meets, from its own date to the
    date it was given (to `last` while not given), so that a record on it days later
    finds it, and no further than `first_due_until` (the end of the run of versions that
    wait for it, `open_span_end`). With neither, none is known. PN timings give none.
    Raises InvalidArgument with the reason when the timing cannot be scheduled (see
    `timing_violation`)."""
    waiting = awaits_first_dose(timing, order_start=order_start)
    violation = timing_violation(timing, order_start=order_start, first_dose_anchors=waiting)
    if violation is not None:
        raise InvalidArgument([violation])
    if timing.as_needed or first > last:
        return []
    if waiting:
        return _from_first_dose(timing, clock, first, last, first_given, first_due,
                                first_due_until)
    if timing.then:
        steps = timing.steps
        slots = [s for i, step in enumerate(steps) for s in expand_timing(
            step, clock, first, last, order_start=order_start if i == 0 else None)]
        return sorted(slots, key=lambda s: s.due_time)
    if timing.also:
        slots = [s for part in timing.parts for s in expand_timing(
            part, clock, first, last, order_start=order_start)]
        per_day: dict[date, int] = {}
        for s in slots:
            per_day[s.local_date] = per_day.get(s.local_date, 0) + 1
        # The window follows the order's doses of the day, whichever part they come from.
        return sorted((s._replace(doses_that_day=per_day[s.local_date]) for s in slots),
                      key=lambda s: s.due_time)
    plan = timing.plan
    assert not isinstance(plan, FieldViolation)  # timing_violation said so
    course = _course(timing, clock, order_start)
    if timing.events:
        return list(_event_slots(timing, plan, course, clock, first, last))
    if plan.interval is not None:
        return list(_interval_slots(timing, plan, plan.interval, course, clock, first, last))
    return list(_day_slots(timing, plan, course, clock, first, last))


def _course(t: TimingDosage, clock: FacilityClock, order_start: date | None) -> _Course:
    # In UTC: arithmetic and comparisons on datetimes sharing a zone are wall-clock ones,
    # which is wrong across a DST change.
    start = t.bounds_start.astimezone(UTC) if t.bounds_start else None
    end = t.bounds_end.astimezone(UTC) if t.bounds_end else None
    first_date = t.bounds_first_date
    if start is not None:
        first_date = clock.local_date_of(start)
    elif first_date is None:
        first_date = order_start
    anchor = start or (clock.instant(first_date, _MIDNIGHT) if first_date else None)
    last_date = t.bounds_last_date
    if end is not None:
        last_date = clock.local_date_of(end)
    end_before = None
    if t.bounds_duration is not None and first_date is not None and anchor is not None:
        length = t.bounds_duration * int(UNIT_LENGTHS[t.bounds_duration_unit].total_seconds())
        if t.bounds_duration_unit in ("d", "wk"):  # whole local days, not 24-hour blocks
            last_date = first_date + timedelta(days=int(length) // 86_400 - 1)
        else:
            end_before = anchor + timedelta(seconds=int(length))  # whole minutes, checked
    return _Course(first_date, last_date, start, end, end_before, anchor)


def _day_slots(t: TimingDosage, plan: _Plan, course: _Course, clock: FacilityClock,
               first: date, last: date) -> Iterator[TimingSlot]:
    assert t.amount is not None  # timing_violation makes sure
    # A count caps the whole course, so counting starts at the course's start.
    begin = course.first_date if t.count is not None else max(first, course.first_date or first)
    assert begin is not None  # timing_violation makes sure a counted course has a start
    end = min(last, course.last_date or last)
    day_times = sorted(((_wall_time(d, clock), d) for d in plan.times), key=lambda p: p[0])
    per_day, one_time = len(day_times), t.count == 1
    issued = 0
    for on in _dates(begin, end):
        if not _active(plan, on, course.first_date):
            continue
        for local_time, d in day_times:
            due = clock.instant(on, local_time)
            if not course.holds(on, due):
                continue
            issued += 1
            if t.count is not None and issued > t.count:
                return
            if on >= first:
                yield TimingSlot(on, clock.wall_time(due), d.slot, t.amount, per_day, d.kind, due,
                                 one_time)


def _wall_time(d: _DayTime, clock: FacilityClock) -> time:
    base = clock.time_of(d.kind, d.clock_time, d.any_index, d.any_count)
    if not d.offset:
        return base
    # The dose keeps its local date: an offset past midnight stops at the day's edge.
    minute = min(max(base.hour * 60 + base.minute + d.offset, 0), _LAST_MINUTE)
    return time(minute // 60, minute % 60)


def _active(plan: _Plan, on: date, anchor: date | None) -> bool:
    if plan.weekdays and on.weekday() not in plan.weekdays:
        return False
    if plan.step_days > 1:
        assert anchor is not None
        return (on - anchor).days % plan.step_days == 0
    if plan.week_cycle > 1:
        assert anchor is not None
        weeks = (_monday(on) - _monday(anchor)).days // 7
        return weeks % plan.week_cycle == 0
    return True


def _monday(on: date) -> date:
    return on - timedelta(days=on.weekday())


def _dates(first: date, last: date) -> Iterator[date]:
    on = first
    while on <= last:
        yield on
        on += _DAY


def _interval_slots(t: TimingDosage, plan: _Plan, step: timedelta, course: _Course,
                    clock: FacilityClock, first: date, last: date) -> Iterator[TimingSlot]:
    """Every `step` of real elapsed time from the anchor; local dates and times last."""
    assert t.amount is not None and course.anchor is not None
    anchor = course.anchor
    window_start = clock.instant(first, _MIDNIGHT)
    window_end = clock.instant(last + _DAY, _MIDNIGHT)
    counting = t.count is not None
    k = 0 if counting else max(0, _steps_until(anchor, window_start, step))
    issued = 0
    while True:
        due = anchor + k * step
        k += 1
        if due >= window_end:
            return
        local = clock.local(due)
        on = local.date()
        if course.over_after(due, on):
            return
        if (plan.weekdays and on.weekday() not in plan.weekdays) or not course.holds(on, due):
            continue
        issued += 1
        if counting and t.count is not None and issued > t.count:
            return
        if due >= window_start:
            label = local.strftime("%H:%M") + ("-2" if local.fold else "")
            yield TimingSlot(on, local.time(), label, t.amount,
                             _interval_doses_on(on, anchor, step, clock), TimeKind.CLOCK,
                             due, t.count == 1)


def open_span_end(due: datetime, first_given: datetime | None,
                  until: datetime | None = None) -> datetime | None:
    """Where the open span of a course's first dose (`TimingSlot.open_ended`, due from
    `due` until given) ends: the instant it was given (its due time if given ahead of it),
    but no later than `until`, where the run of order versions that wait for it ends (the
    order changed to fixed times or got a start: the new version's doses replace it, given
    or not); None while not given and still waiting: open to any later time. The one
    statement of that span: the expansion, the ranges a dose is due in and the round lists
    all read it."""
    ends = None if first_given is None else max(first_given.astimezone(UTC),
                                                due.astimezone(UTC))
    if until is None:
        return ends
    return until.astimezone(UTC) if ends is None else min(ends, until.astimezone(UTC))


def given_in_open_span(due: datetime, first_given: datetime | None,
                       until: datetime | None = None) -> bool:
    """Whether the open first dose was given (the anchor lies in its span): not when the
    run of waiting versions ended first (`open_span_end`'s `until`)."""
    return first_given is not None and (until is None or first_given < until)


def _from_first_dose(t: TimingDosage, clock: FacilityClock, first: date, last: date,
                     first_given: datetime | None, first_due: datetime | None,
                     first_due_until: datetime | None = None) -> list[TimingSlot]:
    """A course that begins at its first administration (see `expand_timing`). An interval
    runs in real elapsed time from the instant given; every few days keeps the wall time it
    was given at, on local dates (the DST rules of the facility clock); a count caps the
    doses from the first one on."""
    assert t.amount is not None
    plan = t.plan
    assert isinstance(plan, _Plan)
    slots: list[TimingSlot] = []
    given = first_given.astimezone(UTC) if first_given is not None else None
    if first_due is not None:  # the first dose keeps its place (and id) once given
        local = clock.local(first_due.astimezone(UTC))
        # In every date of its open span (see `expand_timing`).
        ends = open_span_end(first_due, given, first_due_until)
        until = last if ends is None else clock.local_date_of(ends)
        if local.date() <= last and first <= until:
            slots.append(TimingSlot(local.date(), local.time(), "first", t.amount, 1,
                                    TimeKind.CLOCK, first_due.astimezone(UTC), True, True))
    if given is None:
        return slots
    skip = 1 if first_due is not None else 0  # the dose given is the one at first_due
    if plan.interval is not None:
        return slots + [s for s in _from_instant(t, plan, given, clock, first, last)
                        if not skip or s.due_time > given]
    local = clock.local(given)
    step = max(plan.step_days, 7 * plan.week_cycle, 1)
    on, issued = local.date(), 0
    while on <= last and (t.count is None or issued < t.count):
        due = given if issued == 0 else clock.instant(on, local.time())
        issued += 1
        if on >= first and issued > skip:
            wall = clock.local(due)
            slots.append(TimingSlot(on, wall.time(), wall.strftime("%H:%M"), t.amount, 1,
                                    TimeKind.CLOCK, due, t.count == 1))
        on += timedelta(days=step)
    return slots


def _from_instant(t: TimingDosage, plan: _Plan, given: datetime, clock: FacilityClock,
                  first: date, last: date) -> list[TimingSlot]:
    anchored = replace(t, bounds_start=given, bounds_first_date=None)
    course = _course(anchored, clock, None)
    assert plan.interval is not None
    return list(_interval_slots(anchored, plan, plan.interval, course, clock, first, last))


def _event_slots(t: TimingDosage, plan: _Plan, course: _Course, clock: FacilityClock,
                 first: date, last: date) -> Iterator[TimingSlot]:
    """A dose at each event, and every `plan.interval` from it until the next event."""
    assert t.amount is not None
    events = sorted({e.astimezone(UTC) for e in t.events})
    window_start = clock.instant(first, _MIDNIGHT)
    window_end = clock.instant(last + _DAY, _MIDNIGHT)
    dues: list[datetime] = []
    for i, event in enumerate(events):
        until = events[i + 1] if i + 1 < len(events) else window_end
        due = event
        if plan.interval is not None and t.count is None:  # skip what lies before the range
            due = event + max(0, _steps_until(event, window_start, plan.interval)) * plan.interval
        while due < until and due < window_end:
            dues.append(due)
            if plan.interval is None:
                break
            due += plan.interval
    placed = [(due, clock.local(due)) for due in dues]
    placed = [(due, local) for due, local in placed
              if not (plan.weekdays and local.date().weekday() not in plan.weekdays)
              and course.holds(local.date(), due)]
    if t.count is not None:
        placed = placed[:t.count]  # a count caps the whole course, from its first dose
    one_time = t.count == 1 or (len(events) == 1 and plan.interval is None)
    per_day: dict[date, int] = {}
    for _, local in placed:
        per_day[local.date()] = per_day.get(local.date(), 0) + 1
    for due, local in placed:
        if due >= window_start:
            label = local.strftime("%H:%M") + ("-2" if local.fold else "")
            yield TimingSlot(local.date(), local.time(), label, t.amount,
                             per_day[local.date()], TimeKind.CLOCK, due, one_time)


def _steps_until(anchor: datetime, instant: datetime, step: timedelta) -> int:
    """The smallest k with anchor + k * step >= instant (may be negative)."""
    return -((anchor - instant) // step)


def _interval_doses_on(on: date, anchor: datetime, step: timedelta, clock: FacilityClock) -> int:
    """How many of the rhythm's instants fall on a local date (a 23- or 25-hour day too)."""
    begin = max(0, _steps_until(anchor, clock.instant(on, _MIDNIGHT), step))
    end = max(0, _steps_until(anchor, clock.instant(on + _DAY, _MIDNIGHT), step))
    return end - begin


# -- texts ------------------------------------------------------------------------------

# (singular, plural); Danish neuter nouns take "hvert" (hvert 30. minut).
_UNIT_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "da": {"s": ("sekund", "sekunder"), "min": ("minut", "minutter"), "h": ("time", "timer"),
           "d": ("dag", "dage"), "wk": ("uge", "uger"), "mo": ("måned", "måneder"),
           "a": ("år", "år")},
    "en": {"s": ("second", "seconds"), "min": ("minute", "minutes"), "h": ("hour", "hours"),
           "d": ("day", "days"), "wk": ("week", "weeks"), "mo": ("month", "months"),
           "a": ("year", "years")},
}
_NEUTER_DA = frozenset({"s", "min", "a"})
_WEEKDAY_NAMES = {
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
# The official FMK wordings where there is one ("før sengetid", "morgen og aften").
_WHEN_NAMES = {
    "da": {"MORN": "morgen", "MORN.early": "tidlig morgen", "MORN.late": "sen morgen",
           "NOON": "middag", "AFT": "eftermiddag", "AFT.early": "tidlig eftermiddag",
           "AFT.late": "sen eftermiddag", "EVE": "aften", "EVE.early": "tidlig aften",
           "EVE.late": "sen aften", "NIGHT": "nat", "HS": "før sengetid",
           "PHS": "efter sengetid", "WAKE": "ved opvågning", "CM": "til morgenmaden",
           "CD": "til frokosten", "CV": "til aftensmaden", "ACM": "før morgenmaden",
           "ACD": "før frokosten", "ACV": "før aftensmaden", "PCM": "efter morgenmaden",
           "PCD": "efter frokosten", "PCV": "efter aftensmaden", "C": "til hvert hovedmåltid",
           "AC": "før hvert hovedmåltid", "PC": "efter hvert hovedmåltid"},
    "en": {"MORN": "morning", "MORN.early": "early morning", "MORN.late": "late morning",
           "NOON": "noon", "AFT": "afternoon", "AFT.early": "early afternoon",
           "AFT.late": "late afternoon", "EVE": "evening", "EVE.early": "early evening",
           "EVE.late": "late evening", "NIGHT": "night", "HS": "at bedtime",
           "PHS": "after going to sleep", "WAKE": "on waking", "CM": "with breakfast",
           "CD": "with lunch", "CV": "with dinner", "ACM": "before breakfast",
           "ACD": "before lunch", "ACV": "before dinner", "PCM": "after breakfast",
           "PCD": "after lunch", "PCV": "after dinner", "C": "with each main meal",
           "AC": "before each main meal", "PC": "after each main meal"},
}
_WORDS = {
    "da": {"and": "og", "as_needed": "efter behov", "at_most": "højst", "at": "kl.",
           "in_total": "i alt {n} gange", "before": "min. før", "after": "min. efter",
           "daily": "daglig", "weekly": "ugentlig", "then": "derefter", "from": "fra"},
    "en": {"and": "and", "as_needed": "as needed", "at_most": "at most", "at": "at",
           "in_total": "{n} times in total", "before": "min before", "after": "min after",
           "daily": "daily", "weekly": "weekly", "then": "then", "from": "from"},
}


def timing_text(timing: TimingDosage, lang: str) -> str:
    """A short human text in "da" or "en", in FMK's wording where it has one:
    "1 tablet 2 gange daglig" / "1 tablet twice daily", "1 tablet morgen og aften",
    "hver 6. time" / "every 6 hours", "efter behov, højst 3 gange daglig" / "as needed, at
    most 3 times daily". It says what the source said, schedulable or not."""
    if lang not in _WORDS:
        raise InvalidArgument([FieldViolation("lang", "must be 'da' or 'en'")])
    if timing.then:
        return f", {_WORDS[lang]['then']} ".join(timing_text(step, lang) for step in timing.steps)
    if timing.also:
        return f" {_WORDS[lang]['and']} ".join(timing_text(part, lang) for part in timing.parts)
    words = _WORDS[lang]
    parts = [_amount_text(timing, lang)]
    if timing.as_needed:
        limits = _limit_texts(timing, lang)
        parts.append(", ".join([words["as_needed"], *limits]))
    else:
        parts.append(_rhythm_text(timing, lang))
    if timing.events:
        parts.append(_events_text(timing, lang))
    parts.append(_weekdays_text(timing, lang))
    text = " ".join(p for p in parts if p)
    if timing.count is not None and timing.count > 1:
        text += ", " + words["in_total"].format(n=timing.count)
    return text


def _events_text(t: TimingDosage, lang: str) -> str:
    """ "kl. 22:00 15.01.2015 (+11:00)": each instant as the source wrote it (no zone is at
    hand here); "fra" / "from" before them when a repeat follows each."""
    texts = [f"{e.strftime('%H:%M')} {e.strftime('%d.%m.%Y')} ({e.strftime('%z')[:3]}:"
             f"{e.strftime('%z')[3:]})" for e in sorted(t.events)]
    lead = _WORDS[lang]["from" if _has_own_rhythm(t) or t.code else "at"]
    return f"{lead} {_join(texts, lang)}"


def _amount_text(t: TimingDosage, lang: str) -> str:
    a = t.amount
    if a is None:
        return ""
    if a.quantity is not None:
        unit = t.unit.singular if a.quantity <= 1 else t.unit.plural
        return f"{_number(a.quantity, lang)} {unit}".strip()
    return f"{_number(a.low, lang)}-{_number(a.high, lang)} {t.unit.plural}".strip()


def _number(value: Decimal, lang: str) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",") if lang == "da" else text


def _times(n: int, lang: str) -> str:
    if lang == "da":
        return "1 gang" if n == 1 else f"{n} gange"
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _every(n: Decimal, unit: str, lang: str) -> str:
    """ "hver 2. dag", "hvert 30. minut", "hver time" / "every 2 days", "every hour"."""
    one, many = _UNIT_NAMES[lang].get(unit, (unit, unit))
    if lang == "da":
        each = "hvert" if unit in _NEUTER_DA else "hver"
        return f"{each} {one}" if n == 1 else f"{each} {_number(n, lang)}. {one}"
    return f"every {one}" if n == 1 else f"every {_number(n, lang)} {many}"


def _per(n: Decimal, unit: str, lang: str) -> str:
    """ "pr. døgn", "pr. 8 timer" / "per day", "per 8 hours"."""
    if lang == "da" and unit == "d" and n == 1:
        return "pr. døgn"
    one, many = _UNIT_NAMES[lang].get(unit, (unit, unit))
    word = "pr." if lang == "da" else "per"
    return f"{word} {one}" if n == 1 else f"{word} {_number(n, lang)} {many}"


def _rhythm_text(t: TimingDosage, lang: str) -> str:
    r = t.rhythm
    unit = r.period_unit or "d"
    period = r.period if r.period is not None else Decimal(1)
    freq = r.frequency or 1
    times = _times_of_day_text(t, r, lang)
    if times:
        return times if unit == "d" and period == 1 else f"{times} {_every(period, unit, lang)}"
    if r.period is None:
        return _times(1, lang) if t.count == 1 else ""
    if unit in ("s", "min", "h"):
        return _every(*_step(period, unit, freq), lang)
    if unit == "wk" and t.day_of_week:  # the weekdays say it: "mandag og torsdag hver uge"
        per_day = freq // len(t.day_of_week) if freq % len(t.day_of_week) == 0 else 0
        return "" if per_day <= 1 else f"{_times(per_day, lang)} {_WORDS[lang]['daily']}"
    if period == 1 and unit in ("d", "wk"):
        return f"{_times(freq, lang)} {_WORDS[lang]['daily' if unit == 'd' else 'weekly']}"
    every = _every(period, unit, lang)
    return every if freq == 1 else f"{_times(freq, lang)} {every}"


def _step(period: Decimal, unit: str, freq: int) -> tuple[Decimal, str]:
    """The time between doses, in hours when whole hours, else minutes."""
    seconds = period * int(UNIT_LENGTHS[unit].total_seconds()) / freq
    if seconds % 3600 == 0:
        return seconds / 3600, "h"
    if seconds % 60 == 0:
        return seconds / 60, "min"
    return seconds, "s"


def _times_of_day_text(t: TimingDosage, r: _Rhythm, lang: str) -> str:
    words = _WORDS[lang]
    if t.time_of_day:
        return f"{words['at']} {_join([_clock_label(at) for at in t.time_of_day], lang)}"
    if not r.when:
        return ""
    text = _join([_WHEN_NAMES[lang].get(code, code) for code in r.when], lang)
    if t.offset_minutes:
        before = all(p.before for code in r.when for p in WHEN_TIMES.get(code, ()))
        text += f" ({t.offset_minutes} {words['before' if before else 'after']})"
    return text


def _weekdays_text(t: TimingDosage, lang: str) -> str:
    names = [_WEEKDAY_NAMES[lang][WEEKDAYS.index(d)] for d in t.day_of_week if d in WEEKDAYS]
    if not names:
        return ""
    r = t.rhythm
    weeks = r.period if r.period_unit == "wk" and r.period is not None else Decimal(1)
    every = _every(weeks, "wk", lang)
    return f"{_join(names, lang)} {every}" if lang == "da" else f"on {_join(names, lang)} {every}"


def _limit_texts(t: TimingDosage, lang: str) -> list[str]:
    """The PN limit: "højst 3 gange daglig", "højst hver 4. time", "højst 720 mg pr. døgn"."""
    at_most = _WORDS[lang]["at_most"]
    limits: list[str] = []
    r = t.rhythm
    if r.period is not None and r.period_unit in UNIT_LENGTHS:
        freq = r.frequency or 1
        if r.period_unit in ("s", "min", "h") and freq == 1:
            limits.append(f"{at_most} {_every(*_step(r.period, r.period_unit, 1), lang)}")
        elif r.period_unit == "d" and r.period == 1:
            limits.append(f"{at_most} {_times(freq, lang)} {_WORDS[lang]['daily']}")
        else:
            limits.append(f"{at_most} {_times(freq, lang)} {_per(r.period, r.period_unit, lang)}")
    if t.max_dose_quantity is not None:
        quantity = f"{_number(t.max_dose_quantity, lang)} {t.max_dose_unit}".strip()
        per = _per(*_length(t.max_dose_period), lang) if t.max_dose_period else ""
        limits.append(f"{at_most} {quantity} {per}".strip())
    return limits


def _length(span: timedelta) -> tuple[Decimal, str]:
    seconds = Decimal(int(span.total_seconds()))
    for unit in ("wk", "d", "h", "min"):
        size = int(UNIT_LENGTHS[unit].total_seconds())
        if seconds % size == 0:
            return seconds / size, unit
    return seconds, "s"


def _duration_text(span: timedelta) -> str:
    """English, for reasons: "6 hours", "30 minutes"."""
    n, unit = _length(span)
    one, many = _UNIT_NAMES["en"][unit]
    return f"{_number(n, 'en')} {one if n == 1 else many}"


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {_WORDS[lang]['and']} {items[-1]}"
