"""The DPSD collective report's rules (issue 16 part 4, docs/domain.md §14a): which
discrepancies are incidents of which category, and how a period's are counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medservice.domain.administration import NotGivenReason, Outcome
from medservice.domain.discrepancy import (
    DEFAULT_SEVERITY,
    Code,
    Decision,
    Discrepancy,
    Severity,
)
from medservice.reconcile.dpsd import (
    CODE_CATEGORY,
    Area,
    Category,
    DpsdCounts,
    Reviewed,
    dpsd_category,
    dpsd_counts,
)
from tests.unit.test_reconcile_builders import at, content, orders_of, record, run, version

T0 = datetime(2026, 3, 10, 7, tzinfo=UTC)
CONFIRMED, DISPENSING = Decision.CONFIRMED_ERROR, Decision.CONFIRMED_DISPENSING_ERROR
NOT_AN_ERROR, FOLLOW_UP = Decision.NOT_AN_ERROR, Decision.NEEDS_FOLLOW_UP


def found(code: Code, subject: str, *, minutes: int = 0, is_error: bool = True,
          severity: Severity | None = None) -> Discrepancy:
    """A discrepancy on the record (or, for a missed dose, the dose) named `subject`."""
    dose = code is Code.MISSED_DOSE
    return Discrepancy(key=f"{code.value}|f/r1|o|{subject}", code=code,
                       severity=severity or DEFAULT_SEVERITY[code], is_error=is_error,
                       facility_id="f", resident_id="r1", order_id="o",
                       dose_id=subject if dose else None, record_id=None if dose else subject,
                       occurred_at=T0 + timedelta(minutes=minutes), description="")


def zero() -> dict[Category, int]:
    return {c: 0 for c in Category}


def counts(**by_name: int) -> dict[Category, int]:
    return zero() | {Category[name.upper()]: n for name, n in by_name.items()}


def test_every_code_has_its_place_in_the_table() -> None:
    assert set(CODE_CATEGORY) == set(Code)
    assert [c.area for c in Category].count(Area.DISPENSING) == 1


@pytest.mark.parametrize(("code", "category"), [
    (Code.MISSED_DOSE, Category.MEDICINE_NOT_GIVEN),
    (Code.NOT_GIVEN, Category.MEDICINE_NOT_GIVEN),
    (Code.WRONG_DOSE, Category.WRONG_DOSE),
    (Code.EXTRA_DOSE, Category.WRONG_DOSE),
    (Code.LATE_DOSE, Category.WRONG_TIME),
    (Code.EARLY_DOSE, Category.WRONG_TIME),
    (Code.UNORDERED_DRUG, Category.WRONG_DRUG),
    (Code.GIVEN_DURING_PAUSE, Category.GIVEN_WHEN_NOT_TO_GIVE),
    (Code.GIVEN_AFTER_DISCONTINUATION, Category.GIVEN_WHEN_NOT_TO_GIVE),
    (Code.OUTSIDE_TREATMENT_PERIOD, Category.GIVEN_WHEN_NOT_TO_GIVE),
    (Code.PN_LIMIT_EXCEEDED, Category.PN_LIMIT_EXCEEDED),
    (Code.WRONG_ROUTE, None),
    (Code.LATE_DOCUMENTATION, None),
    (Code.NEEDS_MANUAL_SCHEDULE, None),
    (Code.PN_NOT_EVALUATED, None),
])
def test_the_category_of_each_code(code: Code, category: Category | None) -> None:
    d = found(code, "x")
    assert dpsd_category(d, None) is category
    assert dpsd_category(d, CONFIRMED) is category
    # The pharmacist naming a dispensing error moves any error into dispensing.
    assert dpsd_category(d, DISPENSING) is Category.DISPENSING_ERROR


def test_refusals_and_clinical_holds_are_no_incidents_whatever_the_decision() -> None:
    orders = orders_of([version(content())])
    records = [record("ref", at(8), outcome=Outcome.NOT_GIVEN, quantity=None,
                      reason=NotGivenReason.REFUSED),
               record("hold", at(18), outcome=Outcome.NOT_GIVEN, quantity=None,
                      reason=NotGivenReason.CLINICAL_HOLD),
               record("gone", at(12), outcome=Outcome.NOT_GIVEN, quantity=None,
                      reason=NotGivenReason.DRUG_UNAVAILABLE)]
    by_record = {d.record_id: d for d in run(orders, records, now=at(21))
                 if d.code is Code.NOT_GIVEN}
    for decision in (None, CONFIRMED, DISPENSING):
        assert dpsd_category(by_record["ref"], decision) is None
        assert dpsd_category(by_record["hold"], decision) is None
    assert dpsd_category(by_record["gone"], None) is Category.MEDICINE_NOT_GIVEN
    tally = dpsd_counts(Reviewed(d, CONFIRMED) for d in by_record.values())
    assert tally.confirmed == counts(medicine_not_given=1)
    assert (tally.confirmed_outside, tally.individual) == (0, [])


def test_a_month_counted_by_hand() -> None:
    wrong = found(Code.WRONG_DOSE, "r-wrong")
    late_wrong = [found(Code.LATE_DOSE, "r-late-wrong"), found(Code.WRONG_DOSE, "r-late-wrong")]
    missed = found(Code.MISSED_DOSE, "d-missed", minutes=-60)
    entries = [
        Reviewed(wrong, CONFIRMED),
        # One administration, two codes: one incident, in the first category by precedence.
        *(Reviewed(d, CONFIRMED) for d in late_wrong),
        Reviewed(missed, CONFIRMED),
        Reviewed(found(Code.WRONG_DOSE, "r-pouch"), DISPENSING),
        Reviewed(found(Code.LATE_DOSE, "r-late"), CONFIRMED),
        Reviewed(found(Code.LATE_DOSE, "r-fine"), NOT_AN_ERROR),  # not an incident
        Reviewed(found(Code.EARLY_DOSE, "r-early"), None),  # awaiting review
        Reviewed(found(Code.EXTRA_DOSE, "r-extra"), FOLLOW_UP),  # awaiting review
        # Confirmed late, its wrong dose still open: confirmed, counted once.
        Reviewed(found(Code.LATE_DOSE, "r-half"), CONFIRMED),
        Reviewed(found(Code.WRONG_DOSE, "r-half"), None),
        Reviewed(found(Code.WRONG_ROUTE, "r-route"), CONFIRMED),  # an error, no category
        Reviewed(found(Code.LATE_DOCUMENTATION, "r-doc"), None),  # no incident at all
        Reviewed(found(Code.NOT_GIVEN, "r-refused", is_error=False), CONFIRMED),
    ]
    tally = dpsd_counts(entries)
    assert tally == DpsdCounts(
        confirmed=counts(wrong_dose=2, medicine_not_given=1, dispensing_error=1,
                         wrong_time=2),
        awaiting_review=counts(wrong_time=1, wrong_dose=1),
        confirmed_outside=1,
        # High and confirmed, oldest first (then by key): the missed dose, the wrong
        # doses (the pouch's too), the wrong route. Not the late doses (medium), not the
        # open wrong dose.
        individual=[entries[3], entries[2], entries[4], entries[0], entries[11]])
    assert (tally.confirmed_total, tally.awaiting_total) == (6, 2)


def test_dispensing_comes_first_and_not_an_error_removes_the_incident() -> None:
    tally = dpsd_counts([Reviewed(found(Code.LATE_DOSE, "r"), CONFIRMED),
                         Reviewed(found(Code.WRONG_DOSE, "r"), DISPENSING),
                         Reviewed(found(Code.MISSED_DOSE, "d"), NOT_AN_ERROR),
                         Reviewed(found(Code.UNORDERED_DRUG, "u"), FOLLOW_UP),
                         Reviewed(found(Code.UNORDERED_DRUG, "u2"), NOT_AN_ERROR)])
    assert tally.confirmed == counts(dispensing_error=1)
    assert tally.awaiting_review == counts(wrong_drug=1)
    assert dpsd_counts([]) == DpsdCounts(zero(), zero(), 0, [])
