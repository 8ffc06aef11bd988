"""The round's use cases against the in-memory unit of work (tests/fakes.py): check,
record, correct and reconcile, with their rules and their stored results, in
milliseconds and without a database (issue 14). The same behaviour on SQLite and
PostgreSQL is tests/e2e/test_administration.py's and tests/integration/test_one_truth.py's."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from medservice.domain.access import Role
from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import Drug
from medservice.domain.rounds import DOSE_ID_REACH, DoseStatus
from medservice.reconcile import Code, ProposedDose, Verdict
from medservice.service import administration as admin
from medservice.service import cards, facilities, reconciliation, rounds
from medservice.store.discrepancies import discrepancy_id
from tests.fakes import FakeDatabase
from tests.unit.test_reconcile_builders import (
    DAY,
    EPOCH,
    MORNING_EVENING,
    at,
    content,
    local,
)

F, R = "home", "r1"


MIRRORED = at(0)  # the home's first day with medservice: earlier doses are not ours


def _home(mirrored: datetime = MIRRORED, valid_from: datetime = EPOCH) -> FakeDatabase:
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, Facility(F, "Home"), mirrored)
        facilities.create_resident(u, Resident(R, F, "010145-1234", "A", "1"), mirrored)
        cards.sync_card(u, F, R, 1, [content(dosage_=MORNING_EVENING)], valid_from, mirrored)
        u.commit()
    return db


def _morning(db: FakeDatabase) -> str:
    """The id of the morning dose of DAY, as known once everything is mirrored."""
    with db(write=False) as u:
        doses, _, _ = rounds.resident_doses(u, F, R, at(0), at(0) + timedelta(days=1),
                                         at(0) + timedelta(days=3))
    return doses[0][0].dose_id


def _record(dose_id: str | None, when: datetime, *, record_id: str = "a",
            quantity: str | None = "1", outcome: Outcome = Outcome.GIVEN,
            recorded: datetime | None = None) -> AdministrationRecord:
    from decimal import Decimal
    return AdministrationRecord(
        record_id=record_id, facility_id=F, resident_id=R, order_id="o1", drug_id="drug-a",
        outcome=outcome, administered_at=when, recorded_at=recorded or when,
        performer="nurse-1", dose_id=dose_id,
        quantity=Decimal(quantity) if quantity is not None else None,
        not_given_reason=NotGivenReason.REFUSED if outcome is Outcome.NOT_GIVEN else None)


def _record_dose(db: FakeDatabase, record: AdministrationRecord, now: datetime,
                 ack: frozenset[str] = frozenset()) -> admin.Recorded:
    with db() as u:
        done = admin.record_dose(u, record, set(ack), now)
        u.commit()
    return done


def _status(db: FakeDatabase, now: datetime) -> DoseStatus:
    with db(write=False) as u:
        [entry] = rounds.shift_schedule(u, F, DAY, "day", now).residents
    [(dose, _)] = entry.doses
    return entry.state_of(dose.dose_id).status


def test_check_then_record_on_time_stores_nothing_and_settles_the_dose() -> None:
    db = _home()
    dose = _morning(db)
    with db(write=False) as u:
        check = admin.checked(u, ProposedDose(F, R, "drug-a", at(8), dose_id=dose,
                                              quantity=Decimal(1)), at(8)).result
    assert (check.verdict, check.reasons) == (Verdict.OK, ())
    done = _record_dose(db, _record(dose, at(8)), at(8))
    assert (done.record.dose_id, done.discrepancy_ids) == (dose, [])
    assert db.open_discrepancies() == []
    assert _status(db, at(10)) is DoseStatus.GIVEN


def _dose_on(db: FakeDatabase, days: int) -> str:
    """The id of the first dose `days` after DAY's."""
    start = at(0) + timedelta(days=days)
    with db(write=False) as u:
        doses, _, _ = rounds.resident_doses(u, F, R, start, start + timedelta(days=1),
                                         start + timedelta(days=3))
    return doses[0][0].dose_id


