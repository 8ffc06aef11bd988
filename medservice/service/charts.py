"""The administration chart (medicinskema, MAR) of one resident and month: what the paper
chart shows, from the same placement of records the round list, the check and
reconciliation use (`rounds.resident_states` -> `reconcile.status`), so a dose the round
list calls missed is missed on the chart too. Rendering is `medservice.reports.mar`.

- One row per order, time slot and quantity (a tapering dose gets a row per step, as on
  paper), one cell per local day holding the dose's state as of now: given (and by whom),
  not given (and why), missed, not documented (due before the mirror knew the order) or
  still due; each record on the dose marked entered-in-error comes first, struck.
- PN administrations and records on no scheduled dose (extra doses, unordered drugs) are
  listed with their times; so is every record entered in error, with why.
- Notes say why a row has no dose on some days: a pause that overlaps the month, a
  discontinuation or a treatment end within it (the order as known now).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum

from medservice.domain.administration import AdministrationRecord, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount, DoseUnit
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import DispensingMode, Drug, OrderContent, OrderVersion
from medservice.domain.rounds import DoseStatus
from medservice.service.facilities import get_resident
from medservice.service.round_context import resident_orders
from medservice.service.rounds import resident_states
from medservice.service.unit_of_work import UnitOfWork

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(value: str, field_name: str) -> date:
    """"2026-03" -> 2026-03-01; anything else a field error."""
    m = _MONTH.match(value)
    if m is None:
        raise InvalidArgument([FieldViolation(field_name, "must be a month YYYY-MM")])
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_days(month: date) -> list[date]:
    return [month.replace(day=d) for d in range(1, calendar.monthrange(month.year,
                                                                        month.month)[1] + 1)]


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


class Mark(Enum):
    """What a chart cell says about a dose (DoseStatus, plus a record entered in error)."""

    GIVEN = "given"
    NOT_GIVEN = "not_given"
    MISSED = "missed"
    NOT_DOCUMENTED = "not_documented"
    DUE = "due"
    ENTERED_IN_ERROR = "entered_in_error"


_MARK_OF = {DoseStatus.GIVEN: Mark.GIVEN, DoseStatus.NOT_GIVEN: Mark.NOT_GIVEN,
            DoseStatus.MISSED: Mark.MISSED, DoseStatus.NOT_DOCUMENTED: Mark.NOT_DOCUMENTED,
            DoseStatus.DUE: Mark.DUE}


@dataclass(frozen=True)
class ChartCell:
    mark: Mark
    record: AdministrationRecord | None = None


@dataclass
class ChartRow:
    """One order at one time of day and quantity; `cells` by local date."""

    order_id: str
    drug: Drug
    route: str
    time: time  # the wall-clock time of its first dose in the month
    amount: Amount
    unit: DoseUnit
    mode: DispensingMode
    time_critical: bool
    cells: dict[date, list[ChartCell]] = field(default_factory=dict)


@dataclass(frozen=True)
class ChartEntry:
    """A record on no scheduled dose (a PN dose, `as_needed`, or an unplanned one), or
    one entered in error (with its reason; on a dose, its cell shows it struck too)."""

    record: AdministrationRecord
    drug: Drug
    as_needed: bool
    local: datetime  # facility-local administration time


class NoteKind(Enum):
    PAUSED = "paused"
    DISCONTINUED = "discontinued"
    ENDED = "ended"  # the treatment's last day


@dataclass(frozen=True)
class ChartNote:
    """A change to an order in the month, in facility-local time: a pause [start, end)
    (None end: until further notice; a start before the month stays as it is), a
    discontinuation at `start`, or a treatment ending on `start`'s date."""

    order_id: str
    drug: Drug
    kind: NoteKind
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class AdministrationChart:
    facility: Facility
    resident: Resident
    month: date  # its first day
    days: list[date]
    rows: list[ChartRow]
    entries: list[ChartEntry]  # by administration time
    as_of: datetime  # facility-local: the states are as of then
    notes: list[ChartNote] = field(default_factory=list)  # by start


