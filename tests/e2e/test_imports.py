"""FMK and FHIR documents imported into a card over gRPC, on SQLite and PostgreSQL, from
the reference examples in ../shared/reference (skipped without them, unless CI requires)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import ts
from tests.conftest import ServerFixture

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
FMK_CARD = REFERENCE / "fmk/examples/2012/06/01/GetMedicineCardResponse.xml"
RESIDENT = "facilities/f/residents/r1"


def _need(path: Path) -> bytes:
    if not path.exists():
        if os.environ.get("MEDSERVICE_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"reference file missing: {path}")
        pytest.skip(f"reference data not present ({path}); see ../shared/reference")
    return path.read_bytes()


def _home(server: ServerFixture, person_id: str) -> MedClient:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id=person_id, display_name="T", room="1"),
                          "r1")
    return server.client(Role.INTEGRATION, "f")


def test_fmk_medicine_card_response_imports_with_pause_and_discontinuation(
        server: ServerFixture) -> None:
    data = _need(FMK_CARD)
    client = _home(server, "111111-1118")  # the example's test person
    result = client.import_fmk(RESIDENT, data)
    assert [o.drug.name for o in result.card.orders] == ["Primcillin"]
    # Per order: the readable one created; the negative-consent one (never on the card)
    # refused, with why.
    assert [c.kind for c in result.changes] == [cpb.ORDER_CHANGE_KIND_CREATED,
                                                cpb.ORDER_CHANGE_KIND_REFUSED]
    assert result.changes[1].source_order_id == "11222123131213"
    assert "negative consent" in result.changes[1].reason
    order = result.card.orders[0]
    assert order.state == cpb.ORDER_STATE_DISCONTINUED
    assert len(order.pauses) == 1 and order.HasField("discontinue_time")
    assert order.dosage.HasField("structured")
    assert [p.source_order_id for p in result.problems] == ["11222123131213"]  # negative consent
    assert result.card.incomplete  # the card holds an order nobody here can read
    again = client.import_fmk(RESIDENT, data)
    assert [c.kind for c in again.changes] == [cpb.ORDER_CHANGE_KIND_UNCHANGED,
                                               cpb.ORDER_CHANGE_KIND_REFUSED]


def test_fmk_document_about_another_person_is_refused_whole(server: ServerFixture) -> None:
    data = _need(FMK_CARD)
    client = _home(server, "010145-1234")
    with pytest.raises(MedServiceError) as info:
        client.import_fmk(RESIDENT, data)
    assert (info.value.code, info.value.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                    "PERSON_MISMATCH")
    assert "1111111118" not in str(info.value)
    assert list(client.get_card(RESIDENT).orders) == []


def test_not_xml_is_refused_naming_content(server: ServerFixture) -> None:
    client = _home(server, "010145-1234")
    with pytest.raises(MedServiceError) as info:
        client.import_fmk(RESIDENT, b"this is not xml")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in info.value.violations] == ["content"]


def test_fhir_medication_request_imports_and_is_scheduled(server: ServerFixture) -> None:
    data = _need(REFERENCE / "fhir-r4/medicationrequest0306.json")  # 6 mg daily, active
    client = _home(server, "010145-1234")
    # Its subject is "Patient/pat1" with no CPR number: refused until the caller confirms.
    with pytest.raises(MedServiceError) as info:
        client.import_fhir(RESIDENT, data)
    assert info.value.reason == "SUBJECT_NOT_IDENTIFIED"
    result = client.import_fhir(RESIDENT, data, unidentified=True)
    assert not result.problems
    [order] = result.card.orders
    assert order.dosage.HasField("timing") and not order.needs_manual_schedule
    assert order.dosage.timing.amount.quantity == "6"
    # Two whole days from tomorrow's UTC midnight: after the import, whatever today is.
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(0), UTC)
    carer = server.client(Role.CARER, "f")
    doses = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENT, start_time=ts(start), end_time=ts(start + timedelta(days=2))))
    # Once daily: the facility's morning time, each day (the import applies from now).
    assert [d.local_time for d in doses.doses] == ["08:00", "08:00"]


def test_fhir_refused_orders_are_reported_and_nothing_half_applied(
        server: ServerFixture) -> None:
    data = _need(REFERENCE / "fhir-r4/medicationrequest0327.json")  # 3 a week, no days
    client = _home(server, "010145-1234")
    result = client.import_fhir(RESIDENT, data)
    assert len(result.problems) >= 1 and result.problems[0].reason
    assert list(client.get_card(RESIDENT).orders) == []


def test_a_large_fhir_bundle_is_sent_in_chunks(server: ServerFixture, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from clients.medctl import fhir_chunks, main

    request = json.loads(_need(REFERENCE / "fhir-r4/medicationrequest0306.json"))
    entries = [{"resource": {**request, "id": f"mr{i}"}} for i in range(250)]
    bundle = json.dumps({"resourceType": "Bundle", "type": "collection",
                         "entry": entries}).encode()
    assert len(fhir_chunks(bundle)) == 3
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle)
    _home(server, "010145-1234")
    integration = server.client(Role.INTEGRATION, "f")
    token = integration._metadata[0][1].split()[1]
    assert main(["--target", server.target, "--token", token, "import", "fhir", str(path),
                 "--resident", RESIDENT, "--unidentified"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "250 oprettet"
    assert sum(line.startswith("oprettet") for line in out[1:]) == 250  # one line per order
    assert len(integration.get_card(RESIDENT).orders) == 250


def _request(rid: str, *instructions: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active",
            "intent": "order", "subject": {"identifier": {
                "system": "urn:oid:1.2.208.176.1.2", "value": "0101451234"}},
            "medicationCodeableConcept": {"text": f"Drug {rid}"},
            "dosageInstruction": list(instructions)}


def _instruction(quantity: int, repeat: dict[str, object], sequence: int | None = None,
                 event: list[str] | None = None) -> dict[str, object]:
    found: dict[str, object] = {"timing": {"repeat": repeat} if repeat else {},
                                "doseAndRate": [{"doseQuantity": {"value": quantity,
                                                                  "unit": "tablet"}}]}
    if sequence is not None:
        found["sequence"] = sequence
    if event:
        found["timing"] = {**found["timing"], "event": event}  # type: ignore[dict-item]
    return found


def test_fhir_sequence_and_events_are_kept_and_scheduled(server: ServerFixture) -> None:
    """A taper in two steps and doses at listed instants, through the API and the store."""
    import json

    client = _home(server, "010145-1234")
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    day = [tomorrow + timedelta(days=i) for i in range(4)]
    daily = {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]}
    taper = _request(
        "taper",
        _instruction(2, {**daily, "boundsPeriod": {"start": day[0].isoformat(),
                                                   "end": day[1].isoformat()}}, 1),
        _instruction(1, {**daily, "boundsDuration": {"value": 2, "code": "d"}}, 2))
    events = _request("events", _instruction(1, {}, event=[
        f"{day[1].isoformat()}T21:15:00Z", f"{day[2].isoformat()}T06:00:00Z"]))
    split = _request("split", _instruction(1, {"when": ["MORN"]}),
                     _instruction(2, {"when": ["EVE"]}))  # different doses, together
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": taper}, {"resource": events}, {"resource": split}]}
    result = client.import_fhir(RESIDENT, json.dumps(bundle).encode())
    assert not result.problems
    orders = {o.name.rsplit("/", 1)[1]: o for o in client.get_card(RESIDENT).orders}
    steps = orders["taper"].dosage.timing
    assert [(s.amount.quantity, s.bounds_first_date, s.bounds_last_date)
            for s in (steps, *steps.then)] == [
        ("2", day[0].isoformat(), day[1].isoformat()),
        ("1", day[2].isoformat(), day[3].isoformat())]
    assert orders["taper"].treatment_end_date == day[3].isoformat()
    assert orders["taper"].dosage.text_da == ("2 tablet morgen, derefter 1 tablet morgen")
    assert len(orders["events"].dosage.timing.events) == 2
    start = datetime.combine(day[0], time(0), UTC) - timedelta(hours=2)
    carer = server.client(Role.CARER, "f")
    doses = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENT, start_time=ts(start), end_time=ts(start + timedelta(days=5))))
    found = sorted((d.due_time.ToDatetime(UTC), d.order.rsplit("/", 1)[1],
                    d.amount.quantity) for d in doses.doses)
    assert [(o, q) for _, o, q in found if o == "taper"] == [
        ("taper", "2"), ("taper", "2"), ("taper", "1"), ("taper", "1")]
    assert orders["split"].dosage.timing.also[0].amount.quantity == "2"
    assert [q for _, o, q in found if o == "split"][:2] == ["1", "2"]  # morning, evening
    assert [due for due, o, _ in found if o == "events"] == [
        datetime.combine(day[1], time(21, 15), UTC), datetime.combine(day[2], time(6), UTC)]


def test_a_course_with_no_start_begins_at_its_first_dose(
        server: ServerFixture, server_clock: Any) -> None:
    """Every 6 hours, 3 doses, no start (as the spec's 0318): one dose is due from the import;
    once given, the next two follow from it, and a re-import keeps the anchor."""
    import json

    client = _home(server, "010145-1234")
    q6h = _request("q6h", _instruction(1, {"frequency": 1, "period": 6, "periodUnit": "h",
                                           "count": 3}))
    imported_at = server_clock()
    result = client.import_fhir(RESIDENT, json.dumps(q6h).encode())
    assert not result.problems
    [order] = result.card.orders
    assert not order.needs_manual_schedule and not order.HasField("first_given_time")
    carer = server.client(Role.CARER, "f")

    def doses() -> list[rpb.ScheduledDose]:
        start = imported_at - timedelta(hours=1)
        return list(carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
            parent=RESIDENT, start_time=ts(start),
            end_time=ts(start + timedelta(days=2)))).doses)

    [first] = doses()  # due from the import until given
    assert abs(first.due_time.ToDatetime(UTC) - imported_at) < timedelta(seconds=5)
    server_clock.advance(timedelta(minutes=40))
    given_at = server_clock() - timedelta(minutes=1)
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(parent=RESIDENT, record=(
        rpb.AdministrationRecord(dose_id=first.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN,
                                 quantity="1", administration_time=ts(given_at)))))
    after = doses()
    assert after[0].dose_id == first.dose_id  # the dose given keeps its place and id
    assert [d.due_time.ToDatetime(UTC) - given_at for d in after[1:]] \
        == [timedelta(hours=6), timedelta(hours=12)]  # 3 doses in all, from the first
    [anchored] = client.get_card(RESIDENT).orders
    assert anchored.first_given_time.ToDatetime(UTC) == given_at
    # The source sends the order again (unchanged): the anchor is the mirror's own, kept.
    again = client.import_fhir(RESIDENT, json.dumps(q6h).encode())
    assert [c.kind for c in again.changes] == [cpb.ORDER_CHANGE_KIND_UNCHANGED]
    assert [d.dose_id for d in doses()] == [d.dose_id for d in after]



def _every_six_hours_imported(server: ServerFixture, server_clock: Any
                              ) -> tuple[datetime, MedClient, MedClient, Any]:
    """A FHIR order every 6 hours with no start, imported now: when, a carer, a shift lead
    and the lead's discrepancy stub."""
    import json

    from medservice.v1 import discrepancies_pb2_grpc

    client = _home(server, "010145-1234")
    imported_at = server_clock()
    q6h = _request("q6h", _instruction(1, {"frequency": 1, "period": 6, "periodUnit": "h"}))
    assert not client.import_fhir(RESIDENT, json.dumps(q6h).encode()).problems
    lead = server.client(Role.SHIFT_LEAD, "f")
    return (imported_at, server.client(Role.CARER, "f"), lead,
            discrepancies_pb2_grpc.DiscrepancyServiceStub(lead.channel))


def test_the_first_dose_of_a_course_with_no_start_is_due_until_given(
        server: ServerFixture, server_clock: Any) -> None:
    """Every 6 hours, no start, no count: the first dose is open from the import on, on the
    current shift's round list every shift, and no sweep calls it missed or alerts anyone;
    a check of it a day later is OK (not late). Once given, the next one has the ordinary
    window, and missing it is alerted as any missed dose."""
    from medservice.domain.clock import FacilityClock
    from medservice.domain.facility import Facility
    from medservice.v1 import discrepancies_pb2 as dpb

    imported_at, carer, lead, findings = _every_six_hours_imported(server, server_clock)
    clock = FacilityClock.from_facility(Facility("f", "Home"))  # the home's defaults

    def current_round() -> list[rpb.ScheduledDose]:
        found = clock.shift_of(server_clock())
        assert found is not None
        shift_id, shift_date = found
        [resident] = carer.shift_schedule("f", shift_date.isoformat(), shift_id).residents
        return list(resident.doses)

    def raised() -> list[tuple[int, str]]:
        listed = lead.call(findings.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
            parent="facilities/f")).discrepancies
        return [(d.code, d.dose_id) for d in listed]

    [first] = current_round()
    assert first.status == rpb.DOSE_STATUS_DUE and not first.HasField("window_end")
    for hours in (3, 10, 30):
        server_clock.advance(timedelta(hours=hours) - (server_clock() - imported_at))
        server.running.sweeper.run_once()
        assert raised() == [] and list(lead.list_alerts("f")) == []
        assert [(d.dose_id, d.status) for d in current_round()] == [
            (first.dose_id, rpb.DOSE_STATUS_DUE)]
    given_at = server_clock() - timedelta(minutes=1)
    check = carer.call(carer.rounds.CheckDose, rpb.CheckDoseRequest(
        resident=RESIDENT, dose_id=first.dose_id, quantity="1",
        administration_time=ts(given_at)))
    assert (check.verdict, list(check.reasons)) == (rpb.CHECK_VERDICT_OK, [])
    assert check.matched_dose.dose_id == first.dose_id
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(parent=RESIDENT, record=(
        rpb.AdministrationRecord(dose_id=first.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN,
                                 quantity="1", administration_time=ts(given_at)))))
    assert raised() == []
    doses = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENT, start_time=ts(given_at), end_time=ts(given_at + timedelta(hours=7))
    )).doses
    nxt = next(d for d in doses if d.dose_id != first.dose_id)
    assert nxt.due_time.ToDatetime(UTC) == given_at + timedelta(hours=6)
    server_clock.advance(timedelta(hours=7, minutes=2))  # its ±60 minute window closed
    server.running.sweeper.run_once()
    assert raised() == [(dpb.DISCREPANCY_CODE_MISSED_DOSE, nxt.dose_id)]
    assert len(list(lead.list_alerts("f"))) == 1