def _check_id(db: FakeDatabase, dose_id: str) -> admin.CheckResult:
    with db(write=False) as u:
        return admin.checked(u, ProposedDose(F, R, "drug-a", at(8), dose_id=dose_id,
                                             quantity=Decimal(1)), at(8)).result


def test_a_dose_id_never_scheduled_is_not_found_by_the_check_as_by_the_record() -> None:
    db = _home()
    for made_up in ("00000000-0000-5000-8000-000000000000", "nonsense",
                    _dose_on(db, DOSE_ID_REACH.days + 2)):  # a real id, but beyond reach
        with pytest.raises(NotFound) as checked:
            _check_id(db, made_up)
        with pytest.raises(NotFound) as recorded:
            _record_dose(db, _record(made_up, at(8)), at(8))
        assert checked.value.reason == recorded.value.reason == "DOSE_NOT_FOUND"
        assert "no such dose" in str(checked.value) and "no such dose" in str(recorded.value)
    assert db.stored.records == {}


def test_a_real_dose_outside_its_time_is_not_due_and_checked_against_the_order() -> None:
    db = _home()
    next_week = _dose_on(db, 7)  # the carer holds next week's morning dose
    result = _check_id(db, next_week)
    assert (result.verdict, [r.code.value for r in result.reasons]) == (
        Verdict.WARN, ["DOSE_NOT_DUE"])
    assert result.matched_dose is not None and result.matched_dose.dose_id == _morning(db)
    # RecordDose keeps refusing a dose id that is not due then, saying which it is.
    with pytest.raises(NotFound) as recorded:
        _record_dose(db, _record(next_week, at(8)), at(8))
    assert recorded.value.reason == "DOSE_NOT_FOUND" and "not due" in str(recorded.value)


def test_a_second_record_of_one_dose_is_refused_naming_the_first() -> None:
    db = _home()
    dose = _morning(db)
    _record_dose(db, _record(dose, at(8)), at(8))
    with pytest.raises(AlreadyExists) as info:
        _record_dose(db, _record(dose, at(8, 1), record_id="b"), at(8, 1))
    assert info.value.reason == "DOSE_ALREADY_RECORDED"
    assert info.value.metadata["record"].endswith("/administrations/a")


def test_a_stop_is_recorded_only_acknowledged_and_then_raises_its_discrepancy() -> None:
    db = _home()
    dose = _morning(db)
    with pytest.raises(FailedPrecondition) as info:
        _record_dose(db, _record(dose, at(8), quantity="3"), at(8))
    assert (info.value.reason, info.value.metadata["reasons"]) == (
        "CHECK_NOT_ACKNOWLEDGED", "WRONG_DOSE")
    assert db.stored.records == {}  # nothing half-done
    done = _record_dose(db, _record(dose, at(8), quantity="3"), at(8),
                        frozenset({"WRONG_DOSE"}))
    assert [d.code for d in db.open_discrepancies()] == [Code.WRONG_DOSE]
    assert len(done.discrepancy_ids) == 1
    assert [a.audience for a in db.alerts()] == [Role.PHARMACIST]


def test_a_corrected_record_opens_the_dose_and_its_miss_is_alerted_once() -> None:
    db = _home()
    dose = _morning(db)
    _record_dose(db, _record(dose, at(8)), at(8))
    with db() as u:
        admin.correct_record(u, F, R, "a", "wrong resident", "nurse-2", at(8, 30))
        u.commit()
    assert _status(db, at(8, 30)) is DoseStatus.DUE
    for now in (at(10), at(11)):  # reconciled twice: one discrepancy, one alert
        with db() as u:
            reconciliation.reconcile_resident(u, F, R, at(8), at(8), now)
            u.commit()
    assert [(d.code, d.dose_id) for d in db.open_discrepancies()] == [
        (Code.MISSED_DOSE, dose)]
    assert [a.audience for a in db.alerts()] == [Role.SHIFT_LEAD]
    assert _status(db, at(11)) is DoseStatus.MISSED


