"""Dosages (FMK 1.4 model) and their expansion over local dates (DOMAIN.md §3).

A dosage is structured, free text, or "according to a schema in a local system". Only a
structured dosage can be scheduled; the other kinds, and structured dosages that cannot be
placed on dates, are reported by `needs_manual_schedule`.

Rules of the expansion, in the words of DOMAIN.md §3 and the house rules this module adds:

- Day N of a period falls on start + (N-1) days. In an iterated period a date's position in
  the cycle is (date - start) mod interval, so day N recurs every `interval` days. An
  interval longer than the period behaves as not iterated.
- Day 0 is "any day" of the period. It is meaningful for as-needed (PN) doses only; a fixed
  dose on day 0 has no date and makes the dosage need a manual schedule, as does a day
  number beyond the iteration interval.
- PN doses are never due. The PN daily maximum is the number of PN entries on the day
  (day 0 entries count on every day); one PN entry in a non-iterated period means no limit.
- An empty period (no doses) gives nothing. Where periods overlap, the one that starts last
  wins (so on a boundary day the period that starts that day wins; for equal starts, the
  later in the list). Fixed and PN periods are ruled separately: a PN-only period never
  hides a fixed period's doses and vice versa (FMK 1.4.6 sends them as separate lists that
  overlap by design); an empty period hides both.

Expansion is on the hot path (a national day is ~240,000 orders, each expanded for a day or
a shift): it is plain functions over the immutable structure, a short scan of the ruling
period's days per date, and no per-object caches (filling them costs more than it saves
when each order is expanded once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import TypeAlias

from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.i18n import Msg, msg


class TimeKind(Enum):
    """When in the day a dose is given (proto DoseTimeKind)."""

    ANY = "any"
    MORNING = "morning"
    NOON = "noon"
    EVENING = "evening"
    NIGHT = "night"
    CLOCK = "clock"


NAMED_TIME_KINDS = frozenset({TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT})


@dataclass(frozen=True)
class DoseUnit:
    """Unit text of a dosage; a source with a single text sends it as both forms."""

    singular: str
    plural: str

    @classmethod
    def single(cls, text: str) -> DoseUnit:
        return cls(text, text)


@dataclass(frozen=True)
class Amount:
    """A dose quantity: exactly `quantity`, or a `min_quantity`..`max_quantity` range."""

    quantity: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None

    def __post_init__(self) -> None:
        problems = amount_violations(self)
        if problems:
            raise InvalidArgument(problems)

    @classmethod
    def exact(cls, quantity: Decimal | str | int) -> Amount:
        return cls(quantity=Decimal(quantity))

    @classmethod
    def between(cls, low: Decimal | str | int, high: Decimal | str | int) -> Amount:
        return cls(min_quantity=Decimal(low), max_quantity=Decimal(high))

    @property
    def is_range(self) -> bool:
        return self.quantity is None

    @property
    def low(self) -> Decimal:
        value = self.quantity if self.quantity is not None else self.min_quantity
        assert value is not None  # guaranteed by __post_init__
        return value

    @property
    def high(self) -> Decimal:
        value = self.quantity if self.quantity is not None else self.max_quantity
        assert value is not None  # guaranteed by __post_init__
        return value

    def allows(self, given: Decimal) -> bool:
        """Whether a given quantity is the ordered one (or inside the ordered range)."""
        return self.low <= given <= self.high


def amount_violations(amount: Amount, prefix: str = "amount") -> list[FieldViolation]:
    """Problems with an amount: exactly a quantity, or a min <= max range; never negative."""
    q, lo, hi = amount.quantity, amount.min_quantity, amount.max_quantity
    if q is not None:
        if lo is not None or hi is not None:
            return [FieldViolation(prefix, "set either quantity or a min-max range, not both")]
        return _quantity_violations(q, f"{prefix}.quantity")
    if lo is None or hi is None:
        return [FieldViolation(prefix, "set a quantity, or both min_quantity and max_quantity")]
    problems = _quantity_violations(lo, f"{prefix}.min_quantity")
    problems += _quantity_violations(hi, f"{prefix}.max_quantity")
    if not problems and lo > hi:
        problems.append(FieldViolation(prefix, "min_quantity is greater than max_quantity"))
    return problems


def _quantity_violations(value: Decimal, field_name: str) -> list[FieldViolation]:
    if not isinstance(value, Decimal) or not value.is_finite():
        return [FieldViolation(field_name, "must be a finite decimal")]
    if value < 0:
        return [FieldViolation(field_name, "must not be negative")]
    return []


@dataclass(frozen=True)
class DosageDose:
    """One dose entry of a day. `clock_time` is set exactly when `time_kind` is CLOCK."""

    time_kind: TimeKind
    clock_time: time | None
    amount: Amount
    as_needed: bool = False

    def __post_init__(self) -> None:
        if (self.time_kind is TimeKind.CLOCK) != (self.clock_time is not None):
            raise InvalidArgument(
                [FieldViolation("clock_time", "is set exactly when time_kind is CLOCK")]
            )


@dataclass(frozen=True)
class DosageDay:
    """Day `day_number` of a period (1 = the start date); 0 means any day of the period."""

    day_number: int
    doses: tuple[DosageDose, ...]

    def __post_init__(self) -> None:
        if self.day_number < 0:
            raise InvalidArgument([FieldViolation("day_number", "must not be negative")])


@dataclass(frozen=True)
class DosagePeriod:
    """A period of a structured dosage; `end_date` is inclusive, None when undetermined.

    `iteration_interval_days` is 0 when the period is not iterated (each day happens once).
    No days means "do not give in this period".
    """

    start_date: date
    end_date: date | None = None
    iteration_interval_days: int = 0
    supplementary_text: str = ""
    days: tuple[DosageDay, ...] = ()

    def __post_init__(self) -> None:
        problems: list[FieldViolation] = []
        if self.end_date is not None and self.end_date < self.start_date:
            problems.append(FieldViolation("end_date", "is before start_date"))
        if self.iteration_interval_days < 0:
            problems.append(FieldViolation("iteration_interval_days", "must not be negative"))
        if problems:
            raise InvalidArgument(problems)

    @property
    def effective_interval(self) -> int:
        """The iteration interval, or 0 when the period is not (effectively) iterated."""
        interval = self.iteration_interval_days
        if self.end_date is not None and interval > (self.end_date - self.start_date).days + 1:
            return 0
        return interval

    def covers(self, on: date) -> bool:
        return self.start_date <= on and (self.end_date is None or on <= self.end_date)

    def day_number_on(self, on: date) -> int | None:
        """The number of the day (1, 2, ...) that falls on a date, None outside the period."""
        if not self.covers(on):
            return None
        offset = (on - self.start_date).days
        interval = self.effective_interval
        return (offset % interval if interval else offset) + 1

    @property
    def fixed_doses(self) -> tuple[DosageDose, ...]:
        return tuple(d for day in self.days for d in day.doses if not d.as_needed)

    @property
    def as_needed_doses(self) -> tuple[DosageDose, ...]:
        return tuple(d for day in self.days for d in day.doses if d.as_needed)

    @property
    def is_empty(self) -> bool:
        return not any(day.doses for day in self.days)

    @property
    def is_one_time(self) -> bool:
        """Not iterated, with exactly one fixed dose in all: a one-time dose."""
        return self.effective_interval == 0 and len(self.fixed_doses) == 1


@dataclass(frozen=True)
class StructuredDosage:
    """An FMK 1.4 structured dosage: one unit and a list of periods."""

    unit: DoseUnit
    periods: tuple[DosagePeriod, ...]

    def starting(self, start: date) -> StructuredDosage:
        """The same dosage moved to start on another date; periods keep their lengths and
        their distances from one another."""
        if not self.periods:
            return self
        shift = start - self.periods[0].start_date
        return StructuredDosage(self.unit, tuple(
            DosagePeriod(p.start_date + shift, p.end_date + shift if p.end_date else None,
                         p.iteration_interval_days, p.supplementary_text, p.days)
            for p in self.periods
        ))


@dataclass(frozen=True)
class FreeTextDosage:
    text: str


@dataclass(frozen=True)
class LocalSchemaDosage:
    """Given according to a schema in a local system (FMK's
    AdministrationAccordingToSchemaInLocalSystem)."""

    text: str = ""


@dataclass(frozen=True)
class PnAllowance:
    """What a PN (as-needed) dosage allows on a date. `max_per_day` None means no limit."""

    amount: Amount
    max_per_day: int | None
    period_index: int
    supplementary_text: str


# -- time keys: a dose's time within its day, as text --------------------------------------

_KIND_OF_KEY = {kind.value: kind for kind in NAMED_TIME_KINDS}  # a named kind's value is its key


def time_key(
    time_kind: TimeKind, clock_time: time | None = None, any_index: int = 0, any_count: int = 1
) -> str:
    """A dose's time within its day as text: "morning", "noon", "evening", "night", "HH:MM"
    (or "HH:MM:SS") for a clock time, "any-IofN" for the I-th (1-based) of N ANY-time doses.
    Equal keys mean equal local times on a given facility clock."""
    if time_kind is TimeKind.ANY:
        return f"any-{any_index + 1}of{any_count}"
    if time_kind is TimeKind.CLOCK:
        if clock_time is None:
            raise InvalidArgument([FieldViolation("clock_time", "is required for CLOCK")])
        return clock_time.isoformat("seconds" if clock_time.second else "minutes")
    return time_kind.value


def parse_time_key(key: str) -> tuple[TimeKind, time | None, int, int]:
    """(time_kind, clock_time, any_index, any_count) of a `time_key`."""
    kind = _KIND_OF_KEY.get(key)
    if kind is not None:
        return kind, None, 0, 1
    try:
        if key.startswith("any-"):
            index, count = key[4:].split("of")
            return TimeKind.ANY, None, int(index) - 1, int(count)
        return TimeKind.CLOCK, time.fromisoformat(key), 0, 1
    except ValueError:
        raise InvalidArgument([FieldViolation("time_key", "is not a dose time key")]) from None


# -- expansion -------------------------------------------------------------------------------

# One fixed dose of a day, ready to place: (dose, slot, time_key, any_index, any_count).
DaySlot = tuple[DosageDose, str, str, int, int]


# A period ready for date lookups: (index, period, first ordinal, last ordinal, interval),
# where the last ordinal is date.max's for an undetermined end and interval 0 means not
# iterated. A plain tuple: built for every order expanded.
_Span = tuple[int, DosagePeriod, int, int, int]
_FAR_FUTURE = date.max.toordinal()


def _span(index: int, period: DosagePeriod) -> _Span:
    end = period.end_date
    return (index, period, period.start_date.toordinal(),
            end.toordinal() if end is not None else _FAR_FUTURE, period.effective_interval)


def _ruling_spans(dosage: StructuredDosage, *, as_needed: bool) -> list[_Span]:
    """Spans of the periods that rule fixed (or PN) doses, in order of precedence."""
    periods = dosage.periods
    if len(periods) == 1:  # the common case: nothing to outrank
        return [_span(0, periods[0])]
    candidates = [(i, p) for i, p in enumerate(periods) if _rules(p, as_needed)]
    candidates.sort(key=lambda ip: (ip[1].start_date, ip[0]), reverse=True)
    return [_span(i, p) for i, p in candidates]


def _rules(period: DosagePeriod, as_needed: bool) -> bool:
    """Whether a period rules doses of a kind: it has some, or is empty."""
    kinds = {dose.as_needed for day in period.days for dose in day.doses}
    return not kinds or as_needed in kinds


def _ruling_on(spans: list[_Span], ordinal: int) -> tuple[_Span, int] | None:
    """The span ruling a date, with the number of the day that falls on it."""
    for span in spans:
        _, _, first, last, interval = span
        if first <= ordinal <= last:
            offset = ordinal - first
            return span, (offset % interval if interval else offset) + 1
    return None


def _doses_numbered(period: DosagePeriod, number: int) -> tuple[DosageDose, ...]:
    """The doses of the day with this number (days that repeat a number are merged)."""
    found: tuple[DosageDose, ...] = ()
    for day in period.days:
        if day.day_number == number:
            found += day.doses
    return found


_ANY = TimeKind.ANY
_CLOCK = TimeKind.CLOCK
_ANY_KEYS = tuple(tuple(time_key(_ANY, None, i, n) for i in range(n)) for n in range(25))


def day_slots(doses: tuple[DosageDose, ...]) -> list[DaySlot]:
    """A day's fixed doses with their slot labels and ANY-time places."""
    any_count = 0
    as_needed = False
    for dose in doses:
        if dose.as_needed:
            as_needed = True
        elif dose.time_kind is _ANY:
            any_count += 1
    fixed = [d for d in doses if not d.as_needed] if as_needed else doses
    any_keys = _ANY_KEYS[any_count] if any_count < len(_ANY_KEYS) else None
    slots: list[DaySlot] = []
    any_index = 0
    for dose in fixed:
        kind = dose.time_kind
        if kind is _ANY:
            key = (any_keys[any_index] if any_keys is not None
                   else time_key(kind, None, any_index, any_count))
            slots.append((dose, key, key, any_index, any_count))
            any_index += 1
        else:
            key = kind.value if kind is not _CLOCK else time_key(kind, dose.clock_time)
            slots.append((dose, key, key, 0, any_count or 1))
    if len(slots) - any_count > 1 and len({s[1] for s in slots}) < len(slots):
        slots = _apart(slots)  # ANY keys are unique; other times may repeat
    return slots


