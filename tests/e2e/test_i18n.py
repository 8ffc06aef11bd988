"""Danish first, English kept (issue 15), over gRPC on SQLite and PostgreSQL: the texts of
check reasons, discrepancies and alerts in the facility's language (Danish by default),
in the language a call asks for (accept-language), and the facility's language setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import json_format

from clients.client import MedClient, MedServiceError
from clients.medctl import main as medctl
from medservice.domain.access import Role
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, morning_evening, order, ts
from tests.conftest import ServerFixture, TestClock, token_for
from tests.e2e.test_http import CARER, Http, make_ward, ok
from tests.e2e.test_http import http as http  # the HTTP server fixture

R1 = "facilities/f/residents/r1"
ZONE = ZoneInfo("Europe/Copenhagen")


@pytest.fixture
def ward(server: ServerFixture, server_clock: TestClock) -> ServerFixture:
    server_clock.to_late_evening(ZONE)
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111", display_name="A",
                                            room="1"), "r1")
    integration = server.client(Role.INTEGRATION, "f")
    metformin = order(R1, "met", "Metformin", morning_evening("1"))
    metformin.drug.strength = "500 mg"
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=1, orders=[metformin]),
        valid_time=ts(CARD_VALID_FROM)))
    _to_tomorrow_morning(server_clock)
    return server


def _to_tomorrow_morning(clock: TestClock) -> None:
    """Tomorrow 09:00 local: the morning dose (08:00) is due and in its window."""
    local = clock().astimezone(ZONE).date() + timedelta(days=1)
    clock.advance(datetime(local.year, local.month, local.day, 9, tzinfo=ZONE) - clock())


def _client(server: ServerFixture, role: Role, language: str = "") -> MedClient:
    c = MedClient(server.target, token_for(role, "f"), timeout=10, language=language)
    server.clients.append(c)
    return c


def _morning(c: MedClient, clock: TestClock) -> pb.ScheduledDose:
    local = clock().astimezone(ZONE)
    day = datetime(local.year, local.month, local.day, tzinfo=ZONE)
    doses = c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
        parent=R1, start_time=ts(day), end_time=ts(day + timedelta(days=1)))).doses
    return doses[0]


def _check(c: MedClient, dose: pb.ScheduledDose) -> pb.CheckDoseResponse:
    """A wrong route and a wrong quantity: two reasons to read."""
    return c.call(c.rounds.CheckDose, pb.CheckDoseRequest(
        resident=R1, dose_id=dose.dose_id, quantity="1.5", route="SC",
        administration_time=dose.due_time))


def _messages(check: pb.CheckDoseResponse) -> dict[str, str]:
    return {r.code: r.message for r in check.reasons}


def test_check_reasons_are_danish_by_default_and_english_when_the_call_asks(
        ward: ServerFixture, server_clock: TestClock) -> None:
    dansk = _client(ward, Role.CARER)
    dose = _morning(dansk, server_clock)
    assert _messages(_check(dansk, dose)) == {
        "WRONG_ROUTE": "adm.vej subkutan anvendelse, hvor ordinationen siger oral anvendelse",
        "WRONG_DOSE": "mængde 1,5, hvor 1 er ordineret"}
    english = _client(ward, Role.CARER, "en-GB,en;q=0.9,da;q=0.5")
    assert _messages(_check(english, dose)) == {
        "WRONG_ROUTE": "route subcutaneous where the order says oral",
        "WRONG_DOSE": "quantity 1.5 where 1 is ordered"}
    # A language the catalogue does not have: the facility's (Danish), not an error.
    norsk = _client(ward, Role.CARER, "nb-NO")
    assert _messages(_check(norsk, dose))["WRONG_DOSE"] == "mængde 1,5, hvor 1 er ordineret"


def test_the_same_route_from_two_sources_is_no_wrong_route(
        ward: ServerFixture, server_clock: TestClock) -> None:
    carer = _client(ward, Role.CARER)
    dose = _morning(carer, server_clock)
    for route in ("OR", "26643006", "Oral Route (qualifier value)", "oral anvendelse"):
        check = carer.call(carer.rounds.CheckDose, pb.CheckDoseRequest(
            resident=R1, dose_id=dose.dose_id, quantity="1", route=route,
            administration_time=dose.due_time))
        assert check.verdict == pb.CHECK_VERDICT_OK, (route, check.reasons)


def test_a_facility_in_english_answers_in_english_and_a_call_may_ask_for_danish(
        ward: ServerFixture, server_clock: TestClock) -> None:
    admin = _client(ward, Role.ADMIN)
    facility = admin.call(admin.facilities.GetFacility, fpb.GetFacilityRequest(
        name="facilities/f"))
    assert facility.language == "da"  # the default
    updated = admin.update_facility(fpb.Facility(name="facilities/f", language="en",
                                                 etag=facility.etag), ["language"])
    assert updated.language == "en"
    carer = _client(ward, Role.CARER)
    dose = _morning(carer, server_clock)
    assert _messages(_check(carer, dose))["WRONG_DOSE"] == "quantity 1.5 where 1 is ordered"
    dansk = _client(ward, Role.CARER, "da")
    assert _messages(_check(dansk, dose))["WRONG_DOSE"] == "mængde 1,5, hvor 1 er ordineret"


def test_a_language_the_catalogue_lacks_is_refused_naming_the_field(
        ward: ServerFixture) -> None:
    admin = _client(ward, Role.ADMIN)
    with pytest.raises(MedServiceError) as info:
        admin.update_facility(fpb.Facility(name="facilities/f", language="sv"), ["language"])
    assert info.value.code.name == "INVALID_ARGUMENT"
    assert [v[0] for v in info.value.violations] == ["facility.language"]
    assert "da, en" in info.value.violations[0][1]


def test_a_stored_discrepancy_and_its_alert_read_in_either_language(
        ward: ServerFixture, server_clock: TestClock) -> None:
    carer = _client(ward, Role.CARER)
    dose = _morning(carer, server_clock)
    record = pb.AdministrationRecord(
        dose_id=dose.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="3",
        route="oral", administration_time=dose.due_time, source=pb.DOSE_SOURCE_POUCH)
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, record=record, acknowledged_reasons=["WRONG_DOSE"]))

    def wrong_dose(c: MedClient) -> dpb.Discrepancy:
        found = c.call(c.discrepancies.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
            parent="facilities/f", code=dpb.DISCREPANCY_CODE_WRONG_DOSE)).discrepancies
        assert len(found) == 1
        return found[0]

    assert wrong_dose(_client(ward, Role.PHARMACIST)).description == \
        "mængde 3, hvor 1 er ordineret"
    assert wrong_dose(_client(ward, Role.PHARMACIST, "en")).description == \
        "quantity 3 where 1 is ordered"

    def alert(c: MedClient) -> apb.Alert:
        alerts = c.call(c.alerts.ListAlerts, apb.ListAlertsRequest(
            parent="facilities/f", audience=common_pb2.ROLE_PHARMACIST)).alerts
        assert len(alerts) == 1
        return alerts[0]

    assert alert(_client(ward, Role.PHARMACIST)).summary == \
        "Forkert dosis: værelse 1, Metformin 500 mg: mængde 3, hvor 1 er ordineret"
    assert alert(_client(ward, Role.PHARMACIST, "en")).summary == \
        "Wrong dose: room 1, Metformin 500 mg: quantity 3 where 1 is ordered"


def test_a_missed_dose_names_the_drug_with_its_strength_in_either_language(
        ward: ServerFixture, server_clock: TestClock) -> None:
    carer = _client(ward, Role.CARER)
    dose = _morning(carer, server_clock)
    # Past the morning window (08:00 +- 60 min for twice daily), nothing recorded.
    server_clock.advance(dose.window_end.ToDatetime(tzinfo=UTC) - server_clock()
                         + timedelta(minutes=5))
    ward.running.sweeper.run_once()
    lead = _client(ward, Role.SHIFT_LEAD)
    alerts = lead.call(lead.alerts.ListAlerts, apb.ListAlertsRequest(
        parent="facilities/f", audience=common_pb2.ROLE_SHIFT_LEAD)).alerts
    due = dose.due_time.ToDatetime(tzinfo=UTC).astimezone(ZONE)
    assert [a.summary for a in alerts] == [
        f"Glemt dosis: værelse 1, Metformin 500 mg: dosis med tid {due:%Y-%m-%d %H:%M %Z} ikke "
        f"dokumenteret senest {due + timedelta(hours=1):%H:%M %Z}"]
    english = _client(ward, Role.SHIFT_LEAD, "en")
    alerts = english.call(english.alerts.ListAlerts, apb.ListAlertsRequest(
        parent="facilities/f", audience=common_pb2.ROLE_SHIFT_LEAD)).alerts
    assert [a.summary for a in alerts] == [
        f"Missed dose: room 1, Metformin 500 mg: dose due {due:%Y-%m-%d %H:%M %Z} not recorded "
        f"by {due + timedelta(hours=1):%H:%M %Z}"]


def test_the_http_front_end_passes_the_browsers_accept_language(
        http: Http, server_clock: TestClock) -> None:
    make_ward(http, server_clock)
    _to_tomorrow_morning(server_clock)
    carer = http.grpc_client(Role.CARER, "f")
    try:
        dose = _morning(carer, server_clock)
    finally:
        carer.close()
    body = {"doseId": dose.dose_id, "quantity": "1.5", "route": "oral",
            "administrationTime": json_format.MessageToDict(dose)["dueTime"]}

    def reasons(accept_language: str | None) -> list[str]:
        headers = {"authorization": f"Bearer {CARER}"}
        if accept_language is not None:
            headers["accept-language"] = accept_language
        response = http.client.post(f"{http.base}/v1/{R1}:checkDose", json=body,
                                    headers=headers)
        return [r["message"] for r in ok(response)["reasons"]]

    # Paracetamol 2 is ordered in make_ward's card.
    assert reasons(None) == ["mængde 1,5, hvor 2 er ordineret"]
    assert reasons("en-US,en;q=0.9") == ["quantity 1.5 where 2 is ordered"]
    assert reasons("da, en;q=0.5") == ["mængde 1,5, hvor 2 er ordineret"]


def test_medctls_dispensing_list_counts_units_and_shows_strength_in_its_language(
        ward: ServerFixture, server_clock: TestClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    integration = _client(ward, Role.INTEGRATION)
    metformin = order(R1, "met", "Metformin", morning_evening("1"))
    metformin.drug.strength = "500 mg"
    paracetamol = order(R1, "para", "Paracetamol", morning_evening("2"))
    paracetamol.drug.strength = "500 mg"
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=2,
                              orders=[metformin, paracetamol]),
        valid_time=ts(CARD_VALID_FROM)))
    day = server_clock().astimezone(ZONE).date().isoformat()

    def dispensing(*lang: str) -> list[str]:
        code = medctl(["--target", ward.target, "--token", token_for(Role.CARER, "f"),
                       *lang, "dispensing", "--facility", "f", "--date", day, "--shift", "day"])
        assert code == 0
        return [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]

    assert dispensing() == [
        "VÆRELSE BEBOER DOSISPOSE / HÆLDT LÆGEMIDDEL I ALT TIDER",
        "1 A Dosispose Metformin 500 mg 1 tablet 08:00",
        "1 A Dosispose Paracetamol 500 mg 2 tabletter 08:00"]
    assert dispensing("--lang", "en") == [
        "ROOM RESIDENT POUCH / POURED DRUG TOTAL TIMES",
        "1 A Pouch Metformin 500 mg 1 tablet 08:00",
        "1 A Pouch Paracetamol 500 mg 2 tablets 08:00"]


def test_medctl_refuses_a_language_it_lacks_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        medctl(["--lang", "sv", "dispensing", "--facility", "f", "--date", "2026-12-05"])
    assert info.value.code == 2
    assert "argument --lang: invalid choice: 'sv'" in capsys.readouterr().err


def test_round_list_notes_in_the_facilitys_language_or_the_callers(
        ward: ServerFixture, server_clock: TestClock) -> None:
    integration = _client(ward, Role.INTEGRATION)
    metformin = order(R1, "met", "Metformin", morning_evening("1"))
    metformin.drug.strength = "500 mg"
    metformin.pauses.add()  # open-ended from when it is recorded: now
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=2, orders=[metformin]),
        valid_time=ts(server_clock())))
    day = server_clock().astimezone(ZONE).date().isoformat()

    def notes(c: MedClient) -> list[str]:
        """The pause's note (the inspection checks' and the unapproved change's are tested
        in test_card_checks and test_card_approval)."""
        return [n.text for r in c.shift_schedule("f", day, "day").residents for n in r.notes
                if n.kind == pb.ORDER_NOTE_KIND_PAUSED]

    assert notes(_client(ward, Role.CARER)) == ["pauseret: doser i pausen skal ikke gives"]
    assert notes(_client(ward, Role.CARER, "en")) == [
        "paused: doses inside the pause are not due"]


def test_a_watcher_asking_for_english_gets_its_alerts_in_english(
        ward: ServerFixture, server_clock: TestClock) -> None:
    pharmacist = _client(ward, Role.PHARMACIST, "en")
    stream = pharmacist.alerts.WatchAlerts(
        apb.WatchAlertsRequest(parent="facilities/f", audience=common_pb2.ROLE_PHARMACIST),
        metadata=(("authorization", f"Bearer {token_for(Role.PHARMACIST, 'f')}"),
                  ("accept-language", "en")), timeout=20)
    try:
        first = next(stream)  # connected (a heartbeat): what follows is live
        assert first.WhichOneof("event") == "heartbeat"
        carer = _client(ward, Role.CARER)
        dose = _morning(carer, server_clock)
        record = pb.AdministrationRecord(
            dose_id=dose.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="3",
            route="oral", administration_time=dose.due_time, source=pb.DOSE_SOURCE_POUCH)
        carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
            parent=R1, record=record, acknowledged_reasons=["WRONG_DOSE"]))
        alert = next(m for m in stream if m.WhichOneof("event") == "alert").alert
        assert alert.summary == "Wrong dose: room 1, Metformin 500 mg: " \
            "quantity 3 where 1 is ordered"
    finally:
        stream.cancel()


def test_medctls_round_list_in_its_language(
        ward: ServerFixture, server_clock: TestClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    carer = _client(ward, Role.CARER)
    dose = _morning(carer, server_clock)
    record = pb.AdministrationRecord(
        dose_id=dose.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
        not_given_reason=pb.NOT_GIVEN_REASON_REFUSED, administration_time=dose.due_time)
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(parent=R1, record=record))
    day = server_clock().astimezone(ZONE).date().isoformat()

    def round_list(*lang: str) -> str:
        assert medctl(["--target", ward.target, "--token", token_for(Role.CARER, "f"),
                       *lang, "round", "--facility", "f", "--date", day, "--shift", "day"]) == 0
        return " ".join(capsys.readouterr().out.split())

    dansk = round_list()
    assert "08:00 ikke givet 08:00 af test-carer (nægtet) Metformin 500 mg 1 tablet " \
        "oral anvendelse ±60 min" in dansk
    english = round_list("--lang", "en")
    assert "08:00 not given 08:00 by test-carer (refused) Metformin 500 mg 1 tablet oral " \
        "±60 min" in english


def test_openapi_documents_the_accept_language_header(http: Http) -> None:
    document = ok(http.client.get(f"{http.base}/openapi.json"))
    check = document["paths"]["/v1/facilities/{facility}/residents/{resident}:checkDose"]
    assert {"name": "Accept-Language", "in": "header"}.items() <= next(
        p for p in check["post"]["parameters"] if p["name"] == "Accept-Language").items()