def test_a_missed_dose_is_alerted_naming_the_drug_as_ordered_when_it_was_due() -> None:
    """A switch of drug at noon (to a generic, say): the morning's missed dose names the
    old drug, the evening's the new one (the alerts read only the versions' drugs)."""
    db = _home(mirrored=EPOCH)
    generic = Drug("Paracetamol", "drug-b", "N02BE01", "tablet", "500 mg")
    with db() as u:
        cards.sync_card(u, F, R, 2, [replace(content(dosage_=MORNING_EVENING), drug=generic)],
                        at(12), at(12))
        u.commit()
    with db() as u:
        reconciliation.reconcile_resident(u, F, R, at(8), at(18), local(DAY, 23))
        u.commit()
    due = {discrepancy_id(d.key): d.occurred_at for d in db.open_discrepancies()
           if d.code is Code.MISSED_DOSE}
    named = {due[a.discrepancy_id]: a.summary for a in db.alerts()
             if a.discrepancy_id in due}
    assert {at(8), at(18)} <= set(named)  # and the day around, reconciled with it
    assert "Drug drug-a" in named[at(8)] and "Paracetamol" not in named[at(8)]
    assert "Paracetamol 500 mg" in named[at(18)]


def test_a_wrong_dose_recorded_for_a_day_before_the_order_was_mirrored_is_stored() -> None:
    """Issue 12: reconciled against the order as it was then; only a missed dose is exempt
    before the mirror knew its order."""
    mirrored = local(DAY + timedelta(days=1), 12)
    db = _home(mirrored=mirrored, valid_from=EPOCH)
    dose = _morning(db)
    done = _record_dose(db, _record(dose, at(8), quantity="3", recorded=mirrored),
                        mirrored, frozenset({"WRONG_DOSE", "LATE_DOCUMENTATION"}))
    codes = {d.code for d in db.open_discrepancies()}
    assert Code.WRONG_DOSE in codes and Code.MISSED_DOSE not in codes
    assert done.discrepancy_ids


def test_an_order_added_later_is_not_missed_before_the_mirror_knew_it() -> None:
    """Issue 12: 'never missed before the mirror knew' is per order, not per resident."""
    db = _home(mirrored=EPOCH)  # o1 mirrored long ago
    synced = local(DAY, 12)
    with db() as u:
        cards.sync_card(u, F, R, 2, [content(dosage_=MORNING_EVENING),
                                     content("o2", MORNING_EVENING, drug_id="drug-b")],
                        synced - timedelta(days=5), synced)
        u.commit()
    with db() as u:
        reconciliation.reconcile_resident(u, F, R, synced - timedelta(days=5), synced, synced)
        u.commit()
    missed = [d for d in db.open_discrepancies() if d.code is Code.MISSED_DOSE]
    assert missed and {d.order_id for d in missed} == {"o1"}


def test_a_record_in_the_future_is_refused_naming_the_field() -> None:
    db = _home()
    with pytest.raises(InvalidArgument) as info:
        _record_dose(db, _record(None, at(9)), at(8))
    assert [v.field for v in info.value.violations] == ["record.administration_time"]
    assert db.stored.records == {}


def _correct(db: FakeDatabase, record_id: str, now: datetime) -> None:
    with db() as u:
        admin.correct_record(u, F, R, record_id, "wrong quantity typed", "nurse-2", now)
        u.commit()


def test_a_record_after_a_correction_names_the_latest_record_it_replaces() -> None:
    db = _home()
    dose = _morning(db)
    first = _record_dose(db, _record(dose, at(8)), at(8)).record
    assert first.replaces_record_id is None  # a first record replaces nothing
    _correct(db, "a", at(8, 5))
    second = _record_dose(db, _record(dose, at(8), record_id="b"), at(8, 10)).record
    assert second.replaces_record_id == "a"
    assert db.stored.records["b"][0].replaces_record_id == "a"  # as stored
    # Corrected again: the next record replaces the latest one, not the first.
    _correct(db, "b", at(8, 15))
    third = _record_dose(db, _record(dose, at(8), record_id="c"), at(8, 20)).record
    assert third.replaces_record_id == "b"