def administration_chart(uow: UnitOfWork, facility_id: str, resident_id: str, month: date,
                         now: datetime) -> AdministrationChart:
    """The chart of `resident_id` for the local calendar month starting `month`, as of
    `now` (NOT_FOUND for an unknown facility or resident, in that order)."""
    base = resident_orders(uow, facility_id, resident_id)
    resident = get_resident(uow, facility_id, resident_id)
    clock = base.rules.clock
    days = month_days(month)
    start, end = clock.instant(month, time(0)), clock.instant(next_month(month), time(0))
    ledger = resident_states(uow, facility_id, resident_id, base.orders, base.rules, start,
                             end, now)
    corrected: dict[str, list[AdministrationRecord]] = defaultdict(list)
    for r in sorted(ledger.records, key=lambda r: (r.administered_at, r.record_id)):
        if r.entered_in_error and r.dose_id:
            corrected[r.dose_id].append(r)
    rows: dict[tuple[str, str, Amount], ChartRow] = {}
    for dose, content in ledger.doses:
        if not start <= dose.due_time < end:
            continue
        key = (dose.order_id, dose.slot, dose.amount)
        row = rows.get(key)
        if row is None:
            row = rows[key] = ChartRow(dose.order_id, content.drug, content.route,
                                       dose.local_time, dose.amount, dose.unit,
                                       content.dispensing_mode, dose.time_critical)
        state = ledger.states[dose.dose_id]
        cells = row.cells.setdefault(dose.local_date, [])
        cells += [ChartCell(Mark.ENTERED_IN_ERROR, r) for r in corrected[dose.dose_id]]
        cells.append(ChartCell(_MARK_OF[state.status], state.record))
    def drug_of(r: AdministrationRecord, placed: OrderContent | None = None) -> Drug:
        if placed is not None:
            return placed.drug
        versions = base.orders.get(r.order_id or "")
        return versions[-1].content.drug if versions else Drug(r.drug_id, r.drug_id)

    entries = []
    for p in ledger.placements:
        r = p.record
        if p.due is None and start <= r.administered_at < end:
            entries.append(ChartEntry(r, drug_of(r, p.content), p.pn is not None,
                                      clock.local(r.administered_at)))
    for r in ledger.records:  # struck records: listed with why, never hidden
        if r.entered_in_error and start <= r.administered_at < end:
            entries.append(ChartEntry(r, drug_of(r), r.outcome is Outcome.PN_GIVEN,
                                      clock.local(r.administered_at)))
    entries.sort(key=lambda e: (e.record.administered_at, e.record.record_id))
    ordered = sorted(rows.values(), key=lambda r: (r.drug.name.lower(), r.order_id,
                                                   r.time, min(r.cells)))
    notes = [n for history in base.orders.values()
             for n in _notes(history, start, end, now, clock)]
    notes.sort(key=lambda n: (n.start, n.drug.name.lower(), n.order_id))
    return AdministrationChart(base.facility, resident, month, days, ordered, entries,
                               clock.local(now), notes)


def _notes(history: list[OrderVersion], start: datetime, end: datetime, now: datetime,
           clock: FacilityClock) -> list[ChartNote]:
    """The order's pauses, discontinuation and treatment end that touch [start, end), as
    the latest version known at `now` says."""
    known = [v for v in history if v.recorded_at <= now]
    if not known or known[-1].removed:
        return []
    c = known[-1].content
    notes = []
    for p in c.pauses:
        p_start = p.start if p.start is not None else known[-1].valid_from
        if p_start < end and (p.end is None or start < p.end):
            notes.append(ChartNote(c.order_id, c.drug, NoteKind.PAUSED, clock.local(p_start),
                                   clock.local(p.end) if p.end is not None else None))
    if c.discontinued_at is not None and start <= c.discontinued_at < end:
        notes.append(ChartNote(c.order_id, c.drug, NoteKind.DISCONTINUED,
                               clock.local(c.discontinued_at)))
    if c.treatment_end is not None and start <= clock.instant(c.treatment_end, time(0)) < end:
        notes.append(ChartNote(c.order_id, c.drug, NoteKind.ENDED,
                               clock.local(clock.instant(c.treatment_end, time(0)))))
    return notes
