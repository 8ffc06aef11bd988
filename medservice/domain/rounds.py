"""Round lists and dispensing lists of a shift, from residents and their order histories.

Pure: the caller loads the facility, its residents and every order version; these
functions decide what is due, what is allowed as needed, and what staff must be told.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum

from medservice.domain.administration import AdministrationRecord, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount, DoseUnit, StructuredDosage, pn_allowance
from medservice.domain.facility import Resident
from medservice.domain.orders import (
    DispensingMode,
    Drug,
    OrderContent,
    OrderState,
    OrderVersion,
    effective_content,
    latest_known,
    order_timeline,
)
from medservice.domain.schedule import OrderTerms, ScheduledDose
from medservice.domain.schedule_timing import schedule_terms

# A discontinuation this recent is still worth a note on the round list.
RECENT_DISCONTINUATION = timedelta(days=7)


def resident_key(facility_id: str, resident_id: str) -> str:
    """The resident's id in dose ids: unique across facilities (resident ids are not)."""
    return f"{facility_id}/{resident_id}"


def terms_pieces(versions: list[OrderVersion], known_at: datetime | None
                 ) -> list[tuple[OrderContent, OrderTerms]]:
    """The order as known at `known_at`, cut into valid-time pieces, each with the terms
    that schedule it: the piece's content with the pauses and discontinuation known."""
    latest = latest_known(versions, known_at)
    if latest is None:
        return []
    pieces = []
    for piece in order_timeline(versions, known_at):
        v = piece.version
        if v.removed:
            continue
        content = effective_content(v, latest)
        pieces.append((content, OrderTerms(
            resident_id=resident_key(v.facility_id, v.resident_id),
            order_id=v.order_id,
            dosage=content.dosage,
            treatment_start=content.treatment_start,
            treatment_end=content.treatment_end,
            pauses=tuple((p.start, p.end) for p in content.pauses),
            discontinued_at=content.discontinued_at,
            time_critical=content.time_critical,
            window_minutes=content.window_minutes,
            valid_from=piece.start,
            valid_until=piece.end,
        )))
    return pieces


DoseWithOrder = tuple[ScheduledDose, OrderContent]
Pieces = list[tuple[OrderContent, OrderTerms]]


def doses_between(versions: list[OrderVersion], clock: FacilityClock, start: datetime,
                  end: datetime, known_at: datetime | None) -> list[DoseWithOrder]:
    """The order's doses due in [start, end), each with the order content it was
    scheduled from: as ordered at its time."""
    return _doses_in(terms_pieces(versions, known_at), clock, start, end)


def doses_on_dates(versions: list[OrderVersion], clock: FacilityClock, first: date,
                   last: date, known_at: datetime | None) -> list[DoseWithOrder]:
    """The order's doses due on local dates first..last, each with its content, ordered
    by (due time, dose id): what `doses_between` keeps those in its range of (its first
    and last dates are those of its range's ends). Lets a caller keep the result."""
    doses = []
    for content, terms in terms_pieces(versions, known_at):
        doses += [(d, content) for d in schedule_terms(terms, clock, first, last)]
    doses.sort(key=lambda pair: (pair[0].due_time, pair[0].dose_id))
    return doses


def _doses_in(pieces: Pieces, clock: FacilityClock, start: datetime, end: datetime
              ) -> list[DoseWithOrder]:
    first, last = clock.local_date_of(start), clock.local_date_of(end - timedelta(microseconds=1))
    doses = []
    for content, terms in pieces:
        doses += [(d, content) for d in schedule_terms(terms, clock, first, last)
                  if start <= d.due_time < end]
    doses.sort(key=lambda pair: (pair[0].due_time, pair[0].dose_id))
    return doses


class NoteKind(Enum):
    PAUSED = "paused"
    DISCONTINUED = "discontinued"
    NEEDS_MANUAL_SCHEDULE = "needs_manual_schedule"


@dataclass(frozen=True)
class OrderNote:
    order_id: str
    drug: Drug
    kind: NoteKind
    text: str


@dataclass(frozen=True)
class PnLine:
    """A PN allowance on the shift's date. doses_left is what the shift may still give."""

    order_id: str
    drug: Drug
    unit: DoseUnit
    amount: Amount
    max_per_day: int | None
    doses_left: int | None
    last_given: datetime | None = None


# Given a resident id and a PN line, the line with what was already used of it.
PnGiven = Callable[[str, PnLine], PnLine]


def pn_used(records: Iterable[AdministrationRecord], at: datetime, day_start: datetime
            ) -> PnGiven:
    """A PnGiven over `records`: the PN doses given of each order in [day_start, at) (the
    facility's PN day: the last 24 hours, or the calendar day) reduce its doses left."""
    given: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in records:
        if (r.active and r.outcome is Outcome.PN_GIVEN and r.order_id
                and day_start <= r.administered_at < at):
            given[(r.resident_id, r.order_id)].append(r.administered_at)

    def apply(resident_id: str, line: PnLine) -> PnLine:
        times = given.get((resident_id, line.order_id), [])
        left = None if line.max_per_day is None else max(0, line.max_per_day - len(times))
        return dataclasses.replace(line, doses_left=left, last_given=max(times, default=None))

    return apply


