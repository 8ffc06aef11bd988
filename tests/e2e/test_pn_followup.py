"""PN follow-up over gRPC on SQLite and PostgreSQL (issue 16 part 2): a PN dose's effect is
evaluated by EvaluatePnDose under the record's etag; one not evaluated within the
facility's pn_evaluation_minutes is found once, at its deadline, by the sweep, as a
PN_NOT_EVALUATED discrepancy and an alert to the shift lead."""

from __future__ import annotations

import re
from datetime import timedelta

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import ts
from tests.conftest import ServerFixture, TestClock, token_for
from tests.e2e.test_administration import R1, ZONE, _doses, _today, set_now, ward

__all__ = ["ward"]  # the fixture, shared with test_administration


def _pn(c: MedClient, request_id: str) -> pb.AdministrationRecord:
    return c.call(c.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, request_id=request_id, record=pb.AdministrationRecord(
            order=f"{R1}/orders/pn", outcome=pb.ADMINISTRATION_OUTCOME_PN_GIVEN,
            quantity="5", route="oral", pn_reason="pain"))).record


def _evaluate(c: MedClient, record: pb.AdministrationRecord, effect: int, note: str = "",
              etag: str | None = None) -> pb.AdministrationRecord:
    return c.call(c.rounds.EvaluatePnDose, pb.EvaluatePnDoseRequest(
        name=record.name, effect=effect, note=note,  # type: ignore[arg-type]
        etag=record.etag if etag is None else etag))


def _followups(c: MedClient) -> list[dpb.Discrepancy]:
    return list(c.call(c.discrepancies.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
        parent="facilities/f", code=dpb.DISCREPANCY_CODE_PN_NOT_EVALUATED)).discrepancies)


def _lead_alerts(c: MedClient) -> list[str]:
    return [a.summary for a in c.list_alerts("f")
            if a.summary.startswith("PN-effekt ikke evalueret: ")]


def _sweep(server: ServerFixture) -> None:
    server.running.sweeper.run_once()


def _fails(fn: object, *args: object, **kw: object) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value


def test_an_unevaluated_pn_dose_is_flagged_once_at_its_deadline_an_evaluated_one_not(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    carer, pharmacist = ward["carer"], ward["pharmacist"]
    lead = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    nine = server_clock()  # the ward's round: 09:00 local
    first = _pn(carer, "7d0f6f1c-4b43-4f1e-9a55-3f5f2b0e0001")  # 09:00
    assert first.etag and not first.HasField("pn_evaluation")
    set_now(server_clock, nine + timedelta(minutes=10))
    second = _pn(carer, "7d0f6f1c-4b43-4f1e-9a55-3f5f2b0e0002")  # 09:10
    set_now(server_clock, nine + timedelta(hours=1))
    done = _evaluate(carer, second, pb.PN_EFFECT_GOOD, "pain gone")
    assert (done.pn_evaluation.effect, done.pn_evaluation.note,
            done.pn_evaluation.evaluated_by) == (pb.PN_EFFECT_GOOD, "pain gone", "nurse-1")
    assert done.etag != second.etag
    # The round list shows the last PN dose with its evaluation, where its allowance shows.
    schedule = carer.shift_schedule("f", nine.astimezone(ZONE).date().isoformat(), "day")
    [line] = [a for r in schedule.residents for a in r.pn_allowances
              if a.order == f"{R1}/orders/pn"]
    assert line.doses_given == 2 and line.last_record.name == second.name
    assert line.last_record.pn_evaluation.effect == pb.PN_EFFECT_GOOD
    assert line.last_record.etag == done.etag
    # The first PN dose's deadline (11:00) passes unevaluated; the second's (11:10) not yet.
    set_now(server_clock, nine + timedelta(hours=2, seconds=30))
    _sweep(server)
    [found] = _followups(pharmacist)
    assert found.name.startswith("facilities/f/discrepancies/")
    assert (found.severity, found.is_error, found.status) == (
        common_pb2.SEVERITY_LOW, False, dpb.DISCREPANCY_STATUS_OPEN)
    assert found.record == first.name
    assert "ikke vurderet senest" in found.description
    # The code's name, the room, the drug and the description, in the facility's Danish.
    assert _lead_alerts(lead) == [
        f"PN-effekt ikke evalueret: værelse 1, Morfin: {found.description}"]
    # Swept again, later, and after the other deadline: still once, and nothing for the
    # dose evaluated in time.
    set_now(server_clock, nine + timedelta(hours=3))
    _sweep(server)
    _sweep(server)
    assert [d.name for d in _followups(pharmacist)] == [found.name]
    assert len(_lead_alerts(lead)) == 1
    # Evaluated late: the discrepancy stays (it was not evaluated in time) and says how late.
    late = _evaluate(carer, first, pb.PN_EFFECT_NONE, "still in pain, doctor called")
    assert late.pn_evaluation.effect == pb.PN_EFFECT_NONE
    [kept] = _followups(pharmacist)
    assert kept.status == dpb.DISCREPANCY_STATUS_OPEN
    # 60 minutes, and the moment the test's real clock moved on (rounded up to a minute).
    assert re.search(r"vurderet 6[01] min efter", kept.description), kept.description
    assert len(_lead_alerts(lead)) == 1
    # The evaluations show with the records.
    records = {r.name: r for r in carer.call(
        carer.rounds.ListAdministrationRecords,
        pb.ListAdministrationRecordsRequest(parent=R1)).records}
    assert records[first.name].pn_evaluation.note == "still in pain, doctor called"
    assert records[second.name].pn_evaluation.effect == pb.PN_EFFECT_GOOD
    assert records[second.name].pn_evaluation.first_evaluate_time == \
        records[second.name].pn_evaluation.evaluate_time


def test_evaluations_are_guarded_by_the_etag_and_only_for_pn_doses(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    carer, other = ward["carer"], ward["carer2"]
    dose = _pn(carer, "7d0f6f1c-4b43-4f1e-9a55-3f5f2b0e0003")
    set_now(server_clock, server_clock() + timedelta(minutes=30))
    _evaluate(carer, dose, pb.PN_EFFECT_PARTIAL)
    # A second evaluation made on the same read loses: nothing changed.
    stale = _fails(_evaluate, other, dose, pb.PN_EFFECT_NONE)
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    [record] = [r for r in carer.call(carer.rounds.ListAdministrationRecords,
                                      pb.ListAdministrationRecordsRequest(parent=R1)).records
                if r.name == dose.name]
    assert record.pn_evaluation.effect == pb.PN_EFFECT_PARTIAL
    # With the current etag a later evaluation replaces it, keeping the first time.
    again = _evaluate(other, record, pb.PN_EFFECT_GOOD)
    assert again.pn_evaluation.evaluated_by == "nurse-2"
    assert again.pn_evaluation.first_evaluate_time == record.pn_evaluation.first_evaluate_time
    bad = _fails(_evaluate, carer, again, pb.PN_EFFECT_UNSPECIFIED)
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad.violations] == ["effect"]
    no_etag = _fails(_evaluate, carer, again, pb.PN_EFFECT_GOOD, etag="")
    assert no_etag.code == grpc.StatusCode.INVALID_ARGUMENT
    # A scheduled dose is no PN dose.
    morning = _doses(carer, _today(server_clock))[0]
    given = carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, record=pb.AdministrationRecord(
            dose_id=morning.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="2",
            route="oral", administration_time=morning.due_time))).record
    not_pn = _fails(_evaluate, carer, given, pb.PN_EFFECT_GOOD)
    assert (not_pn.code, not_pn.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                            "NOT_A_PN_DOSE")
    # Nor is a corrected record; and a pharmacist does not evaluate.
    corrected = carer.call(carer.rounds.CorrectRecord, pb.CorrectRecordRequest(
        name=again.name, reason="wrong resident"))
    gone = _fails(_evaluate, carer, corrected, pb.PN_EFFECT_GOOD)
    assert (gone.code, gone.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                        "RECORD_ENTERED_IN_ERROR")
    denied = _fails(_evaluate, ward["pharmacist"], corrected, pb.PN_EFFECT_GOOD)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


