"""One truth about every dose (issue 12), on SQLite and PostgreSQL.

A carer, a shift lead and a pharmacist must get the same answer about a dose whichever path
computed it. Hypothesis generates small histories of one care home (1-3 residents with 1-3
orders each, 2-4 days across the spring DST night): cards mirrored at different times,
some back-dated and some orders added by a later sync, a dosage change, records given with
and without a dose id, wrong quantities, not given with a coded reason, PN doses, second
records on a settled dose, records documented long after the fact (also for days before
their order was mirrored), back-dated discontinuations and their reversal, pauses with and
without dates, corrections, a facility settings change, and the missed-dose sweep at a
regular cadence. The history is replayed through the service use cases in time order, each
step in its own unit of work with its own injected `now`.

The oracle is the pure engine (`reconcile.reconcile`) over the whole period with every
order version and record as known at the final now; the domain rule "a dose due before
the mirror first knew its order is never missed" (per order) is checked on the oracle
itself. Asserted:

- at each record: CheckDose (`checked`) with the same proposal, every reason
  acknowledged, says what RecordDose then stores for the record, RecordDose answers the
  same reasons, and refuses exactly when the check and the ledger say it must
  (ALREADY_EXISTS on a settled dose, CHECK_NOT_ACKNOWLEDGED for an unacknowledged reason);
- at each PN record given at its own time: the round list's PN doses left is the check's;
- after each sweep, and at the end: the round list's dose status agrees with the stored
  discrepancies and the ledger (`round_list_agrees`);
- at the end: the stored open discrepancies (after only the incremental paths and the
  sweep) are the oracle's, and a batch ReconcileFacility over the period changes nothing.

Fixed past dates are fine here: every `now` is injected, nothing reads the real clock.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from medservice.domain.facility import Facility, PnDayMode, Resident, TimingWindows
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import Drug, OrderContent, first_known
from medservice.domain.rounds import DoseStatus, doses_between
from medservice.reconcile import (
    CheckCode,
    Code,
    Discrepancy,
    FacilityRules,
    ProposedDose,
    Severity,
    context_range,
    reconcile,
)
from medservice.reconcile.engine import place_all
from medservice.reconcile.ledger import Ledger, active_records
from medservice.service import administration as admin
from medservice.service import cards, reconciliation
from medservice.service.facilities import (
    create_facility,
    create_resident,
    get_facility,
    update_facility,
)
from medservice.service.rounds import shift_schedule
from medservice.service.sweep import sweep
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store import tables
from medservice.store.db import make_engine
from medservice.store.discrepancies import DiscrepancyFilter, Status
from medservice.store.uow import uow_factory

# The facility settings change moves the morning time. Another engineer is fixing the
# sweep after a settings change; False leaves the change out of generated histories.
SETTINGS_CHANGES = True

ZONE = ZoneInfo("Europe/Copenhagen")
DAY0 = date(2026, 3, 28)  # every history spans the spring DST night (29 March 02:00 -> 03:00)
T0 = datetime.combine(DAY0, time(0), ZONE).astimezone(UTC)  # the facility is created
MINUTE = timedelta(minutes=1)
# The engine and the batch look this far before T0: syncs are back-dated at most 2 days.
PERIOD_START = T0 - timedelta(days=3)
UNIT = DoseUnit("tablet", "tabletter")
TREATMENT_START = date(2026, 1, 1)

# Order kinds: the slots a carer gives (dose slot name, or a PN time) and the quantity.
FIXED_SLOTS: dict[str, tuple[tuple[str, time], ...]] = {
    "ae": (("morning", time(8)), ("evening", time(18))),  # 1 tablet morning and evening
    "noon": (("noon", time(12)),),  # 2 tablets at noon
    "night": (("night", time(22)),),  # 1-2 tablets at night
    "crit": (("morning", time(8)),),  # time-critical, 1 tablet in the morning
}
PN_TIMES = (time(10), time(15), time(21))
PN_KINDS = ("pn", "fpn")  # FMK: at most 2 PN entries a day; FHIR: 1 per 4 h, max 3 a day
KINDS = (*FIXED_SLOTS, *PN_KINDS, "free")  # free: free text, NEEDS_MANUAL_SCHEDULE
CHECK_ONLY = {c.value for c in CheckCode}  # reasons about the dose id sent, never stored


# -- the generated history ---------------------------------------------------------------

@dataclass(frozen=True)
class ResidentPlan:
    kinds: tuple[str, ...]  # the resident's orders
    later: tuple[bool, ...]  # per order: first mirrored by the second sync
    first_sync: int  # minutes after T0
    first_back: int  # minutes the first sync's valid_from lies before it
    second_delay: int | None  # minutes after the first sync; None: no second sync
    second_back: int
    change: bool  # the second sync changes the first order's quantity


@dataclass(frozen=True)
class Give:
    """A record: of the resident's `order`-th order (not free text), for its `slot` on day
    `day`, administered `offset` minutes after the nominal time, documented `lag` later."""

    resident: int
    order: int
    day: int
    slot: int
    how: str  # dose, time, order, wrong, refused, unavailable, pn
    offset: int
    lag: int
    ack_extra: bool  # EXTRA_DOSE acknowledged


@dataclass(frozen=True)
class Discontinue:
    at: int  # minutes after T0
    resident: int
    order: int
    back: int | None  # the discontinuation lies this far before now; None: now


@dataclass(frozen=True)
class Reverse:
    at: int
    resident: int
    order: int


@dataclass(frozen=True)
class Pause:
    at: int
    resident: int
    order: int
    start: int | None  # minutes from now; None: from now
    length: int | None  # minutes; None: open-ended


@dataclass(frozen=True)
class Resume:
    at: int
    resident: int
    order: int


@dataclass(frozen=True)
class Correct:
    at: int
    pick: int  # of the active records made so far


@dataclass(frozen=True)
class Settings:
    at: int
    morning: int  # the new morning time, minutes after local midnight


Event = Give | Discontinue | Reverse | Pause | Resume | Correct | Settings


@dataclass(frozen=True)
class History:
    days: int
    narrow: bool  # the facility's own (narrower) windows
    calendar_pn: bool  # PN day is the calendar day
    sweep_every: int  # hours
    residents: tuple[ResidentPlan, ...]
    events: tuple[Event, ...]


@st.composite
def resident_plans(draw: st.DrawFn, days: int) -> ResidentPlan:
    kinds = tuple(draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)))
    later = tuple(draw(st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds))))
    return ResidentPlan(
        kinds, later,
        first_sync=draw(st.integers(0, days * 1440 // 2)),
        first_back=draw(st.sampled_from([0, 0, 120, 720, 1440, 2880])),
        second_delay=draw(st.none() | st.integers(60, 2 * 1440)),
        second_back=draw(st.sampled_from([0, 180, 1440, 2880])),
        change=draw(st.booleans()))


@st.composite
def histories(draw: st.DrawFn) -> History:
    days = draw(st.integers(2, 4))
    end = days * 1440
    ri, oi = st.integers(0, 2), st.integers(0, 2)
    at = st.integers(0, end)
    gives = st.builds(
        Give, resident=ri, order=oi, day=st.integers(0, days - 1), slot=st.integers(0, 2),
        how=st.sampled_from(["dose", "dose", "dose", "time", "order", "wrong", "refused",
                             "unavailable", "pn"]),
        offset=st.integers(-30, 30) | st.sampled_from([-200, -90, 90, 200, 400]),
        # Recorded at once half the time: only then is the PN count compared with the check.
        lag=st.just(0) | st.integers(0, 20) | st.sampled_from([90, 300, 1500, 2900]),
        ack_extra=st.booleans())
    changes = st.one_of(
        st.builds(Discontinue, at=at, resident=ri, order=oi,
                  back=st.none() | st.integers(0, 1800)),
        st.builds(Reverse, at=at, resident=ri, order=oi),
        st.builds(Pause, at=at, resident=ri, order=oi, start=st.none() | st.integers(-720, 720),
                  length=st.none() | st.integers(60, 2880)),
        st.builds(Resume, at=at, resident=ri, order=oi),
        st.builds(Correct, at=at, pick=st.integers(0, 20)))
    # Records and card changes drawn apart, so every history has rounds to reconcile and
    # some have several changes among them.
    kinds: list[st.SearchStrategy[Event]] = [changes]
    if SETTINGS_CHANGES:
        # Before the period's first dose: a facility's settings have no history (the
        # engine reads past doses under today's times), so a change after doses were due
        # would re-read them; tests/e2e/test_settings_replan.py covers a change mid-day.
        kinds.append(st.builds(Settings, at=st.integers(0, 6 * 60),
                               morning=st.sampled_from([7 * 60 + 30, 9 * 60])))
    return History(
        days=days, narrow=draw(st.booleans()), calendar_pn=draw(st.booleans()),
        sweep_every=draw(st.sampled_from([4, 8, 12])),
        residents=tuple(draw(st.lists(resident_plans(days), min_size=1, max_size=3))),
        events=(*draw(st.lists(gives, min_size=4, max_size=24)),
                *draw(st.lists(st.one_of(*kinds), max_size=8))))


# -- orders ------------------------------------------------------------------------------

def _named(kind: TimeKind, amount: Amount, *, pn: bool = False) -> DosageDose:
    return DosageDose(kind, None, amount, pn)


def _daily(*doses: DosageDose) -> StructuredDosage:
    return StructuredDosage(UNIT, (DosagePeriod(TREATMENT_START, None, 1,
                                                days=(DosageDay(1, doses),)),))


def order_content(kind: str, changed: bool) -> OrderContent:
    """The order of a kind as the source sends it; `changed`: one tablet more."""
    more = 1 if changed else 0
    one = Amount.exact(1 + more)
    dosage: StructuredDosage | TimingDosage | FreeTextDosage
    critical = False
    if kind == "ae":
        dosage = _daily(_named(TimeKind.MORNING, one), _named(TimeKind.EVENING, one))
    elif kind == "noon":
        dosage = _daily(_named(TimeKind.NOON, Amount.exact(2 + more)))
    elif kind == "night":
        dosage = _daily(_named(TimeKind.NIGHT, Amount.between(1 + more, 2 + more)))
    elif kind == "crit":
        dosage, critical = _daily(_named(TimeKind.MORNING, one)), True
    elif kind == "pn":  # two PN entries on the day: at most twice a day
        dosage = _daily(_named(TimeKind.ANY, one, pn=True), _named(TimeKind.ANY, one, pn=True))
    elif kind == "fpn":
        dosage = TimingDosage(UNIT, one, frequency=1, period=Decimal(4), period_unit="h",
                              as_needed=True, max_dose_quantity=Decimal(3 + 3 * more))
    else:
        dosage = FreeTextDosage("1 tablet as agreed with the GP")
    return OrderContent(f"o-{kind}", Drug(f"Drug {kind}", f"d-{kind}"), dosage, route="oral",
                        treatment_start=TREATMENT_START, time_critical=critical)


def in_first_sync(plan: ResidentPlan, i: int) -> bool:
    """Whether the resident's i-th order is on the first card (the first order is, when
    every order would otherwise wait for the second)."""
    return plan.second_delay is None or not plan.later[i] or (all(plan.later) and i == 0)


def nominal_quantity(kind: str) -> Decimal:
    return Decimal(2) if kind == "noon" else Decimal(1)


# -- the store ---------------------------------------------------------------------------

def truncate(engine: Engine) -> None:
    """Every table emptied (as conftest does after a PostgreSQL test)."""
    with engine.begin() as conn:
        names = ", ".join(t.name for t in reversed(tables.metadata.sorted_tables))
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


class Stores:
    """A fresh database for each example: a copy of the migrated SQLite template, or the
    test's PostgreSQL database emptied."""

    def __init__(self, db_url: str, sqlite_template: Path) -> None:
        self._template = sqlite_template
        self._pg: Engine | None = None
        if not db_url.startswith("sqlite"):
            self._pg = make_engine(db_url)

    @contextmanager
    def fresh(self) -> Iterator[UnitOfWorkFactory]:
        if self._pg is not None:
            truncate(self._pg)
            yield uow_factory(self._pg)
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "one_truth.db"
            shutil.copy(self._template, path)
            engine = make_engine(f"sqlite:///{path}")
            try:
                yield uow_factory(engine)
            finally:
                engine.dispose()

    def close(self) -> None:
        if self._pg is not None:
            truncate(self._pg)
            self._pg.dispose()


