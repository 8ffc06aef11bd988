"""Reconciliation: what was ordered against what was done (DOMAIN.md §6-8).

`reconcile` is pure and works on one facility (one resident is a facility call with one
resident's data). It reports the discrepancies that occurred in [start, end):

- of each dose due in the range: MISSED_DOSE when its window has closed by `now` and no
  active record is placed on it (a one-time dose closes a daily window after its time),
  unless it was due before the mirror first knew its order (`ledger.missed_at`: per
  order, the same rule for the incremental path, the sweep, the batch and the round list);
- of each active record administered in the range: the findings of `findings`, and of a
  PN dose whose evaluation deadline has passed by `now` unevaluated, PN_NOT_EVALUATED
  (`findings.pn_evaluation_finding`);
- of each order version in force in the range whose dosage needs a manual schedule:
  NEEDS_MANUAL_SCHEDULE, once per version.

Doses and records outside the range are context: they settle doses and count toward PN
limits, but raise nothing here. `context_range` says how much context to pass.

The result depends on the set of records only, not on the order they arrived in (records
are taken by (administered_at, recorded_at, record_id)), and running it again gives the
same keys. Entered-in-error records are left out, so what they caused is not produced
again: the caller withdraws the open discrepancies of the reconciled residents that were
not produced (those that occurred in the range, and NEEDS_MANUAL_SCHEDULE ones when the
range reaches `now`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from medservice.domain.administration import AdministrationRecord
from medservice.domain.discrepancy import (
    DEFAULT_SEVERITY,
    Code,
    Discrepancy,
    discrepancy_key,
)
from medservice.domain.orders import OrderContent, OrderState, OrderVersion, order_state
from medservice.domain.rounds import DoseWithOrder, resident_key
from medservice.i18n import Msg, msg
from medservice.reconcile.findings import (
    Finding,
    manual_schedule_finding,
    pn_evaluation_finding,
    record_findings,
)
from medservice.reconcile.ledger import (
    DAY,
    FacilityRules,
    Ledger,
    OrderView,
    Placement,
    active_records,
    missed_at,
    pn_lookback,
    pn_problem,
)

# A record may settle a dose up to its window away, and a window is at most a day wide
# on either side (TimingWindows and order overrides allow up to 1440 minutes).
DOSE_REACH = DAY


def context_range(start: datetime, end: datetime,
                  orders: Iterable[Sequence[OrderVersion]] = ()) -> tuple[datetime, datetime]:
    """[from, until) of the doses (by due time) and records (by administration time) to
    pass to `reconcile` so that it decides [start, end) right: a day of doses either side,
    and records back to the longest PN period of these orders (a calendar day at least)."""
    back = max(DOSE_REACH, pn_lookback(orders))
    return start - back, end + DOSE_REACH


def reconcile(facility_id: str, start: datetime, end: datetime, *,
              doses: Iterable[DoseWithOrder],
              records: Iterable[AdministrationRecord],
              orders: Mapping[str, Mapping[str, Sequence[OrderVersion]]],
              rules: FacilityRules,
              now: datetime) -> list[Discrepancy]:
    """The discrepancies of one facility that occurred in [start, end), as the mirror
    knows the orders at `now`, ordered by (occurred_at, key).

    `doses`: the facility's doses due in the context range, each with the order content it
    was scheduled from (`rounds.doses_between(..., known_at=now)`); `records`: its active
    and entered-in-error records administered in the context range (records of other
    facilities are ignored); `orders`: resident id -> order id -> every version."""
    doses_of: dict[str, list[DoseWithOrder]] = {}
    for pair in doses:
        doses_of.setdefault(pair.dose.resident_id, []).append(pair)
    records_of: dict[str, list[AdministrationRecord]] = {}
    for r in records:
        if r.facility_id == facility_id:
            records_of.setdefault(r.resident_id, []).append(r)
    residents = set(orders) | set(records_of)
    residents |= {key.split("/", 1)[1] for key in doses_of if key.startswith(facility_id + "/")}
    found: list[Discrepancy] = []
    for resident_id in sorted(residents):
        ledger = Ledger(facility_id, resident_id, orders.get(resident_id, {}),
                        doses_of.get(resident_key(facility_id, resident_id), ()), rules, now)
        found += _resident(ledger, records_of.get(resident_id, ()), start, end, now)
    found.sort(key=lambda d: (d.occurred_at, d.key))
    return found


def place_all(ledger: Ledger, records: list[AdministrationRecord]) -> list[Placement]:
    """Places active records (in `sort_key` order): those with a dose id first."""
    placed: dict[str, Placement] = {}
    for r in records:
        if r.dose_id:
            p = ledger.place_on_dose(r)
            if p is not None:
                placed[r.record_id] = p
    for r in records:
        if r.record_id not in placed:
            placed[r.record_id] = ledger.place(r)
    return [placed[r.record_id] for r in records]


def pn_problems(placements: list[Placement], rules: FacilityRules) -> dict[str, Msg]:
    """record id -> why that PN dose exceeds its order's allowance, for the PN doses in
    `placements` (administration order), each counted against those before it."""
    uses: dict[str | None, list[Placement]] = {}
    problems: dict[str, Msg] = {}
    for p in placements:
        if p.pn is None:
            continue
        earlier = uses.setdefault(p.order_id, [])
        problem = pn_problem(earlier, p, rules)
        if problem is not None:
            problems[p.record.record_id] = problem
        earlier.append(p)
    return problems


def _resident(ledger: Ledger, records: Iterable[AdministrationRecord], start: datetime,
              end: datetime, now: datetime) -> list[Discrepancy]:
    rules = ledger.rules
    placements = place_all(ledger, active_records(records))
    problems = pn_problems(placements, rules)
    found: list[Discrepancy] = []
    for p in placements:
        r = p.record
        if start <= r.administered_at < end:
            dose_id = p.due.dose_id if p.due is not None else None
            for f in record_findings(p, rules, problems.get(r.record_id)):
                found.append(_discrepancy(ledger, f, p.order_id, dose_id, r.record_id,
                                          r.administered_at, r.record_id))
            followup = pn_evaluation_finding(p, rules, now)
            if followup is not None:
                found.append(_discrepancy(ledger, followup, p.order_id, dose_id, r.record_id,
                                          r.administered_at, r.record_id))
    for due in ledger.dues.values():
        d = due.dose
        if due.settled_by is None and start <= d.due_time < end:
            closes = missed_at(due, ledger.views.get(d.order_id), rules.clock, now)
            if closes is not None:
                found.append(missed_dose(ledger.facility_id, ledger.resident_id, d.order_id,
                                         due.dose_id, d.due_time, closes, rules))
    found += manual_schedules(ledger.facility_id, ledger.resident_id, ledger.views.values(),
                              start, end, rules)
    return found


def manual_schedules(facility_id: str, resident_id: str, views: Iterable[OrderView],
                     start: datetime, end: datetime, rules: FacilityRules
                     ) -> list[Discrepancy]:
    """NEEDS_MANUAL_SCHEDULE, once per version in force in [start, end) whose dosage the
    service cannot schedule, or which cannot be checked against its source."""
    found: list[Discrepancy] = []
    for view in views:
        if all(v.content.needs_attention is None for v in view.versions):
            continue  # the common case, decided without building the order's timeline
        for version, content, lo, hi in view.versions_between(start, end):
            f = manual_schedule_finding(content)
            if f is not None and _in_force(content, lo, hi, rules):
                found.append(Discrepancy(
                    key=discrepancy_key(f.code, facility_id, resident_id, view.order_id,
                                        f"v{version.version}"),
                    code=f.code, severity=f.severity, is_error=f.is_error,
                    facility_id=facility_id, resident_id=resident_id,
                    order_id=view.order_id, dose_id=None, record_id=None,
                    occurred_at=version.valid_from,
                    description=f.message.render(rules.language), message=f.message,
                    known_at_administration=f.known_at_administration))
    return found


def missed_dose(facility_id: str, resident_id: str, order_id: str, dose_id: str,
                due_time: datetime, closes: datetime, rules: FacilityRules) -> Discrepancy:
    """The MISSED_DOSE of a dose whose window closed at `closes` with nothing recorded.
    Found from the schedule alone by a batch, so it says what the schedule knows (its
    alert adds the drug, `service.alerts.raise_alerts`)."""
    clock = rules.clock
    message = msg("finding.missed_dose", due=clock.text(due_time),
                  closes=clock.text(closes, "%H:%M"))
    return Discrepancy(
        key=discrepancy_key(Code.MISSED_DOSE, facility_id, resident_id, order_id, dose_id),
        code=Code.MISSED_DOSE, severity=DEFAULT_SEVERITY[Code.MISSED_DOSE], is_error=True,
        facility_id=facility_id, resident_id=resident_id, order_id=order_id,
        dose_id=dose_id, record_id=None, occurred_at=due_time,
        description=message.render(rules.language), message=message,
        known_at_administration=None)


def _in_force(content: OrderContent, lo: datetime, hi: datetime, rules: FacilityRules
              ) -> bool:
    """Whether an order is in force (not discontinued, ended or yet to start) at some time
    of [lo, hi). Paused counts: the pause ends, and the schedule is needed then."""
    clock = rules.clock
    if order_state(content, lo, clock) not in (OrderState.ACTIVE, OrderState.PAUSED,
                                               OrderState.NOT_STARTED):
        return False
    last_day = clock.local_date_of(hi - timedelta(microseconds=1))
    return content.treatment_start is None or content.treatment_start <= last_day


def _discrepancy(ledger: Ledger, f: Finding, order_id: str | None, dose_id: str | None,
                 record_id: str | None, occurred_at: datetime, subject: str) -> Discrepancy:
    return Discrepancy(
        key=discrepancy_key(f.code, ledger.facility_id, ledger.resident_id, order_id, subject),
        code=f.code, severity=f.severity, is_error=f.is_error,
        facility_id=ledger.facility_id, resident_id=ledger.resident_id, order_id=order_id,
        dose_id=dose_id, record_id=record_id, occurred_at=occurred_at,
        description=f.message.render(ledger.rules.language), message=f.message,
        known_at_administration=f.known_at_administration)
