"""Round lists and dispensing lists of a shift, from residents and their order histories.

Pure: the caller loads the facility, its residents and every order version; these
functions decide what is due, what is allowed as needed, and what staff must be told.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from medservice.domain.administration import AdministrationRecord
from medservice.domain.card_changes import PendingChange
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import DoseUnit, StructuredDosage
from medservice.domain.facility import Resident
from medservice.domain.fhir_timing import (
    TimingDosage,
    awaits_first_dose,
    given_in_open_span,
    open_span_end,
)
from medservice.domain.orders import (
    DispensingMode,
    Drug,
    OrderContent,
    OrderState,
    OrderVersion,
    effective_content,
    latest_known,
    not_to_give,
    order_state,
    order_timeline,
    treatment_dates,
)
from medservice.domain.pn import PnTerms, pn_terms
from medservice.domain.schedule import OrderTerms, ScheduledDose
from medservice.domain.schedule_timing import schedule_terms
from medservice.i18n import DEFAULT_LANGUAGE, Msg, msg

# A discontinuation or a treatment end this recent is still worth a note on the round list.
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
    # When the course that waits for its first dose came into the mirror: the start of the
    # run of versions, up to this one, whose dosage waits so (an order changed from fixed
    # times to "every 6 hours" waits from the change, not from its first version).
    first_due: datetime | None = None
    for piece in order_timeline(versions, known_at):
        v = piece.version
        if v.removed:
            continue
        content = effective_content(v, latest)
        first_due = (first_due or piece.start) if _waits(content) else None
        pieces.append((content, OrderTerms(
            resident_id=resident_key(v.facility_id, v.resident_id),
            order_id=v.order_id,
            dosage=content.dosage,
            # "Started previously" has no start to clamp to (orders.treatment_dates).
            treatment_start=treatment_dates(content)[0],
            treatment_end=content.treatment_end,
            pauses=tuple((p.start, p.end) for p in content.pauses),
            discontinued_at=content.discontinued_at,
            time_critical=content.time_critical,
            window_minutes=content.window_minutes,
            valid_from=piece.start,
            valid_until=piece.end,
            first_due=first_due,
            first_given=content.first_given_at,
        )))
    return _run_ends(pieces)


def _run_ends(pieces: Pieces) -> Pieces:
    """The pieces, each of a run of versions that wait for a first dose knowing where that
    run ends (`OrderTerms.first_due_until`: the valid_until of its last piece; None while
    it runs on): an order changed to fixed times, or given a start, before its first dose
    no longer has that dose due after the change (`fhir_timing.open_span_end`)."""
    out: Pieces = []
    until: datetime | None = None
    waiting_after = False  # whether the next (later) piece waits too
    for content, terms in reversed(pieces):
        if terms.first_due is None:
            waiting_after = False
            out.append((content, terms))
            continue
        if not waiting_after:
            until = terms.valid_until
        waiting_after = True
        out.append((content, replace(terms, first_due_until=until)))
    out.reverse()
    return out


def _waits(content: OrderContent) -> bool:
    """Whether the order's course begins at its first administration."""
    dosage = content.dosage
    return isinstance(dosage, TimingDosage) and awaits_first_dose(
        dosage, order_start=treatment_dates(content)[0])


class DoseWithOrder(NamedTuple):
    """A scheduled dose and the order content it was scheduled from: the order as it was
    at the dose's time (what a record on it is judged against)."""

    dose: ScheduledDose
    content: OrderContent
Pieces = list[tuple[OrderContent, OrderTerms]]