# -- reading what the paths say ----------------------------------------------------------

def stored_open(u: UnitOfWork, facility_id: str) -> dict[str, Discrepancy]:
    """The facility's discrepancies that are not withdrawn, by key."""
    entries = u.discrepancies.page(DiscrepancyFilter(frozenset({facility_id})),
                                   limit=1_000_000, after=None)
    return {e.discrepancy.key: e.discrepancy for e in entries
            if e.status is not Status.WITHDRAWN}


def oracle(u: UnitOfWork, facility_id: str, start: datetime, end: datetime, now: datetime
           ) -> list[Discrepancy]:
    """The engine over [start, end) with every version and record as known at `now`."""
    rules = FacilityRules.from_facility(get_facility(u, facility_id))
    versions = u.cards.facility_versions(facility_id)
    histories_ = [h for orders in versions.values() for h in orders.values()]
    lo, hi = context_range(start, end, histories_)
    doses = [pair for h in histories_ for pair in doses_between(h, rules.clock, lo, hi, now)]
    return reconcile(facility_id, start, end, doses=doses,
                     records=u.records.between(facility_id, None, lo, hi),
                     orders=versions, rules=rules, now=now)


def _ledger(u: UnitOfWork, facility_id: str, resident_id: str, now: datetime) -> Ledger:
    """Every record of the period placed by the ledger: the domain's answer, not one of
    the optimised paths."""
    rules = FacilityRules.from_facility(get_facility(u, facility_id))
    orders = u.cards.resident_versions(facility_id, resident_id)
    lo, hi = context_range(PERIOD_START, now + timedelta(days=1), orders.values())
    doses = [pair for h in orders.values() for pair in doses_between(h, rules.clock, lo, hi, now)]
    ledger = Ledger(facility_id, resident_id, orders, doses, rules, now)
    place_all(ledger, active_records(u.records.between(facility_id, resident_id, lo, hi)))
    return ledger


