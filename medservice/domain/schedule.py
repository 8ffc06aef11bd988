"""Scheduled doses: one order's dosage placed on the facility clock (DOMAIN.md §2, §5, §6).

`schedule_order` yields the doses an order version makes due in a range of local dates.
A dose is left out when it falls before the treatment start or after its end, inside a
pause, at or after the discontinuation, or outside the version's validity. A dosage that
needs a manual schedule (see `needs_manual_schedule`) yields no doses at all: scheduling a
part of it would look complete when it is not; the caller flags the order instead.

Dose ids are uuid5 of "resident/order/local date/slot" under a fixed namespace, so the
same dose gets the same id from any call, process or replica, and keeps it across order
versions that keep the dose. A ScheduledDose carries the slot and derives its id on
access: expanding a national day then does not hash ~400,000 names that only the doses
someone stores or reports need. A KeptDose keeps its id once derived.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import NamedTuple

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    Amount,
    DaySlot,
    DosagePeriod,
    DoseUnit,
    StructuredDosage,
    TimeKind,
    fixed_days,
    needs_manual_schedule,
)
from medservice.domain.orders import Dosage

# Never change: stored dose ids are derived from it.
DOSE_ID_NAMESPACE = uuid.UUID("6f1d8a52-3c1e-5b0e-9d44-7d2b5e0c9a31")

Interval = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class OrderTerms:
    """What one order version says about when its doses are due.

    `treatment_end` is inclusive. `pauses` are UTC [start, end) intervals; a None start
    means from the beginning, a None end open-ended. The version applies to doses due in
    [valid_from, valid_until); either bound may be None (unbounded).
    """

    resident_id: str
    order_id: str
    dosage: Dosage
    treatment_start: date | None = None
    treatment_end: date | None = None
    pauses: tuple[Interval, ...] = ()
    discontinued_at: datetime | None = None
    time_critical: bool = False
    window_minutes: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # A course that begins at its first administration (fhir_timing.awaits_first_dose):
    # when the order came into the mirror (its first dose is due from then) and when that
    # dose was given; where the run of versions that wait for that dose ends (None: still
    # waiting), so its open span ends there (fhir_timing.open_span_end).
    first_due: datetime | None = None
    first_given: datetime | None = None
    first_due_until: datetime | None = None

    def excluded_intervals(self, *, pauses: bool = True) -> list[Interval]:
        """Every UTC interval in which this version makes no dose due; `pauses` False
        leaves the pauses out (the discontinuation and the version's valid time only)."""
        excluded = list(self.pauses) if pauses else []
        if self.discontinued_at is not None:
            excluded.append((self.discontinued_at, None))
        if self.valid_from is not None:
            excluded.append((None, self.valid_from))
        if self.valid_until is not None:
            excluded.append((self.valid_until, None))
        return excluded


class ScheduledDose(NamedTuple):
    """A dose due at a time (immutable; a NamedTuple because a national day is ~400,000).

    `slot` labels the dose within its order's day ("morning", "12:30", "any-1of3"); with
    resident, order and local date it identifies the dose, and `dose_id` is derived from
    them. `window_start`/`window_end` are None for a one-time dose. `open_ended`: due from
    `due_time` until given (`administration.settles_dose`), never closed by time alone,
    so never missed (the first dose of a course that begins at its first administration;
    see `fhir_timing.open_span_end`). `open_until`: where an open-ended dose's order
    stopped waiting for it (the end of the run of versions that do), None while it waits.
    """

    resident_id: str
    order_id: str
    local_date: date
    slot: str
    local_time: time
    time_kind: TimeKind
    due_time: datetime
    window_start: datetime | None
    window_end: datetime | None
    amount: Amount
    unit: DoseUnit
    supplementary_text: str
    time_critical: bool
    open_ended: bool = False
    open_until: datetime | None = None

    @property
    def dose_id(self) -> str:
        """The dose's stable id (see `dose_id`)."""
        return dose_id(self.resident_id, self.order_id, self.local_date, self.slot)


class KeptDose(ScheduledDose):
    """A ScheduledDose that derives its id once, on first access, and keeps it: for doses
    kept between calls (service.round_context), whose ids every check reads again."""

    @functools.cached_property
    def dose_id(self) -> str:
        return dose_id(self.resident_id, self.order_id, self.local_date, self.slot)

    @classmethod
    def of(cls, dose: ScheduledDose) -> KeptDose:
        return tuple.__new__(cls, dose)


_NAMESPACE_BYTES = DOSE_ID_NAMESPACE.bytes
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))


