"""Checking and recording doses, corrections and reconciliation over gRPC, on SQLite and
PostgreSQL (DOMAIN.md §6-8)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec
from zoneinfo import ZoneInfo

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2, discrepancies_pb2_grpc, medicine_cards_pb2_grpc
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture, TestClock

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_ROUND_1 = "2482107c-139e-5d7b-bc5e-1eda0ec35e7a"
RID_FIX_1 = "bbd84919-9d58-5624-801a-3bc3d50e64b9"

R1 = "facilities/f/residents/r1"
R2 = "facilities/f/residents/r2"
ZONE = ZoneInfo("Europe/Copenhagen")
P = ParamSpec("P")


@pytest.fixture
def ward(server: ServerFixture, server_clock: TestClock) -> dict[str, MedClient]:
    server_clock.to_late_evening(ZONE)  # the card is mirrored after today's rounds
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111", display_name="A",
                                            room="1"), "r1")
    admin.create_resident("f", fpb.Resident(person_id="020245-2222", display_name="B",
                                            room="2"), "r2")
    integration = server.client(Role.INTEGRATION, "f")
    stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    integration.call(stub.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=1, orders=[
            order(R1, "para", "Paracetamol", morning_evening("2")),
            order(R1, "pn", "Morfin", structured(
                [dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)] * 2),
                mode=common_pb2.DISPENSING_MODE_STAFF_POURED),
            order(R1, "old", "Furosemid", structured([dose(K.DOSE_TIME_KIND_MORNING)]),
                  end="2026-01-31"),
            order(R1, "inr", "Marevan", cpb.Dosage(free_text="efter INR")),
        ]), valid_time=ts(CARD_VALID_FROM)))
    # The round is tomorrow at 09:00, after the morning dose.
    set_now(server_clock, _round_day(server_clock) + timedelta(hours=9))
    return {"carer": server.client(Role.CARER, "f", subject="nurse-1"),
            "carer2": server.client(Role.CARER, "f", subject="nurse-2"),
            "pharmacist": server.client(Role.PHARMACIST, "f"),
            "integration": integration}


def _round_day(clock: TestClock) -> datetime:
    """Local midnight starting the day of the round (tomorrow, when the fixture runs)."""
    tomorrow = clock().astimezone(ZONE).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZONE)


def _today(clock: TestClock) -> datetime:
    local = clock().astimezone(ZONE)
    return datetime(local.year, local.month, local.day, tzinfo=ZONE)


def set_now(clock: TestClock, at: datetime) -> None:
    clock.advance(at - clock())


def _doses(c: MedClient, day: datetime) -> list[pb.ScheduledDose]:
    return list(c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
        parent=R1, start_time=ts(day), end_time=ts(day + timedelta(days=1)))).doses)


def _give(c: MedClient, d: pb.ScheduledDose, *, quantity: str = "2", late: timedelta = timedelta(0),
          ack: list[str] | None = None, request_id: str = "") -> pb.RecordDoseResponse:
    record = pb.AdministrationRecord(
        dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity=quantity,
        route="oral", administration_time=ts(d.due_time.ToDatetime(tzinfo=UTC) + late),
        source=pb.DOSE_SOURCE_POUCH)
    return c.call(c.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, record=record, acknowledged_reasons=ack or [], request_id=request_id))


def _discrepancies(c: MedClient, *,
                   code: dpb.DiscrepancyCode.ValueType = dpb.DISCREPANCY_CODE_UNSPECIFIED,
                   status: dpb.DiscrepancyStatus.ValueType = dpb.DISCREPANCY_STATUS_UNSPECIFIED
                   ) -> list[dpb.Discrepancy]:
    stub = discrepancies_pb2_grpc.DiscrepancyServiceStub(c.channel)
    return list(c.call(stub.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
        parent="facilities/f", code=code, status=status)).discrepancies)


def _fails(fn: Callable[P, object], *args: P.args, **kw: P.kwargs) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)
    return info.value


def test_check_then_give_on_time_raises_nothing(ward: dict[str, MedClient],
                                                server_clock: TestClock) -> None:
    carer = ward["carer"]
    morning = _doses(carer, _today(server_clock))[0]
    check = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=morning.dose_id, quantity="2", route="oral",
        administration_time=morning.due_time))
    assert check.verdict == pb.CHECK_VERDICT_OK, check.reasons
    assert check.matched_dose.dose_id == morning.dose_id
    done = _give(carer, morning)
    assert done.record.performer == "nurse-1" and done.record.order.endswith("/orders/para")
    assert [d for d in done.discrepancies] == []
    records = carer.call(carer.rounds.ListAdministrationRecords,
                         pb.ListAdministrationRecordsRequest(parent=R1)).records
    assert [r.dose_id for r in records] == [morning.dose_id]


def test_a_retried_record_returns_the_first_and_records_once(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer = ward["carer"]
    morning = _doses(carer, _today(server_clock))[0]
    first = _give(carer, morning, request_id=RID_ROUND_1)
    assert _give(carer, morning, request_id=RID_ROUND_1) == first
    assert len(carer.call(carer.rounds.ListAdministrationRecords,
                          pb.ListAdministrationRecordsRequest(parent=R1)).records) == 1


def test_two_staff_recording_one_dose_at_once_one_wins(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    morning = _doses(ward["carer"], _today(server_clock))[0]
    results: list[object] = []
    barrier = threading.Barrier(2)

    def record(client: MedClient) -> None:
        barrier.wait()
        try:
            results.append(_give(client, morning))
        except MedServiceError as e:
            results.append(e)

    threads = [threading.Thread(target=record, args=(ward[k],)) for k in ("carer", "carer2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if isinstance(r, pb.RecordDoseResponse)]
    losses = [r for r in results if isinstance(r, MedServiceError)]
    assert len(wins) == 1 and len(losses) == 1
    loss = losses[0]
    assert (loss.code, loss.reason) == (grpc.StatusCode.ALREADY_EXISTS, "DOSE_ALREADY_RECORDED")
    assert loss.metadata["record"] == wins[0].record.name
    records = ward["carer"].call(ward["carer"].rounds.ListAdministrationRecords,
                                 pb.ListAdministrationRecordsRequest(parent=R1)).records
    assert len(records) == 1


def test_a_stop_must_be_acknowledged_and_then_raises_its_discrepancy(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer = ward["carer"]
    morning = _doses(carer, _today(server_clock))[0]
    check = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=morning.dose_id, quantity="3", route="oral",
        administration_time=morning.due_time))
    assert check.verdict == pb.CHECK_VERDICT_STOP
    assert [r.code for r in check.reasons] == ["WRONG_DOSE"]
    err = _fails(_give, carer, morning, quantity="3")
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                      "CHECK_NOT_ACKNOWLEDGED")
    assert err.metadata["reasons"] == "WRONG_DOSE"
    done = _give(carer, morning, quantity="3", ack=["WRONG_DOSE"])
    [found] = _discrepancies(ward["pharmacist"], code=dpb.DISCREPANCY_CODE_WRONG_DOSE)
    assert found.name in done.discrepancies
    assert (found.code, found.severity, found.is_error) == (
        dpb.DISCREPANCY_CODE_WRONG_DOSE, common_pb2.SEVERITY_HIGH, True)
    # Entered in error: never deleted, and its discrepancy is withdrawn.
    corrected = carer.call(carer.rounds.CorrectRecord, pb.CorrectRecordRequest(
        name=done.record.name, reason="wrong quantity typed"))
    assert corrected.state == pb.RECORD_STATE_ENTERED_IN_ERROR
    assert corrected.corrected_by == "nurse-1"
    status = {d.code: d.status for d in _discrepancies(ward["pharmacist"])
              if d.code != dpb.DISCREPANCY_CODE_NEEDS_MANUAL_SCHEDULE}
    # Its window closed at 09:00 with no valid record left: now it is missed.
    assert status == {dpb.DISCREPANCY_CODE_WRONG_DOSE: dpb.DISCREPANCY_STATUS_WITHDRAWN,
                      dpb.DISCREPANCY_CODE_MISSED_DOSE: dpb.DISCREPANCY_STATUS_OPEN}
    # The dose is free again for the right record, and is no longer missed.
    assert _give(carer, morning).record.dose_id == morning.dose_id
    status = {d.code: d.status for d in _discrepancies(ward["pharmacist"])}
    assert status[dpb.DISCREPANCY_CODE_MISSED_DOSE] == dpb.DISCREPANCY_STATUS_WITHDRAWN


def test_late_dose_not_given_and_time_in_the_future(ward: dict[str, MedClient],
                                                    server_clock: TestClock) -> None:
    carer = ward["carer"]
    set_now(server_clock, _today(server_clock) + timedelta(hours=21))
    morning, evening = _doses(carer, _today(server_clock))[:2]
    _give(carer, morning, late=timedelta(hours=3))
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=(
        pb.AdministrationRecord(dose_id=evening.dose_id,
                                outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
                                not_given_reason=pb.NOT_GIVEN_REASON_REFUSED,
                                administration_time=evening.due_time))))
    found = {d.code: d for d in _discrepancies(ward["pharmacist"])}
    assert found[dpb.DISCREPANCY_CODE_LATE_DOSE].severity == common_pb2.SEVERITY_MEDIUM
    refused = found[dpb.DISCREPANCY_CODE_NOT_GIVEN]
    assert (refused.severity, refused.is_error) == (common_pb2.SEVERITY_INFO, False)
    future = pb.AdministrationRecord(
        dose_id=evening.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="2",
        administration_time=ts(server_clock() + timedelta(minutes=10)))
    err = _fails(carer.call, carer.rounds.RecordDose,
                 pb.RecordDoseRequest(parent=R1, record=future))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == ["record.administration_time"]


def test_reconcile_finds_missed_doses_once_and_computes_the_error_rate(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer, pharmacist = ward["carer"], ward["pharmacist"]
    day = _today(server_clock)
    morning = _doses(carer, day)[0]
    _give(carer, morning)
    set_now(server_clock, day + timedelta(hours=21))  # the evening window has closed
    stub = discrepancies_pb2_grpc.DiscrepancyServiceStub(pharmacist.channel)
    request = dpb.ReconcileFacilityRequest(facility="facilities/f", start_time=ts(day),
                                           end_time=ts(day + timedelta(days=1)))
    first = pharmacist.call(stub.ReconcileFacility, request)
    again = pharmacist.call(stub.ReconcileFacility, request)
    # The missed evening dose, and the free-text order that needs a manual schedule.
    assert first.discrepancies_found == again.discrepancies_found == 2
    assert (first.discrepancies_new, again.discrepancies_new) == (1, 0)
    [missed] = _discrepancies(pharmacist, code=dpb.DISCREPANCY_CODE_MISSED_DOSE)
    assert missed.severity == common_pb2.SEVERITY_HIGH and missed.dose_id
    rate = pharmacist.call(stub.ComputeErrorRate, dpb.ComputeErrorRateRequest(
        facility="facilities/f", start_time=ts(day), end_time=ts(day + timedelta(days=1))))
    assert (rate.errors, rate.doses_given, rate.doses_not_given) == (1, 1, 1)
    assert rate.error_rate_percent == "50.00"
    got = pharmacist.call(stub.GetDiscrepancy, dpb.GetDiscrepancyRequest(name=missed.name))
    assert got == missed


def test_back_dated_discontinuation_flags_a_dose_given_before_it_was_known(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer = ward["carer"]
    set_now(server_clock, _today(server_clock) + timedelta(hours=21))
    morning, evening = _doses(carer, _today(server_clock))[:2]
    _give(carer, evening)
    integration = ward["integration"]
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    # Discontinued at noon, learned only now: the evening dose was given after it.
    integration.call(cards.DiscontinueOrder, cpb.DiscontinueOrderRequest(
        name=f"{R1}/orders/para",
        discontinue_time=ts(morning.due_time.ToDatetime(tzinfo=UTC) + timedelta(hours=4))))
    found = _discrepancies(ward["pharmacist"],
                           code=dpb.DISCREPANCY_CODE_GIVEN_AFTER_DISCONTINUATION)
    assert len(found) == 1
    assert found[0].known_at_administration is False
    assert found[0].severity == common_pb2.SEVERITY_HIGH


def test_pn_limit_and_other_residents_dose(ward: dict[str, MedClient],
                                           server_clock: TestClock) -> None:
    carer = ward["carer"]
    at = server_clock() - timedelta(hours=1)
    for i in range(2):
        carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=(
            pb.AdministrationRecord(order=f"{R1}/orders/pn", quantity="5", route="oral",
                                    outcome=pb.ADMINISTRATION_OUTCOME_PN_GIVEN,
                                    pn_reason="smerter",
                                    administration_time=ts(at + timedelta(minutes=10 * i))))))
    third = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, order=f"{R1}/orders/pn", quantity="5", route="oral", as_needed=True))
    assert third.verdict == pb.CHECK_VERDICT_STOP
    assert [r.code for r in third.reasons] == ["PN_LIMIT_EXCEEDED"]
    assert third.pn_doses_left == 0
    # The round list says the same: nothing left of today's PN allowance.
    schedule = carer.shift_schedule("f", _today(server_clock).date().isoformat(), "day")
    [allowance] = schedule.residents[0].pn_allowances
    assert (allowance.max_doses_per_day, allowance.doses_left) == (2, 0)
    assert allowance.last_given_time.ToDatetime(tzinfo=UTC) == (
        at + timedelta(minutes=10)).replace(microsecond=at.microsecond)
    morning = _doses(carer, _today(server_clock))[0]
    other = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident="facilities/f/residents/r2", dose_id=morning.dose_id, quantity="2",
        administration_time=morning.due_time))
    assert other.verdict == pb.CHECK_VERDICT_STOP
    assert "DOSE_OF_OTHER_RESIDENT" in [r.code for r in other.reasons]


def _record(c: MedClient, *, at: datetime, dose_id: str = "", order: str = "",
            drug_id: str = "", quantity: str = "2", route: str = "oral",
            outcome: pb.AdministrationOutcome.ValueType = pb.ADMINISTRATION_OUTCOME_GIVEN,
            ack: tuple[str, ...] = ()
            ) -> pb.RecordDoseResponse:
    return c.call(c.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=(
        pb.AdministrationRecord(dose_id=dose_id, order=order, drug_id=drug_id,
                                quantity=quantity, route=route, outcome=outcome,
                                administration_time=ts(at))), acknowledged_reasons=ack))


def _codes(c: MedClient) -> dict[int, dpb.Discrepancy]:
    return {d.code: d for d in _discrepancies(c, status=dpb.DISCREPANCY_STATUS_OPEN)}


def test_every_code_of_a_record_end_to_end(ward: dict[str, MedClient],
                                           server_clock: TestClock) -> None:
    """One scenario per code a record can raise, each with its severity and reference."""
    carer, pharmacist, integration = ward["carer"], ward["pharmacist"], ward["integration"]
    day = _today(server_clock)
    morning = _doses(carer, day)[0]
    due = morning.due_time.ToDatetime(tzinfo=UTC)
    para, pn = f"{R1}/orders/para", f"{R1}/orders/pn"

    early = _record(carer, at=due - timedelta(minutes=90), dose_id=morning.dose_id)
    extra = _record(carer, at=due, dose_id=morning.dose_id, ack=("EXTRA_DOSE",))
    route = _record(carer, at=due + timedelta(minutes=20), order=para, route="subcutaneous",
                    ack=("EXTRA_DOSE", "WRONG_ROUTE"))
    unordered = _record(carer, at=due, drug_id="id-ukendt", ack=("UNORDERED_DRUG",))
    outside = _record(carer, at=due, order=f"{R1}/orders/old", quantity="1")
    pns = [_record(carer, at=due + timedelta(minutes=i), order=pn, quantity="5",
                   outcome=pb.ADMINISTRATION_OUTCOME_PN_GIVEN, ack=("PN_LIMIT_EXCEEDED",))
           for i in range(3)]
    found = _codes(pharmacist)
    expect = {
        dpb.DISCREPANCY_CODE_EARLY_DOSE: (early, common_pb2.SEVERITY_MEDIUM),
        dpb.DISCREPANCY_CODE_EXTRA_DOSE: (extra, common_pb2.SEVERITY_HIGH),
        dpb.DISCREPANCY_CODE_WRONG_ROUTE: (route, common_pb2.SEVERITY_HIGH),
        dpb.DISCREPANCY_CODE_UNORDERED_DRUG: (unordered, common_pb2.SEVERITY_HIGH),
        dpb.DISCREPANCY_CODE_OUTSIDE_TREATMENT_PERIOD: (outside, common_pb2.SEVERITY_MEDIUM),
        dpb.DISCREPANCY_CODE_PN_LIMIT_EXCEEDED: (pns[2], common_pb2.SEVERITY_HIGH),
    }
    for code, (response, severity) in expect.items():
        d = found[code]
        assert (d.severity, d.record) == (severity, response.record.name), code
        assert d.name in response.discrepancies, code
    assert found[dpb.DISCREPANCY_CODE_NEEDS_MANUAL_SCHEDULE].order == f"{R1}/orders/inr"

    # Paused from 07:00: a dose given at 08:00 is given during the pause.
    stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    integration.call(stub.PauseOrder, cpb.PauseOrderRequest(
        name=para, pause_start=ts(due - timedelta(hours=1))))
    paused = _record(carer, at=due, order=para, ack=("GIVEN_DURING_PAUSE",))
    during = [d for d in _discrepancies(pharmacist, code=dpb.DISCREPANCY_CODE_GIVEN_DURING_PAUSE)
              if d.record == paused.record.name]
    assert [(d.severity, d.known_at_administration) for d in during] == [
        (common_pb2.SEVERITY_HIGH, True)]
    # The back-dated pause re-examined the 08:00 records given before it was known.
    earlier = _discrepancies(pharmacist, code=dpb.DISCREPANCY_CODE_GIVEN_DURING_PAUSE)
    assert any(d.record == extra.record.name and not d.known_at_administration
               for d in earlier)


def test_late_documentation(ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer, day = ward["carer"], _today(server_clock)
    morning = _doses(carer, day)[0]
    set_now(server_clock, day + timedelta(hours=14))  # six hours after the dose
    done = _give(carer, morning)
    d = _codes(ward["pharmacist"])[dpb.DISCREPANCY_CODE_LATE_DOCUMENTATION]
    assert (d.record, d.severity, d.is_error) == (done.record.name, common_pb2.SEVERITY_LOW,
                                                  True)


def test_medctl_check_give_and_a_second_give(ward: dict[str, MedClient],
                                             server_clock: TestClock, server: ServerFixture,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main
    from tests.conftest import token_for

    # medctl stamps records with the real time: put the server's clock back to it, and
    # mirror r2's card then (r1's was mirrored late this evening, after the real now).
    server_clock.offset = timedelta(0)
    integration = server.client(Role.INTEGRATION, "f")
    stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    integration.call(stub.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R2}/medicineCard", card_version=1, orders=[
            order(R2, "para", "Paracetamol", morning_evening("2"))]),
        valid_time=ts(CARD_VALID_FROM)))
    now = datetime.now(UTC)
    dose_id = ward["carer"].call(ward["carer"].rounds.ListScheduledDoses,
                                 pb.ListScheduledDosesRequest(
                                     parent=R2, start_time=ts(now),
                                     end_time=ts(now + timedelta(days=1)))).doses[0].dose_id
    base = ["--target", server.target, "--token", token_for(Role.CARER, "f")]
    assert main([*base, "check", "--resident", R2, "--drug", "id-ukendt", "--quantity",
                 "1"]) == 4
    assert "UNORDERED_DRUG" in capsys.readouterr().out
    assert main([*base, "not-given", dose_id, "--resident", R2, "--reason", "refused"]) == 0
    assert "registreret facilities/f/residents/r2/administrations/" in capsys.readouterr().out
    assert main([*base, "not-given", dose_id, "--resident", R2, "--reason", "refused"]) == 1
    err = capsys.readouterr().err
    assert "DOSE_ALREADY_RECORDED" in err and "record: facilities/f/residents/r2/" in err


def _round(c: MedClient, day: datetime, shift: str) -> pb.ResidentRound:
    schedule = c.call(c.rounds.GetShiftSchedule, pb.GetShiftScheduleRequest(
        facility="facilities/f", date=day.date().isoformat(), shift_id=shift))
    return next(r for r in schedule.residents if r.resident == R1)


def test_the_round_list_shows_what_happened_to_each_dose(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    """Issue 12: given, corrected (due again, then missed), not given with its reason, PN
    used, the same on the round list and in ListScheduledDoses."""
    carer, day = ward["carer"], _today(server_clock)
    morning, evening = _doses(carer, day)[:2]
    set_now(server_clock, day + timedelta(hours=8, minutes=30))
    assert [d.status for d in _round(carer, day, "day").doses] == [pb.DOSE_STATUS_DUE]
    given = _give(carer, morning).record
    [shown] = _round(carer, day, "day").doses
    assert (shown.status, shown.record, shown.performer) == (
        pb.DOSE_STATUS_GIVEN, given.name, "nurse-1")
    assert shown.administration_time == morning.due_time
    # Marked entered-in-error: due again, naming the corrected record; missed once the
    # window has closed.
    carer.call(carer.rounds.CorrectRecord, pb.CorrectRecordRequest(
        name=given.name, reason="wrong resident", request_id=RID_FIX_1))
    [shown] = _round(carer, day, "day").doses
    assert (shown.status, shown.record, shown.corrected_record) == (
        pb.DOSE_STATUS_DUE, "", given.name)
    set_now(server_clock, day + timedelta(hours=9, minutes=1))
    [shown] = _round(carer, day, "day").doses
    assert shown.status == pb.DOSE_STATUS_MISSED
    # The evening dose refused: not given, with the coded reason.
    set_now(server_clock, day + timedelta(hours=18, minutes=5))
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=(
        pb.AdministrationRecord(dose_id=evening.dose_id,
                                outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
                                not_given_reason=pb.NOT_GIVEN_REASON_REFUSED,
                                administration_time=evening.due_time))))
    [shown] = _round(carer, day, "evening").doses
    assert (shown.status, shown.not_given_reason) == (pb.DOSE_STATUS_NOT_GIVEN,
                                                      pb.NOT_GIVEN_REASON_REFUSED)
    # PN: one given of two a day, as the check counts it.
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=(
        pb.AdministrationRecord(order=f"{R1}/orders/pn", quantity="5",
                                outcome=pb.ADMINISTRATION_OUTCOME_PN_GIVEN, pn_reason="pain",
                                administration_time=ts(server_clock())))))
    [pn] = _round(carer, day, "evening").pn_allowances
    check = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, order=f"{R1}/orders/pn", quantity="5", as_needed=True))
    assert (pn.doses_given, pn.doses_left, pn.max_doses_per_day, pn.period) == (
        1, 1, 2, "24 timer")
    assert check.pn_doses_left == pn.doses_left
    listed = {d.dose_id: d.status for d in _doses(carer, day)}
    assert (listed[morning.dose_id], listed[evening.dose_id]) == (
        pb.DOSE_STATUS_MISSED, pb.DOSE_STATUS_NOT_GIVEN)


def test_a_dose_id_never_scheduled_is_not_found_and_a_real_one_not_due(
        ward: dict[str, MedClient], server_clock: TestClock, server: ServerFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main
    from tests.conftest import token_for

    carer = ward["carer"]
    made_up = "00000000-0000-5000-8000-000000000000"
    morning = _doses(carer, _today(server_clock))[0]
    checked = _fails(carer.call, carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=made_up, quantity="2", administration_time=morning.due_time))
    recorded = _fails(_record, carer, at=morning.due_time.ToDatetime(tzinfo=UTC),
                      dose_id=made_up)
    assert (checked.code, checked.reason) == (recorded.code, recorded.reason) == (
        grpc.StatusCode.NOT_FOUND, "DOSE_NOT_FOUND")
    # A real dose of next week, held at this morning's round: not due, checked against
    # the order (this morning's dose), as before.
    next_week = _doses(carer, _today(server_clock) + timedelta(days=7))[0]
    early = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=next_week.dose_id, quantity="2", route="oral",
        administration_time=morning.due_time))
    assert early.verdict == pb.CHECK_VERDICT_WARN
    assert [r.code for r in early.reasons] == ["DOSE_NOT_DUE"]
    assert early.matched_dose.dose_id == morning.dose_id
    # medctl check says which in one line (the refusal) or in its reasons.
    base = ["--target", server.target, "--token", token_for(Role.CARER, "f")]
    assert main([*base, "check", "--resident", R1, "--dose", made_up]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert "NOT_FOUND: no such dose for this resident [DOSE_NOT_FOUND]" in out.err


def test_a_dose_not_given_without_a_time_is_dated_at_its_due_time(
        ward: dict[str, MedClient], server_clock: TestClock) -> None:
    carer = ward["carer"]
    morning, evening = _doses(carer, _today(server_clock))[:2]
    set_now(server_clock, _today(server_clock) + timedelta(hours=10, minutes=30))

    def not_given(d: pb.ScheduledDose) -> pb.AdministrationRecord:
        return carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
            parent=R1, record=pb.AdministrationRecord(
                dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
                not_given_reason=pb.NOT_GIVEN_REASON_REFUSED))).record

    # Documented at 10:30 for the 08:00 dose: the decision is dated 08:00.
    assert not_given(morning).administration_time == morning.due_time
    # A dose still to come cannot be dated in the future: it is dated now.
    absent = not_given(evening).administration_time.ToDatetime(tzinfo=UTC)
    assert evening.due_time.ToDatetime(tzinfo=UTC) > absent and abs(
        absent - server_clock()) < timedelta(seconds=1)
    # A given dose without a time is given now, as before.
    pn = carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, record=pb.AdministrationRecord(
            order=f"{R1}/orders/pn", quantity="5", route="oral", pn_reason="smerter",
            outcome=pb.ADMINISTRATION_OUTCOME_PN_GIVEN))).record
    assert abs(pn.administration_time.ToDatetime(tzinfo=UTC) - server_clock()) < timedelta(
        seconds=1)