def settling(u: UnitOfWork, facility_id: str, resident_id: str, now: datetime
             ) -> dict[str, AdministrationRecord | None]:
    """dose id -> the active record that settles it (None: open)."""
    return {dose_id: due.settled_by
            for dose_id, due in _ledger(u, facility_id, resident_id, now).dues.items()}


def shown_record(u: UnitOfWork, facility_id: str, resident_id: str, now: datetime
                 ) -> dict[str, AdministrationRecord | None]:
    """dose id -> the record the round list is to show: the first given one on the dose
    (a dose refused, then given, was given), else the one that settles it."""
    return {dose_id: due.given[0] if due.given else due.settled_by
            for dose_id, due in _ledger(u, facility_id, resident_id, now).dues.items()}


def shown(d: Discrepancy) -> str:
    local = d.occurred_at.astimezone(ZONE).strftime("%a %d %H:%M")
    subject = d.dose_id if d.code is Code.MISSED_DOSE else d.record_id
    return f"{d.code.value} {d.resident_id}/{d.order_id} at {local} ({subject})"


def differences(left: str, a: dict[str, Discrepancy], right: str,
                b: dict[str, Discrepancy]) -> str:
    only_a = sorted(shown(a[k]) for k in a.keys() - b.keys())
    only_b = sorted(shown(b[k]) for k in b.keys() - a.keys())
    return f"only {left}: {only_a}; only {right}: {only_b}"


