"""The inspection checks of the medicine card over gRPC on SQLite and PostgreSQL (issue 16
part 3): each finding on a seeded card, a clean card with none, the dose-dispensing card
imported from FMK, the facility's own vague terms, the round list's notes, `medctl card
checks` (table, JSON, PDF) and the bad cases. Dates derive from the server clock's today."""

from __future__ import annotations

import base64
import io
import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from pypdf import PdfReader

from clients.client import MedClient, MedServiceError
from clients.medctl import main
from medservice.domain.access import Role
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import reports_pb2 as rpb
from medservice.v1 import rounds_pb2 as rnd
from tests.builders import K, dose, morning_evening, order, structured
from tests.conftest import ServerFixture, TestClock, token_for
from tests.e2e.test_http import R2 as HTTP_R2
from tests.e2e.test_http import Http, http, make_ward, ok  # noqa: F401 (http: a fixture)

ZONE = ZoneInfo("Europe/Copenhagen")
R1, R2 = "facilities/f/residents/r1", "facilities/f/residents/r2"
PERSON = "1111111118"
POURED = common_pb2.DISPENSING_MODE_STAFF_POURED
POUCH = common_pb2.DISPENSING_MODE_DOSE_DISPENSED
C = cpb  # CardCheckpoint values live on the module

# r1's seeded card: order id -> the checkpoint it fails (None: clean).
EXPECTED_R1 = [
    ("ended", C.CARD_CHECKPOINT_TREATMENT_END_PASSED),
    ("free", C.CARD_CHECKPOINT_DOSAGE_NOT_STRUCTURED),
    ("ghost", C.CARD_CHECKPOINT_DOSE_DISPENSING_CARD),  # on the dose card, off the card
    ("hidden-1", C.CARD_CHECKPOINT_DOSE_DISPENSING_CARD),  # private line: no order seen
    ("noind", C.CARD_CHECKPOINT_INDICATION),
    ("pn", C.CARD_CHECKPOINT_PN_MAX_PER_DAY),
    ("pouch-missing", C.CARD_CHECKPOINT_DOSE_DISPENSING_CARD),
    ("times", C.CARD_CHECKPOINT_TIMES_OF_DAY),
    ("vague", C.CARD_CHECKPOINT_INDICATION),
]


def _today(clock: TestClock) -> date:
    return clock().astimezone(ZONE).date()


def _order(resident: str, order_id: str, drug: str, dosage: cpb.Dosage, start: date, *,
           indication: str = "mod forhøjet blodtryk",
           mode: common_pb2.DispensingMode.ValueType = POURED,
           end: date | None = None) -> cpb.Order:
    o = order(resident, order_id, drug, dosage, mode=mode, start=start.isoformat(),
              end=end.isoformat() if end else "")
    o.indication = indication
    return o


def _r1_orders(today: date, *, ghost: bool) -> list[cpb.Order]:
    start = today - timedelta(days=30)
    morning = structured([dose(K.DOSE_TIME_KIND_MORNING)], start=start.isoformat())
    orders = [
        _order(R1, "pn", "Oxapax", structured([dose(K.DOSE_TIME_KIND_ANY, as_needed=True)],
                                              start=start.isoformat(), interval=0), start,
               indication="mod uro"),
        _order(R1, "vague", "Panodil", morning, start, indication="Ved behov"),
        _order(R1, "noind", "Furix", morning, start, indication=""),
        _order(R1, "times", "Metformin", structured(
            [dose(K.DOSE_TIME_KIND_ANY), dose(K.DOSE_TIME_KIND_ANY)],
            start=start.isoformat()), start),
        _order(R1, "free", "Marevan", cpb.Dosage(free_text="efter INR-skema"), start),
        _order(R1, "ended", "Amoxicillin", morning, start, end=today - timedelta(days=3)),
        _order(R1, "pouch-missing", "Simvastatin", morning, start, mode=POUCH),
        _order(R1, "pouch-ok", "Kaleorid", morning, start, mode=POUCH),
    ]
    if ghost:
        orders.append(_order(R1, "ghost", "Corodil", morning, start, mode=POUCH))
    return orders


def _r2_orders(today: date) -> list[cpb.Order]:
    start = today - timedelta(days=30)
    return [
        _order(R2, "bp", "Enalapril", morning_evening(), start),
        _order(R2, "pn", "Morfin", structured([dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)]
                                              * 3, start=start.isoformat()), start,
               indication="mod gennembrudssmerter i ryggen"),
    ]


def _sync(client: MedClient, resident: str, orders: list[cpb.Order], version: int) -> None:
    client.call(client.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=version,
                              orders=orders)))