def _apart(slots: list[DaySlot]) -> list[DaySlot]:
    """The same time twice in a day: keep both, the later ones as "morning-2" and so on."""
    used: set[str] = set()
    result: list[DaySlot] = []
    for dose, _, key, index, count in slots:
        slot, n = key, 1
        while slot in used:
            n += 1
            slot = f"{key}-{n}"
        used.add(slot)
        result.append((dose, slot, key, index, count))
    return result


def fixed_days(
    dosage: StructuredDosage, first: date, last: date
) -> list[tuple[date, int, DosagePeriod, list[DaySlot]]]:
    """The local dates first..last (inclusive) that have fixed doses, each with the ruling
    period's index, the period and the day's fixed doses."""
    spans = _ruling_spans(dosage, as_needed=False)
    if not spans:
        return []
    if first == last:  # the common call: the day of a round
        found = _fixed_on(spans, first, first.toordinal())
        return [found] if found else []
    start = max(first.toordinal(), min(s[2] for s in spans))
    stop = min(last.toordinal(), max(s[3] for s in spans))
    days = (_fixed_on(spans, date.fromordinal(o), o) for o in range(start, stop + 1))
    return [day for day in days if day]


def _fixed_on(
    spans: list[_Span], on: date, ordinal: int
) -> tuple[date, int, DosagePeriod, list[DaySlot]] | None:
    ruling = _ruling_on(spans, ordinal)
    if ruling is None:
        return None
    span, number = ruling
    index, period = span[0], span[1]
    slots = day_slots(_doses_numbered(period, number))
    return (on, index, period, slots) if slots else None


