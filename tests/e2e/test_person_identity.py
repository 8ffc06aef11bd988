"""A person identifier is no cross-facility oracle, on SQLite and PostgreSQL (issue 13):
CreateResident answers the same whatever other facilities hold, and a person who moves is a
resident of each facility, separately."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2, medicine_cards_pb2_grpc
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from tests.conftest import ServerFixture

PERSON = "010145-1234"
UNUSED = "020245-2345"


def _resident(person_id: str, name: str = "Test Person") -> fpb.Resident:
    return fpb.Resident(person_id=person_id, display_name=name, room="1")


def _outcome(client: MedClient, facility: str, person_id: str, resident_id: str
             ) -> tuple[str, str]:
    try:
        client.create_resident(facility, _resident(person_id), resident_id)
        return ("OK", "")
    except MedServiceError as e:
        return (e.code.name, e.reason)


@pytest.fixture
def homes(server: ServerFixture) -> tuple[MedClient, MedClient]:
    admin = server.client(Role.ADMIN)
    for f in ("a", "b", "c"):
        admin.create_facility(fpb.Facility(display_name=f"Home {f}"), f)
    return server.client(Role.ADMIN, "a", subject="admin-a"), \
        server.client(Role.ADMIN, "b", subject="admin-b")


def test_create_resident_answers_the_same_whatever_other_facilities_hold(
        server: ServerFixture, homes: tuple[MedClient, MedClient]) -> None:
    admin_a, admin_b = homes
    admin_a.create_resident("a", _resident(PERSON), "r1")
    # B cannot tell a person living in A from one living nowhere: both are created.
    assert _outcome(admin_b, "b", PERSON, "held-in-a") == ("OK", "")
    assert _outcome(admin_b, "b", UNUSED, "held-nowhere") == ("OK", "")
    # Within its own facility the check stands, for both alike.
    assert _outcome(admin_b, "b", "0101451234", "again") == ("ALREADY_EXISTS", "PERSON_ID_EXISTS")
    assert _outcome(admin_b, "b", UNUSED, "again") == ("ALREADY_EXISTS", "PERSON_ID_EXISTS")
    # And A's answer does not change because B now holds the person too.
    assert _outcome(admin_a, "a", UNUSED, "r2") == ("OK", "")


def test_two_creates_of_one_person_in_one_facility_race_to_one(
        server: ServerFixture, homes: tuple[MedClient, MedClient]) -> None:
    _, admin_b = homes
    outcomes: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda i=i: outcomes.append(
        _outcome(admin_b, "b", PERSON, f"r{i}"))) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(o[0] for o in outcomes) == ["ALREADY_EXISTS"] * 3 + ["OK"]
    assert [r.person_id for r in admin_b.list_residents("b")] == ["0101451234"]


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _order(resident: str) -> cpb.Order:
    dose = cpb.DosageDose(time_kind=cpb.DOSE_TIME_KIND_MORNING,
                          amount=common_pb2.DoseQuantity(quantity="1"))
    return cpb.Order(
        name=f"{resident}/orders/ord-1",
        drug=cpb.Drug(name="Paracetamol", drug_id="28101234", atc_code="N02BE01",
                      form="tabletter", strength="500 mg"),
        route="oral", treatment_start_date="2026-01-01",
        dosage=cpb.Dosage(structured=cpb.StructuredDosage(
            unit=cpb.DoseUnit(singular="tablet", plural="tabletter"),
            periods=[cpb.DosagePeriod(start_date="2026-01-01", iteration_interval_days=1,
                                      days=[cpb.DosageDay(day_number=1, doses=[dose])])])),
        dispensing_mode=common_pb2.DISPENSING_MODE_DOSE_DISPENSED)


def _sync(client: MedClient, resident: str, version: int, orders: list[cpb.Order]
          ) -> cpb.SyncMedicineCardResponse:
    stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(client.channel)
    return client.call(stub.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=version,
                              orders=orders),
        valid_time=_ts(datetime(2026, 1, 1, tzinfo=UTC))))


def test_a_person_who_moves_is_a_separate_resident_of_each_facility(
        server: ServerFixture, homes: tuple[MedClient, MedClient]) -> None:
    admin_a, admin_b = homes
    old, new = "facilities/a/residents/r1", "facilities/b/residents/r7"
    admin_a.create_resident("a", _resident(PERSON), "r1")
    feed_a = server.client(Role.INTEGRATION, "a", subject="feed-a")
    _sync(feed_a, old, 1, [_order(old)])
    # Moved: created in B with the same person id; A's resident and card are kept.
    admin_b.create_resident("b", _resident(PERSON, "Test Person"), "r7")
    feed_b = server.client(Role.INTEGRATION, "b", subject="feed-b")
    assert [o.drug.name for o in _sync(feed_b, new, 1, [_order(new)]).card.orders] == [
        "Paracetamol"]
    assert admin_a.get_resident(old).person_id == admin_b.get_resident(new).person_id
    # Each facility sees its own resident only.
    for client, name in ((admin_a, new), (admin_b, old)):
        with pytest.raises(MedServiceError) as info:
            client.get_resident(name)
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    # A ends the old resident's rounds with an empty whole card; B's card is untouched.
    assert list(_sync(feed_a, old, 2, []).card.orders) == []
    assert len(feed_b.get_card(new).orders) == 1


# FHIR import checks the patient as the FMK import does (issue 13).

CPR = "urn:oid:1.2.208.176.1.2"
TEST_PERSON = "2512489996"  # well-known Danish test persons
OTHER_TEST_PERSON = "1111111118"
RESIDENT = "facilities/a/residents/r1"


def _fhir(subject: Mapping[str, Any], *extra: Mapping[str, Any]) -> bytes:
    request = {
        "resourceType": "MedicationRequest", "id": "rx1", "status": "active",
        "intent": "order", "subject": subject,
        "medicationCodeableConcept": {"coding": [
            {"system": "https://fmk.example/drug", "code": "28101234",
             "display": "Panodil 500 mg"},
            {"system": "http://www.whocc.no/atc", "code": "N02BE01"}]},
        "dosageInstruction": [{
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
    }
    entries = [{"resource": r} for r in (*extra, request)]
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": entries}).encode()


DONALD: dict[str, Any] = {"reference": "Patient/pat1", "display": "Donald Duck"}


@pytest.fixture
def feed(server: ServerFixture, homes: tuple[MedClient, MedClient]) -> MedClient:
    homes[0].create_resident("a", _resident(TEST_PERSON), "r1")
    return server.client(Role.INTEGRATION, "a", subject="feed-a")


def _import_fails(feed: MedClient, data: bytes, unidentified: bool = False) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        feed.import_fhir(RESIDENT, data, unidentified=unidentified)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message.startswith("subject: ")  # names the field
    assert list(feed.get_card(RESIDENT).orders) == []  # nothing applied
    assert feed.get_card(RESIDENT).card_version == 0  # nor the card's version
    for secret in (TEST_PERSON, OTHER_TEST_PERSON, "Donald", "pat1"):
        assert secret not in str(info.value)
    return info.value


def test_fhir_for_another_person_is_refused_flagged_or_not(feed: MedClient) -> None:
    for subject, extra in (({"identifier": {"system": CPR, "value": OTHER_TEST_PERSON}}, ()),
                           (DONALD, ({"resourceType": "Patient", "id": "pat1", "identifier": [
                               {"system": CPR, "value": "111111-1118"}]},))):
        for unidentified in (False, True):
            err = _import_fails(feed, _fhir(subject, *extra), unidentified)
            assert err.reason == "PERSON_MISMATCH"


def test_fhir_naming_the_resident_by_cpr_imports_without_the_flag(feed: MedClient) -> None:
    patient = {"resourceType": "Patient", "id": "pat1",
               "identifier": [{"system": CPR, "value": "251248-9996"}]}
    result = feed.import_fhir(RESIDENT, _fhir(DONALD, patient))
    assert [o.drug.name for o in result.card.orders] == ["Panodil 500 mg"]


def _import_events(server: ServerFixture) -> list[Any]:
    pharmacist = server.client(Role.PHARMACIST, "a", subject="pharmacist-a")
    return [e for e in pharmacist.audit_events("facilities/a")
            if e.method.endswith("/ImportFhirMedicationRequests")]


def test_fhir_naming_nobody_needs_the_unidentified_flag_and_the_audit_says_who(
        server: ServerFixture, feed: MedClient) -> None:
    err = _import_fails(feed, _fhir(DONALD))
    assert err.reason == "SUBJECT_NOT_IDENTIFIED"
    assert "unidentified" in err.message and CPR in err.message
    unnamed = {"resourceType": "Patient", "id": "pat1", "name": [{"family": "Duck"}]}
    assert _import_fails(feed, _fhir(DONALD, unnamed)).reason == "SUBJECT_NOT_IDENTIFIED"
    assert [(e.outcome, e.detail) for e in _import_events(server)] == [
        ("FAILED_PRECONDITION", "")] * 2
    result = feed.import_fhir(RESIDENT, _fhir(DONALD), unidentified=True)
    assert [o.drug.name for o in result.card.orders] == ["Panodil 500 mg"]
    allowed = [e for e in _import_events(server) if e.outcome == "OK"]
    assert [(e.subject, e.role, e.detail, e.resident) for e in allowed] == [
        ("feed-a", common_pb2.ROLE_INTEGRATION, "unidentified", RESIDENT)]


def test_a_document_naming_the_resident_is_not_marked_unidentified(
        server: ServerFixture, feed: MedClient) -> None:
    identified = {"identifier": {"system": CPR, "value": TEST_PERSON}}
    feed.import_fhir(RESIDENT, _fhir(identified), unidentified=True)  # the flag is not used
    assert [(e.outcome, e.detail) for e in _import_events(server)] == [("OK", "")]


def test_medctl_import_fhir_imports_an_unidentified_document_when_told(
        server: ServerFixture, feed: MedClient, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    path = tmp_path / "bundle.json"
    path.write_bytes(_fhir(DONALD))
    token = feed._metadata[0][1].split()[1]
    base = ["--target", server.target, "--token", token, "import", "fhir", str(path),
            "--resident", RESIDENT]
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "--unidentified" in err and "subject" in err
    assert main([*base, "--unidentified"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[0] == "1 oprettet"
