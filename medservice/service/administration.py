"""Use cases at the round: check a dose, record it, correct a record, list a resident's
records. Each runs in the caller's unit of work; a record or a correction reconciles the
resident around it (`reconciliation`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from medservice.domain import names
from medservice.domain.administration import (
    CLOCK_SKEW,
    AdministrationRecord,
    Outcome,
    PnEffect,
    PnEvaluation,
    anchors_course,
    replaced_on_dose,
    settles_dose,
)
from medservice.domain.card_changes import PendingChange
from medservice.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderContent, OrderVersion
from medservice.domain.rounds import DOSE_ID_REACH, DoseWithOrder, resident_dose
from medservice.domain.schedule import ScheduledDose
from medservice.reconcile import (
    CheckResult,
    FacilityRules,
    MatchKind,
    ProposedDose,
    Severity,
    Verdict,
    check_dose,
    context_range,
    match_record,
)
from medservice.reconcile.engine import place_all
from medservice.reconcile.findings import pn_evaluation_deadline
from medservice.reconcile.ledger import Ledger, active_records
from medservice.service.cards import anchor_first_dose
from medservice.service.facilities import get_resident
from medservice.service.paging import Page, next_token
from medservice.service.reconciliation import (
    reconcile_around,
    reconcile_resident,
    reconciled_range,
)
from medservice.service.round_context import (
    ResidentOrders,
    doses_around,
    orders_and_records,
    resident_orders,
)
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.discrepancies import discrepancy_id


@dataclass(frozen=True)
class ResidentContext:
    """What the rules need around a time: due doses, records and order histories."""

    facility: Facility
    rules: FacilityRules
    doses: list[DoseWithOrder]
    records: list[AdministrationRecord]
    orders: dict[str, list[OrderVersion]]
    # Clinical card changes waiting for approval, by order id (issue 16).
    unapproved: dict[str, PendingChange]


def _context(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
             end: datetime, now: datetime, *, dose_id: str | None = None
             ) -> ResidentContext:
    """The resident's context (with a dose id, see `_doses`)."""
    base, (lo, hi), records = orders_and_records(
        uow, facility_id, resident_id, lambda orders: context_range(start, end, orders))
    return ResidentContext(base.facility, base.rules,
                           doses_around(uow, base, resident_id, lo, hi, now, dose_id),
                           records, base.orders, _unapproved(uow, base, facility_id,
                                                             resident_id))


@dataclass(frozen=True)
class Checked:
    """A check's result, and the content of the order the matched dose was scheduled from
    (None when no dose matched)."""

    result: CheckResult
    content: OrderContent | None


def checked(uow: UnitOfWork, proposal: ProposedDose, now: datetime) -> Checked:
    """The check, with the matched dose's content (the order as it was when the dose was
    scheduled) taken from the doses it was checked against, not read again."""
    _refuse_future(proposal.administered_at, now, "administration_time")
    at = proposal.administered_at
    ctx = _context(uow, proposal.facility_id, proposal.resident_id, at, at, now,
                   dose_id=proposal.dose_id)
    dose_id = proposal.dose_id
    if dose_id and all(d.dose_id != dose_id for d, _ in ctx.doses):
        real = _real_dose(ctx.rules, ctx.orders, dose_id, at, now)
        if real is None:
            # Answered as RecordDose answers it: a made-up id is not a dose not due now.
            raise NotFound("no such dose for this resident", reason="DOSE_NOT_FOUND")
        if proposal.order_id is None and not proposal.drug_id:
            # A real dose at another time: checked against its order (DOSE_NOT_DUE).
            proposal = dataclasses.replace(proposal, order_id=real.order_id)
    result = check_dose(proposal, doses=ctx.doses, records=ctx.records, orders=ctx.orders,
                        rules=ctx.rules, now=now, unapproved=ctx.unapproved)
    dose = result.matched_dose
    if dose is None:
        return Checked(result, None)
    until = dose.due_time + timedelta(seconds=1)
    content = next((c for d, c in ctx.doses if d.resident_id == dose.resident_id
                    and d.order_id == dose.order_id and d.dose_id == dose.dose_id
                    and dose.due_time <= d.due_time < until), None)
    return Checked(result, content)