def pn_allowance(dosage: StructuredDosage, on: date) -> PnAllowance | None:
    """What the dosage allows as needed on a local date, or None when nothing is allowed."""
    ruling = _ruling_on(_ruling_spans(dosage, as_needed=True), on.toordinal())
    if ruling is None:
        return None
    (index, period, _, _, _), number = ruling
    entries = [d for d in _doses_numbered(period, 0) + _doses_numbered(period, number)
               if d.as_needed]
    if not entries:
        return None
    return PnAllowance(
        amount=_covering_amount([e.amount for e in entries]),
        max_per_day=None if pn_unlimited(period) else len(entries),
        period_index=index,
        supplementary_text=period.supplementary_text,
    )


def pn_unlimited(period: DosagePeriod) -> bool:
    """FMK 1.4: a single PN entry in a period that is not iterated means no daily limit."""
    return period.effective_interval == 0 and len(period.as_needed_doses) == 1


def _covering_amount(amounts: list[Amount]) -> Amount:
    if all(a == amounts[0] for a in amounts):
        return amounts[0]
    return Amount(min_quantity=min(a.low for a in amounts),
                  max_quantity=max(a.high for a in amounts))


# FMK's three kinds of dosage (with a FHIR timing, an order's `orders.Dosage`).
FmkDosage: TypeAlias = StructuredDosage | FreeTextDosage | LocalSchemaDosage


def needs_manual_schedule(dosage: FmkDosage) -> Msg | None:
    """Why the dosage cannot be scheduled automatically (a catalogue message), or None
    when it can."""
    if isinstance(dosage, StructuredDosage):
        return _structural_problem(dosage)
    if isinstance(dosage, FreeTextDosage):
        return msg("schedule.free_text")
    return msg("schedule.local_schema")


def _structural_problem(dosage: StructuredDosage) -> Msg | None:
    if not dosage.periods:
        return msg("schedule.no_periods")
    for index, period in enumerate(dosage.periods, start=1):
        interval = period.iteration_interval_days  # the effective one is this or 0
        for day in period.days:
            number = day.day_number
            if interval and number > interval and period.effective_interval:
                return msg("schedule.day_beyond_cycle", period=index, day=number,
                           interval=interval)
            if number == 0:
                for dose in day.doses:
                    if not dose.as_needed:
                        return msg("schedule.any_day_fixed", period=index)
    return None
