"""Scheduling an order whose dosage is a FHIR Timing (the structured FMK path is
`schedule.schedule_order`). Same terms, same ids, same windows: only the expansion differs."""

from __future__ import annotations

from datetime import date

from medservice.domain.clock import FacilityClock
from medservice.domain.fhir_timing import TimingDosage, expand_timing, timing_problem
from medservice.domain.schedule import (
    OrderTerms,
    ScheduledDose,
    _inside_any,
    schedule_order,
    treatment_days,
)


def schedule_terms(terms: OrderTerms, clock: FacilityClock, first: date, last: date
                   ) -> list[ScheduledDose]:
    """The doses of one order version due on local dates first..last, whatever its kind."""
    if isinstance(terms.dosage, TimingDosage):
        return schedule_timing(terms, clock, first, last)
    return schedule_order(terms, clock, first, last)


def schedule_timing(terms: OrderTerms, clock: FacilityClock, first: date, last: date
                    ) -> list[ScheduledDose]:
    timing = terms.dosage
    assert isinstance(timing, TimingDosage)
    if timing.as_needed or timing_problem(timing, order_start=terms.treatment_start,
                                          first_dose_anchors=True):
        return []
    span = treatment_days(terms, first, last)
    if span is None:
        return []
    first, last = span
    excluded = terms.excluded_intervals()
    # A pause does not take away the open first dose (due at the valid time until given):
    # it is due again once the pause ends; meanwhile the round list hides it
    # (rounds.on_shift) and a record then is GIVEN_DURING_PAUSE.
    ending = terms.excluded_intervals(pauses=False)
    doses = []
    for slot in expand_timing(timing, clock, first, last, order_start=terms.treatment_start,
                              first_given=terms.first_given, first_due=terms.first_due,
                              first_due_until=terms.first_due_until):
        # The slot's own instant: clock.instant cannot tell the two 02:00s of autumn apart.
        due = slot.due_time
        if _inside_any(due, ending if slot.open_ended else excluded):
            continue
        if slot.one_time:
            start, end = None, None
        else:
            half = clock.half_width(terms.time_critical, slot.doses_that_day,
                                    terms.window_minutes)
            start, end = due - half, due + half
        doses.append(ScheduledDose(
            terms.resident_id, terms.order_id, slot.local_date, slot.slot, slot.local_time,
            slot.time_kind, due, start, end, slot.amount, timing.unit, "",
            terms.time_critical, slot.open_ended,
            terms.first_due_until if slot.open_ended else None))
    return doses