def test_the_deadline_is_a_facility_setting(
        ward: dict[str, MedClient], server: ServerFixture, server_clock: TestClock) -> None:
    admin = server.client(Role.ADMIN)
    assert admin.get_facility("f").pn_evaluation_minutes == 120
    with pytest.raises(MedServiceError) as bad:
        admin.update_facility(fpb.Facility(name="facilities/f", pn_evaluation_minutes=2000),
                              ["pn_evaluation_minutes"])
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad.value.violations] == ["facility.pn_evaluation_minutes"]
    carer = ward["carer"]
    dose = _pn(carer, "7d0f6f1c-4b43-4f1e-9a55-3f5f2b0e0004")
    # Shortened to 30 minutes after the dose was recorded: the sweep finds it at the new
    # deadline.
    updated = admin.update_facility(fpb.Facility(name="facilities/f",
                                                 pn_evaluation_minutes=30),
                                    ["pn_evaluation_minutes"])
    assert updated.pn_evaluation_minutes == 30
    set_now(server_clock, server_clock() + timedelta(minutes=29))
    _sweep(server)
    assert _followups(ward["pharmacist"]) == []
    set_now(server_clock, server_clock() + timedelta(minutes=2))
    _sweep(server)
    [found] = _followups(ward["pharmacist"])
    assert found.record == dose.name
    assert found.occurrence_time == ts(dose.administration_time.ToDatetime())


def test_medctl_evaluates_a_pn_dose(ward: dict[str, MedClient], server: ServerFixture,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    dose = _pn(ward["carer"], "7d0f6f1c-4b43-4f1e-9a55-3f5f2b0e0005")
    base = ["--target", server.target, "--token", token_for(Role.CARER, "f")]
    assert main([*base, "evaluate", dose.name, "--effect", "partial", "--note", "calmer"]) == 0
    assert capsys.readouterr().out.strip() == f"effekt vurderet {dose.name}: delvis"
    [record] = [r for r in ward["carer"].call(
        ward["carer"].rounds.ListAdministrationRecords,
        pb.ListAdministrationRecordsRequest(parent=R1)).records if r.name == dose.name]
    assert (record.pn_evaluation.effect, record.pn_evaluation.note) == (pb.PN_EFFECT_PARTIAL,
                                                                        "calmer")
