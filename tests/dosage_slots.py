"""Test helper: a structured dosage's fixed doses on local dates, one record each, for the
dosage tests to assert on (production schedules through `dosage.fixed_days` and
`schedule.schedule_order`, which these are read from)."""

from __future__ import annotations

from datetime import date, time
from typing import NamedTuple

from medservice.domain.dosage import Amount, StructuredDosage, TimeKind, fixed_days


class DueDoseSlot(NamedTuple):
    """A fixed dose due on a local date (a NamedTuple: built by the hundred thousand).

    `slot` labels the dose within its day, stable for a given structure, for stable dose
    ids; it is the dose's `time_key` (see `time_key`), told apart from an earlier dose of
    the day with the same time by a suffix ("morning-2"). `any_index`/`any_count` place an
    ANY-time dose among the day's ANY-time fixed doses (0 and 1 for other kinds).
    `doses_that_day` counts the day's fixed doses.
    """

    local_date: date
    time_kind: TimeKind
    clock_time: time | None
    amount: Amount
    slot: str
    period_index: int
    supplementary_text: str
    doses_that_day: int
    any_index: int
    any_count: int
    time_key: str


def expand_dosage(dosage: StructuredDosage, first: date, last: date) -> list[DueDoseSlot]:
    """The fixed (non-PN) doses due on local dates first..last inclusive, in date order.

    Expands what the structure places on dates; check `needs_manual_schedule` first, since
    an unexpandable part (a fixed dose on "any day") is left out here."""
    due = []
    for on, index, period, slots in fixed_days(dosage, first, last):
        text, count = period.supplementary_text, len(slots)
        for dose, slot, key, any_index, any_count in slots:
            due.append(DueDoseSlot(on, dose.time_kind, dose.clock_time, dose.amount, slot,
                                   index, text, count, any_index, any_count, key))
    return due