def open_span_meets(dose: ScheduledDose, content: OrderContent, start: datetime,
                    end: datetime) -> bool:
    """Whether an open-ended dose (ScheduledDose.open_ended: the first dose of a course
    that begins at its first administration) is due at some time in [start, end): it is
    due from its due time until given (the order's anchor, `first_given_at`), so it
    belongs to every range that span meets, not only to the one holding its due time. A
    record on it days later is then placed on it, by any path that reads the range."""
    if not dose.open_ended or dose.due_time >= end:
        return False
    given = content.first_given_at
    ends = open_span_end(dose.due_time, given, dose.open_until)
    if ends is None:
        return True
    # Given: due up to that instant; stopped waiting: the new version applies from then.
    return start <= ends if given_in_open_span(dose.due_time, given, dose.open_until) \
        else start < ends


def due_in(pair: DoseWithOrder, start: datetime, end: datetime) -> bool:
    """Whether a dose is due in [start, end): its due time is in it, or it is open-ended
    and open then (`open_span_meets`)."""
    d = pair.dose
    return start <= d.due_time < end or open_span_meets(d, pair.content, start, end)


def on_shift(pair: DoseWithOrder, start: datetime, end: datetime, now: datetime,
             clock: FacilityClock) -> bool:
    """Whether a dose is on the round list of the shift [start, end) as seen at `now`:
    its due time is in the shift. An open-ended dose is on one list at a time: until
    given, the current shift's (the one holding `now`; its own shift's while its time is
    still to come), every shift, as long as its order says to give then (not
    discontinued, paused or ended: then it is on none, and never missed); once given, the
    list of the shift it was given in. Once its order stopped waiting for it (changed to
    fixed times before it was given: `ScheduledDose.open_until`), on no list after that."""
    d = pair.dose
    if not d.open_ended:
        return start <= d.due_time < end
    given = pair.content.first_given_at
    ends = open_span_end(d.due_time, given, d.open_until)
    if given_in_open_span(d.due_time, given, d.open_until):
        assert ends is not None  # given: on the list of the shift it was given in
        return start <= ends < end
    at = max(now, d.due_time)
    return (start <= at < end and (ends is None or at < ends)
            and not not_to_give(pair.content, at, clock))


def doses_between(versions: list[OrderVersion], clock: FacilityClock, start: datetime,
                  end: datetime, known_at: datetime | None) -> list[DoseWithOrder]:
    """The order's doses due in [start, end) (`due_in`: an open-ended dose while it is
    open), each with the order content it was scheduled from: as ordered at its time."""
    return _doses_in(terms_pieces(versions, known_at), clock, start, end)


def doses_on_dates(versions: list[OrderVersion], clock: FacilityClock, first: date,
                   last: date, known_at: datetime | None) -> list[DoseWithOrder]:
    """The order's doses due on local dates first..last, each with its content, ordered
    by (due time, dose id): what `doses_between` keeps those in its range of (its first
    and last dates are those of its range's ends). Lets a caller keep the result."""
    doses = []
    for content, terms in terms_pieces(versions, known_at):
        doses += [DoseWithOrder(d, content) for d in schedule_terms(terms, clock, first, last)]
    doses.sort(key=lambda pair: (pair.dose.due_time, pair.dose.dose_id))
    return doses


# How far either side of a check's time a dose id is still told apart as one of the
# resident's doses (an id from a list or chart of the past or coming month): an id that
# names no dose of the resident's orders in that reach is one the service never gave out.
DOSE_ID_REACH = timedelta(days=31)


def resident_dose(histories: Iterable[list[OrderVersion]], clock: FacilityClock,
                  dose_id: str, first: date, last: date, known_at: datetime | None
                  ) -> ScheduledDose | None:
    """The dose `dose_id` names if some version of these orders (one resident's) schedules
    it on local dates first..last, before any pause, discontinuation or later version took
    it away: a real dose, due or not. None: an id never scheduled for the resident
    (mistyped, invented, or another resident's)."""
    for versions in histories:
        for _, terms in terms_pieces(list(versions), known_at):
            whole = replace(terms, pauses=(), discontinued_at=None, valid_from=None,
                            valid_until=None)
            for d in schedule_terms(whole, clock, first, last):
                if d.dose_id == dose_id:
                    return d
    return None


