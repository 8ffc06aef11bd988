"""One resident's due doses and administration records, placed on each other.

The engine (`engine.reconcile`), the pre-administration check (`check.check_dose`) and
record matching (`check.match_record`) share these rules, so a check and the later
reconciliation of the same record agree.

Placing a record (records are taken in the order (administered_at, recorded_at,
record_id); every record with a dose id before any without):

1. A record with the id of one of the resident's due doses (of its own order, when the
   record names one) is on that dose. The first active record settles the dose; a given
   record after an earlier given one on the same dose is an EXTRA_DOSE. A not-given
   record never settles an open-ended dose (`administration.settles_dose`): it stays due.
2. A record without a usable dose id is placed on its order's unsettled dose whose
   matching window holds the administration time (the nearest; ties: earlier due, then
   dose id). A one-time dose, which has no window, matches inside the window it would
   have as a daily dose; an open-ended dose from that window's start on.
3. A given record that is not placed so, of an order whose dosage allows PN doses on the
   local date, is a PN dose (a PN_GIVEN record is a PN dose before step 2).
4. Otherwise it is placed on the order's nearest unsettled dose of the same local date,
   outside the window (an early or late dose rather than a missed dose and a stray record).
5. A given record placed nowhere, of a schedulable order in force, is an EXTRA_DOSE: the
   order had no dose left to give that day.

A record made while its order says not to give (discontinued, paused, outside the
treatment period) is placed by step 1 only: it settles no other dose, uses no PN
allowance and is no EXTRA_DOSE (the order's state is the discrepancy).

The order of a record is the one it names, else the resident's order of the same drug
(drug_id) in force at the administration time (active before paused or discontinued,
then by order id). Orders are read as known now (`OrderView`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property

from medservice.domain.administration import AdministrationRecord, Outcome, settles_dose
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount
from medservice.domain.facility import Facility, PnDayMode
from medservice.domain.orders import (
    OrderContent,
    OrderState,
    OrderVersion,
    effective_content,
    first_known,
    latest_known,
    not_to_give,
    order_state,
    order_timeline,
)
from medservice.domain.pn import DAY, PnTerms, pn_lookback, pn_terms
from medservice.domain.rounds import DoseWithOrder, resident_key
from medservice.domain.schedule import ScheduledDose
from medservice.domain.vocabulary import unit_text
from medservice.i18n import DEFAULT_LANGUAGE, Arg, Msg, msg

__all__ = ["DAY", "PnTerms", "pn_lookback", "pn_terms"]  # the PN rule, from domain.pn


@dataclass(frozen=True)
class FacilityRules:
    """The facility settings reconciliation needs: its clock (zone, windows, late
    documentation) and how a PN day is counted."""

    clock: FacilityClock
    pn_day_mode: PnDayMode = PnDayMode.ROLLING_24_HOURS
    pn_evaluation_minutes: int = 120
    language: str = DEFAULT_LANGUAGE  # what a stored finding is written in (issue 15)

    @classmethod
    def from_facility(cls, facility: Facility) -> FacilityRules:
        return cls(FacilityClock.from_facility(facility), facility.pn_day_mode,
                   facility.pn_evaluation_minutes, facility.language)

    @cached_property
    def late_documentation_after(self) -> timedelta:
        """A record made more than this after the time it documents is late."""
        return timedelta(minutes=self.clock.windows.late_documentation_minutes)


def sort_key(record: AdministrationRecord) -> tuple[datetime, datetime, str]:
    """The order records are reconciled in, whatever order they arrived in."""
    return record.administered_at, record.recorded_at, record.record_id


def active_records(records: Iterable[AdministrationRecord]) -> list[AdministrationRecord]:
    """The active records, each once, in `sort_key` order. A record id seen twice counts
    once, and not at all when any copy is entered-in-error (corrections win)."""
    by_id: dict[str, AdministrationRecord] = {}
    withdrawn: set[str] = set()
    for r in records:
        if r.entered_in_error:
            withdrawn.add(r.record_id)
        elif r.record_id not in by_id or sort_key(r) < sort_key(by_id[r.record_id]):
            by_id[r.record_id] = r
    kept = [r for rid, r in by_id.items() if rid not in withdrawn]
    kept.sort(key=sort_key)
    return kept


# -- orders as known now -------------------------------------------------------------------


_Piece = tuple[datetime, datetime | None, OrderVersion, OrderContent]


class OrderView:
    """One order as the mirror knows it at `now`: its valid-time pieces, each with the
    content in force (pauses and discontinuation as known now, see effective_content)."""

    __slots__ = ("_now", "_pieces_cache", "_versions", "first_known", "order_id")

    def __init__(self, order_id: str, versions: Sequence[OrderVersion], now: datetime) -> None:
        self.order_id = order_id
        self._versions = versions
        self._now = now
        self._pieces_cache: list[_Piece] | None = None
        known = [v for v in versions if v.recorded_at <= now]
        # When the mirror first knew the order (None: not yet, as of `now`).
        self.first_known = first_known(known) if known else None

    @property
    def versions(self) -> Sequence[OrderVersion]:
        return self._versions

    @property
    def _pieces(self) -> list[_Piece]:
        # Built on first use: a batch holds every order of a facility, most never asked.
        if self._pieces_cache is None:
            versions = self._versions
            if len(versions) == 1 and versions[0].recorded_at <= self._now:
                only = versions[0]  # the common order: one version, its own content
                self._pieces_cache = [(only.valid_from, None, only, only.content)]
                return self._pieces_cache
            latest = latest_known(list(self._versions), self._now)
            self._pieces_cache = [] if latest is None else [
                (p.start, p.end, p.version, effective_content(p.version, latest))
                for p in order_timeline(list(self._versions), self._now)]
        return self._pieces_cache

    def at(self, instant: datetime) -> OrderContent | None:
        """The content in force at `instant`; None when the order was not on the card."""
        for start, end, version, content in self._pieces:
            if start <= instant and (end is None or instant < end):
                return None if version.removed else content
        return None

    def versions_between(self, start: datetime, end: datetime
                         ) -> list[tuple[OrderVersion, OrderContent, datetime, datetime]]:
        """(version, content, from, until) of each version in force in [start, end),
        clipped to it; removed versions left out."""
        found = []
        for p_start, p_end, version, content in self._pieces:
            lo = max(p_start, start)
            hi = end if p_end is None else min(p_end, end)
            if lo < hi and not version.removed:
                found.append((version, content, lo, hi))
        return found

    def known_at(self, recorded_at: datetime) -> OrderContent | None:
        """The newest content the mirror held at `recorded_at` (the home's view then)."""
        latest = latest_known(list(self._versions), recorded_at)
        return None if latest is None else latest.content


# -- placing records ------------------------------------------------------------------------


class Due:
    """A due dose and the records on it."""

    __slots__ = ("content", "dose", "dose_id", "given", "settled_by")

    def __init__(self, dose: ScheduledDose, content: OrderContent, dose_id: str) -> None:
        self.dose = dose
        self.content = content
        self.dose_id = dose_id
        self.settled_by: AdministrationRecord | None = None  # first active settling one
        self.given: list[AdministrationRecord] = []


@dataclass
class Placement:
    """Where a record landed. `content` is its order at the administration time as known
    now (None: no order in force); `due` the dose it settles or repeats; `pn` the PN
    terms it was counted against; `extra` a second given record on `due`."""

    record: AdministrationRecord
    order_id: str | None
    view: OrderView | None
    content: OrderContent | None
    due: Due | None = None
    pn: PnTerms | None = None
    extra: bool = False


def matching_window(due: Due, clock: FacilityClock) -> tuple[datetime, datetime | None]:
    """The dose's window; a one-time dose's is the one a daily dose would have. An
    open-ended dose's (ScheduledDose.open_ended) opens so and never closes (None): it is
    due until given (a refusal does not settle it), whenever that is, and is never
    missed; once its order stopped waiting for it (`ScheduledDose.open_until`) no record
    after that is placed on it (the window ends there, still never missed). Every path
    that asks whether a dose has closed asks this (the engine and the round list through
    `missed_at` and `status.dose_state`, the materialised schedule the sweep and the
    batch's SQL use through `materialise.due_doses`, which leaves open-ended doses out)."""
    d = due.dose
    if d.window_start is not None and d.window_end is not None:
        return d.window_start, d.window_end
    half = clock.half_width(d.time_critical, 1, due.content.window_minutes)
    return d.due_time - half, d.open_until if d.open_ended else d.due_time + half


def holds(window: tuple[datetime, datetime | None], t: datetime) -> bool:
    """Whether `t` is inside a matching window (an open-ended one from its start on)."""
    return window[0] <= t and (window[1] is None or t <= window[1])


def missed_at(due: Due, view: OrderView | None, clock: FacilityClock, now: datetime
              ) -> datetime | None:
    """When a dose was missed: the instant its (matching) window closed, if that is by
    `now` with no active record on the dose and the dose was due once the mirror knew its
    order (DOMAIN.md §6; a dose due before the mirror first knew its order was documented
    elsewhere, if at all). None when it was not missed; an open-ended dose never is. The
    engine's MISSED_DOSE and the round list's status both ask this."""
    if due.settled_by is not None or due.dose.open_ended or before_mirroring(due, view):
        return None
    closes = matching_window(due, clock)[1]
    return closes if closes is not None and closes <= now else None


def before_mirroring(due: Due, view: OrderView | None) -> bool:
    """A dose due before the mirror first knew its order: never missed, not documented here."""
    return view is not None and view.first_known is not None and \
        due.dose.due_time < view.first_known


class Ledger:
    """One resident's due doses (`doses`: as `doses_between` yields them) and orders
    (order id -> versions), with records placed on them one by one. Place every record
    with a dose id (`place_on_dose`) before any without (`place`)."""

    def __init__(self, facility_id: str, resident_id: str,
                 orders: Mapping[str, Sequence[OrderVersion]], doses: Iterable[DoseWithOrder],
                 rules: FacilityRules, now: datetime) -> None:
        self.facility_id = facility_id
        self.resident_id = resident_id
        self.key = resident_key(facility_id, resident_id)
        self.rules = rules
        self.views = {oid: OrderView(oid, versions, now) for oid, versions in orders.items()}
        self.dues: dict[str, Due] = {}
        self.by_order: dict[str, list[Due]] = {}
        for dose, content in doses:
            due = Due(dose, content, dose.dose_id)
            self.dues[due.dose_id] = due
            self.by_order.setdefault(dose.order_id, []).append(due)
        for dues in self.by_order.values():
            dues.sort(key=lambda d: (d.dose.due_time, d.dose_id))

    def place_on_dose(self, record: AdministrationRecord) -> Placement | None:
        """Step 1; None when the record has no dose id of this resident's due doses."""
        due = self.dues.get(record.dose_id) if record.dose_id else None
        if due is None or (record.order_id and record.order_id != due.dose.order_id):
            return None
        order_id = due.dose.order_id
        view = self.views.get(order_id)
        t = record.administered_at
        content = view.at(t) if view is not None else due.content
        if content is None and t < due.dose.due_time:
            content = due.content  # given early, before the order's first version applied
        placement = Placement(record, order_id, view, content, due)
        if due.settled_by is None and settles_dose(record, due.dose):
            due.settled_by = record
        if record.was_given:
            placement.extra = bool(due.given)
            due.given.append(record)
        return placement

    def place(self, record: AdministrationRecord, *, outside_window: bool = True) -> Placement:
        """Steps 2-5 for a record without a usable dose id. `outside_window` False stops
        after step 3 (record matching attaches only doses whose window holds the time)."""
        order_id, view, content = self.order_of(record)
        placement = Placement(record, order_id, view, content)
        if content is None or order_id is None:
            return placement
        t = record.administered_at
        clock = self.rules.clock
        if not_to_give(content, t, clock):
            return placement  # no dose was due then: nothing to settle, no PN allowance
        on = clock.local_date_of(t)
        pn = pn_terms(content, on) if record.was_given else None
        if pn is not None and record.outcome is Outcome.PN_GIVEN:
            placement.pn = pn
            return placement
        open_doses = [d for d in self.by_order.get(order_id, ()) if d.settled_by is None]
        inside = [d for d in open_doses if holds(matching_window(d, clock), t)]
        if inside:
            return self._settle(placement, _nearest(inside, t))
        if pn is not None:
            placement.pn = pn
            return placement
        if outside_window:
            same_day = [d for d in open_doses if d.dose.local_date == on]
            if same_day:
                return self._settle(placement, _nearest(same_day, t))
        return placement

    def _settle(self, placement: Placement, due: Due) -> Placement:
        if settles_dose(placement.record, due.dose):
            due.settled_by = placement.record
        if placement.record.was_given:
            due.given.append(placement.record)
        placement.due = due
        return placement

    def order_of(self, record: AdministrationRecord
                 ) -> tuple[str | None, OrderView | None, OrderContent | None]:
        """The record's order, its view and its content at the administration time."""
        t = record.administered_at
        if record.order_id:
            view = self.views.get(record.order_id)
            return record.order_id, view, view.at(t) if view is not None else None
        if not record.drug_id:
            return None, None, None
        best: tuple[bool, str, OrderView, OrderContent] | None = None
        for oid, view in self.views.items():
            content = view.at(t)
            if content is None or content.drug.drug_id != record.drug_id:
                continue
            state = order_state(content, t, self.rules.clock)
            rank = (state is not OrderState.ACTIVE, oid, view, content)
            if best is None or rank[:2] < best[:2]:
                best = rank
        if best is None:
            return None, None, None
        return best[1], best[2], best[3]


def _nearest(dues: list[Due], t: datetime) -> Due:
    return min(dues, key=lambda d: (abs(d.dose.due_time - t), d.dose.due_time, d.dose_id))


# -- PN limits ------------------------------------------------------------------------------


def pn_used(uses: Sequence[Placement], t: datetime, period: timedelta, rules: FacilityRules
            ) -> list[Placement]:
    """The PN doses of `uses` (in administration order) inside the PN period that ends at
    `t`: a calendar day when the period is a day and the facility counts calendar days,
    else the rolling period (t - period, t]."""
    clock = rules.clock
    calendar = period == DAY and rules.pn_day_mode is PnDayMode.CALENDAR_DAY
    on = clock.local_date_of(t) if calendar else None
    horizon = t - max(period, DAY + timedelta(hours=1))
    inside = []
    for u in reversed(uses):
        at = u.record.administered_at
        if at <= horizon:
            break
        if at > t:
            continue
        if (clock.local_date_of(at) == on) if calendar else (t - period < at):
            inside.append(u)
    inside.reverse()
    return inside


@dataclass(frozen=True)
class PnUse:
    """An order's PN allowance at an instant: `given` doses in the PN period ending then,
    `left` of its count limit (None: no count limit), the last PN dose given by then (and
    its record, with its evaluation: issue 16)."""

    terms: PnTerms
    given: int
    left: int | None
    last_given: datetime | None
    last_record: AdministrationRecord | None = None


def pn_use(placements: Sequence[Placement], order_id: str, content: OrderContent,
           at: datetime, rules: FacilityRules) -> PnUse | None:
    """What is used and left of the order's PN allowance at `at`, from placed records (the
    PN doses are the placements counted against PN terms, in administration order). The
    check and the round list both answer from this. None: no PN allowed that date."""
    terms = pn_terms(content, rules.clock.local_date_of(at))
    if terms is None:
        return None
    uses = [p for p in placements if p.pn is not None and p.order_id == order_id]
    inside = pn_used(uses, at, terms.count_period, rules)
    left = None if terms.max_count is None else max(0, terms.max_count - len(inside))
    last = max((p.record for p in uses if p.record.administered_at <= at), key=sort_key,
               default=None)
    return PnUse(terms, len(inside), left, last.administered_at if last else None, last)


def pn_quantity(p: Placement) -> Decimal:
    """A PN dose's quantity; a record without one counts as the ordered amount (its top)."""
    if p.record.quantity is not None:
        return p.record.quantity
    return p.pn.amount.high if p.pn is not None and p.pn.amount is not None else Decimal(0)


def pn_problem(earlier: Sequence[Placement], p: Placement, rules: FacilityRules) -> Msg | None:
    """Why the PN dose `p` exceeds its allowance given the `earlier` PN doses of its order
    (administration order), or None."""
    terms = p.pn
    if terms is None:
        return None
    t = p.record.administered_at
    problems = []
    if terms.max_count is not None:
        n = len(pn_used(earlier, t, terms.count_period, rules)) + 1
        if n > terms.max_count:
            problems.append(msg("finding.pn_count", n=n, max=terms.max_count,
                                period=period_msg(terms.count_period, rules)))
    if terms.max_quantity is not None:
        total = sum((pn_quantity(u) for u in pn_used(earlier, t, terms.quantity_period, rules)),
                    pn_quantity(p))
        if total > terms.max_quantity:
            problems.append(msg("finding.pn_quantity", total=total,
                                unit=unit_text(terms.unit, terms.max_quantity),
                                max=terms.max_quantity,
                                period=period_msg(terms.quantity_period, rules)))
    if len(problems) == 2:
        return msg("finding.both", first=problems[0], second=problems[1])
    return problems[0] if problems else None


def period_msg(period: timedelta, rules: FacilityRules) -> Msg:
    """A PN period in words: "24 timer", "kalenderdag", "3 dage"."""
    if period == DAY:
        return msg("period.calendar_day" if rules.pn_day_mode is PnDayMode.CALENDAR_DAY
                   else "period.24_hours")
    minutes = int(period.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return msg("period.days", minutes // (24 * 60))
    if minutes % 60 == 0:
        return msg("period.hours", minutes // 60)
    return msg("period.minutes", minutes)


def number(value: Decimal) -> str:
    """A quantity as staff write it: 1, 0.5, 0.025 (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def amount_text(amount: Amount) -> Arg:
    """An ordered amount: one quantity, or a range ("1-2"), with the language's decimals."""
    return amount.low if not amount.is_range else \
        msg("finding.amount_range", low=amount.low, high=amount.high)
