"""Before and at the moment of giving: the pre-administration check and record matching.

Both place a new record among the resident's existing ones by the rules of `ledger`, as
the last of them (with a dose id, before the existing records without one, as
reconciliation does), and `check_dose` applies the rules of `findings` to it: what the check
says about a dose is what reconciliation will say once it is recorded. Nothing here has a
side effect; a time in the future is refused by the caller (administration.CLOCK_SKEW).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from medservice.domain.administration import AdministrationRecord, Outcome
from medservice.domain.card_changes import PendingChange
from medservice.domain.discrepancy import Code, Severity
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DoseState, DoseWithOrder, resident_key
from medservice.domain.schedule import ScheduledDose
from medservice.i18n import DEFAULT_LANGUAGE, Msg, msg
from medservice.reconcile.engine import place_all, pn_problems
from medservice.reconcile.findings import manual_schedule_finding, record_findings
from medservice.reconcile.ledger import (
    FacilityRules,
    Ledger,
    Placement,
    active_records,
    pn_use,
    sort_key,
)
from medservice.reconcile.status import dose_state

# A proposed dose not yet recorded: it sorts after every stored record id (time-ordered
# UUIDs, hex), as the record it becomes will where times are equal.
PROPOSED_RECORD_ID = "~proposed"


class CheckCode(Enum):
    """Reasons only a check gives: about the dose id the caller sent."""

    DOSE_OF_OTHER_RESIDENT = "DOSE_OF_OTHER_RESIDENT"  # stop: wrong resident
    DOSE_NOT_DUE = "DOSE_NOT_DUE"  # the id is none of the resident's due doses
    # warn: the order's clinical change from FMK is not yet approved (issue 16)
    CHANGE_NOT_APPROVED = "CHANGE_NOT_APPROVED"


# What a caller may acknowledge (RecordDose's acknowledged_reasons, a POSTed FHIR
# MedicationAdministration's extension): every code a check can give.
REASON_CODES = frozenset(c.value for c in Code) | frozenset(c.value for c in CheckCode)


class Verdict(Enum):
    OK = "ok"
    WARN = "warn"
    STOP = "stop"


class Reason(NamedTuple):
    code: Code | CheckCode
    severity: Severity
    message: Msg  # rendered at the edge, in the caller's or the facility's language


@dataclass(frozen=True)
class ProposedDose:
    """A dose about to be given. `order_id` None: the resident's order of `drug_id`;
    `dose_id` None: matched as a record without one would be; `as_needed`: given as PN."""

    facility_id: str
    resident_id: str
    drug_id: str
    administered_at: datetime
    order_id: str | None = None
    dose_id: str | None = None
    quantity: Decimal | None = None
    route: str = ""
    as_needed: bool = False
    record_id: str = PROPOSED_RECORD_ID  # RecordDose checks under the record's own id


@dataclass(frozen=True)
class CheckResult:
    """The verdict with every reason, and what a nurse needs to see: the due dose it would
    settle (with its window), the PN doses left in the current PN day (None: no PN count
    limit), and when the resident was last given this order or drug."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    matched_dose: ScheduledDose | None
    order_id: str | None
    pn_doses_left: int | None
    last_given: datetime | None
    matched_state: DoseState | None = None  # the matched dose's state before this one
    language: str = DEFAULT_LANGUAGE  # the facility's, for reasons the caller asks no other


def check_dose(proposal: ProposedDose, *, doses: Iterable[DoseWithOrder],
               records: Iterable[AdministrationRecord],
               orders: Mapping[str, Sequence[OrderVersion]],
               rules: FacilityRules, now: datetime,
               unapproved: Mapping[str, PendingChange] | None = None) -> CheckResult:
    """STOP when a high-severity reason applies (another resident's dose, unordered drug,
    discontinued, paused, wrong route, wrong dose, already given, PN limit reached); WARN
    for medium and low ones (early, late, outside the treatment period, late
    documentation, a dose id not due, an order needing a manual schedule, a card change
    not yet approved); else OK.

    `doses`: the resident's due doses around the time, as for `reconcile` (other
    residents' doses may be included: they tell a wrong-resident dose id); `records`: the
    resident's records; `orders`: the resident's order histories; `unapproved`: the
    resident's clinical card changes waiting for approval, by order id: the dose's order
    among them is a warning of its own (CHANGE_NOT_APPROVED, medium), whatever else."""
    key = resident_key(proposal.facility_id, proposal.resident_id)
    own, foreign = _split(doses, key, proposal.dose_id)
    ledger = Ledger(proposal.facility_id, proposal.resident_id, orders, own, rules, now)
    existing = active_records(r for r in records if r.resident_id == proposal.resident_id
                              and r.facility_id == proposal.facility_id)
    reasons: list[Reason] = []
    dose_id = proposal.dose_id
    if dose_id and dose_id not in ledger.dues:
        if dose_id in foreign:
            reasons.append(Reason(CheckCode.DOSE_OF_OTHER_RESIDENT, Severity.HIGH,
                                  msg("check.dose_of_other_resident")))
        else:
            reasons.append(Reason(CheckCode.DOSE_NOT_DUE, Severity.MEDIUM,
                                  msg("check.dose_not_due")))
        dose_id = None
    record = AdministrationRecord(
        record_id=proposal.record_id, facility_id=proposal.facility_id,
        resident_id=proposal.resident_id, order_id=proposal.order_id, drug_id=proposal.drug_id,
        outcome=Outcome.PN_GIVEN if proposal.as_needed else Outcome.GIVEN,
        administered_at=proposal.administered_at, recorded_at=now, performer="",
        dose_id=dose_id, quantity=proposal.quantity, route=proposal.route)
    # Placed among the others exactly as reconciliation will place it once recorded.
    placements = place_all(ledger, sorted([*existing, record], key=sort_key))
    placed = next(p for p in placements if p.record is record)
    findings = record_findings(placed, rules, pn_problems(placements, rules).get(
        proposal.record_id))
    if placed.content is not None:
        manual = manual_schedule_finding(placed.content)
        if manual is not None:
            findings.append(manual)
    reasons += [Reason(f.code, f.severity, f.message) for f in findings]
    change = (unapproved or {}).get(placed.order_id or "")
    if change is not None:
        reasons.append(Reason(CheckCode.CHANGE_NOT_APPROVED, Severity.MEDIUM,
                              change.warning()))
    others = [p for p in placements if p is not placed]
    due = placed.due
    return CheckResult(
        verdict=_verdict(reasons), reasons=tuple(reasons),
        matched_dose=due.dose if due is not None else None,
        order_id=placed.order_id,
        pn_doses_left=_pn_left(placed, others, rules),
        last_given=_last_given(placed, existing),
        matched_state=None if due is None else dose_state(
            due, ledger.views.get(due.dose.order_id), rules.clock, now, ignoring=record),
        language=rules.language)