def _doses_in(pieces: Pieces, clock: FacilityClock, start: datetime, end: datetime
              ) -> list[DoseWithOrder]:
    first, last = clock.local_date_of(start), clock.local_date_of(end - timedelta(microseconds=1))
    doses = []
    for content, terms in pieces:
        doses += [pair for d in schedule_terms(terms, clock, first, last)
                  if due_in(pair := DoseWithOrder(d, content), start, end)]
    doses.sort(key=lambda pair: (pair.dose.due_time, pair.dose.dose_id))
    return doses


class NoteKind(Enum):
    PAUSED = "paused"
    DISCONTINUED = "discontinued"
    NEEDS_MANUAL_SCHEDULE = "needs_manual_schedule"
    ENDED = "ended"
    # A finding of the inspection checks of the medicine card (domain/card_checks.py).
    CARD_CHECK = "card_check"
    CHANGE_NOT_APPROVED = "change_not_approved"  # a clinical card change to approve


@dataclass(frozen=True)
class OrderNote:
    order_id: str
    drug: Drug
    kind: NoteKind
    # A message, rendered in the caller's or the facility's language at the edge (a plain
    # text is shown as it is).
    text: Msg | str


@dataclass(frozen=True)
class PnLine:
    """A PN allowance on the round list: the order's PN terms on the shift's date, and what
    is used of them now (`given` in the period, `doses_left` of the count limit, None when
    there is none), filled in from the ledger (`reconcile.ledger.pn_use`)."""

    order_id: str
    drug: Drug
    unit: DoseUnit
    content: OrderContent
    terms: PnTerms
    given: int = 0
    doses_left: int | None = None
    last_given: datetime | None = None
    period: Msg | None = None  # what the count limit counts over: "24 timer", "kalenderdag"
    # The last PN dose given by then, with its evaluation of effect (issue 16).
    last_record: AdministrationRecord | None = None


class DoseStatus(Enum):
    """What has happened to a scheduled dose, as of now (`reconcile.status.dose_states`)."""

    DUE = "due"  # not settled; its window has not closed
    GIVEN = "given"
    NOT_GIVEN = "not_given"
    MISSED = "missed"  # window closed, nothing recorded: MISSED_DOSE
    NOT_DOCUMENTED = "not_documented"  # window closed before the mirror knew its order


@dataclass(frozen=True)
class DoseState:
    """A dose's status, the active record that settles it (given or not given), and the
    latest entered-in-error record on it when the dose is open again."""

    status: DoseStatus
    record: AdministrationRecord | None = None
    corrected: AdministrationRecord | None = None


DUE = DoseState(DoseStatus.DUE)


@dataclass
class ResidentRound:
    resident: Resident
    doses: list[DoseWithOrder] = field(default_factory=list)
    pn: list[PnLine] = field(default_factory=list)
    notes: list[OrderNote] = field(default_factory=list)
    states: dict[str, DoseState] = field(default_factory=dict)  # dose id -> state
    # The doses of the context the caller asked for (a superset of `doses`).
    context_doses: list[DoseWithOrder] = field(default_factory=list)

    def state_of(self, dose_id: str) -> DoseState:
        return self.states.get(dose_id, DUE)


@dataclass
class ShiftSchedule:
    facility_id: str
    shift_date: date
    shift_id: str
    start: datetime
    end: datetime
    residents: list[ResidentRound]
    language: str = DEFAULT_LANGUAGE  # the facility's: its notes' language by default