@dataclass(frozen=True)
class Recorded:
    record: AdministrationRecord
    check: CheckResult
    discrepancy_ids: list[str]


def _unapproved(uow: UnitOfWork, base: ResidentOrders, facility_id: str, resident_id: str
                ) -> dict[str, PendingChange]:
    """The resident's clinical card changes waiting for approval, by order id: read only
    when the head said there are some."""
    if not base.pending_changes:
        return {}
    return {c.order_id: c for c in uow.card_changes.pending(facility_id, resident_id)}


def _real_dose(rules: FacilityRules, orders: dict[str, list[OrderVersion]], dose_id: str,
               at: datetime, now: datetime) -> ScheduledDose | None:
    """The resident's dose the id names within DOSE_ID_REACH of `at`, due now or not
    (asked only when it is none of the doses around `at`); None: never scheduled."""
    clock = rules.clock
    return resident_dose(orders.values(), clock, dose_id,
                         clock.local_date_of(at - DOSE_ID_REACH),
                         clock.local_date_of(at + DOSE_ID_REACH), now)


def _refuse_future(at: datetime, now: datetime, field: str) -> None:
    if at > now + CLOCK_SKEW:
        raise InvalidArgument([FieldViolation(field, "lies in the future")])


def record_dose(uow: UnitOfWork, record: AdministrationRecord, acknowledged: set[str],
                now: datetime, *, dated: bool = True) -> Recorded:
    """Document a dose. The check warns; the record documents: a dose that was given is
    recorded even when the check says STOP, but only with every reason acknowledged, and
    then reconciliation raises the discrepancy. A scheduled dose is settled by one record
    only: a second one (another carer at the same moment) gets ALREADY_EXISTS naming the
    first. `dated` False: the caller gave no time (the record holds `now`); a dose not
    given is then dated at its due time, or now for a dose still to come or an open-ended
    one (see `_not_given_at`)."""
    if not dated and record.outcome is Outcome.NOT_GIVEN and record.dose_id:
        record = dataclasses.replace(record, administered_at=_not_given_at(
            uow, record, record.dose_id, now))
    _refuse_future(record.administered_at, now, "record.administration_time")
    at = record.administered_at
    # One read of the resident for both the check and the reconciliation after the insert:
    # the records of the reconciliation's wider range when it will run (the check's are
    # among them), the doses of each range from the cache.
    later = reconciled_range(at, at)
    base, wide, wide_records = orders_and_records(
        uow, record.facility_id, record.resident_id,
        lambda orders: context_range(*later, orders), orders_unchanged=True)
    lo, hi = context_range(at, at, base.orders.values())
    ctx = ResidentContext(
        base.facility, base.rules,
        doses_around(uow, base, record.resident_id, lo, hi, now, record.dose_id),
        [r for r in wide_records if lo <= r.administered_at < hi], base.orders,
        _unapproved(uow, base, record.facility_id, record.resident_id))
    match = match_record(record, doses=ctx.doses, records=ctx.records, orders=ctx.orders,
                         rules=ctx.rules, now=now)
    if match.kind is MatchKind.OTHER_RESIDENT:
        raise FailedPrecondition("the dose belongs to another resident",
                                 reason="DOSE_OF_OTHER_RESIDENT")
    if match.kind is MatchKind.NOT_DUE:
        assert record.dose_id is not None
        if _real_dose(ctx.rules, ctx.orders, record.dose_id, at, now) is None:
            raise NotFound("no such dose for this resident", reason="DOSE_NOT_FOUND")
        raise NotFound("the dose is not due around the administration time",
                       reason="DOSE_NOT_FOUND")
    matched = match.dose
    record = dataclasses.replace(
        record, order_id=record.order_id or match.order_id,
        dose_id=matched.dose_id if matched is not None else None,
        drug_id=record.drug_id or _drug_of(ctx, match.order_id), etag=names.new_etag())
    verdict: CheckResult | None = None  # only a given dose is checked
    if record.was_given:
        proposal = ProposedDose(
            record.facility_id, record.resident_id, record.drug_id, at, record.order_id,
            record.dose_id, record.quantity, record.route, record.outcome is Outcome.PN_GIVEN,
            record.record_id)
        verdict = check_dose(proposal, doses=ctx.doses, records=ctx.records,
                             orders=ctx.orders, rules=ctx.rules, now=now,
                             unapproved=ctx.unapproved)
    settled_by = match.settled_by
    if settled_by is not None:
        first = uow.records.get(record.facility_id, record.resident_id, settled_by)
        # A dose documented as not given (refused at 08:00) may still be given (at 08:30),
        # as the check says; a second given dose only as an acknowledged EXTRA_DOSE.
        if not record.was_given or (first is not None and first.was_given
                                    and "EXTRA_DOSE" not in acknowledged):
            _already_recorded(first)
    if verdict is not None and verdict.verdict is Verdict.STOP:
        # A STOP is recorded only with each high-severity reason acknowledged; warnings
        # (early, late, late documentation) are documented without one.
        needed = {r.code.value for r in verdict.reasons if r.severity is Severity.HIGH}
        missing = sorted(needed - acknowledged)
        if missing:
            raise FailedPrecondition(
                "the check found " + ", ".join(missing) + "; acknowledge each reason to "
                "record a dose that was given", reason="CHECK_NOT_ACKNOWLEDGED",
                metadata={"reasons": ",".join(missing)})
    # The store's settling index holds only records that settle (`settles_dose`): a
    # refusal of an open-ended dose, however long ago and unread here, never blocks the
    # dose being given later.
    settles = (matched is not None and settled_by is None
               and settles_dose(record, matched))
    # A correction's replacement names the record it replaces (issue 20). The records
    # read cover it when both lie within a day of each other: true for a dose with a
    # window; an open-ended dose's records may lie further apart (a correction of an
    # older one is then not named: left for later).
    record = dataclasses.replace(record, replaces_record_id=replaced_on_dose(
        record.dose_id, wide_records))
    # Only a given record on no scheduled dose can be a PN dose: the sweep looks at it
    # again at its evaluation deadline (reconciliation decides whether it is one).
    followup = (pn_evaluation_deadline(at, record.recorded_at, base.rules)
                if record.was_given and record.dose_id is None else None)
    stored = uow.records.add(record, settles=settles, followup_due=followup)
    if stored is None:
        # Another carer's record for this dose committed in the meantime.
        assert record.dose_id is not None
        _already_recorded(uow.records.settling(record.dose_id))
    # What reconcile_resident would read now: the same, and the record as stored.
    found = reconcile_around(uow, base, record.resident_id, *later, wide,
                             [*wide_records, stored], now)
    ids = [discrepancy_id(d.key) for d in found if d.record_id == record.record_id]
    if anchors_course(record, matched) and record.order_id in base.orders:
        # The first dose of a course with no start: its later doses follow from it.
        anchor_first_dose(uow, record.facility_id, record.resident_id,
                          base.orders[record.order_id], at, now)
    return Recorded(record, verdict or _no_check(), ids)


