"""The DPSD monthly collective report (*samlerapportering*, issue 16 part 4): which
discrepancies are medication incidents, in which collective-reporting category, and how
a month's incidents are counted (docs/domain.md §14a has the table).

- A discrepancy is an incident only when it is an error (refusals and clinical holds are
  documented decisions, not incidents) and its code names one of the categories, or the
  pharmacist decided it was a dispensing error (`dpsd_category`).
- An incident counts once per administration (a record, else a due dose, as the error rate
  counts them), in the first of its categories by `PRECEDENCE`: a late, wrong dose is one
  wrong-dose incident.
- It counts as *confirmed* when the pharmacist confirmed one of its discrepancies, else as
  *awaiting review* when one is open or needs follow-up; "not an error" removes it.
- Confirmed errors of high severity are listed for the home to consider reporting
  individually; confirmed errors in no category (a wrong route, late documentation) are
  counted apart, so nothing confirmed disappears from the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from medservice.domain.discrepancy import Code, Decision, Discrepancy, Severity
from medservice.reconcile.rate import administration_of


class Area(Enum):
    """DPSD's areas of collective reporting."""

    ADMINISTRATION = "administration"
    DISPENSING = "dispensing"


class Category(Enum):
    """The collective-reporting categories, in the report's order."""

    MEDICINE_NOT_GIVEN = "medicine_not_given"  # missed, not available (medicin ikke givet)
    WRONG_DOSE = "wrong_dose"
    WRONG_TIME = "wrong_time"
    WRONG_DRUG = "wrong_drug"  # a drug not ordered for the resident at that time
    GIVEN_WHEN_NOT_TO_GIVE = "given_when_not_to_give"  # in a pause, after discontinuation
    PN_LIMIT_EXCEEDED = "pn_limit_exceeded"
    DISPENSING_ERROR = "dispensing_error"

    @property
    def area(self) -> Area:
        return Area.DISPENSING if self is Category.DISPENSING_ERROR else Area.ADMINISTRATION


# Which discrepancy code is an incident of which category; None: not a medication incident
# of collective reporting (a wrong route is an error, but in no DPSD category; late
# documentation and an unevaluated PN dose are documentation, an order needing a manual
# schedule is about the card). Every code is listed (a test holds it).
CODE_CATEGORY: dict[Code, Category | None] = {
    Code.MISSED_DOSE: Category.MEDICINE_NOT_GIVEN,
    Code.NOT_GIVEN: Category.MEDICINE_NOT_GIVEN,  # only its errors: not refused or on hold
    Code.WRONG_DOSE: Category.WRONG_DOSE,
    Code.EXTRA_DOSE: Category.WRONG_DOSE,  # a second dose: the day's dose was wrong
    Code.LATE_DOSE: Category.WRONG_TIME,
    Code.EARLY_DOSE: Category.WRONG_TIME,
    Code.UNORDERED_DRUG: Category.WRONG_DRUG,
    Code.GIVEN_DURING_PAUSE: Category.GIVEN_WHEN_NOT_TO_GIVE,
    Code.GIVEN_AFTER_DISCONTINUATION: Category.GIVEN_WHEN_NOT_TO_GIVE,
    Code.OUTSIDE_TREATMENT_PERIOD: Category.GIVEN_WHEN_NOT_TO_GIVE,
    Code.PN_LIMIT_EXCEEDED: Category.PN_LIMIT_EXCEEDED,
    Code.WRONG_ROUTE: None,
    Code.LATE_DOCUMENTATION: None,
    Code.NEEDS_MANUAL_SCHEDULE: None,
    Code.PN_NOT_EVALUATED: None,
}

# Of an administration's categories, the one it is counted in: where the pharmacist named
# the cause first, then the most serious for the resident.
PRECEDENCE: tuple[Category, ...] = (
    Category.DISPENSING_ERROR, Category.WRONG_DRUG, Category.GIVEN_WHEN_NOT_TO_GIVE,
    Category.PN_LIMIT_EXCEEDED, Category.WRONG_DOSE, Category.MEDICINE_NOT_GIVEN,
    Category.WRONG_TIME)


def dpsd_category(d: Discrepancy, decision: Decision | None) -> Category | None:
    """The collective-reporting category of one discrepancy under its review decision;
    None when it is not an incident of any category. The decision decides only the
    dispensing area: whether an incident is confirmed is `dpsd_counts`' business."""
    if not d.is_error:  # refusals and clinical holds
        return None
    if decision is Decision.CONFIRMED_DISPENSING_ERROR:
        return Category.DISPENSING_ERROR
    return CODE_CATEGORY[d.code]


@dataclass(frozen=True)
class Reviewed:
    """A discrepancy (not withdrawn) and the pharmacist's decision on it, if any."""

    discrepancy: Discrepancy
    decision: Decision | None


@dataclass(frozen=True)
class DpsdCounts:
    """A period's incidents per category: confirmed, and awaiting review (open or needing
    follow-up, none of the administration's discrepancies confirmed)."""

    confirmed: dict[Category, int]
    awaiting_review: dict[Category, int]
    # Administrations with a confirmed error in no category (a wrong route only, say).
    confirmed_outside: int
    # Confirmed errors of high severity, oldest first: to consider reporting individually.
    individual: list[Reviewed] = field(default_factory=list)

    @property
    def confirmed_total(self) -> int:
        return sum(self.confirmed.values())

    @property
    def awaiting_total(self) -> int:
        return sum(self.awaiting_review.values())


def _first(categories: set[Category]) -> Category:
    return next(c for c in PRECEDENCE if c in categories)


def dpsd_counts(entries: Iterable[Reviewed]) -> DpsdCounts:
    """Count the incidents of `entries` (one facility and period, withdrawn ones left out
    by the caller): each administration once, confirmed before awaiting review."""
    by_administration: dict[str, list[Reviewed]] = {}
    for e in entries:
        by_administration.setdefault(administration_of(e.discrepancy), []).append(e)
    confirmed: Counter[Category] = Counter()
    awaiting: Counter[Category] = Counter()
    outside = 0
    individual: list[Reviewed] = []
    for group in by_administration.values():
        sure = {c for e in group if e.decision is not None and e.decision.confirms
                and (c := dpsd_category(e.discrepancy, e.decision)) is not None}
        open_ = {c for e in group
                 if e.decision in (None, Decision.NEEDS_FOLLOW_UP)
                 and (c := dpsd_category(e.discrepancy, e.decision)) is not None}
        if sure:
            confirmed[_first(sure)] += 1
        elif open_:
            awaiting[_first(open_)] += 1
        elif any(e.decision is not None and e.decision.confirms and e.discrepancy.is_error
                 for e in group):
            outside += 1
        individual += [e for e in group if e.decision is not None and e.decision.confirms
                       and e.discrepancy.is_error
                       and e.discrepancy.severity is Severity.HIGH]
    return DpsdCounts(
        {c: confirmed[c] for c in Category}, {c: awaiting[c] for c in Category}, outside,
        sorted(individual, key=lambda e: (e.discrepancy.occurred_at, e.discrepancy.key)))


def counts_rows(counts: DpsdCounts) -> Sequence[tuple[Category, int, int]]:
    """(category, confirmed, awaiting review) in the report's order."""
    return [(c, counts.confirmed[c], counts.awaiting_review[c]) for c in Category]
