"""FMK and FHIR documents imported into a card over gRPC, on SQLite and PostgreSQL, from
the reference examples in ../shared/reference (skipped without them, unless CI requires)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

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
    data = _need(REFERENCE / "fhir-r4/medicationrequest0318.json")  # every 6 h, no start
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
    assert out[0] == "250 created"
    assert sum(line.startswith("created") for line in out[1:]) == 250  # one line per order
    assert len(integration.get_card(RESIDENT).orders) == 250