def _notes_and_pn(content: OrderContent, order_id: str, clock: FacilityClock,
                  shift_date: date, start: datetime, end: datetime) -> tuple[
                      list[OrderNote], PnLine | None]:
    notes: list[OrderNote] = []
    state = order_state(content, start, clock)
    if content.discontinued_at is not None and \
            start - RECENT_DISCONTINUATION <= content.discontinued_at < end:
        local = clock.local(content.discontinued_at).strftime("%Y-%m-%d %H:%M")
        notes.append(OrderNote(order_id, content.drug, NoteKind.DISCONTINUED,
                               msg("note.discontinued", at=local)))
    elif state is OrderState.PAUSED or any(
            p.start is not None and start <= p.start < end for p in content.pauses):
        notes.append(OrderNote(order_id, content.drug, NoteKind.PAUSED, msg("note.paused")))
    elif state is OrderState.ENDED and content.treatment_end is not None and \
            shift_date - content.treatment_end <= RECENT_DISCONTINUATION:
        notes.append(OrderNote(order_id, content.drug, NoteKind.ENDED, msg(
            "note.ended", on=content.treatment_end.isoformat())))
    attention = content.needs_attention  # a manual schedule, or cannot be checked
    if attention is not None and state in (OrderState.ACTIVE, OrderState.PAUSED):
        notes.append(OrderNote(order_id, content.drug, NoteKind.NEEDS_MANUAL_SCHEDULE,
                               attention))
    pn = None
    terms = pn_terms(content, shift_date) if state is OrderState.ACTIVE else None
    dosage = content.dosage
    if terms is not None and isinstance(dosage, StructuredDosage | TimingDosage):
        pn = PnLine(order_id, content.drug, dosage.unit, content, terms,
                    doses_left=terms.max_count)
    return notes, pn


def build_shift_schedule(facility_id: str, clock: FacilityClock, shift_date: date,
                         shift_id: str, residents: list[Resident],
                         versions: dict[str, dict[str, list[OrderVersion]]],
                         known_at: datetime, *, context: tuple[datetime, datetime] | None = None,
                         context_residents: Collection[str] = (),
                         pending: Mapping[str, Mapping[str, PendingChange]] | None = None,
                         language: str = DEFAULT_LANGUAGE) -> ShiftSchedule:
    """The round list: residents in the given (room) order, each with the doses due in the
    shift as ordered at their time, PN allowances and notes. What has happened to the
    doses and allowances is the ledger's to say (`reconcile.status`): for the residents of
    `context_residents` (those with records to place), `context_doses` holds the doses of
    the `context` range around the shift, expanded with the shift's in one go; for the
    others, the shift's doses. `versions` maps resident id -> order id -> its versions;
    `pending` resident id -> order id -> its clinical change waiting for approval, which
    marks the order (CHANGE_NOT_APPROVED; an order gone from the card too)."""
    start, end = clock.shift_interval(shift_date, shift_id)
    rounds = []
    for resident in residents:
        entry = ResidentRound(resident)
        wide = context is not None and resident.resident_id in context_residents
        lo, hi = context if context is not None and wide else (start, end)
        for order_id, history in sorted(versions.get(resident.resident_id, {}).items()):
            pieces = terms_pieces(history, known_at)
            around = _doses_in(pieces, clock, lo, hi)
            entry.context_doses += around
            content = _content_at(pieces, start, end)
            change = (pending or {}).get(resident.resident_id, {}).get(order_id)
            approval = [] if change is None else [OrderNote(
                order_id, (content or history[-1].content).drug,
                NoteKind.CHANGE_NOT_APPROVED, change.warning())]
            if content is None:
                entry.notes += approval  # off the card, still to be acknowledged
                continue
            entry.doses += [pair for pair in around
                            if on_shift(pair, start, end, known_at, clock)]
            notes, pn = _notes_and_pn(content, order_id, clock, shift_date, start, end)
            entry.notes += notes + approval
            if pn is not None:
                entry.pn.append(pn)
        entry.doses.sort(key=lambda pair: (pair.dose.due_time, pair.content.drug.name.lower()))
        rounds.append(entry)
    return ShiftSchedule(facility_id, shift_date, shift_id, start, end, rounds, language)


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
            by_order[dose.order_id].append(DoseWithOrder(dose, content))
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