def _verdict(reasons: list[Reason]) -> Verdict:
    if any(r.severity is Severity.HIGH for r in reasons):
        return Verdict.STOP
    if any(r.severity in (Severity.MEDIUM, Severity.LOW) for r in reasons):
        return Verdict.WARN
    return Verdict.OK


def _split(doses: Iterable[DoseWithOrder], key: str, dose_id: str | None
           ) -> tuple[list[DoseWithOrder], set[str]]:
    """The resident's doses, and the ids of other residents' doses equal to `dose_id`."""
    own, foreign = [], set()
    for pair in doses:
        if pair.dose.resident_id == key:
            own.append(pair)
        elif dose_id and pair.dose.dose_id == dose_id:
            foreign.add(dose_id)
    return own, foreign


def _pn_left(placed: Placement, placements: list[Placement], rules: FacilityRules
             ) -> int | None:
    """PN doses the order still allows in the PN day at the time, before this one."""
    if placed.content is None or placed.order_id is None:
        return None
    use = pn_use(placements, placed.order_id, placed.content, placed.record.administered_at,
                 rules)
    return None if use is None else use.left


def _last_given(placed: Placement, existing: list[AdministrationRecord]) -> datetime | None:
    """When the resident was last given this order, or this drug under any order."""
    drug_id = placed.record.drug_id
    times = [r.administered_at for r in existing if r.was_given and (
        (placed.order_id is not None and r.order_id == placed.order_id)
        or (drug_id and r.drug_id == drug_id))]
    return max(times, default=None)


# -- matching a record to a due dose (RecordDose) -------------------------------------------


class MatchKind(Enum):
    SCHEDULED = "scheduled"  # settles (or repeats, see settled_by) a due dose
    PN = "pn"  # an as-needed dose of the order
    UNMATCHED = "unmatched"  # neither: reconciliation will say what it is
    OTHER_RESIDENT = "other_resident"  # the dose id given is another resident's
    NOT_DUE = "not_due"  # the dose id given is none of the resident's due doses


@dataclass(frozen=True)
class RecordMatch:
    """`settled_by`: the active record already on the dose (a dose id given for a dose
    that is already recorded: the caller answers ALREADY_EXISTS with it)."""

    kind: MatchKind
    dose: ScheduledDose | None = None
    order_id: str | None = None
    settled_by: str | None = None


def match_record(record: AdministrationRecord, *, doses: Iterable[DoseWithOrder],
                 records: Iterable[AdministrationRecord],
                 orders: Mapping[str, Sequence[OrderVersion]],
                 rules: FacilityRules, now: datetime) -> RecordMatch:
    """Where a new record belongs. With a dose id: that dose, if it is one of the
    resident's (else OTHER_RESIDENT or NOT_DUE). Without: the nearest unsettled due dose
    of its order whose window holds the administration time; else PN when the record is
    a given one and the order allows PN doses that local date; else UNMATCHED.

    Arguments as for `check_dose`; `records` may include `record` itself (left out)."""
    key = resident_key(record.facility_id, record.resident_id)
    own, foreign = _split(doses, key, record.dose_id)
    ledger = Ledger(record.facility_id, record.resident_id, orders, own, rules, now)
    place_all(ledger, active_records(
        r for r in records if r.record_id != record.record_id
        and r.resident_id == record.resident_id and r.facility_id == record.facility_id))
    if record.dose_id:
        due = ledger.dues.get(record.dose_id)
        if due is None:
            kind = MatchKind.OTHER_RESIDENT if record.dose_id in foreign else MatchKind.NOT_DUE
            return RecordMatch(kind)
        settled = due.settled_by.record_id if due.settled_by is not None else None
        return RecordMatch(MatchKind.SCHEDULED, due.dose, due.dose.order_id, settled)
    placed = ledger.place(record, outside_window=False)
    if placed.due is not None:
        return RecordMatch(MatchKind.SCHEDULED, placed.due.dose, placed.order_id)
    if placed.pn is not None:
        return RecordMatch(MatchKind.PN, None, placed.order_id)
    return RecordMatch(MatchKind.UNMATCHED, None, placed.order_id)
