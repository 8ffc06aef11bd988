"""Approval of card changes over gRPC on SQLite and PostgreSQL (issue 16 part 1): each sync
and import classifies an order's change; a clinical one waits for a nurse's (pharmacist
role) or shift lead's approval, marks the round list, makes CheckDose warn with
CHANGE_NOT_APPROVED and alerts the shift lead; an administrative one asks nothing; a
discontinuation stops doses at once and is still to be acknowledged."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture, TestClock, token_for
from tests.e2e.test_administration import R1, ZONE, _doses, _today, set_now, ward
from tests.e2e.test_imports import REFERENCE, _need
from tests.fmk_documents import PERSON_DASHED, card14, drug_medication14

__all__ = ["ward"]  # the fixture, shared with test_administration

R3 = "facilities/f/residents/r3"


def _sync(integration: MedClient, version: int, orders: list[cpb.Order]) -> None:
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=version,
                              orders=orders), valid_time=ts(CARD_VALID_FROM)))


def _card(para: cpb.Order) -> list[cpb.Order]:
    """The ward's card (tests/e2e/test_administration.py) with another `para`."""
    return [para,
            order(R1, "pn", "Morfin", structured([dose(K.DOSE_TIME_KIND_ANY, "5",
                                                       as_needed=True)] * 2),
                  mode=common_pb2.DISPENSING_MODE_STAFF_POURED),
            order(R1, "old", "Furosemid", structured([dose(K.DOSE_TIME_KIND_MORNING)]),
                  end="2026-01-31"),
            order(R1, "inr", "Marevan", cpb.Dosage(free_text="efter INR"))]


def _evening(c: MedClient, clock: TestClock) -> pb.ScheduledDose:
    return next(d for d in _doses(c, _today(clock))
                if d.order.endswith("/orders/para") and d.local_time == "18:00")


def _check(c: MedClient, clock: TestClock, d: pb.ScheduledDose, quantity: str = "2"
           ) -> pb.CheckDoseResponse:
    """The check of giving `d` at its due time (the clock moved on to it if need be)."""
    due = d.due_time.ToDatetime(tzinfo=UTC)
    if clock() < due:
        set_now(clock, due)
    return c.call(c.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=d.dose_id, order=d.order, quantity=quantity, route="oral",
        administration_time=d.due_time))


def _notes(c: MedClient, clock: TestClock, shift: str = "evening") -> list[tuple[str, int]]:
    day = _today(clock).date().isoformat()
    [r1] = [r for r in c.shift_schedule("f", day, shift).residents if r.resident == R1]
    # The inspection checks' notes are tested in test_card_checks.py.
    return [(n.drug.name, n.kind) for n in r1.notes if n.kind != pb.ORDER_NOTE_KIND_CARD_CHECK]


def _fails(fn: object, *args: object, **kw: object) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value


def _card_alerts(c: MedClient) -> list[apb.Alert]:
    return [a for a in c.list_alerts("f") if a.kind == apb.ALERT_KIND_CARD_CHANGE]