def test_a_refused_first_dose_can_be_given_days_later_and_starts_the_course(
        server: ServerFixture, server_clock: Any) -> None:
    """Every 6 hours, no start: refused soon after the import (sent without a time: dated
    when sent), the first dose stays due; two days later, far outside any records read
    around the new one, it is given: recorded (no DOSE_ALREADY_RECORDED), it anchors the
    course and the next dose follows six hours later."""

    from medservice.v1 import discrepancies_pb2 as dpb

    imported_at, carer, lead, findings = _every_six_hours_imported(server, server_clock)

    def doses(start: datetime, end: datetime) -> list[rpb.ScheduledDose]:
        return list(carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
            parent=RESIDENT, start_time=ts(start), end_time=ts(end))).doses)

    [first] = doses(imported_at - timedelta(hours=1), imported_at + timedelta(hours=1))
    server_clock.advance(timedelta(hours=2))
    sent = server_clock()
    refused = carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=RESIDENT, record=rpb.AdministrationRecord(
            dose_id=first.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
            not_given_reason=rpb.NOT_GIVEN_REASON_REFUSED)))
    # Not the order's valid time two hours earlier: when it was sent.
    assert sent <= refused.record.administration_time.ToDatetime(UTC) <= server_clock()
    listed = lead.call(findings.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
        parent="facilities/f")).discrepancies
    assert [d.code for d in listed] == [dpb.DISCREPANCY_CODE_NOT_GIVEN]
    server_clock.advance(timedelta(hours=48))
    now = server_clock()
    [still] = doses(now - timedelta(hours=1), now + timedelta(hours=1))
    assert (still.dose_id, still.status) == (first.dose_id, rpb.DOSE_STATUS_DUE)
    given_at = now - timedelta(minutes=1)
    given = carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=RESIDENT, record=rpb.AdministrationRecord(
            dose_id=first.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1",
            administration_time=ts(given_at))))
    assert given.record.dose_id == first.dose_id
    after = doses(given_at, given_at + timedelta(hours=7))
    assert [(d.dose_id, d.status) for d in after][:1] == [
        (first.dose_id, rpb.DOSE_STATUS_GIVEN)]
    assert [d.due_time.ToDatetime(UTC) for d in after[1:]] == [given_at + timedelta(hours=6)]
