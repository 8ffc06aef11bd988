"""PN follow-up (issue 16 part 2): a PN dose's effect must be evaluated within the
facility's pn_evaluation_minutes; one not evaluated by then is PN_NOT_EVALUATED (low, not an
error), found once its deadline has passed, and alerted to the shift lead on duty."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from medservice.domain.access import Role
from medservice.domain.administration import AdministrationRecord, Outcome, PnEffect, PnEvaluation
from medservice.domain.alerts import AlertKind, alert_for
from medservice.domain.facility import Facility, validate_facility
from medservice.reconcile import Code, FacilityRules, Severity, dose_counts, error_rate
from medservice.reconcile.findings import pn_evaluation_deadline
from tests.unit.test_reconcile_builders import (
    CLOCK,
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

RULES = FacilityRules(CLOCK)  # the default: 2 hours
ORDERS = orders_of([version(content())], [version(content("pn", PN_TWICE_DAILY))])
START, END = local(DAY, 0), local(DAY + timedelta(days=1), 0)


def pn(record_id: str = "p", when: datetime | None = None, **kw: object) -> AdministrationRecord:
    return record(record_id, when or at(10), order_id="pn", outcome=Outcome.PN_GIVEN,
                  **kw)  # type: ignore[arg-type]


def evaluated(r: AdministrationRecord, when: datetime) -> AdministrationRecord:
    return replace(r, evaluation=PnEvaluation(PnEffect.PARTIAL, "less pain", "nurse-2",
                                              when, when))


def followups(records: list[AdministrationRecord], now: datetime) -> list[str]:
    """The PN_NOT_EVALUATED texts in English (the facility's Danish is tested once)."""
    return [d.message.render("en") for d in run(ORDERS, records, now=now, rules=RULES)
            if d.code is Code.PN_NOT_EVALUATED and d.message is not None]


def test_the_deadline_is_the_facility_setting_after_the_dose_or_its_documentation() -> None:
    assert pn_evaluation_deadline(at(10), at(10, 1), RULES) == at(12, 1)
    assert pn_evaluation_deadline(at(10), at(9), RULES) == at(12)
    assert pn_evaluation_deadline(at(10), at(10), replace(RULES, pn_evaluation_minutes=30)) \
        == at(10, 30)
    # Documented at 14:00 (after an outage): due at 16:00, not flagged on arrival.
    late = pn(recorded_at=at(14))
    assert followups([late], at(15, 59)) == []
    assert len(followups([late], at(16))) == 1


def test_an_unevaluated_pn_dose_is_found_from_its_deadline_on() -> None:
    assert followups([pn()], at(11, 59)) == []
    found = [d for d in run(ORDERS, [pn()], now=at(12), rules=RULES)
             if d.code is Code.PN_NOT_EVALUATED]
    assert len(found) == 1
    d = found[0]
    assert (d.severity, d.is_error, d.record_id, d.order_id) == (Severity.LOW, False, "p", "pn")
    assert d.occurred_at == at(10)  # when the dose was given, as for every record finding
    assert d.description == (
        "effekten af PN-dosen blev ikke vurderet senest 2026-05-04 12:00 CEST")
    assert d.message is not None
    assert d.message.render("en") == (
        "the effect of the PN dose was not evaluated by 2026-05-04 12:00 CEST")
    # Found again later: the same key, so stored and alerted once.
    again = [x for x in run(ORDERS, [pn()], now=at(20), rules=RULES)
             if x.code is Code.PN_NOT_EVALUATED]
    assert [x.key for x in again] == [d.key]


def test_an_evaluation_in_time_leaves_nothing_and_a_late_one_says_how_late() -> None:
    assert followups([evaluated(pn(), at(11))], at(20)) == []
    assert followups([evaluated(pn(), at(12))], at(20)) == []  # at the deadline is in time
    assert followups([evaluated(pn(), at(12, 30))], at(20)) == [
        "the effect of the PN dose was evaluated 30 min after 2026-05-04 12:00 CEST, when it "
        "was due"]


def test_only_an_active_pn_dose_needs_an_evaluation() -> None:
    morning = due(ORDERS, "o1", 8)
    given = record("g", at(8), dose_id=morning.dose_id)
    refused = record("n", at(10), order_id="pn", outcome=Outcome.NOT_GIVEN, quantity=None)
    assert followups([given, refused, pn(entered_in_error=True)], at(20)) == []
    # A given record on no dose of an order allowing PN that day is a PN dose (ledger §11).
    assert len(followups([record("x", at(10), order_id="pn")], at(20))) == 1


def test_a_pn_dose_not_evaluated_is_no_error_in_the_rate() -> None:
    records = [pn()]
    found = run(ORDERS, records, now=at(13), rules=RULES)
    assert {d.code for d in found} == {Code.MISSED_DOSE, Code.PN_NOT_EVALUATED}
    counts = dose_counts(records, found, START, END)
    assert error_rate(found, *counts).errors == 1  # the missed morning dose only


def test_the_alert_goes_to_the_shift_lead_on_duty_and_does_not_escalate() -> None:
    [d] = [x for x in run(ORDERS, [pn(when=at(13))], now=at(15, 30), rules=RULES)
           if x.code is Code.PN_NOT_EVALUATED]
    alert = alert_for(d, "id-1", CLOCK, at(15, 30), timedelta(minutes=15))
    assert alert is not None
    assert (alert.audience, alert.kind, alert.severity) == (Role.SHIFT_LEAD,
                                                            AlertKind.DISCREPANCY, Severity.LOW)
    assert (alert.shift_id, alert.shift_date) == ("evening", DAY.isoformat())
    assert alert.escalate_at is None and alert.source_key == f"discrepancy:{d.key}"


@pytest.mark.parametrize("minutes", [0, -5, 1441])
def test_the_facility_setting_is_between_a_minute_and_a_day(minutes: int) -> None:
    [v] = validate_facility(Facility("f", "Home", pn_evaluation_minutes=minutes))
    assert v.field == "facility.pn_evaluation_minutes"
    assert validate_facility(Facility("f", "Home", pn_evaluation_minutes=1440)) == []


def test_the_setting_does_not_replan_the_schedule() -> None:
    from medservice.service.materialise import settings_key

    home = Facility("f", "Home")
    assert settings_key(replace(home, pn_evaluation_minutes=30)) == settings_key(home)
    assert settings_key(replace(home, alert_escalation_minutes=30)) != settings_key(home)
