"""The rules of DOMAIN.md §6-8 applied to one placed record (see `ledger`).

Shared by reconciliation (a finding becomes a Discrepancy) and the pre-administration
check (a finding becomes a reason), so both say the same about the same record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from medservice.domain.administration import NotGivenReason, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.discrepancy import DEFAULT_SEVERITY, Code, Severity
from medservice.domain.fhir_timing import shown
from medservice.domain.orders import OrderContent, OrderState, order_state, outside_treatment
from medservice.domain.vocabulary import route_text, same_route
from medservice.i18n import Msg, msg
from medservice.reconcile.ledger import (
    Due,
    FacilityRules,
    Placement,
    amount_text,
)

# Refusals and clinical holds are documented decisions, not errors (DOMAIN.md §8).
NOT_ERRORS = frozenset({NotGivenReason.REFUSED, NotGivenReason.CLINICAL_HOLD})


class Finding(NamedTuple):
    code: Code
    severity: Severity
    message: Msg  # rendered in the caller's or the facility's language at the edge
    is_error: bool = True
    known_at_administration: bool | None = None


def _finding(code: Code, message: Msg, known: bool | None = None) -> Finding:
    return Finding(code, DEFAULT_SEVERITY[code], message, True, known)


def record_findings(p: Placement, rules: FacilityRules, pn_problem: Msg | None
                    ) -> list[Finding]:
    """Everything wrong with one placed record. `pn_problem` is `ledger.pn_problem`'s."""
    r = p.record
    clock = rules.clock
    out: list[Finding] = []
    lag = r.recorded_at - r.administered_at
    if lag > rules.late_documentation_after:
        minutes = int(lag.total_seconds() // 60)
        out.append(_finding(Code.LATE_DOCUMENTATION, msg(
            "finding.late_documentation", hours=minutes // 60,
            minutes=f"{minutes % 60:02d}")))
    t = r.administered_at
    when = _Local(clock, t)  # formatted only for a finding: most records have none
    if r.outcome is Outcome.NOT_GIVEN:
        reason = r.not_given_reason or NotGivenReason.OTHER
        severity = (Severity.MEDIUM if reason is NotGivenReason.DRUG_UNAVAILABLE
                    else Severity.INFO)
        out.append(Finding(Code.NOT_GIVEN, severity, msg(
            "finding.not_given", reason=msg(f"not_given.{reason.value}"), at=str(when)),
            reason not in NOT_ERRORS))
        return out
    c = p.content
    if c is None:
        out.append(_finding(Code.UNORDERED_DRUG, msg("finding.unordered_drug", at=str(when))))
        return out
    state = order_state(c, t, clock)
    # The order's state explains a stray dose better than EXTRA_DOSE does.
    blocked = state is not OrderState.ACTIVE
    if state is OrderState.DISCONTINUED:
        known = _knew(p, lambda k: k.discontinued_at is not None and k.discontinued_at <= t)
        assert c.discontinued_at is not None
        out.append(_finding(Code.GIVEN_AFTER_DISCONTINUATION, msg(
            "finding.given_after_discontinuation", at=str(when),
            discontinued=clock.text(c.discontinued_at), known=_known_text(known)),
            known))
    elif state is OrderState.PAUSED:
        known = _knew(p, lambda k: any(pause.covers(t) for pause in k.pauses))
        out.append(_finding(Code.GIVEN_DURING_PAUSE, msg(
            "finding.given_during_pause", at=str(when), known=_known_text(known)), known))
    # Also after a discontinuation or in a pause: both are the reviewer's to see.
    if outside_treatment(c, t, clock):
        on = clock.local_date_of(t)
        start = c.treatment_start.isoformat() if c.treatment_start else msg(
            "finding.treatment_start_unknown")
        end = c.treatment_end.isoformat() if c.treatment_end else msg(
            "finding.treatment_end_open")
        out.append(_finding(Code.OUTSIDE_TREATMENT_PERIOD, msg(
            "finding.outside_treatment", on=on.isoformat(), start=start, end=end)))
    # One route whatever the source called it: "OR" and "Oral Route" are not a wrong route.
    if r.route and c.route and not same_route(r.route, c.route):
        out.append(_finding(Code.WRONG_ROUTE, msg(
            "finding.wrong_route", given=_route_shown(r.route), ordered=route_text(c.route))))
    amount = p.due.dose.amount if p.due is not None else (p.pn.amount if p.pn else None)
    if r.quantity is not None and amount is not None and not amount.allows(r.quantity):
        out.append(_finding(Code.WRONG_DOSE, msg(
            "finding.wrong_dose", given=r.quantity, ordered=amount_text(amount))))
    if p.due is not None and not p.extra:
        out += _timing(p.due, t, rules)
    if p.extra and p.due is not None:
        due_at = clock.text(p.due.dose.due_time)
        out.append(_finding(Code.EXTRA_DOSE, msg("finding.extra_dose_given", due=due_at)))
    elif p.due is None and p.pn is None and not blocked and c.manual_schedule_reason is None:
        out.append(_finding(Code.EXTRA_DOSE, msg("finding.extra_dose_none_left", at=str(when))))
    if pn_problem is not None:
        out.append(_finding(Code.PN_LIMIT_EXCEEDED, msg(
            "finding.pn_limit", at=str(when), problem=pn_problem)))
    return out


def _timing(due: Due, t: datetime, rules: FacilityRules) -> list[Finding]:
    """EARLY_DOSE / LATE_DOSE against the dose's window (one-time doses have none)."""
    d = due.dose
    if d.window_start is None or d.window_end is None:
        return []
    severity = Severity.HIGH if d.time_critical else Severity.MEDIUM
    due_at = _Local(rules.clock, d.due_time)
    if t < d.window_start:
        minutes = _minutes(d.window_start - t)
        return [Finding(Code.EARLY_DOSE, severity, msg(
            "finding.early", minutes=minutes, due=str(due_at)))]
    if t > d.window_end:
        minutes = _minutes(t - d.window_end)
        return [Finding(Code.LATE_DOSE, severity, msg(
            "finding.late", minutes=minutes, due=str(due_at)))]
    return []


def _knew(p: Placement, says: Callable[[OrderContent], bool]) -> bool | None:
    """Whether the order as the mirror held it when the record was made already said so
    (two clocks: a back-dated change may reach the mirror after the dose was given)."""
    if p.view is None:
        return None
    known = p.view.known_at(p.record.recorded_at)
    return known is not None and says(known)


def _known_text(known: bool | None) -> Msg | str:
    if known is None:
        return ""
    return msg("finding.known") if known else msg("finding.not_yet_known")


def _route_shown(value: str) -> Msg | str:
    """A route a caller sent: the catalogue's name when it is one we know; else quoted
    when it looks like a code, and never repeated when it does not (it could be a person
    identifier sent in the wrong field, DOMAIN.md §10)."""
    known = route_text(value)
    return known if isinstance(known, Msg) else shown(value)


def _minutes(span: timedelta) -> int:
    return max(1, int(-(-span.total_seconds() // 60)))


class _Local:
    """An instant shown on the facility clock when formatted, not before."""

    __slots__ = ("clock", "instant")

    def __init__(self, clock: FacilityClock, instant: datetime) -> None:
        self.clock = clock
        self.instant = instant

    def __format__(self, spec: str) -> str:
        return self.clock.text(self.instant)

    def __str__(self) -> str:
        return self.__format__("")


def pn_evaluation_deadline(administered_at: datetime, recorded_at: datetime,
                           rules: FacilityRules) -> datetime:
    """When a PN dose must have been evaluated (issue 16): the facility's setting after it
    was given, or after it was documented when that was later. Its effect cannot be
    evaluated here before the dose is on record, and documenting late (an outage's paper
    records) is LATE_DOCUMENTATION already, not a second discrepancy at once."""
    return max(administered_at, recorded_at) + timedelta(minutes=rules.pn_evaluation_minutes)


def pn_evaluation_finding(p: Placement, rules: FacilityRules, now: datetime
                          ) -> Finding | None:
    """PN_NOT_EVALUATED for a PN dose whose effect was not evaluated by its deadline, once
    the deadline has passed at `now`. An evaluation made after the deadline does not undo
    that: the discrepancy stays, and says how late the evaluation came. Not an error in the
    rate: what the resident was given is not in question."""
    if p.pn is None:
        return None
    deadline = pn_evaluation_deadline(p.record.administered_at, p.record.recorded_at, rules)
    if now < deadline:
        return None
    evaluation = p.record.evaluation
    due = str(_Local(rules.clock, deadline))
    if evaluation is None:
        message = msg("finding.pn_not_evaluated", due=due)
    elif evaluation.first_evaluated_at <= deadline:
        return None
    else:
        late = _minutes(evaluation.first_evaluated_at - deadline)
        message = msg("finding.pn_evaluated_late", late=late, due=due)
    return Finding(Code.PN_NOT_EVALUATED, DEFAULT_SEVERITY[Code.PN_NOT_EVALUATED], message,
                   is_error=False)


def manual_schedule_finding(content: OrderContent) -> Finding | None:
    """NEEDS_MANUAL_SCHEDULE for an order that needs a manual schedule or cannot be checked
    against its source (`OrderContent.needs_attention`)."""
    attention = content.needs_attention
    if attention is None:
        return None
    return _finding(Code.NEEDS_MANUAL_SCHEDULE, attention)