def round_list_agrees(u: UnitOfWork, facility_id: str, dates: list[date], now: datetime,
                      open_: dict[str, Discrepancy]) -> None:
    """The round list's dose status against the stored discrepancies and the ledger, for
    every shift of `dates` as of `now`: MISSED iff an open MISSED_DOSE of the dose is
    stored; GIVEN iff a given record is on the dose, else NOT_GIVEN iff an active record
    settles it, and that is the record the round list shows; NOT_DOCUMENTED iff its
    window closed with nothing on it before the mirror first knew its order; DUE iff
    nothing settles it and its window is open."""
    missed = {d.dose_id for d in open_.values() if d.code is Code.MISSED_DOSE}
    facility = get_facility(u, facility_id)
    settled = {r: shown_record(u, facility_id, r, now)
               for r in u.cards.facility_versions(facility_id)}
    versions = u.cards.facility_versions(facility_id)
    for day in dates:
        for shift in facility.shifts:
            schedule = shift_schedule(u, facility_id, day, shift.shift_id, now)
            for entry in schedule.residents:
                rid = entry.resident.resident_id
                for dose, _ in entry.doses:
                    state = entry.state_of(dose.dose_id)
                    where = (f"{rid}/{dose.order_id} {dose.slot} {dose.local_date} "
                             f"({shift.shift_id} shift, as of {now.astimezone(ZONE)})")
                    assert (state.status is DoseStatus.MISSED) == (dose.dose_id in missed), (
                        f"round list says {state.status.value}, stored MISSED_DOSE: "
                        f"{dose.dose_id in missed}: {where}")
                    by = settled.get(rid, {}).get(dose.dose_id)
                    on_list = state.record.record_id if state.record is not None else None
                    assert on_list == (by.record_id if by is not None else None), (
                        f"round list's settling record {on_list}, the ledger's "
                        f"{by.record_id if by else None}: {where}")
                    if by is not None:
                        assert state.status is (DoseStatus.GIVEN if by.was_given
                                                else DoseStatus.NOT_GIVEN), where
                        continue
                    history = versions[rid][dose.order_id]
                    closes = dose.window_end or dose.due_time + timedelta(hours=2)
                    before = dose.due_time < first_known(
                        [v for v in history if v.recorded_at <= now])
                    if state.status is DoseStatus.DUE:
                        assert dose.window_end is None or dose.window_end > now, where
                    elif state.status is DoseStatus.NOT_DOCUMENTED:
                        assert before and closes <= now, where
                    else:
                        assert state.status is DoseStatus.MISSED and not before, where


