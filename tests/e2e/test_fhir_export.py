"""The FHIR export end to end on SQLite and PostgreSQL (issue 20): import, give, refuse,
correct, raise a discrepancy, review it, then export: every resource validates with the
R4 models, and the counts match the records."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from medservice.domain.access import Role
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import reports_pb2 as repb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import ts
from tests.conftest import ServerFixture, token_for
from tests.e2e.test_http import (
    Http,
    http,  # noqa: F401  (the HTTP server fixture)
)

RESIDENT = "facilities/f/residents/r1"
CPR = "urn:oid:1.2.208.176.1.2"
PHARMACIST = token_for(Role.PHARMACIST, "f", subject="pharm-1")
CARER_TOKEN = token_for(Role.CARER, "f", subject="carer-1")


def _order(start: str) -> bytes:
    return json.dumps({
        "resourceType": "MedicationRequest", "id": "rx1", "status": "active",
        "intent": "order", "subject": {"identifier": {"system": CPR, "value": "0101451234"}},
        "medicationCodeableConcept": {"text": "Panodil 500 mg", "coding": [
            {"system": "http://www.whocc.no/atc", "code": "N02BE01"}]},
        "dosageInstruction": [{
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                                  "when": ["MORN", "EVE"], "boundsPeriod": {"start": start}}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]}).encode()


def test_give_refuse_correct_review_then_export(server: ServerFixture, server_clock: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1234", display_name="T",
                                            room="1"), "r1")
    feed = server.client(Role.INTEGRATION, "f")
    now = server_clock()
    start = now.date() - timedelta(days=1)
    today = start + timedelta(days=4)  # the export's end lies after all of it
    feed.import_fhir(RESIDENT, _order(start.isoformat()))
    carer = server.client(Role.CARER, "f", subject="carer-7")
    doses = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENT, start_time=ts(now), end_time=ts(now + timedelta(days=2)))).doses
    given, refused, corrected = doses[0], doses[1], doses[2]
    server_clock.advance(timedelta(days=2, hours=1))  # the three are past now

    def record(dose: rpb.ScheduledDose, ack: tuple[str, ...] = (),
               **fields: object) -> rpb.RecordDoseResponse:
        r = rpb.AdministrationRecord(dose_id=dose.dose_id, administration_time=dose.due_time,
                                     **fields)  # type: ignore[arg-type]
        return carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
            parent=RESIDENT, record=r, acknowledged_reasons=list(ack)))

    record(given, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1", route="oral")
    record(refused, outcome=rpb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
           not_given_reason=rpb.NOT_GIVEN_REASON_RESIDENT_ABSENT)
    wrong = record(corrected, ("WRONG_DOSE",), outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN,
                   quantity="3")
    nurse = server.client(Role.SHIFT_LEAD, "f", subject="lead-1")
    nurse.call(nurse.rounds.CorrectRecord, rpb.CorrectRecordRequest(
        name=wrong.record.name, reason="wrong quantity typed"))
    # The dose is open again; its new record names the one it replaces.
    assert not wrong.record.replaces_record
    replacement = record(corrected, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1")
    assert replacement.record.replaces_record == wrong.record.name
    pharmacist = server.client(Role.PHARMACIST, "f", subject="pharm-1")
    queue = list(pharmacist.review_queue("facilities/f"))
    assert queue, "the late documentation and missed doses are there to review"
    pharmacist.review_discrepancy(queue[0].name, dpb.REVIEW_DECISION_NOT_AN_ERROR,
                                  "paper round", queue[0].etag)

    document = feed.call(feed.reports.ExportFhir, repb.ExportFhirRequest(
        resident=RESIDENT, start_date=start.isoformat(),
        end_date=(today + timedelta(days=1)).isoformat()))
    assert document.content_type == "application/fhir+json"
    bundle = json.loads(document.content)
    Bundle.model_validate(bundle)  # every resource in it too
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    administrations = [e["resource"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "MedicationAdministration"]
    records = list(carer.call(carer.rounds.ListAdministrationRecords,
                              rpb.ListAdministrationRecordsRequest(parent=RESIDENT)).records)
    assert len(administrations) == len(records) == 4
    assert sorted(a["status"] for a in administrations) == [
        "completed", "completed", "entered-in-error", "not-done"]
    # The order's unit in the form its quantity takes: 1 tablet, 3 tabletter.
    assert sorted((a["status"], a["dosage"]["dose"]["value"], a["dosage"]["dose"]["unit"])
                  for a in administrations if "dose" in a.get("dosage", {})) == [
        ("completed", 1, "tablet"), ("completed", 1, "tablet"),
        ("entered-in-error", 3, "tabletter")]
    wrong_id = wrong.record.name.rsplit("/", 1)[1]
    by_id = {a["id"]: a for a in administrations}
    assert by_id[wrong_id]["status"] == "entered-in-error"
    assert "extension" not in by_id[wrong_id]  # it stays as it was: who and why
    assert by_id[replacement.record.name.rsplit("/", 1)[1]]["extension"] == [{
        "url": "https://medservice.dk/fhir/StructureDefinition/replaces-record",
        "valueReference": {"reference": f"MedicationAdministration/{wrong_id}"}}]
    assert sum("extension" in a for a in administrations) == 1
    issues = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "DetectedIssue"]
    held = [d for d in pharmacist.call(pharmacist.discrepancies.ListDiscrepancies,
                                       dpb.ListDiscrepanciesRequest(
                                           parent="facilities/f")).discrepancies
            if d.status != dpb.DISCREPANCY_STATUS_WITHDRAWN]
    assert len(issues) == len(held) and kinds.count("DetectedIssue") == len(held)
    assert [i["status"] for i in issues].count("final") == 1  # the one reviewed
    assert all(a["performer"][0]["actor"]["identifier"]["value"] == "carer-7"
               for a in administrations)
    assert "0101451234" not in document.content.decode()  # no CPR number goes out

    from clients.medctl import main

    token = feed._metadata[0][1].split()[1]
    assert main(["--target", server.target, "--token", token, "fhir", "export",
                 "--resident", "r1", "--facility", "f", "--from", start.isoformat(),
                 "--to", (today + timedelta(days=1)).isoformat()]) == 0
    assert json.loads(capsys.readouterr().out) == bundle
    # Dates as medctl reads them elsewhere: the Danish order too.
    assert main(["--target", server.target, "--token", token, "fhir", "export",
                 "--resident", "r1", "--facility", "f", "--from", f"{start:%d-%m-%Y}",
                 "--to", f"{today + timedelta(days=1):%d.%m.%Y}"]) == 0
    assert json.loads(capsys.readouterr().out) == bundle
    carer_token = carer._metadata[0][1].split()[1]  # carers do not export
    assert main(["--target", server.target, "--token", carer_token, "fhir", "export",
                 "--resident", RESIDENT, "--from", start.isoformat(),
                 "--to", today.isoformat()]) != 0


def test_fhir_search_over_http_is_the_export_with_its_tokens_roles_and_audit(
        http: Http, server_clock: Any) -> None:  # noqa: F811  (the fixture)
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    admin = http.grpc_client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1234", display_name="T",
                                            room="1"), "r1")
    now = server_clock()
    start = now.date() - timedelta(days=1)
    feed = http.grpc_client(Role.INTEGRATION, "f")
    feed.import_fhir(RESIDENT, _order(start.isoformat()))
    carer = http.grpc_client(Role.CARER, "f")
    [dose, *_] = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENT, start_time=ts(now), end_time=ts(now + timedelta(days=1)))).doses
    server_clock.advance(timedelta(days=1, hours=1))
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(parent=RESIDENT, record=(
        rpb.AdministrationRecord(dose_id=dose.dose_id, administration_time=dose.due_time,
                                 outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1"))))
    period = [("date", f"ge{start.isoformat()}"),
              ("date", f"lt{(start + timedelta(days=5)).isoformat()}")]
    query = [("subject", RESIDENT), *period]

    def search(kind: str, token: str | None, params: Any) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return http.client.get(f"{http.base}/fhir/R4/{kind}", params=params, headers=headers)

    found = search("MedicationAdministration", PHARMACIST, query)
    assert found.status_code == 200, found.text
    assert found.headers["content-type"] == "application/fhir+json"
    bundle = found.json()
    Bundle.model_validate(bundle)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [
        "MedicationAdministration"]
    issues = search("DetectedIssue", PHARMACIST, [("subject", f"Patient/{RESIDENT}"), *period])
    assert issues.status_code == 200
    assert {e["resource"]["resourceType"] for e in issues.json()["entry"]} <= {"DetectedIssue"}
    for params, token, code in (
            ([("subject", RESIDENT)], PHARMACIST, 400),  # no period
            (query, None, 401), (query, CARER_TOKEN, 403),
            ([("subject", "facilities/g/residents/r1"), *period], PHARMACIST, 403)):
        refused = search("MedicationAdministration", token, params)
        assert refused.status_code == code, (params, refused.text)
        OperationOutcome.model_validate(refused.json())
    events = [e for e in admin.audit_events("facilities/f")
              if e.method.endswith("/ExportFhir") and e.outcome == "OK"]
    assert {e.subject for e in events} == {"pharm-1"} and len(events) == 2


def test_a_medication_administration_posted_twice_records_one_dose(
        http: Http, server_clock: Any) -> None:  # noqa: F811  (the fixture)
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    admin = http.grpc_client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1234", display_name="T",
                                            room="1"), "r1")
    now = server_clock()
    http.grpc_client(Role.INTEGRATION, "f").import_fhir(
        RESIDENT, _order((now.date() - timedelta(days=1)).isoformat()))
    carer = http.grpc_client(Role.CARER, "f")
    [dose, second, third, *_] = carer.call(carer.rounds.ListScheduledDoses,
                                           rpb.ListScheduledDosesRequest(
                                               parent=RESIDENT, start_time=ts(now),
                                               end_time=ts(now + timedelta(days=2)))).doses
    server_clock.advance(timedelta(days=2, hours=1))  # the three are past now
    due = dose.due_time.ToDatetime().replace(tzinfo=None).isoformat() + "+00:00"
    given = {
        "resourceType": "MedicationAdministration", "status": "completed",
        "identifier": [{"system": "urn:front-end:mar", "value": "adm-42"}],
        "medicationCodeableConcept": {"text": "Panodil 500 mg"},
        "subject": {"identifier": {"system": "https://medservice.dk/fhir/resident",
                                   "value": RESIDENT}},
        "effectiveDateTime": due, "request": {"reference": "MedicationRequest/rx1"},
        "dosage": {"dose": {"value": 1, "unit": "tablet"}, "route": {"text": "oral"}}}

    def post(resource: Any, token: str = CARER_TOKEN) -> Any:
        return http.client.post(f"{http.base}/fhir/R4/MedicationAdministration",
                                json=resource, headers={"authorization": f"Bearer {token}"})

    first, again = post(given), post(given)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"]
    records = list(carer.call(carer.rounds.ListAdministrationRecords,
                              rpb.ListAdministrationRecordsRequest(parent=RESIDENT)).records)
    assert len(records) == 1 and records[0].dose_id == dose.dose_id  # on the scheduled dose
    assert records[0].performer == "carer-1"
    away = {**given, "status": "not-done",
            "identifier": [{"system": "urn:front-end:mar", "value": "adm-43"}],
            "effectiveDateTime": second.due_time.ToDatetime().isoformat() + "+00:00",
            "statusReason": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/reason-medication-not-given",
                "code": "b"}]}]}
    assert post(away).status_code == 201
    states = {r.outcome: r.not_given_reason for r in carer.call(
        carer.rounds.ListAdministrationRecords,
        rpb.ListAdministrationRecordsRequest(parent=RESIDENT)).records}
    assert states[rpb.ADMINISTRATION_OUTCOME_NOT_GIVEN] == rpb.NOT_GIVEN_REASON_RESIDENT_ABSENT
    # The same errors as RecordDose, as an OperationOutcome.
    for resource, token, code in (
            ({**given, "identifier": []}, CARER_TOKEN, 400),
            ({**given, "status": "in-progress"}, CARER_TOKEN, 400),
            ({**given, "effectiveDateTime": "2999-01-01T08:00:00+01:00",
              "identifier": [{"value": "adm-44"}]}, CARER_TOKEN, 400),  # in the future
            ({**given, "identifier": [{"value": "adm-45"}],
              "subject": {"identifier": {"system": "https://medservice.dk/fhir/resident",
                                         "value": "facilities/g/residents/r1"}}},
             CARER_TOKEN, 403),
            (given, PHARMACIST, 403)):
        refused = post(resource, token)
        assert refused.status_code == code, (resource, refused.text)
        outcome = refused.json()
        OperationOutcome.model_validate(outcome)

    # A STOP (three tablets, one ordered) is refused naming the reason, as RecordDose
    # refuses it; the same resource acknowledging it records the dose, once.
    wrong = {**given, "identifier": [{"system": "urn:front-end:mar", "value": "adm-50"}],
             "effectiveDateTime": _instant(third.due_time),
             "dosage": {"dose": {"value": 3, "unit": "tablet"}, "route": {"text": "oral"}}}
    stop = post(wrong)
    assert stop.status_code == 400, stop.text
    OperationOutcome.model_validate(stop.json())
    [issue] = stop.json()["issue"]
    assert issue["code"] == "business-rule" and "WRONG_DOSE" in issue["diagnostics"]
    assert _records_of(carer, third.dose_id) == []
    unknown = post({**wrong, "extension": [_ack("WRONG_DOSE"), _ack("NOT_A_REASON")]})
    assert unknown.status_code == 400, unknown.text
    OperationOutcome.model_validate(unknown.json())
    assert "extension[1].valueCode" in unknown.json()["issue"][0]["diagnostics"]
    other = {"url": "https://example.org/fhir/StructureDefinition/anything",
             "valueString": "another system's extension is left alone"}
    acknowledged = {**wrong, "extension": [other, _ack("WRONG_DOSE")]}
    first, again = post(acknowledged), post(acknowledged)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"]
    [stored] = _records_of(carer, third.dose_id)
    assert (stored.quantity, stored.name.rsplit("/", 1)[1]) == ("3", first.json()["id"])


def _ack(code: str) -> dict[str, str]:
    return {"url": "https://medservice.dk/fhir/StructureDefinition/acknowledged-reason",
            "valueCode": code}


def _instant(at: Any) -> str:
    return str(at.ToDatetime().isoformat()) + "+00:00"


def _records_of(client: Any, dose_id: str) -> list[rpb.AdministrationRecord]:
    return [r for r in client.call(client.rounds.ListAdministrationRecords,
                                   rpb.ListAdministrationRecordsRequest(parent=RESIDENT)
                                   ).records if r.dose_id == dose_id]