def _dose_card(start: date, *order_ids: str) -> bytes:
    """A GetDoseDispensingCardResponse (FMK 1.4.6) listing these orders, and one private
    line FMK shows no details of."""
    lines = "".join(f"""
      <DoseDispensedMedication><DrugMedication>
        <Identifier>{oid}</Identifier><Version>1</Version>
        <BeginEndDate><TreatmentStartDate>{start}</TreatmentStartDate></BeginEndDate>
        <Indication><Text>mod forhøjet blodtryk</Text></Indication>
        <RouteOfAdministration><Text>oral</Text></RouteOfAdministration>
        <Drug><Name>{name}</Name></Drug>
        <Dosage><Structures>
          <UnitTexts><Singular>tablet</Singular><Plural>tabletter</Plural></UnitTexts>
          <Structure><IterationInterval>1</IterationInterval><StartDate>{start}</StartDate>
            <DosageEndingUndetermined/>
            <Day><Number>1</Number><Dose><Time>morning</Time><Quantity>1</Quantity></Dose>
            </Day></Structure>
        </Structures></Dosage>
      </DrugMedication></DoseDispensedMedication>"""
                    for oid, name in (("pouch-ok", "Kaleorid"), ("ghost", "Corodil"))
                    if oid in order_ids)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<GetDoseDispensingCardResponse xmlns="http://www.dkma.dk/medicinecard/xml.schema/2015/06/01">
  <Patient><Person><PersonIdentifier>{PERSON}</PersonIdentifier></Person></Patient>
  <DoseDispensingCard><Identifier>763418</Identifier>
    <Period><StartDate>{start}</StartDate><EndDate>{start + timedelta(days=13)}</EndDate>
      <PrivateDoseDispensedMedication>
        <DrugMedicationIdentifier>hidden-1</DrugMedicationIdentifier><Version>7</Version>
      </PrivateDoseDispensedMedication>{lines}
    </Period>
  </DoseDispensingCard>