def test_an_administrative_only_change_needs_no_approval(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    carer, integration = ward["carer"], ward["integration"]
    lead = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    # The first card of a resident is the baseline: nothing to approve.
    assert list(lead.list_card_changes("f")) == []
    # The same drug (id) and strength under another trade name, and a dosage text.
    renamed = order(R1, "para", "Pinex", morning_evening("2"))
    renamed.drug.drug_id = "id-paracetamol"
    renamed.dosage.structured.periods[0].supplementary_text = "tages med et glas vand"
    _sync(integration, 2, _card(renamed))
    assert integration.get_card(R1).card_version == 2
    assert list(lead.list_card_changes("f")) == []
    assert _card_alerts(lead) == []
    check = _check(carer, server_clock, _evening(carer, server_clock))
    assert check.verdict == pb.CHECK_VERDICT_OK, check.reasons
    assert _notes(carer, server_clock) == [("Marevan", pb.ORDER_NOTE_KIND_NEEDS_MANUAL_SCHEDULE)]


def test_a_clinical_change_warns_until_a_nurse_or_shift_lead_approves_it(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    carer, pharmacist, integration = ward["carer"], ward["pharmacist"], ward["integration"]
    lead = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    _sync(integration, 2, _card(order(R1, "para", "Paracetamol", morning_evening("1"))))
    [change] = list(lead.list_card_changes("f"))
    assert change.name == f"{R1}/orders/para/changes/2"
    assert (change.resident, change.order, change.drug_name) == (
        R1, f"{R1}/orders/para", "Paracetamol")
    assert list(change.aspects) == ["dosage"] and list(change.aspects_da) == ["dosering"]
    assert change.before == "dosering: 2 tabletter morgen og aften"
    assert change.after == "dosering: 1 tablet morgen og aften"
    assert (change.state, change.stops_doses, change.base_version, change.version) == (
        cpb.CARD_CHANGE_STATE_PENDING, False, 1, 2)
    assert change.time_zone == "Europe/Copenhagen" and change.etag
    # The shift lead on duty is alerted, once.
    [alert] = _card_alerts(lead)
    assert alert.summary == "Ændring fra FMK skal godkendes: Paracetamol (dosering)"
    assert alert.shift_id == "day" and alert.resident == R1
    # The new dosage is in force (1 tablet), and CheckDose warns until the approval.
    evening = _evening(carer, server_clock)
    assert evening.amount.quantity == "1"
    check = _check(carer, server_clock, evening, "1")
    assert check.verdict == pb.CHECK_VERDICT_WARN
    [reason] = check.reasons
    assert reason.code == "CHANGE_NOT_APPROVED"
    assert "før: dosering: 2 tabletter morgen og aften" in reason.message
    assert ("Paracetamol", pb.ORDER_NOTE_KIND_CHANGE_NOT_APPROVED) in _notes(carer, server_clock)
    # A carer may read, not approve; the etag is required and must be the one read.
    denied = _fails(carer.approve_card_change, change.name, change.etag)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    missing = _fails(lead.approve_card_change, change.name, "")
    assert (missing.code, [f for f, _ in missing.violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["etag"])
    stale = _fails(lead.approve_card_change, change.name, "7")
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    set_now(server_clock, server_clock() + timedelta(minutes=5))
    before = server_clock()
    approved = lead.approve_card_change(change.name, change.etag)
    assert (approved.state, approved.approved_by) == (cpb.CARD_CHANGE_STATE_APPROVED, "lead-1")
    assert before <= approved.approve_time.ToDatetime(tzinfo=UTC) <= server_clock()
    again = _fails(pharmacist.approve_card_change, change.name, approved.etag)
    assert (again.code, again.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                          "CHANGE_ALREADY_APPROVED")
    # Approved: no warning, no mark, nothing listed.
    assert _check(carer, server_clock, evening, "1").verdict == pb.CHECK_VERDICT_OK
    assert ("Paracetamol", pb.ORDER_NOTE_KIND_CHANGE_NOT_APPROVED) not in _notes(
        carer, server_clock)
    assert list(pharmacist.list_card_changes("f")) == []
    # The shift lead's alert for it is answered by the approval (off the board).
    answered = _card_alerts(lead)
    assert answered and all(a.acknowledged and a.acknowledged_by == "lead-1"
                            for a in answered)
    # The approval is in the audit trail, naming the change.
    admin = server.client(Role.ADMIN)
    events = [e for e in admin.audit_events("facilities/f")
              if e.method.endswith("/ApproveCardChange") and e.outcome == "OK"]
    assert [(e.subject, e.resource) for e in events] == [("lead-1", change.name)]


def test_a_later_clinical_version_joins_the_pending_change_and_a_nurse_approves_it(
        ward: dict[str, MedClient], server: ServerFixture) -> None:
    pharmacist, integration = ward["pharmacist"], ward["integration"]
    _sync(integration, 2, _card(order(R1, "para", "Paracetamol", morning_evening("1"))))
    [first] = list(pharmacist.list_card_changes("f"))
    _sync(integration, 3, _card(order(R1, "para", "Paracetamol", morning_evening("1"),
                                      route="rektal")))
    [joined] = list(pharmacist.list_card_changes("f", R1))
    assert joined.name == first.name and joined.etag != first.etag
    assert list(joined.aspects) == ["dosage", "route"] and joined.version == 3
    assert joined.before == ("dosering: 2 tabletter morgen og aften; "
                             "administrationsvej: oral")
    # What the nurse read first is no longer what waits.
    stale = _fails(pharmacist.approve_card_change, first.name, first.etag)
    assert stale.reason == "ETAG_MISMATCH"
    done = pharmacist.approve_card_change(joined.name, joined.etag)
    assert done.state == cpb.CARD_CHANGE_STATE_APPROVED
    assert len(_card_alerts(server.client(Role.SHIFT_LEAD, "f"))) == 2


def test_a_discontinuation_takes_effect_before_approval_and_is_still_acknowledged(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    carer, integration = ward["carer"], ward["integration"]
    lead = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    evening = _evening(carer, server_clock)
    stopped = server_clock()
    integration.call(integration.cards.DiscontinueOrder, cpb.DiscontinueOrderRequest(
        name=f"{R1}/orders/para", discontinue_time=ts(stopped)))
    # At once: the evening dose is gone and a dose now is a STOP, before any approval.
    assert all(not d.order.endswith("/orders/para") or d.local_time == "08:00"
               for d in _doses(carer, _today(server_clock)))
    check = _check(carer, server_clock, evening)
    assert check.verdict == pb.CHECK_VERDICT_STOP
    # (The dose is no longer due: DOSE_NOT_DUE, checked against the order.)
    assert {r.code for r in check.reasons} == {"DOSE_NOT_DUE", "GIVEN_AFTER_DISCONTINUATION",
                                               "CHANGE_NOT_APPROVED"}
    [change] = list(lead.list_card_changes("f"))
    assert list(change.aspects) == ["discontinuation"] and change.stops_doses
    assert change.before == "seponering: ikke seponeret"
    local = stopped.astimezone(ZONE)  # the facility's local time
    assert change.after == f"seponering: seponeret {local:%d-%m-%Y %H:%M}"
    [alert] = _card_alerts(lead)
    assert alert.severity == common_pb2.SEVERITY_HIGH
    assert _notes(carer, server_clock) == [
        ("Marevan", pb.ORDER_NOTE_KIND_NEEDS_MANUAL_SCHEDULE),
        ("Paracetamol", pb.ORDER_NOTE_KIND_DISCONTINUED),
        ("Paracetamol", pb.ORDER_NOTE_KIND_CHANGE_NOT_APPROVED)]
    lead.approve_card_change(change.name, change.etag)
    # Acknowledged; the discontinuation stays what it was.
    after = _check(carer, server_clock, evening)
    assert after.verdict == pb.CHECK_VERDICT_STOP
    assert {r.code for r in after.reasons} == {"DOSE_NOT_DUE", "GIVEN_AFTER_DISCONTINUATION"}


def test_fmk_imports_are_classified_too(ward: dict[str, MedClient],
                                        server: ServerFixture) -> None:
    admin, integration = server.client(Role.ADMIN), ward["integration"]
    lead = server.client(Role.SHIFT_LEAD, "f")
    admin.create_resident("f", fpb.Resident(person_id=PERSON_DASHED, display_name="C",
                                            room="3"), "r3")
    integration.import_fmk(R3, card14(drug_medication14("1001"), version=1))
    # Another trade name of the same drug id, and a new FMK version of the order.
    integration.import_fmk(R3, card14(drug_medication14("1001", name="Pamol", version="2"),
                                      version=2))
    assert list(lead.list_card_changes("f")) == []
    integration.import_fmk(R3, card14(drug_medication14("1001", name="Pamol", version="3",
                                                        quantity="2"), version=3))
    # A new order, and the dose of the first changed.
    integration.import_fmk(R3, card14(
        drug_medication14("1001", name="Pamol", version="3", quantity="2"),
        drug_medication14("1002", name="Magnyl"), version=4))
    changes = list(lead.list_card_changes("f", R3))
    assert [(c.order.rsplit("/", 1)[-1], list(c.aspects)) for c in changes] == [
        ("1001", ["dosage"]), ("1002", ["new_order"])]
    assert changes[0].before == "dosering: 1 tablet morgen"
    assert changes[0].after == "dosering: 2 tabletter morgen"
    assert changes[1].before == "ikke på medicinkortet"
    assert changes[1].after.startswith("Magnyl")
    # Page by page (keyset): the same list.
    assert [c.name for c in lead.list_card_changes("f", R3, page_size=1)] == [
        c.name for c in changes]
    # Approved, then off the card: removed at once, and still to be acknowledged.
    lead.approve_card_change(changes[1].name, changes[1].etag)
    integration.import_fmk(R3, card14(drug_medication14("1001", name="Pamol", version="3",
                                                        quantity="2"), version=5))
    gone = {c.order.rsplit("/", 1)[-1]: c for c in lead.list_card_changes("f", R3)}["1002"]
    assert list(gone.aspects) == ["removed"] and gone.stops_doses
    assert gone.after == "ikke på medicinkortet"
    assert integration.get_card(R3).orders[0].name.endswith("/orders/1001")
    assert len(integration.get_card(R3).orders) == 1


def test_bad_requests_name_the_field_and_other_facilities_are_denied(
        ward: dict[str, MedClient], server: ServerFixture) -> None:
    lead = server.client(Role.SHIFT_LEAD, "f")
    bad = _fails(lead.approve_card_change, f"{R1}/orders/para/changes/x", "1")
    assert (bad.code, [f for f, _ in bad.violations]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                          ["name"])
    unknown = _fails(lead.approve_card_change, f"{R1}/orders/para/changes/9", "1")
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND,
                                              "CARD_CHANGE_NOT_FOUND")
    other = _fails(lead.approve_card_change, "facilities/g/residents/r1/orders/o/changes/2",
                   "1")
    assert other.code == grpc.StatusCode.PERMISSION_DENIED
    assert _fails(list, lead.list_card_changes("g")).code == grpc.StatusCode.PERMISSION_DENIED
    wrong = _fails(list, lead.list_card_changes("f", "facilities/g/residents/r1"))
    assert [f for f, _ in wrong.violations] == ["resident"]
    integration = ward["integration"]
    assert _fails(integration.approve_card_change, f"{R1}/orders/para/changes/2",
                  "1").code == grpc.StatusCode.PERMISSION_DENIED


def test_fhir_imports_are_classified_too(ward: dict[str, MedClient],
                                         server: ServerFixture) -> None:
    request = json.loads(_need(REFERENCE / "fhir-r4/medicationrequest0306.json"))  # 6 mg
    integration, lead = ward["integration"], server.client(Role.SHIFT_LEAD, "f")
    r2 = "facilities/f/residents/r2"
    integration.import_fhir(r2, json.dumps(request).encode(), unidentified=True)
    assert list(lead.list_card_changes("f")) == []  # r2's first card: the baseline
    request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 4
    integration.import_fhir(r2, json.dumps(request).encode(), unidentified=True)
    [change] = list(lead.list_card_changes("f", r2))
    assert list(change.aspects) == ["dosage"]
    assert change.before != change.after and change.before.startswith("dosering: 6")
    assert change.after.startswith("dosering: 4")


def test_medctl_lists_and_approves_a_change(ward: dict[str, MedClient], server: ServerFixture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    _sync(ward["integration"], 2, _card(order(R1, "para", "Paracetamol",
                                              morning_evening("1"))))
    token = token_for(Role.SHIFT_LEAD, "f", subject="lead-1")
    base = ["--target", server.target, "--token", token, "card"]
    assert main([*base, "changes", "--facility", "f"]) == 0
    out = capsys.readouterr().out
    name = f"{R1}/orders/para/changes/2"
    assert out.splitlines()[:4] == [
        name, "  Paracetamol: dosering", "  før: dosering: 2 tabletter morgen og aften",
        "  nu:  dosering: 1 tablet morgen og aften"]
    assert "(Europe/Copenhagen)" in out
    assert main([*base, "approve", name, "--etag", "9"]) == 1  # not the etag read
    assert "ETAG_MISMATCH" in capsys.readouterr().err
    assert main([*base, "approve", name]) == 0
    assert f"godkendt {name} af lead-1 " in capsys.readouterr().out
    assert main([*base, "changes", "--facility", "f"]) == 0
    assert capsys.readouterr().out.strip() == "ingen ændringer venter på godkendelse"


def test_the_overdue_setting_is_a_facility_setting(ward: dict[str, MedClient],
                                                   server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    assert admin.get_facility("f").approval_overdue_minutes == 1440
    done = admin.update_facility(fpb.Facility(name="facilities/f", approval_overdue_minutes=90),
                                 ["approval_overdue_minutes"])
    assert done.approval_overdue_minutes == 90
    bad = _fails(admin.update_facility, fpb.Facility(name="facilities/f",
                                                     approval_overdue_minutes=20000),
                 ["approval_overdue_minutes"])
    assert [f for f, _ in bad.violations] == ["facility.approval_overdue_minutes"]


def test_of_two_approving_on_the_same_read_one_wins(ward: dict[str, MedClient],
                                                   server: ServerFixture) -> None:
    _sync(ward["integration"], 2, _card(order(R1, "para", "Paracetamol",
                                              morning_evening("1"))))
    lead = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    [change] = list(lead.list_card_changes("f"))
    approvers = [lead, ward["pharmacist"]]
    barrier = threading.Barrier(2)

    def approve(c: MedClient) -> str:
        barrier.wait()
        try:
            return c.approve_card_change(change.name, change.etag).approved_by
        except MedServiceError as e:
            return e.reason

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(approve, approvers))
    assert outcomes in (["ETAG_MISMATCH", "lead-1"], ["ETAG_MISMATCH", "test-pharmacist"],
                        ["CHANGE_ALREADY_APPROVED", "lead-1"],
                        ["CHANGE_ALREADY_APPROVED", "test-pharmacist"]), outcomes