def dose_id(resident_id: str, order_id: str, local_date: date, slot: str) -> str:
    """The stable id of a scheduled dose: uuid5(DOSE_ID_NAMESPACE,
    "resident/order/YYYY-MM-DD/slot") in its canonical text form.

    Computed as uuid.uuid5 does (SHA-1 of namespace bytes and name, version 5, RFC 4122
    variant) without building UUID objects, which costs four times as much."""
    name = f"{resident_id}/{order_id}/{local_date.isoformat()}/{slot}"
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def treatment_days(terms: OrderTerms, first: date, last: date) -> tuple[date, date] | None:
    """Local dates first..last narrowed to the treatment period (both ends inclusive), or
    None when none is left: no dose is due outside it (`orders.outside_treatment`)."""
    if terms.treatment_start is not None and terms.treatment_start > first:
        first = terms.treatment_start
    if terms.treatment_end is not None and terms.treatment_end < last:
        last = terms.treatment_end
    return (first, last) if first <= last else None


def schedule_order(
    terms: OrderTerms, clock: FacilityClock, first: date, last: date
) -> list[ScheduledDose]:
    """The doses of one order version due on local dates first..last (inclusive)."""
    dosage = terms.dosage
    if not isinstance(dosage, StructuredDosage) or needs_manual_schedule(dosage) is not None:
        return []
    span = treatment_days(terms, first, last)
    if span is None:
        return []
    days = fixed_days(dosage, *span)
    if not days:
        return []
    return _place(terms, dosage, clock, days)


def _place(
    terms: OrderTerms,
    dosage: StructuredDosage,
    clock: FacilityClock,
    days: list[tuple[date, int, DosagePeriod, list[DaySlot]]],
) -> list[ScheduledDose]:
    """Scheduled doses of the fixed days of an order: on the clock, filtered, windowed.

    Written for speed (hundreds of thousands of doses a day): locals, no helper objects."""
    excluded = terms.excluded_intervals() if _may_exclude(terms) else None
    resident_id, order_id, critical = terms.resident_id, terms.order_id, terms.time_critical
    daily = clock.half_width(critical, 1, terms.window_minutes)
    often = clock.half_width(critical, 2, terms.window_minutes)
    unit = dosage.unit
    new = tuple.__new__  # NamedTuple's own constructor, minus the argument shuffling
    doses: list[ScheduledDose] = []
    for on, _, period, slots in days:
        text = period.supplementary_text
        half = often if len(slots) > 1 else daily
        one_time = period.iteration_interval_days == 0 and period.is_one_time
        for dose, slot, key, _, _ in slots:
            local_time, due = clock.dose_time(on, key)
            if excluded and _inside_any(due, excluded):
                continue
            if one_time:
                start = end = None
            else:
                start, end = due - half, due + half
            doses.append(new(ScheduledDose, (
                resident_id, order_id, on, slot, local_time, dose.time_kind, due, start, end,
                dose.amount, unit, text, critical, False, None,
            )))
    return doses


def _may_exclude(terms: OrderTerms) -> bool:
    return bool(terms.pauses or terms.discontinued_at or terms.valid_from or terms.valid_until)


def _inside_any(instant: datetime, intervals: list[Interval]) -> bool:
    for start, end in intervals:
        if (start is None or start <= instant) and (end is None or instant < end):
            return True
    return False