</GetDoseDispensingCardResponse>""".encode()


@pytest.fixture
def home(server: ServerFixture, server_clock: TestClock) -> MedClient:
    """Facility f: r1 (room 101) with a card failing every checkpoint, r2 (room 102) clean.
    r1's dose-dispensing card lists pouch-ok, ghost (removed from the card afterwards) and
    a private line."""
    today = _today(server_clock)
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id=PERSON, display_name="Karen Test",
                                            room="101"), "r1")
    admin.create_resident("f", fpb.Resident(person_id="0202452222", display_name="Ole Test",
                                            room="102"), "r2")
    integration = server.client(Role.INTEGRATION, "f")
    _sync(integration, R1, _r1_orders(today, ghost=True), 1)
    answer = integration.import_fmk(R1, _dose_card(today - timedelta(days=2), "pouch-ok",
                                                   "ghost"))
    assert [p.source_order_id for p in answer.problems] == ["hidden-1"]
    _sync(integration, R1, _r1_orders(today, ghost=False), 2)  # ghost leaves the card
    _sync(integration, R2, _r2_orders(today), 1)
    return server.client(Role.PHARMACIST, "f")


def _findings(client: MedClient, resident: str = "", page_size: int = 0
              ) -> tuple[list[cpb.CardFinding], int]:
    found, token, checked = [], "", 0
    while True:
        resp = client.call(client.cards.ListCardFindings, cpb.ListCardFindingsRequest(
            parent="facilities/f", resident=resident, page_size=page_size, page_token=token))
        found += resp.findings
        checked = resp.residents_checked
        token = resp.next_page_token
        if not token:
            return found, checked


def test_each_finding_on_the_seeded_card_and_none_on_the_clean_one(home: MedClient) -> None:
    found, checked = _findings(home)
    assert checked == 2
    assert all(f.resident == R1 for f in found)
    assert [(f.order.rsplit("/", 1)[1], f.checkpoint) for f in found] == EXPECTED_R1
    by_order = {f.order.rsplit("/", 1)[1]: f for f in found}
    assert by_order["pn"].checkpoint_title == "PN-medicin: maksimal døgndosis skal fremgå"
    assert by_order["vague"].problem == 'Upræcis indikation: "Ved behov"'
    assert by_order["noind"].problem == "Indikation mangler"
    assert "uden gældende ordination" in by_order["ghost"].problem
    assert by_order["ghost"].drug.name == "Corodil"
    assert "ikke viser detaljer" in by_order["hidden-1"].problem
    assert "mangler på det seneste dosisdispenseringskort" in by_order["pouch-missing"].problem
    assert all(f.action and f.room == "101" and f.resident_display_name == "Karen Test"
               for f in found)
    # One resident, and page by page: the same findings.
    assert _findings(home, R2) == ([], 1)
    assert _findings(home, R1, page_size=2)[0] == found


def test_a_card_put_right_has_no_findings(home: MedClient, server: ServerFixture,
                                          server_clock: TestClock) -> None:
    today = _today(server_clock)
    integration = server.client(Role.INTEGRATION, "f")
    start = today - timedelta(days=30)
    _sync(integration, R1, [_order(R1, "pouch-ok", "Kaleorid", structured(
        [dose(K.DOSE_TIME_KIND_MORNING)], start=start.isoformat()), start, mode=POUCH)], 3)
    integration.import_fmk(R1, _dose_card(today, "pouch-ok"))  # no ghost; the private line
    found, _ = _findings(home)
    assert [(f.order.rsplit("/", 1)[1], f.checkpoint) for f in found] == [
        ("hidden-1", C.CARD_CHECKPOINT_DOSE_DISPENSING_CARD)]


def test_the_facility_sets_its_own_vague_terms(home: MedClient, server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    assert "ved behov" in admin.get_facility("f").vague_indication_terms  # the default
    updated = admin.update_facility(fpb.Facility(name="facilities/f",
                                                 vague_indication_terms=["mod uro"]),
                                    ["vague_indication_terms"])
    assert list(updated.vague_indication_terms) == ["mod uro"]
    indications = [f.order.rsplit("/", 1)[1] for f in _findings(home)[0]
                   if f.checkpoint == C.CARD_CHECKPOINT_INDICATION]
    assert indications == ["noind", "pn"]  # "Ved behov" is no longer vague; "mod uro" is
    # Empty sets the default again.
    reset = admin.update_facility(fpb.Facility(name="facilities/f"),
                                  ["vague_indication_terms"])
    assert "efter behov" in reset.vague_indication_terms


@pytest.mark.parametrize(("terms", "field"), [
    (["..."], "facility.vague_indication_terms[0]"),
    (["x" * 101], "facility.vague_indication_terms[0]"),
    ([f"t{i}" for i in range(201)], "facility.vague_indication_terms"),
])
def test_bad_vague_terms_are_refused_naming_the_field(home: MedClient, server: ServerFixture,
                                                      terms: list[str], field: str) -> None:
    admin = server.client(Role.ADMIN)
    with pytest.raises(MedServiceError) as e:
        admin.update_facility(fpb.Facility(name="facilities/f", vague_indication_terms=terms),
                              ["vague_indication_terms"])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(e.value)


def test_the_round_list_shows_the_findings(home: MedClient, server_clock: TestClock) -> None:
    carer_day = _today(server_clock).isoformat()
    schedule = home.call(home.rounds.GetShiftSchedule, rnd.GetShiftScheduleRequest(
        facility="facilities/f", date=carer_day, shift_id="day"))
    r1, r2 = schedule.residents
    notes = [(n.order.rsplit("/", 1)[1], n.text) for n in r1.notes
             if n.kind == rnd.ORDER_NOTE_KIND_CARD_CHECK]
    # The free-text order is noted as NEEDS_MANUAL_SCHEDULE already.
    assert [o for o, _ in notes] == [o for o, c in EXPECTED_R1
                                     if c != C.CARD_CHECKPOINT_DOSAGE_NOT_STRUCTURED]
    assert dict(notes)["vague"].startswith(
        'Indikation skal fremgå for hvert præparat: Upræcis indikation: "Ved behov". Bed')
    assert not [n for n in r2.notes if n.kind == rnd.ORDER_NOTE_KIND_CARD_CHECK]


@pytest.mark.parametrize(("client", "facility", "parent", "resident", "code"), [
    (Role.INTEGRATION, "f", "facilities/f", "", grpc.StatusCode.PERMISSION_DENIED),
    (Role.CARER, "g", "facilities/f", "", grpc.StatusCode.PERMISSION_DENIED),
    (Role.CARER, "f", "facilities/", "", grpc.StatusCode.INVALID_ARGUMENT),
    (Role.CARER, "f", "facilities/f", "facilities/g/residents/r1",
     grpc.StatusCode.INVALID_ARGUMENT),
    (Role.CARER, "f", "facilities/f", "facilities/f/residents/nobody",
     grpc.StatusCode.NOT_FOUND),
    (Role.CARER, "f", "facilities/nowhere", "", grpc.StatusCode.PERMISSION_DENIED),
])
def test_bad_requests(home: MedClient, server: ServerFixture, client: Role, facility: str,
                      parent: str, resident: str, code: grpc.StatusCode) -> None:
    caller = server.client(client, facility)
    with pytest.raises(MedServiceError) as e:
        caller.call(caller.cards.ListCardFindings, cpb.ListCardFindingsRequest(
            parent=parent, resident=resident))
    assert e.value.code == code


def test_a_page_token_of_another_query_is_refused(home: MedClient) -> None:
    first = home.call(home.cards.ListCardFindings, cpb.ListCardFindingsRequest(
        parent="facilities/f", page_size=1))
    with pytest.raises(MedServiceError) as e:
        home.call(home.cards.ListCardFindings, cpb.ListCardFindingsRequest(
            parent="facilities/f", resident=R1, page_token=first.next_page_token))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in str(e.value)


def _medctl(server: ServerFixture, role: Role, *args: str) -> int:
    return main(["--target", server.target, "--token", token_for(role, "f"), *args])


def test_medctl_card_checks_table_json_and_pdf(home: MedClient, server: ServerFixture,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _medctl(server, Role.SHIFT_LEAD, "card", "checks", "--facility", "f") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["VÆRELSE", "BEBOER", "LÆGEMIDDEL", "PUNKT", "FUND", "HVAD",
                                "SKAL", "GØRES"]
    assert len(lines) == 1 + len(EXPECTED_R1)
    assert "Oxapax" in lines[6] and "maksimal døgndosis" in lines[6]

    assert _medctl(server, Role.SHIFT_LEAD, "--json", "card", "checks", "--facility", "f",
                   "--resident", "r1") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["order"].rsplit("/", 1)[1], r["checkpoint"]) for r in rows] == [
        (o, C.CardCheckpoint.Name(c)) for o, c in EXPECTED_R1]

    assert _medctl(server, Role.CARER, "card", "checks", "--facility", "f", "--resident",
                   "r2") == 0
    assert capsys.readouterr().out.strip() == "ingen fund"

    out = tmp_path / "tilsyn.pdf"
    assert _medctl(server, Role.PHARMACIST, "card", "checks", "--facility", "f", "--pdf",
                   str(out)) == 0
    assert capsys.readouterr().out.startswith(f"skrev {out}")
    pdf = PdfReader(io.BytesIO(out.read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    for expected in ("Tilsynstjek af medicinkort", "Beboere gennemgået: 2. Fund: 9.",
                     "Fund pr. punkt", "PN-medicin: maksimal døgndosis skal fremgå",
                     "Karen Test", "Oxapax", "Indikation mangler", "Europe/Copenhagen"):
        assert expected in text, expected


def test_medctl_card_checks_bad_cases_are_one_line(home: MedClient, server: ServerFixture,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _medctl(server, Role.INTEGRATION, "card", "checks", "--facility", "f") == 1
    err = capsys.readouterr().err
    assert "PERMISSION_DENIED" in err and "Traceback" not in err
    assert _medctl(server, Role.CARER, "card", "checks", "--facility", "f", "--resident",
                   "nobody") == 1
    assert "RESIDENT_NOT_FOUND" in capsys.readouterr().err
    assert _medctl(server, Role.CARER, "card", "checks", "--facility", "f", "--pdf",
                   str(tmp_path / "missing" / "x.pdf")) == 2
    assert "kan ikke skrive" in capsys.readouterr().err


def test_the_report_rpc_for_a_clean_facility(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Clean"), "clean")
    reader = server.client(Role.CARER, "clean")
    doc = reader.call(reader.reports.GetCardChecksReport,
                      rpb.GetCardChecksReportRequest(facility="facilities/clean"))
    assert doc.content_type == "application/pdf" and doc.filename.startswith(
        "tilsynstjek-clean-")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(doc.content)).pages)
    assert "Ingen fund" in text


def test_over_http_json(http: Http, server_clock: TestClock) -> None:  # noqa: F811
    """The HTTP annotations: a ward made over HTTP, whose dose-dispensed orders have no
    indication and no dose-dispensing card."""
    ward = make_ward(http, server_clock)
    carer = token_for(Role.CARER, "f")
    found = ok(ward.call("GET", "/v1/facilities/f/cardFindings", carer))
    assert [(f["resident"], f["checkpoint"]) for f in found["findings"]] == [
        (r, c) for r in (R1, HTTP_R2) for c in ("CARD_CHECKPOINT_INDICATION",
                                                 "CARD_CHECKPOINT_DOSE_DISPENSING_CARD")]
    one = ok(ward.call("GET", "/v1/facilities/f/cardFindings", carer,
                       params={"resident": HTTP_R2, "page_size": "1"}))
    assert [f["resident"] for f in one["findings"]] == [HTTP_R2]
    assert one["residentsChecked"] == 1 and one["nextPageToken"]
    report = ok(ward.call("GET", "/v1/facilities/f/cardChecksReport", carer))
    assert report["contentType"] == "application/pdf"
    assert base64.b64decode(report["content"]).startswith(b"%PDF")