def _not_given_at(uow: UnitOfWork, record: AdministrationRecord, dose_id: str,
                  now: datetime) -> datetime:
    """When a dose not given, sent without a time, happened: the decision is about that
    dose, so its due time (not the moment it was documented, which may be hours later or
    after midnight: another shift, day or month in every report); `now` for a dose still
    to come (a time in the future is refused), an open-ended dose (due until given) or an
    id that is no dose of the resident (refused as such after)."""
    base = resident_orders(uow, record.facility_id, record.resident_id,
                           orders_unchanged=True)
    dose = _real_dose(base.rules, base.orders, dose_id, now, now)
    if dose is None or dose.open_ended:
        # An open-ended dose's due time is its order's valid time, maybe days ago: the
        # refusal is a decision of now.
        return now
    return min(dose.due_time, now)


def _already_recorded(existing: AdministrationRecord | None) -> NoReturn:
    """ALREADY_EXISTS naming the record that settles the dose: a double dose prevented."""
    metadata = {}
    if existing is not None:
        metadata = {"record": names.record_name(existing.facility_id, existing.resident_id,
                                                existing.record_id),
                    "outcome": existing.outcome.value, "performer": existing.performer}
    raise AlreadyExists("the dose is already recorded", reason="DOSE_ALREADY_RECORDED",
                        metadata=metadata)