@dataclass
class ResidentRound:
    resident: Resident
    doses: list[DoseWithOrder] = field(default_factory=list)
    pn: list[PnLine] = field(default_factory=list)
    notes: list[OrderNote] = field(default_factory=list)


@dataclass
class ShiftSchedule:
    facility_id: str
    shift_date: date
    shift_id: str
    start: datetime
    end: datetime
    residents: list[ResidentRound]


def _notes_and_pn(content: OrderContent, order_id: str, clock: FacilityClock,
                  shift_date: date, start: datetime, end: datetime) -> tuple[
                      list[OrderNote], PnLine | None]:
    notes: list[OrderNote] = []
    state = content.state_at(start, shift_date)
    if content.discontinued_at is not None and \
            start - RECENT_DISCONTINUATION <= content.discontinued_at < end:
        local = clock.local(content.discontinued_at).strftime("%Y-%m-%d %H:%M")
        notes.append(OrderNote(order_id, content.drug, NoteKind.DISCONTINUED,
                               f"discontinued {local}: do not give"))
    elif state is OrderState.PAUSED or any(
            p.start is not None and start <= p.start < end for p in content.pauses):
        notes.append(OrderNote(order_id, content.drug, NoteKind.PAUSED,
                               "paused: doses inside the pause are not due"))
    reason = content.manual_schedule_reason
    if reason is not None and state in (OrderState.ACTIVE, OrderState.PAUSED):
        notes.append(OrderNote(order_id, content.drug, NoteKind.NEEDS_MANUAL_SCHEDULE,
                               f"needs a manual schedule: {reason}"))
    pn = None
    if isinstance(content.dosage, StructuredDosage) and state is OrderState.ACTIVE:
        allowance = pn_allowance(content.dosage, shift_date)
        if allowance is not None:
            pn = PnLine(order_id, content.drug, content.dosage.unit,
                        allowance.amount,
                        allowance.max_per_day, allowance.max_per_day)
    return notes, pn


def build_shift_schedule(facility_id: str, clock: FacilityClock, shift_date: date,
                         shift_id: str, residents: list[Resident],
                         versions: dict[str, dict[str, list[OrderVersion]]],
                         known_at: datetime, *, pn_given: PnGiven | None = None
                         ) -> ShiftSchedule:
    """The round list: residents in the given (room) order, each with the doses due in the
    shift as ordered at their time, PN allowances (less what `pn_given` says was used)
    and notes. `versions` maps resident id -> order id -> the order's versions."""
    start, end = clock.shift_interval(shift_date, shift_id)
    rounds = []
    for resident in residents:
        entry = ResidentRound(resident)
        for order_id, history in sorted(versions.get(resident.resident_id, {}).items()):
            pieces = terms_pieces(history, known_at)
            content = _content_at(pieces, start, end)
            if content is None:
                continue
            entry.doses += _doses_in(pieces, clock, start, end)
            notes, pn = _notes_and_pn(content, order_id, clock, shift_date, start, end)
            entry.notes += notes
            if pn is not None and pn_given is not None:
                pn = pn_given(resident.resident_id, pn)
            if pn is not None:
                entry.pn.append(pn)
        entry.doses.sort(key=lambda pair: (pair[0].due_time, pair[1].drug.name.lower()))
        rounds.append(entry)
    return ShiftSchedule(facility_id, shift_date, shift_id, start, end, rounds)


def _content_at(pieces: Pieces, start: datetime, end: datetime) -> OrderContent | None:
    """The content in force at `start`, or failing that the first in force before `end`."""
    for content, terms in pieces:
        if (terms.valid_from is None or terms.valid_from <= start) and (
                terms.valid_until is None or start < terms.valid_until):
            return content
    for content, terms in pieces:
        if terms.valid_from is not None and start <= terms.valid_from < end:
            return content
    return None


@dataclass(frozen=True)
class DispensingItem:
    order_id: str
    drug: Drug
    unit: DoseUnit
    total: Decimal
    dose_count: int
    times: tuple[str, ...]
    mode: DispensingMode
    includes_range: bool


@dataclass(frozen=True)
class ResidentDispensing:
    resident: Resident
    pharmacy_dispensed: list[DispensingItem]
    staff_poured: list[DispensingItem]


def dispensing_list(schedule: ShiftSchedule) -> list[ResidentDispensing]:
    """What to prepare: per resident and drug, the shift's doses summed. A range dose is
    prepared at its maximum (and flagged), so that what is prepared always suffices."""
    out = []
    for entry in schedule.residents:
        by_order: dict[str, list[DoseWithOrder]] = defaultdict(list)
        for dose, content in entry.doses:
            by_order[dose.order_id].append((dose, content))
        items = []
        for order_id, pairs in by_order.items():
            content = pairs[0][1]
            items.append(DispensingItem(
                order_id, content.drug, pairs[0][0].unit,
                sum((d.amount.high for d, _ in pairs), Decimal(0)), len(pairs),
                tuple(d.local_time.strftime("%H:%M") for d, _ in pairs),
                content.dispensing_mode, any(d.amount.is_range for d, _ in pairs)))
        items.sort(key=lambda i: (i.drug.name.lower(), i.order_id))
        out.append(ResidentDispensing(
            entry.resident,
            [i for i in items if i.mode is DispensingMode.DOSE_DISPENSED],
            [i for i in items if i.mode is DispensingMode.STAFF_POURED]))
    return out
