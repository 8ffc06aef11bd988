"""Approval of card changes (issue 16 part 1): the classification of an order's change as
clinical or administrative, the pending change later versions join, the Danish
before/after, and the overdue rule for the inspection checks. No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from medservice.domain.alerts import AlertKind, card_change_alert
from medservice.domain.card_changes import (
    Aspect,
    ChangeStatus,
    PendingChange,
    classify_change,
    describe_change,
    overdue_changes,
    pending_after,
)
from medservice.domain.discrepancy import Severity
from medservice.domain.dosage import DosagePeriod, StructuredDosage
from medservice.domain.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from medservice.domain.facility import Facility, Resident, validate_facility
from medservice.domain.orders import DispensingMode, Drug, OrderContent, Pause
from medservice.domain.rounds import NoteKind, build_shift_schedule
from medservice.i18n import rendered
from medservice.reconcile import CheckCode, ProposedDose, Verdict, check_dose
from medservice.service import card_changes, cards, facilities
from tests.fakes import FakeDatabase
from tests.unit.test_reconcile_builders import (
    CLOCK,
    DAY,
    EPOCH,
    FACILITY,
    MORNING,
    MORNING_EVENING,
    RESIDENT,
    RULES,
    at,
    content,
    version,
)

PARA = replace(content("o1", MORNING_EVENING),
               drug=Drug("Panodil", "28101", "N02BE01", "tabletter", "500 mg"),
               indication="smerter", source_version="v1")


def aspects(before: OrderContent | None, after: OrderContent | None
            ) -> tuple[tuple[Aspect, ...], tuple[Aspect, ...]]:
    found = classify_change(before, after)
    return found.clinical, found.administrative


def with_text(c: OrderContent, text: str) -> OrderContent:
    dosage = c.dosage
    assert isinstance(dosage, StructuredDosage)
    return replace(c, dosage=replace(dosage, periods=tuple(
        replace(p, supplementary_text=text) for p in dosage.periods)))


@pytest.mark.parametrize(("after", "clinical"), [
    (replace(PARA, drug=replace(PARA.drug, atc_code="N02AA01", name="Morfin")),
     (Aspect.DRUG,)),
    (replace(PARA, drug=replace(PARA.drug, strength="1 g")), (Aspect.STRENGTH,)),
    (replace(PARA, drug=replace(PARA.drug, form="brusetabletter")), (Aspect.FORM,)),
    (replace(PARA, dosage=MORNING), (Aspect.DOSAGE,)),
    (replace(PARA, route="rektal"), (Aspect.ROUTE,)),
    (replace(PARA, indication="feber"), (Aspect.INDICATION,)),
    (replace(PARA, treatment_end=date(2026, 6, 1)), (Aspect.TREATMENT_DATES,)),
    (replace(PARA, treatment_started_previously=True), (Aspect.TREATMENT_DATES,)),
    (replace(PARA, dispensing_mode=DispensingMode.DOSE_DISPENSED), (Aspect.DISPENSING,)),
    (replace(PARA, time_critical=True), (Aspect.TIMING,)),
    (replace(PARA, window_minutes=30), (Aspect.TIMING,)),
    (replace(PARA, pauses=(Pause(at(10), None),)), (Aspect.PAUSE,)),
    (replace(PARA, discontinued_at=at(10)), (Aspect.DISCONTINUATION,)),
    (None, (Aspect.REMOVED,)),
])
def test_each_clinical_field_is_a_clinical_change(after: OrderContent | None,
                                                  clinical: tuple[Aspect, ...]) -> None:
    found = classify_change(PARA, after)
    assert found.clinical == clinical
    assert found.needs_approval


def test_a_new_order_is_clinical_and_nothing_is_no_change() -> None:
    assert aspects(None, PARA) == ((Aspect.NEW_ORDER,), ())
    assert aspects(PARA, PARA) == ((), ())
    assert aspects(None, None) == ((), ())


@pytest.mark.parametrize(("after", "administrative"), [
    # Another trade name (and drug id) of the same substance, strength and form.
    (replace(PARA, drug=replace(PARA.drug, name="Pamol", drug_id="41922")),
     (Aspect.TRADE_NAME,)),
    (with_text(PARA, "tages med vand"), (Aspect.DOSAGE_TEXT,)),
    # Reimbursement and the like: the mirror sees them as the source's version only.
    (replace(PARA, source_version="v2"), (Aspect.SOURCE_VERSION,)),
    # Case and spacing of texts are no change.
    (replace(PARA, route=" ORAL ", indication="Smerter"), ()),
])
def test_administrative_changes_need_no_approval(after: OrderContent,
                                                 administrative: tuple[Aspect, ...]) -> None:
    found = classify_change(PARA, after)
    assert found.clinical == ()
    assert found.administrative == administrative
    assert not found.needs_approval


def test_without_atc_codes_another_drug_id_is_another_drug() -> None:
    """Safety first: without the substance, a new drug id could be any drug."""
    bare = replace(PARA, drug=replace(PARA.drug, atc_code=""))
    assert aspects(bare, replace(bare, drug=replace(bare.drug, drug_id="9", name="Pamol"))) \
        == ((Aspect.DRUG,), ())
    assert aspects(bare, replace(bare, drug=replace(bare.drug, name="PANODIL "))) == ((), ())
    # The same substance in another strength is clinical even under a new trade name.
    other = replace(PARA, drug=replace(PARA.drug, name="Pamol", strength="1 g"))
    assert aspects(PARA, other) == ((Aspect.STRENGTH,), (Aspect.TRADE_NAME,))


def test_a_dosage_change_and_a_text_change_together_are_clinical() -> None:
    after = with_text(replace(PARA, dosage=MORNING), "ny tekst")
    assert aspects(PARA, after) == ((Aspect.DOSAGE,), ())


def test_an_empty_period_added_is_a_dosage_change() -> None:
    dosage = PARA.dosage
    assert isinstance(dosage, StructuredDosage)
    stop = DosagePeriod(date(2026, 6, 1), date(2026, 6, 7), 1, "", ())
    after = replace(PARA, dosage=replace(dosage, periods=(*dosage.periods, stop)))
    assert aspects(PARA, after) == ((Aspect.DOSAGE,), ())


def test_before_and_after_are_danish_aspect_by_aspect_in_local_time() -> None:
    after = replace(PARA, dosage=MORNING, discontinued_at=at(10))
    found = classify_change(PARA, after)
    before_text, after_text = describe_change(PARA, after, found.clinical, CLOCK)
    assert before_text == ("seponering: ikke seponeret; dosering: "
                           "1 tablet morgen og aften")
    # 10:00 is local: the facility clock's time (Copenhagen), not UTC.
    assert after_text == (f"seponering: seponeret {CLOCK.local(at(10)):%d-%m-%Y} 10:00; "
                          "dosering: 1 tablet morgen")
    new_before, new_after = describe_change(None, PARA, (Aspect.NEW_ORDER,), CLOCK)
    assert new_before == "ikke på medicinkortet"
    assert new_after == "Panodil 500 mg tabletter; 1 tablet morgen og aften; oral"


def _pending(**kw: object) -> PendingChange:
    v1, v2 = version(PARA, 1), version(replace(PARA, dosage=MORNING), 2)
    change = pending_after(None, None, v1, v2, CLOCK, at(9))
    assert change is not None
    return replace(change, **kw)  # type: ignore[arg-type]


def test_a_clinical_version_opens_a_pending_change_and_later_ones_join_it() -> None:
    v1 = version(PARA, 1)
    v2 = version(replace(PARA, dosage=MORNING), 2)
    assert pending_after(None, None, v1, version(replace(PARA, source_version="v9"), 2),
                         CLOCK, at(9)) is None  # administrative only
    first = pending_after(None, None, v1, v2, CLOCK, at(9))
    assert first is not None
    assert (first.first_version, first.base_version, first.version, first.aspects,
            first.status, first.etag) == (2, 1, 2, (Aspect.DOSAGE,), ChangeStatus.PENDING, "1")
    # A route change before the approval joins it, against what was approved (v1).
    v3 = version(replace(v2.content, route="rektal"), 3)
    joined = pending_after(first, PARA, v2, v3, CLOCK, at(10))
    assert joined is not None
    assert (joined.first_version, joined.base_version, joined.version, joined.aspects) == (
        2, 1, 3, (Aspect.DOSAGE, Aspect.ROUTE))
    assert joined.etag != first.etag and joined.detected_at == at(9)
    # An administrative version after it leaves what it says, and its etag, alone.
    v4 = version(replace(v3.content, source_version="v4"), 4)
    same = pending_after(joined, PARA, v3, v4, CLOCK, at(11))
    assert same is not None and same.etag == joined.etag and same.version == 4
    # Back to what was approved: nothing left to approve.
    v5 = version(replace(PARA, source_version="v5"), 5)
    back = pending_after(same, PARA, v4, v5, CLOCK, at(12))
    assert back is not None and back.status is ChangeStatus.WITHDRAWN


def test_after_an_approval_the_next_change_is_compared_with_the_approved_version() -> None:
    approved = _pending(status=ChangeStatus.APPROVED, approved_at=at(10), approved_by="n")
    v2 = version(replace(PARA, dosage=MORNING), 2)
    v3 = version(replace(v2.content, route="rektal"), 3)
    nxt = pending_after(approved, PARA, v2, v3, CLOCK, at(11))
    assert nxt is not None
    assert (nxt.first_version, nxt.base_version, nxt.aspects) == (3, 2, (Aspect.ROUTE,))


def test_a_removal_and_a_new_order_are_pending_changes() -> None:
    v1 = version(PARA, 1)
    removed = replace(v1, version=2, removed=True)
    gone = pending_after(None, None, v1, removed, CLOCK, at(9))
    assert gone is not None and gone.aspects == (Aspect.REMOVED,) and gone.stops
    assert gone.after == "ikke på medicinkortet"
    new = pending_after(None, None, None, v1, CLOCK, at(9))
    assert new is not None and new.base_version == 0 and new.aspects == (Aspect.NEW_ORDER,)
    assert not new.stops


def test_overdue_changes_are_those_pending_longer_than_the_setting() -> None:
    now = at(12)
    old = _pending(detected_at=now - timedelta(minutes=1440), order_id="a")
    older = _pending(detected_at=now - timedelta(days=3), order_id="b")
    young = _pending(detected_at=now - timedelta(minutes=1439), order_id="c")
    done = _pending(detected_at=now - timedelta(days=5), order_id="d",
                    status=ChangeStatus.APPROVED)
    assert [c.order_id for c in overdue_changes([young, old, done, older], now, 1440)] == [
        "b", "a"]
    assert [c.order_id for c in overdue_changes([young], now, 60)] == ["c"]
    assert overdue_changes([], now, 1440) == []


def test_the_overdue_setting_defaults_to_a_day_and_is_bounded() -> None:
    home = Facility("f", "Home")
    assert home.approval_overdue_minutes == 1440
    assert validate_facility(replace(home, approval_overdue_minutes=10080)) == []
    for bad in (0, 10081):
        [v] = validate_facility(replace(home, approval_overdue_minutes=bad))
        assert v.field == "facility.approval_overdue_minutes"


def test_the_shift_lead_is_alerted_once_per_clinical_version() -> None:
    change = _pending()
    alert = card_change_alert(change, 2, CLOCK, at(9))
    assert (alert.kind, alert.audience.value, alert.severity) == (
        AlertKind.CARD_CHANGE, "shift_lead", Severity.MEDIUM)
    assert alert.shift_id == "day" and "dosering" in alert.summary
    assert alert.alert_id == card_change_alert(change, 2, CLOCK, at(10)).alert_id
    assert alert.alert_id != card_change_alert(change, 3, CLOCK, at(9)).alert_id
    stop = card_change_alert(replace(change, aspects=(Aspect.DISCONTINUATION,)), 3, CLOCK,
                             at(9))
    assert stop.severity is Severity.HIGH


def test_the_check_warns_of_an_unapproved_change_of_the_dose_order() -> None:
    orders = {"o1": [version(PARA, 1)]}
    proposal = ProposedDose(FACILITY, RESIDENT, PARA.drug.drug_id, at(8), "o1",
                            quantity=Decimal("1"), route="oral")
    plain = check_dose(proposal, doses=[], records=[], orders=orders, rules=RULES, now=at(8))
    warned = check_dose(proposal, doses=[], records=[], orders=orders, rules=RULES, now=at(8),
                        unapproved={"o1": _pending()})
    codes = [r.code for r in warned.reasons]
    assert CheckCode.CHANGE_NOT_APPROVED in codes
    assert CheckCode.CHANGE_NOT_APPROVED not in [r.code for r in plain.reasons]
    assert warned.verdict in (Verdict.WARN, Verdict.STOP)
    other = check_dose(proposal, doses=[], records=[], orders=orders, rules=RULES, now=at(8),
                       unapproved={"o2": _pending(order_id="o2")})
    assert CheckCode.CHANGE_NOT_APPROVED not in [r.code for r in other.reasons]


def test_the_round_list_marks_an_order_with_an_unapproved_change() -> None:
    resident = Resident(RESIDENT, FACILITY, "0101011234", "R", "1")
    versions = {RESIDENT: {"o1": [version(PARA, 1)]}}
    plain = build_shift_schedule(FACILITY, CLOCK, DAY, "day", [resident], versions, at(9))
    marked = build_shift_schedule(FACILITY, CLOCK, DAY, "day", [resident], versions, at(9),
                                  pending={RESIDENT: {"o1": _pending()}})
    assert [n.kind for n in plain.residents[0].notes] == []
    [note] = marked.residents[0].notes
    assert note.kind is NoteKind.CHANGE_NOT_APPROVED and "dosering" in rendered(note.text)


# -- the use cases, on the in-memory unit of work ------------------------------------------

def _ward() -> FakeDatabase:
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, Facility(FACILITY, "Home"), at(0))
        facilities.create_resident(u, Resident(RESIDENT, FACILITY, "010145-1234", "A", "1"),
                                   at(0))
        cards.sync_card(u, FACILITY, RESIDENT, 1, [PARA], EPOCH, at(0))
        u.commit()
    return db


def _sync(db: FakeDatabase, card_version: int, orders: list[OrderContent], now: datetime
          ) -> None:
    with db() as u:
        cards.sync_card(u, FACILITY, RESIDENT, card_version, orders, now, now)
        u.commit()


def _pending_now(db: FakeDatabase) -> list[PendingChange]:
    with db(write=False) as u:
        return card_changes.pending_changes(u, FACILITY)[1]


def test_the_first_card_is_the_baseline_and_an_administrative_sync_asks_nothing() -> None:
    db = _ward()
    assert _pending_now(db) == [] and db.alerts() == []
    _sync(db, 2, [replace(PARA, drug=replace(PARA.drug, name="Pamol", drug_id="41922"))],
          at(8))
    assert _pending_now(db) == [] and db.alerts() == []


def test_a_clinical_sync_waits_for_an_approval_guarded_by_its_etag() -> None:
    db = _ward()
    _sync(db, 2, [replace(PARA, dosage=MORNING)], at(8))
    [change] = _pending_now(db)
    assert change.aspects == (Aspect.DOSAGE,) and change.base_version == 1
    [alert] = db.alerts()
    assert alert.kind is AlertKind.CARD_CHANGE
    # A later clinical version joins it and changes its etag: the approval of what was
    # read before is refused.
    _sync(db, 3, [replace(PARA, dosage=MORNING, route="rektal")], at(9))
    [joined] = _pending_now(db)
    assert joined.aspects == (Aspect.DOSAGE, Aspect.ROUTE) and joined.etag != change.etag
    assert len(db.alerts()) == 2
    with db() as u, pytest.raises(Aborted):
        card_changes.approve_change(u, FACILITY, RESIDENT, "o1", change.first_version,
                                    change.etag, "nurse-1", at(10))
    with db() as u:
        _, approved = card_changes.approve_change(u, FACILITY, RESIDENT, "o1",
                                                  joined.first_version, joined.etag,
                                                  "nurse-1", at(10))
        u.commit()
    assert (approved.status, approved.approved_by, approved.approved_at) == (
        ChangeStatus.APPROVED, "nurse-1", at(10))
    assert _pending_now(db) == []
    # Its two alerts (one per version it took in) are answered by the approval.
    with db(write=False) as u:
        log = u.alerts.after(FACILITY, 0, 10)
    assert [(a.acknowledged_by, a.acknowledged_at) for a in log] == [("nurse-1", at(10))] * 2
    with db() as u, pytest.raises(FailedPrecondition):
        card_changes.approve_change(u, FACILITY, RESIDENT, "o1", joined.first_version,
                                    approved.etag, "nurse-2", at(11))
    with db() as u, pytest.raises(NotFound):
        card_changes.approve_change(u, FACILITY, RESIDENT, "o1", 99, "1", "nurse-2", at(11))
    with db() as u, pytest.raises(InvalidArgument):
        card_changes.approve_change(u, FACILITY, RESIDENT, "o1", 2, "", "nurse-2", at(11))


def test_a_discontinuation_stops_at_once_and_still_asks_for_acknowledgement() -> None:
    db = _ward()
    with db() as u:
        cards.discontinue_order(u, FACILITY, RESIDENT, "o1", at(8), at(8))
        u.commit()
    [change] = _pending_now(db)
    assert change.aspects == (Aspect.DISCONTINUATION,) and change.stops
    assert db.alerts()[0].severity is Severity.HIGH
    with db(write=False) as u:
        card = cards.get_card(u, FACILITY, RESIDENT, at(9), at(9))
    assert card.orders[0].state.value == "discontinued"
