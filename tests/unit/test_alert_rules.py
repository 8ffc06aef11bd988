"""Who is alerted of what (DOMAIN.md §9), and resume tokens: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medservice.domain.access import Role
from medservice.domain.alerts import (
    Alert,
    AlertKind,
    ResumePoint,
    alert_for,
    escalation_of,
    parse_resume_token,
    resume_token,
)
from medservice.domain.clock import FacilityClock
from medservice.domain.discrepancy import Code, Discrepancy, Severity
from medservice.domain.errors import InvalidArgument
from medservice.domain.facility import Facility

CLOCK = FacilityClock.from_facility(Facility("f", "Home"))
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
FIFTEEN = timedelta(minutes=15)


def _found(code: Code, severity: Severity, at: datetime) -> Discrepancy:
    return Discrepancy(key=f"{code.value}|f|r1|o|d", code=code, severity=severity,
                       is_error=True, facility_id="f", resident_id="r1", order_id="o",
                       dose_id="d", record_id=None, occurred_at=at,
                       description="dose due 02:00 not recorded by 03:00",
                       known_at_administration=None)


def test_a_missed_dose_goes_to_the_shift_lead_of_the_shift_that_owned_it() -> None:
    # 02:00 Copenhagen on the 24th belongs to the night shift that began on the 23rd.
    due = datetime(2026, 11, 24, 1, tzinfo=UTC)
    a = alert_for(_found(Code.MISSED_DOSE, Severity.HIGH, due), "id1", CLOCK, NOW, FIFTEEN)
    assert a is not None
    assert (a.kind, a.audience) == (AlertKind.MISSED_DOSE, Role.SHIFT_LEAD)
    assert (a.shift_id, a.shift_date) == ("night", "2026-11-23")
    assert a.escalate_at == NOW + FIFTEEN
    assert a.source_key == "discrepancy:MISSED_DOSE|f|r1|o|d"


def test_other_high_discrepancies_go_to_the_pharmacist_and_lesser_ones_nowhere() -> None:
    wrong = alert_for(_found(Code.WRONG_DOSE, Severity.HIGH, NOW), "id2", CLOCK, NOW, FIFTEEN)
    assert wrong is not None
    assert (wrong.kind, wrong.audience, wrong.escalate_at) == (
        AlertKind.DISCREPANCY, Role.PHARMACIST, None)
    assert wrong.summary.startswith("WRONG_DOSE")
    for code, severity in ((Code.LATE_DOSE, Severity.MEDIUM), (Code.NOT_GIVEN, Severity.INFO)):
        assert alert_for(_found(code, severity, NOW), "id3", CLOCK, NOW, FIFTEEN) is None


def test_an_escalation_is_the_pharmacists_and_raised_once_per_alert() -> None:
    missed = alert_for(_found(Code.MISSED_DOSE, Severity.HIGH, NOW), "id1", CLOCK, NOW,
                       FIFTEEN)
    assert missed is not None
    stored = Alert(missed.alert_id, 7, "f", missed.kind, missed.audience, missed.severity,
                   missed.summary, NOW, missed.shift_id, missed.shift_date, "id1", "r1",
                   None, None, "")
    e = escalation_of(stored, NOW + FIFTEEN, CLOCK)
    assert (e.kind, e.audience, e.escalates) == (AlertKind.ESCALATION, Role.PHARMACIST,
                                                 missed.alert_id)
    assert e.alert_id == escalation_of(stored, NOW + 2 * FIFTEEN, CLOCK).alert_id  # same source
    # Since when, on the facility's clock with its zone (12:00 UTC is 13:00 CET): one clock.
    assert e.summary.startswith("not acknowledged since 13:00 CET: MISSED_DOSE")
    assert "UTC" not in e.summary


def test_resume_tokens_round_trip_and_refuse_another_facility_or_garbage() -> None:
    token = resume_token(ResumePoint("f", 42))
    assert parse_resume_token(token, "f") == ResumePoint("f", 42)
    for bad, facility in ((token, "g"), ("garbage", "f"), ("", "f"),
                          (resume_token(ResumePoint("f", -1)), "f")):
        with pytest.raises(InvalidArgument) as info:
            parse_resume_token(bad, facility)
        assert info.value.violations[0].field == "resume_token"
