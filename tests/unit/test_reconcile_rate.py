"""The error rate and the counts behind it (DOMAIN.md §8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from medservice.domain.administration import NotGivenReason, Outcome
from medservice.reconcile import Code, DoseCounts, ErrorRate, dose_counts, error_rate
from tests.unit.test_reconcile_builders import (
    DAY,
    PN_TWICE_DAILY,
    at,
    content,
    due,
    local,
    orders_of,
    record,
    run,
    version,
)

START, END = local(DAY, 0), local(DAY + timedelta(days=1), 0)


def test_the_rate_of_a_reconciled_day() -> None:
    orders = orders_of([version(content())], [version(content("pn", PN_TWICE_DAILY))])
    morning = due(orders, "o1", 8)
    records = [
        # Wrong dose and wrong route on one record: one dose with an error.
        record("m", at(8), dose_id=morning.dose_id, quantity="2", route="iv"),
        record("p1", at(10), order_id="pn", outcome=Outcome.PN_GIVEN),
        record("p2", at(11), order_id="pn", outcome=Outcome.PN_GIVEN),
        record("p3", at(12), order_id="pn", outcome=Outcome.PN_GIVEN),  # over the limit
        record("ref", at(12), order_id="pn", outcome=Outcome.NOT_GIVEN, quantity=None,
               reason=NotGivenReason.REFUSED),  # not an error
        record("x", at(9), dose_id=morning.dose_id, entered_in_error=True),  # not counted
        record("y", local(DAY, 0) - timedelta(minutes=1)),  # before the period
    ]
    found = run(orders, records, now=at(21))  # and the evening dose is missed
    assert {d.code for d in found} == {Code.WRONG_DOSE, Code.WRONG_ROUTE, Code.MISSED_DOSE,
                                       Code.PN_LIMIT_EXCEEDED, Code.NOT_GIVEN}
    counts = dose_counts(records, found, START, END)
    assert counts == DoseCounts(given=4, not_given=2)
    rate = error_rate(found, *counts)
    # By code, the record with two errors counts under each: four codes, three errors.
    assert rate == ErrorRate(errors=3, given=4, not_given=2, percent=Decimal("50.00"),
                             by_code={Code.WRONG_DOSE: 1, Code.WRONG_ROUTE: 1,
                                      Code.PN_LIMIT_EXCEEDED: 1, Code.MISSED_DOSE: 1})


def test_the_rate_has_two_decimals_rounded_half_up_and_is_zero_without_doses() -> None:
    found = run(orders_of([version(content())]), [], now=at(21))  # two missed doses
    assert error_rate(found, 1, 2).percent == Decimal("66.67")
    assert error_rate(found[:1], 2, 1).percent == Decimal("33.33")
    assert error_rate(found[:1], 7, 1).percent == Decimal("12.50")
    assert error_rate(found, 0, 0) == ErrorRate(2, 0, 0, Decimal("0.00"),
                                                {Code.MISSED_DOSE: 2})


def test_a_manual_schedule_flag_is_no_administration_error() -> None:
    from medservice.domain.dosage import FreeTextDosage

    found = run(orders_of([version(content("ft", FreeTextDosage("as agreed")))]), [],
                now=at(21))
    assert [d.code for d in found] == [Code.NEEDS_MANUAL_SCHEDULE] and found[0].is_error
    assert error_rate(found, 3, 0).errors == 0
    assert error_rate(found, 3, 0).by_code == {}
    not_errors = [replace(found[0], code=Code.NOT_GIVEN, is_error=False, key="k")]
    assert error_rate(not_errors, 3, 0).errors == 0