def _no_check() -> CheckResult:
    return CheckResult(Verdict.OK, (), None, None, None, None)


def _drug_of(ctx: ResidentContext, order_id: str | None) -> str:
    if order_id is None or order_id not in ctx.orders:
        return ""
    return ctx.orders[order_id][-1].content.drug.drug_id


def list_records(uow: UnitOfWork, facility_id: str, resident_id: str,
                 start: datetime | None, end: datetime | None, page: Page
                 ) -> tuple[list[AdministrationRecord], str]:
    """The resident's administration records, newest first, a page at a time."""
    get_resident(uow, facility_id, resident_id)
    after = tuple(page.after) if page.after else None
    rows = uow.records.page(facility_id, resident_id, start, end, limit=page.size + 1,
                            after=after)
    items = rows[: page.size]
    last = [items[-1].administered_at.isoformat(), items[-1].record_id] if items else None
    return items, next_token(page, rows, last)


def new_record_id() -> str:
    """Time-ordered: a record documented after another at the same instant sorts after it."""
    return names.time_ordered_id()


def correct_record(uow: UnitOfWork, facility_id: str, resident_id: str, record_id: str,
                   reason: str, by: str, now: datetime) -> AdministrationRecord:
    """Mark a record entered-in-error (never delete it) and reconcile again."""
    if not reason.strip():
        raise InvalidArgument([FieldViolation("reason", "is required")])
    record = uow.records.get(facility_id, resident_id, record_id)
    if record is None:
        raise NotFound("no such record", reason="RECORD_NOT_FOUND")
    if not uow.records.mark_entered_in_error(record_id, reason, by, now):
        raise FailedPrecondition("the record is already marked entered-in-error",
                                 reason="ALREADY_CORRECTED")
    at = record.administered_at
    reconcile_resident(uow, facility_id, resident_id, at, at, now)
    corrected = uow.records.get(facility_id, resident_id, record_id)
    assert corrected is not None
    return corrected


MAX_NOTE = 1000


def evaluate_pn_dose(uow: UnitOfWork, facility_id: str, resident_id: str, record_id: str,
                     effect: PnEffect, note: str, etag: str, by: str, now: datetime
                     ) -> AdministrationRecord:
    """Record how a PN dose worked (issue 16), under the record's etag, and reconcile the
    resident again: an evaluation in time leaves no PN_NOT_EVALUATED, a late one updates
    it. A record is a PN dose as reconciliation places it (`Ledger`): a PN-given record,
    or a given one on no scheduled dose of an order allowing PN that day."""
    v = []
    if not etag:
        v.append(FieldViolation("etag", "is required: the record's etag as read"))
    if len(note) > MAX_NOTE:
        v.append(FieldViolation("note", f"is longer than {MAX_NOTE} characters"))
    if v:
        raise InvalidArgument(v)
    record = uow.records.get(facility_id, resident_id, record_id)
    if record is None:
        raise NotFound("no such record", reason="RECORD_NOT_FOUND")
    if record.entered_in_error:
        raise FailedPrecondition("the record is marked entered-in-error",
                                 reason="RECORD_ENTERED_IN_ERROR")
    at = record.administered_at
    ctx = _context(uow, facility_id, resident_id, at, at, now)
    ledger = Ledger(facility_id, resident_id, ctx.orders, ctx.doses, ctx.rules, now)
    placed = next((p for p in place_all(ledger, active_records(ctx.records))
                   if p.record.record_id == record_id), None)
    if placed is None or placed.pn is None:
        raise FailedPrecondition("the record is not a PN dose", reason="NOT_A_PN_DOSE")
    first = record.evaluation.first_evaluated_at if record.evaluation else now
    if not uow.records.evaluate(facility_id, resident_id, record_id, etag,
                                PnEvaluation(effect, note.strip(), by, now, first)):
        raise Aborted("the record changed since it was read; read it again",
                      reason="ETAG_MISMATCH")
    reconcile_resident(uow, facility_id, resident_id, at, at, now)
    evaluated = uow.records.get(facility_id, resident_id, record_id)
    assert evaluated is not None
    return evaluated