# -- the replay --------------------------------------------------------------------------

@dataclass
class Made:
    """A record RecordDose stored."""

    record_id: str
    resident_id: str
    corrected: bool = False


CARD_REFUSALS = {"ALREADY_PAUSED", "ORDER_DISCONTINUED", "ALREADY_DISCONTINUED",
                 "NOT_DISCONTINUED", "NOT_PAUSED", "ORDER_REMOVED", "ORDER_NOT_FOUND"}


Step = Callable[[datetime], None]


class Replay:
    """Replays a history through the use cases, each step in its own unit of work."""

    def __init__(self, uow: UnitOfWorkFactory, history: History) -> None:
        self.uow = uow
        self.h = history
        # A facility id of its own per example: process caches (order versions by key)
        # must never see another example's rows under the same names.
        self.f = f"h{uuid.uuid4().hex[:12]}"
        self.windows = TimingWindows(20, 45, 90, 120) if history.narrow else TimingWindows()
        self.clock0 = FacilityRules.from_facility(
            Facility(self.f, "Home", timing_windows=self.windows)).clock
        self.end = self.clock0.instant(DAY0 + timedelta(days=history.days), time(5))
        self.made: list[Made] = []
        self.kinds = {f"r{i}": p.kinds for i, p in enumerate(history.residents)}

    def instant(self, minutes: int) -> datetime:
        return min(T0 + minutes * MINUTE, self.end)

    def steps(self) -> list[tuple[datetime, Step]]:
        """(now, step) in time order; at equal times in the order they were planned."""
        out: list[tuple[datetime, Step]] = [(T0, self.setup)]
        for i, plan in enumerate(self.h.residents):
            rid = f"r{i}"
            first = self.instant(plan.first_sync)
            out.append((first, partial(self.sync, rid, plan, 1)))
            if plan.second_delay is not None:
                second = self.instant(plan.first_sync + plan.second_delay)
                out.append((second, partial(self.sync, rid, plan, 2)))
        for e in self.h.events:
            if isinstance(e, Give):
                target = self.target(e)
                if target is None:
                    continue
                slot_time = target[2]
                nominal = self.clock0.instant(DAY0 + timedelta(days=e.day), slot_time)
                at = nominal + e.offset * MINUTE
                now = min(at + e.lag * MINUTE, self.end)
                out.append((now, partial(self.give, e, min(at, now))))
            else:
                out.append((self.instant(e.at), partial(self.change, e)))
        t = T0
        while t < self.end:
            out.append((t, self.sweep))
            t += timedelta(hours=self.h.sweep_every)
        out.append((self.end, self.sweep))
        planned = sorted(enumerate(out), key=lambda s: (s[1][0], s[0]))
        return [step for _, step in planned]

    # -- steps

    def setup(self, now: datetime) -> None:
        with self.uow() as u:
            create_facility(u, Facility(
                self.f, "Home", timing_windows=self.windows,
                pn_day_mode=PnDayMode.CALENDAR_DAY if self.h.calendar_pn
                else PnDayMode.ROLLING_24_HOURS), now)
            for i in range(len(self.h.residents)):
                create_resident(u, Resident(f"r{i}", self.f, f"0101{50 + i:02d}-4{i:03d}",
                                            f"Test Person {i}", room=str(100 + i)), now)
            u.commit()

    def sync(self, rid: str, plan: ResidentPlan, card_version: int, now: datetime) -> None:
        """The source's whole card. The second sync carries what the source knows of the
        orders already mirrored (their pauses and discontinuation) and the new ones."""
        second = card_version == 2 and plan.second_delay is not None
        back = plan.second_back if card_version == 2 else plan.first_back
        with self.uow() as u:
            stored = u.cards.resident_versions(self.f, rid)
            orders = []
            for i, kind in enumerate(plan.kinds):
                if not second and not in_first_sync(plan, i):
                    continue
                content = order_content(kind, second and plan.change and i == 0)
                latest = stored.get(content.order_id, [])
                if latest:
                    content = dataclasses.replace(
                        content, pauses=latest[-1].content.pauses,
                        discontinued_at=latest[-1].content.discontinued_at)
                orders.append(content)
            cards.sync_card(u, self.f, rid, card_version, orders, now - back * MINUTE, now)
            u.commit()

    def target(self, e: Give) -> tuple[str, str, time] | None:
        """The resident, order kind and nominal local time a record is about."""
        rid = f"r{e.resident % len(self.h.residents)}"
        kinds = [k for k in self.kinds[rid] if k != "free"]
        if not kinds:
            return None
        kind = kinds[e.order % len(kinds)]
        if kind in FIXED_SLOTS:
            slots = FIXED_SLOTS[kind]
            return rid, kind, slots[e.slot % len(slots)][1]
        return rid, kind, PN_TIMES[e.slot % len(PN_TIMES)]

    def record_for(self, u: UnitOfWork, e: Give, at: datetime, now: datetime
                   ) -> AdministrationRecord:
        """What the carer documents, with the dose id from the round list as known now."""
        target = self.target(e)
        assert target is not None
        rid, kind, _ = target
        order_id, drug_id = f"o-{kind}", f"d-{kind}"
        versions = u.cards.resident_versions(self.f, rid).get(order_id)
        known = bool(versions)  # the carer can name only an order on the mirror
        how = e.how
        quantity: Decimal | None = nominal_quantity(kind)
        outcome, reason, dose_id = Outcome.GIVEN, None, None
        if kind in PN_KINDS:
            if how in ("refused", "unavailable"):
                outcome = Outcome.NOT_GIVEN
            elif how != "time":
                outcome = Outcome.PN_GIVEN
            if how == "wrong":
                quantity = Decimal(3)
        elif how == "pn":
            outcome = Outcome.PN_GIVEN
        elif how in ("dose", "wrong", "refused", "unavailable") and versions:
            rules = FacilityRules.from_facility(get_facility(u, self.f))
            day = DAY0 + timedelta(days=e.day)
            lo = rules.clock.instant(day, time(0))
            hi = rules.clock.instant(day + timedelta(days=1), time(0))
            slot = FIXED_SLOTS[kind][e.slot % len(FIXED_SLOTS[kind])][0]
            dose = next((d for d, _ in doses_between(versions, rules.clock, lo, hi, now)
                         if d.slot == slot), None)
            if dose is not None:
                dose_id = dose.dose_id
                quantity = dose.amount.high + (1 if how == "wrong" else 0)
        if how in ("refused", "unavailable"):
            outcome, quantity = Outcome.NOT_GIVEN, None
            reason = NotGivenReason.REFUSED if how == "refused" else \
                NotGivenReason.DRUG_UNAVAILABLE
        return AdministrationRecord(
            record_id=admin.new_record_id(), facility_id=self.f, resident_id=rid,
            order_id=order_id if known and how != "time" else None, drug_id=drug_id,
            outcome=outcome, administered_at=at, recorded_at=now, performer="carer-1",
            dose_id=dose_id, quantity=quantity, route="oral", not_given_reason=reason)

    def give(self, e: Give, at: datetime, now: datetime) -> None:
        with self.uow() as u:
            record = self.record_for(u, e, at, now)
            check_codes: set[str] | None = None
            pn_left: int | None = None
            acknowledged: set[str] = set()
            missing: set[str] = set()
            if record.was_given:
                proposal = ProposedDose(
                    self.f, record.resident_id, record.drug_id, at, record.order_id,
                    record.dose_id, record.quantity, record.route,
                    record.outcome is Outcome.PN_GIVEN)
                check = admin.checked(u, proposal, now).result
                check_codes = {r.code.value for r in check.reasons} - CHECK_ONLY
                pn_left = check.pn_doses_left
                # Every reason acknowledged, so that what was given is documented; EXTRA_DOSE
                # only when the carer means to record a second dose.
                acknowledged = {r.code.value for r in check.reasons}
                if not e.ack_extra:
                    acknowledged.discard(Code.EXTRA_DOSE.value)
                missing = {r.code.value for r in check.reasons
                           if r.severity is Severity.HIGH} - acknowledged
            first = None if record.dose_id is None else settling(
                u, self.f, record.resident_id, now).get(record.dose_id)
            # A dose documented as not given may still be given; a second given dose only
            # as an acknowledged EXTRA_DOSE; a second "not given" never.
            extra_acknowledged = Code.EXTRA_DOSE.value in acknowledged
            expected = ("DOSE_ALREADY_RECORDED"
                        if first is not None and (not record.was_given or (
                            first.was_given and not extra_acknowledged))
                        else "CHECK_NOT_ACKNOWLEDGED" if missing else None)
            if pn_left is not None and e.lag == 0 and record.outcome is Outcome.PN_GIVEN:
                self.pn_agrees(u, record, pn_left, now)
            try:
                done = admin.record_dose(u, record, acknowledged, now)
            except (AlreadyExists, FailedPrecondition, NotFound) as refused:
                got = refused.reason
                event(f"RecordDose refused: {got}")
                assert got == expected, (
                    f"RecordDose refused ({got}: {refused.metadata}) where the check and the "
                    f"ledger expect {expected}: {record}")
                if got == "CHECK_NOT_ACKNOWLEDGED":
                    assert set(refused.metadata["reasons"].split(",")) == missing
                return
            assert expected is None, f"RecordDose recorded where {expected} was expected"
            u.commit()
        self.made.append(Made(record.record_id, record.resident_id))
        if check_codes is None:
            return
        said = {r.code.value for r in done.check.reasons} - CHECK_ONLY
        with self.uow(write=False) as u:
            stored = {d.code.value for d in stored_open(u, self.f).values()
                      if d.record_id == record.record_id}
        assert check_codes == stored, (
            f"CheckDose said {sorted(check_codes)}, RecordDose stored {sorted(stored)} for "
            f"{record}")
        assert said == check_codes, (
            f"RecordDose answered {sorted(said)}, CheckDose {sorted(check_codes)}: {record}")

    def pn_agrees(self, u: UnitOfWork, record: AdministrationRecord, pn_left: int,
                  now: datetime) -> None:
        """The round list of the shift at `now` shows the PN doses left the check counts."""
        rules = FacilityRules.from_facility(get_facility(u, self.f))
        found = rules.clock.shift_of(now)
        if found is None:
            return
        shift_id, shift_date = found
        schedule = shift_schedule(u, self.f, shift_date, shift_id, now)
        for entry in schedule.residents:
            for line in entry.pn:
                if entry.resident.resident_id == record.resident_id and \
                        line.order_id == record.order_id:
                    assert line.doses_left == pn_left, (
                        f"round list: {line.doses_left} PN doses left, CheckDose: {pn_left} "
                        f"({record.order_id} at {now.astimezone(ZONE)})")

    def change(self, e: Event, now: datetime) -> None:
        try:
            with self.uow() as u:
                self._change(u, e, now)
                u.commit()
        except (FailedPrecondition, NotFound) as refused:
            # Refusals the card API makes on purpose (pausing a discontinued order ...).
            assert refused.reason in CARD_REFUSALS, refused

    def _change(self, u: UnitOfWork, e: Event, now: datetime) -> None:
        if isinstance(e, Correct):
            active = [m for m in self.made if not m.corrected]
            if active:
                m = active[e.pick % len(active)]
                admin.correct_record(u, self.f, m.resident_id, m.record_id,
                                     "entered in error", "nurse-2", now)
                m.corrected = True
            return
        if isinstance(e, Settings):
            facility = get_facility(u, self.f)
            morning = time(e.morning // 60, e.morning % 60)
            update_facility(u, self.f, {"medication_times": dataclasses.replace(
                facility.medication_times, morning=morning)}, facility.etag, now)
            return  # update_facility re-plans the materialised doses itself
        assert not isinstance(e, Give)
        rid = f"r{e.resident % len(self.h.residents)}"
        kinds = self.kinds[rid]
        order_id = f"o-{kinds[e.order % len(kinds)]}"
        if isinstance(e, Discontinue):
            at = None if e.back is None else now - e.back * MINUTE
            cards.discontinue_order(u, self.f, rid, order_id, at, now)
        elif isinstance(e, Reverse):
            cards.reverse_discontinuation(u, self.f, rid, order_id, now)
        elif isinstance(e, Pause):
            start = None if e.start is None else now + e.start * MINUTE
            end = None if e.length is None else (start or now) + e.length * MINUTE
            cards.pause_order(u, self.f, rid, order_id, start, end, now)
        else:
            cards.resume_order(u, self.f, rid, order_id, None, now)

    def sweep(self, now: datetime) -> None:
        report = sweep(self.uow, now)
        assert report.failed == 0, f"the sweep failed {report.failed} units at {now}"
        with self.uow(write=False) as u:
            local = now.astimezone(ZONE).date()
            round_list_agrees(u, self.f, [local - timedelta(days=1), local], now,
                              stored_open(u, self.f))

    # -- the end

    def final(self) -> None:
        now = self.end
        with self.uow(write=False) as u:
            stored = stored_open(u, self.f)
            # To a day past now, as the incremental paths reconcile (an order mirrored at
            # the last step needs its manual schedule flagged from then on).
            found = oracle(u, self.f, PERIOD_START, now + timedelta(days=1), now)
            versions = u.cards.facility_versions(self.f)
        expected = {d.key: d for d in found}
        for code in sorted({d.code.value for d in found}):
            event(f"oracle finds {code}")  # --hypothesis-show-statistics: what was covered
        event(f"records stored: {min(len(self.made), 10)}+" if len(self.made) >= 10
              else f"records stored: {len(self.made)}")
        assert len(expected) == len(found), "the oracle found a key twice"
        for d in found:  # the oracle obeys the domain: never missed before its order was known
            if d.code is Code.MISSED_DOSE:
                assert d.order_id is not None
                since = first_known(versions[d.resident_id][d.order_id])
                assert d.occurred_at >= since, f"oracle: {shown(d)} before {since}"
        assert stored.keys() == expected.keys(), (
            "incremental paths and sweep vs the engine: "
            + differences("stored", stored, "engine", expected))
        for key, d in stored.items():  # what the pharmacist reads of each
            e = expected[key]
            assert (d.severity, d.is_error, d.known_at_administration, d.dose_id,
                    d.record_id) == (e.severity, e.is_error, e.known_at_administration,
                                     e.dose_id, e.record_id), f"{shown(d)}: {d} vs {e}"
        self.batch(now, expected)
        with self.uow(write=False) as u:
            days = [DAY0 + timedelta(days=i) for i in range(-1, self.h.days)]
            round_list_agrees(u, self.f, days, now, stored_open(u, self.f))

    def batch(self, now: datetime, expected: dict[str, Discrepancy]) -> None:
        with self.uow() as u:
            before = stored_open(u, self.f)
            reconciliation.reconcile_facility(u, self.f, PERIOD_START, now, now)
            u.commit()
        with self.uow(write=False) as u:
            after = stored_open(u, self.f)
        assert after.keys() == before.keys(), (
            "ReconcileFacility changed the stored set: "
            + differences("after", after, "before", before))
        assert after.keys() == expected.keys(), differences("batch", after, "engine", expected)


def replay(uow: UnitOfWorkFactory, history: History) -> None:
    run = Replay(uow, history)
    for now, step in run.steps():
        step(now)
    run.final()


# -- the tests ---------------------------------------------------------------------------

@pytest.fixture
def stores(db_url: str, sqlite_template: Path) -> Iterator[Stores]:
    made = Stores(db_url, sqlite_template)
    yield made
    made.close()


# Derandomized: CI runs the same 60 histories every time (whatever the date), so that a
# red run is a regression, not a new draw; drop derandomize locally to explore more.
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories())
def test_every_path_tells_the_same_truth(stores: Stores, history: History) -> None:
    with stores.fresh() as uow:
        replay(uow, history)