def test_a_record_on_a_dose_already_settled_or_on_no_dose_replaces_nothing() -> None:
    db = _home()
    dose = _morning(db)
    _record_dose(db, _record(dose, at(8), outcome=Outcome.NOT_GIVEN, quantity=None), at(8))
    _correct(db, "a", at(8, 5))
    refused = _record_dose(db, _record(dose, at(8), record_id="b", outcome=Outcome.NOT_GIVEN,
                                       quantity=None, recorded=at(8, 10)), at(8, 10)).record
    assert refused.replaces_record_id == "a"
    # Given after the refusal: "b" settles the dose and was the replacement already.
    given = _record_dose(db, _record(dose, at(8, 30), record_id="c"), at(8, 30)).record
    assert given.replaces_record_id is None
    # A PN dose (no scheduled dose) replaces nothing, even right after a correction.
    _correct(db, "c", at(8, 40))
    pn = _record_dose(db, _record(None, at(13), record_id="d", outcome=Outcome.PN_GIVEN),
                      at(13)).record
    assert pn.dose_id is None and pn.replaces_record_id is None


def test_a_record_replaces_a_corrected_one_though_a_refusal_before_it_settles_the_dose(
        ) -> None:
    """Refused (a), then given (b), b corrected: the dose is still settled by the refusal,
    and the next given record (c) replaces b; the refusal came before the correction."""
    db = _home()
    dose = _morning(db)
    _record_dose(db, _record(dose, at(8), outcome=Outcome.NOT_GIVEN, quantity=None), at(8))
    _record_dose(db, _record(dose, at(8, 30), record_id="b"), at(8, 30))
    _correct(db, "b", at(8, 40))
    again = _record_dose(db, _record(dose, at(8, 30), record_id="c"), at(8, 45)).record
    assert again.replaces_record_id == "b"


def test_the_replaced_record_is_the_latest_corrected_not_the_highest_id() -> None:
    from dataclasses import replace

    from medservice.domain.administration import replaced_on_dose

    early = replace(_record("d1", at(8), record_id="z"), entered_in_error=True,
                    corrected_at=at(8, 5))
    late = replace(_record("d1", at(8), record_id="b"), entered_in_error=True,
                   corrected_at=at(8, 20))
    other = replace(_record("d2", at(8), record_id="c"), entered_in_error=True,
                    corrected_at=at(9))
    active = _record("d1", at(8), record_id="y")
    records = [late, other, early, active]
    assert replaced_on_dose("d1", records) == "b"
    assert replaced_on_dose("d2", records) == "c"
    assert replaced_on_dose("d3", records) is None
    assert replaced_on_dose(None, records) is None  # PN: no dose to tie them
    # A record made after the latest correction was its replacement already.
    after = _record("d1", at(8), record_id="x", recorded=at(8, 25))
    assert replaced_on_dose("d1", [*records, after]) is None


@pytest.mark.parametrize(("typed_after", "late"), [(timedelta(hours=1), False),
                                                   (timedelta(hours=5), True)])
def test_a_not_given_sent_without_a_time_is_dated_at_its_dose_and_late_if_typed_in_late(
        typed_after: timedelta, late: bool) -> None:
    """Dated at the dose's due time, not when typed in; typed in past the facility's
    late-documentation limit (240 minutes by default) it is LATE_DOCUMENTATION."""
    db = _home()
    dose = _morning(db)
    with db(write=False) as u:
        doses, _, _ = rounds.resident_doses(u, F, R, at(0), at(0) + timedelta(days=1),
                                            at(0) + timedelta(days=3))
    due = next(d.due_time for d, _ in doses if d.dose_id == dose)
    typed = due + typed_after
    with db() as u:
        done = admin.record_dose(u, _record(dose, typed, outcome=Outcome.NOT_GIVEN,
                                            quantity=None, recorded=typed),
                                 set(), typed, dated=False)
        u.commit()
    assert done.record.administered_at == due
    codes = {d.code for d in db.open_discrepancies()}
    assert (Code.LATE_DOCUMENTATION in codes) is late
