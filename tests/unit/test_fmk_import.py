"""FMK 1.4 message importer (medservice.imports.fmk) on small hand-written messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medservice.domain.dosage import StructuredDosage, TimeKind
from medservice.domain.errors import InvalidArgument
from medservice.domain.orders import DispensingMode, Pause
from medservice.imports.fmk import (
    FmkImportResult,
    PauseEvent,
    UnpauseEvent,
    WithdrawEvent,
    read_fmk,
)

NS_2012 = "http://www.dkma.dk/medicinecard/xml.schema/2012/06/01"
NS_2015 = "http://www.dkma.dk/medicinecard/xml.schema/2015/01/01"
PERSON = "1111111118"  # the FMK test person of the published examples


def dosage(quantity: str = "1") -> str:
    return f"""
    <Dosage><Structures>
      <UnitTexts source="Local"><Singular>tablet</Singular><Plural>tabletter</Plural></UnitTexts>
      <Structure>
        <IterationInterval>1</IterationInterval><StartDate>2024-01-01</StartDate>
        <DosageEndingUndetermined/>
        <Day><Number>1</Number>
          <Dose><Time>morning</Time><Quantity>{quantity}</Quantity></Dose>
        </Day>
      </Structure>
    </Structures></Dosage>"""


def drug_medication(order_id: str, *, quantity: str = "1", version: str = "7",
                    name: str = "Panodil", extra: str = "", begin_end: str = "") -> str:
    dates = begin_end or """<TreatmentStartDate>2024-01-01</TreatmentStartDate>
                            <TreatmentEndingUndetermined/>"""
    return f"""
  <DrugMedication>
    <Identifier>{order_id}</Identifier><Version>{version}</Version>
    {extra}
    <BeginEndDate>{dates}</BeginEndDate>
    <Indication><Code source="Medicinpriser">42</Code><Text>mod smerter</Text></Indication>
    <RouteOfAdministration><Code source="Medicinpriser">OR</Code></RouteOfAdministration>
    <Drug>
      <ATC><Code source="Medicinpriser">N02BE01</Code></ATC>
      <Identifier source="Medicinpriser">28100636474</Identifier>
      <Name>{name}</Name>
      <Form><Code>TAB</Code><Text>tabletter</Text></Form>
      <Strength><Value>500</Value><UnitText>mg</UnitText></Strength>
    </Drug>
    {dosage(quantity)}
  </DrugMedication>"""


def card(*orders: str, version: str = "1341404077657004001", person: str = PERSON,
         ns: str = NS_2015) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<GetMedicineCardResponse xmlns="{ns}">
  <MedicineCard>
    <Patient><Person><PersonIdentifier source="CPR">{person}</PersonIdentifier></Person>
    </Patient>
    <Version>{version}</Version>
    {"".join(orders)}
  </MedicineCard>
</GetMedicineCardResponse>""".encode()


def request(root: str, body: str, ns: str = NS_2015) -> bytes:
    return f"""<{root} xmlns="{ns}">
  <PersonIdentifier source="CPR">{PERSON}</PersonIdentifier>
  <MedicineCardVersion>1341404079116002001</MedicineCardVersion>
  {body}
</{root}>""".encode()


def content_error(data: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        read_fmk(data)
    assert [v.field for v in caught.value.violations] == ["content"]
    assert PERSON not in caught.value.message
    return caught.value


def assert_no_person_in(result: FmkImportResult) -> None:
    assert PERSON not in repr(result.problems)
    assert PERSON not in repr(result.events)


# -- the whole card, order by order --------------------------------------------------------


def test_a_card_with_one_unreadable_order_imports_the_others() -> None:
    result = read_fmk(card(drug_medication("101"), drug_medication("102", quantity="1,5"),
                           drug_medication("103")))
    assert [o.order_id for o in result.orders] == ["101", "103"]
    [problem] = result.problems
    assert problem.source_order_id == "102"
    assert problem.location.startswith("DrugMedication[2]/Dosage/Structure[1]/")
    assert problem.location.endswith("Quantity")
    assert problem.reason
    assert result.whole_card is True
    assert result.person_id == PERSON
    assert result.card_version == 1341404077657004001
    assert_no_person_in(result)


def test_an_order_is_read_field_by_field() -> None:
    [order] = read_fmk(card(drug_medication("101"))).orders
    assert order.source_version == "7"
    assert order.drug.name == "Panodil"
    assert order.drug.drug_id == "28100636474"
    assert order.drug.atc_code == "N02BE01"
    assert order.drug.form == "tabletter"
    assert order.drug.strength == "500 mg"
    assert order.indication == "mod smerter"
    assert order.route == "OR"  # only the code was sent
    assert order.treatment_start == date(2024, 1, 1)
    assert order.treatment_end is None
    assert order.dispensing_mode is DispensingMode.STAFF_POURED
    assert order.pauses == ()
    assert order.discontinued_at is None
    assert isinstance(order.dosage, StructuredDosage)
    [dose] = order.dosage.periods[0].days[0].doses
    assert dose.time_kind is TimeKind.MORNING
    assert dose.amount.quantity == Decimal("1")


def test_a_paused_order_gets_its_pause_in_danish_days_inclusive() -> None:
    paused = """<Paused><FromDate>2024-03-30</FromDate><ToDate>2024-04-02</ToDate>
                  <By/><DateTime>2024-03-20T10:00:00Z</DateTime></Paused>"""
    [order] = read_fmk(card(drug_medication("101", extra=paused))).orders
    # Midnight in Copenhagen: CET before the DST change, CEST after; ToDate is inclusive.
    assert order.pauses == (Pause(datetime(2024, 3, 29, 23, 0, tzinfo=UTC),
                                  datetime(2024, 4, 2, 22, 0, tzinfo=UTC)),)


def test_a_pause_without_dates_starts_when_fmk_recorded_it() -> None:
    paused = "<Paused><By/><DateTime>2011-02-13T15:31:10Z</DateTime></Paused>"
    [order] = read_fmk(card(drug_medication("101", extra=paused))).orders
    assert order.pauses == (Pause(datetime(2011, 2, 13, 15, 31, 10, tzinfo=UTC), None),)


def test_a_withdrawn_order_is_discontinued_at_its_timestamp() -> None:
    withdrawn = "<Withdrawn><By/><DateTime>2024-02-01T09:15:00+01:00</DateTime></Withdrawn>"
    [order] = read_fmk(card(drug_medication("101", extra=withdrawn))).orders
    assert order.discontinued_at == datetime(2024, 2, 1, 8, 15, tzinfo=UTC)


def test_a_withdrawal_without_a_timestamp_is_a_problem() -> None:
    result = read_fmk(card(drug_medication("101", extra="<Withdrawn><By/></Withdrawn>")))
    assert result.orders == []
    assert result.problems[0].location == "DrugMedication[1]/Withdrawn/DateTime"


def test_treatment_dates_may_come_as_date_times_or_as_flags() -> None:
    as_times = """<TreatmentStartDateTime>2024-04-13T15:00:00Z</TreatmentStartDateTime>
                  <TreatmentEndDateTime>2024-06-30T22:30:00Z</TreatmentEndDateTime>"""
    flags = "<TreatmentStartedPreviously/><TreatmentEndingUndetermined/>"
    timed, flagged = read_fmk(card(drug_medication("1", begin_end=as_times),
                                   drug_medication("2", begin_end=flags))).orders
    assert (timed.treatment_start, timed.treatment_end) == (date(2024, 4, 13), date(2024, 7, 1))
    assert flagged.treatment_started_previously is True
    assert (flagged.treatment_start, flagged.treatment_end) == (None, None)


def test_a_treatment_ending_before_it_starts_is_a_problem() -> None:
    backwards = """<TreatmentStartDate>2024-05-01</TreatmentStartDate>
                   <TreatmentEndDate>2024-04-01</TreatmentEndDate>"""
    result = read_fmk(card(drug_medication("1", begin_end=backwards)))
    assert result.problems[0].location == "DrugMedication[1]/BeginEndDate/TreatmentEndDate"


@pytest.mark.parametrize(("prescription", "mode"), [
    ("<Prescription><Identifier>9</Identifier><DoseDispensedRestriction/></Prescription>",
     DispensingMode.DOSE_DISPENSED),
    ("<PrescriptionMedication><Identifier>9</Identifier><DoseDispensedDispensing/>"
     "</PrescriptionMedication>", DispensingMode.DOSE_DISPENSED),
    ("<Prescription><Identifier>9</Identifier><DoseDispensedRestriction/>"
     "<Deprecated>2024-01-01T00:00:00Z</Deprecated></Prescription>",
     DispensingMode.STAFF_POURED),
    ("<Prescription><Identifier>9</Identifier><PackageRestriction/></Prescription>",
     DispensingMode.STAFF_POURED),
])
def test_a_current_dose_dispensing_prescription_marks_the_order(
        prescription: str, mode: DispensingMode) -> None:
    order = drug_medication("1").replace("</DrugMedication>", prescription + "</DrugMedication>")
    assert read_fmk(card(order)).orders[0].dispensing_mode is mode


def test_an_order_without_a_drug_name_is_a_problem_at_its_place() -> None:
    result = read_fmk(card(drug_medication("1"), drug_medication("2", name="")))
    assert [p.location for p in result.problems] == ["DrugMedication[2]/Drug/Name"]
    assert result.problems[0].source_order_id == "2"


def test_an_order_listed_twice_is_kept_once_with_its_latest_version() -> None:
    result = read_fmk(card(drug_medication("1", version="9"), drug_medication("1", version="10"),
                           drug_medication("1", version="10"), drug_medication("1", version="5")))
    assert [(o.order_id, o.source_version) for o in result.orders] == [("1", "10")]


def test_an_order_listed_twice_with_one_copy_unreadable_is_only_a_problem() -> None:
    result = read_fmk(card(drug_medication("1"), drug_medication("1", quantity="x")))
    assert result.orders == []
    assert [p.source_order_id for p in result.problems] == ["1"]


def test_a_hidden_order_on_the_card_is_a_problem() -> None:
    hidden = """<DrugMedicationWithNegativeConsent><Identifier>55</Identifier>
                <Version>1</Version></DrugMedicationWithNegativeConsent>"""
    result = read_fmk(card(hidden, drug_medication("1")))
    assert [o.order_id for o in result.orders] == ["1"]
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("55", "DrugMedicationWithNegativeConsent[1]")]


def test_a_card_version_that_is_not_a_number_is_dropped_and_reported() -> None:
    result = read_fmk(card(drug_medication("1"), version="v-12"))
    assert result.card_version is None
    [problem] = result.problems
    assert (problem.source_order_id, problem.location) == ("", "MedicineCard/Version")
    assert "whole number" in problem.reason
    assert len(result.orders) == 1


def test_namespaces_of_the_family_mix() -> None:
    mixed = f"""<GetMedicineCardResponse xmlns="http://www.dkma.dk/medicinecard/xml.schema/2015/06/01"
        xmlns:old="{NS_2012}"><MedicineCard>
      <Patient><old:Person><old:PersonIdentifier>{PERSON}</old:PersonIdentifier></old:Person>
      </Patient><Version>3</Version>
      <old:DrugMedication xmlns="{NS_2012}"><Identifier>1</Identifier>
        <Drug><Name>Panodil</Name></Drug>{dosage()}</old:DrugMedication>
    </MedicineCard></GetMedicineCardResponse>""".encode()
    result = read_fmk(mixed)
    assert [o.order_id for o in result.orders] == ["1"]
    assert result.person_id == PERSON
    assert result.card_version == 3


# -- deltas and events ---------------------------------------------------------------------


def test_a_bare_drug_medication_is_a_delta_without_a_person() -> None:
    bare = drug_medication("1").replace("<DrugMedication>", f'<DrugMedication xmlns="{NS_2015}">')
    result = read_fmk(bare.encode())
    assert (result.whole_card, result.person_id, result.card_version) == (False, "", None)
    assert [o.order_id for o in result.orders] == ["1"]


def test_an_update_request_is_a_delta_made_against_a_card_version() -> None:
    result = read_fmk(request("UpdateDrugMedicationRequest", drug_medication("1")))
    assert result.whole_card is False
    assert result.card_version is None  # FMK assigns the new version, the request cannot know it
    assert result.based_on_card_version == 1341404079116002001
    assert [o.order_id for o in result.orders] == ["1"]


def test_a_create_request_has_no_order_identifier_yet() -> None:
    order = drug_medication("").replace("<Identifier></Identifier>", "")
    result = read_fmk(request("CreateDrugMedicationRequest", order))
    assert result.orders == []
    [problem] = result.problems
    assert (problem.source_order_id, problem.location) == ("", "DrugMedication[1]/Identifier")


def test_pause_unpause_and_withdraw_requests_become_events() -> None:
    pause = read_fmk(request("PauseDrugMedicationRequest", """
        <PausedBy/>
        <DrugMedication><Identifier>1</Identifier>
          <FromDate>2024-03-30</FromDate><ToDateTime>2024-04-05T12:00:00Z</ToDateTime>
        </DrugMedication>
        <DrugMedication><Identifier>2</Identifier></DrugMedication>"""))
    assert pause.events == [
        PauseEvent("1", datetime(2024, 3, 29, 23, 0, tzinfo=UTC),
                   datetime(2024, 4, 5, 12, 0, tzinfo=UTC)),
        PauseEvent("2", None, None),
    ]
    assert PauseEvent("2").pause == Pause(None, None)
    assert (pause.orders, pause.whole_card, pause.person_id) == ([], False, PERSON)
    unpause = read_fmk(request("UnpauseDrugMedicationRequest",
                               "<DrugMedication><Identifier>1</Identifier></DrugMedication>"))
    assert unpause.events == [UnpauseEvent("1")]
    withdraw = read_fmk(request("WithdrawDrugMedicationRequest",
                                "<DrugMedication><Identifier>1</Identifier></DrugMedication>"))
    assert withdraw.events == [WithdrawEvent("1", None)]
    assert withdraw.based_on_card_version == 1341404079116002001


def test_an_unreadable_event_is_a_problem_and_the_others_proceed() -> None:
    result = read_fmk(request("PauseDrugMedicationRequest", """
        <DrugMedication><Identifier>1</Identifier><FromDate>2024-13-01</FromDate></DrugMedication>
        <DrugMedication><Identifier>2</Identifier><FromDate>2024-05-02</FromDate>
          <ToDate>2024-05-01</ToDate></DrugMedication>
        <DrugMedication><Identifier>3</Identifier></DrugMedication>"""))
    assert result.events == [PauseEvent("3")]
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("1", "DrugMedication[1]/FromDate"), ("2", "DrugMedication[2]")]


# -- documents refused as a whole ----------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"",
    b"not xml at all",
    b"<GetMedicineCardResponse><MedicineCard>",
    f'<GetMedicineCardResponse xmlns="{NS_2015}"><MedicineCard></GetMedicineCardResponse>'
    .encode(),
    "<DrugMedication>ø</DrugMedication>".encode("utf-16-le"),
])
def test_malformed_xml_is_refused_on_content(data: bytes) -> None:
    content_error(data)


@pytest.mark.parametrize("data", [
    b'<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>',
    b"<html><body>hello</body></html>",
    b'<CreateDrugMedicationRequest xmlns="http://fmk-teknik.dk/160"/>',
    b'<GetMedicineCardResponse xmlns="http://www.dkma.dk/medicinecard/xml.schema/2009/01/01"/>',
    f'<PauseDrugMedicationResponse xmlns="{NS_2012}"/>'.encode(),
    f'<GetMedicineCardVersionsResponse xmlns="{NS_2015}"/>'.encode(),
    f'<Dosage xmlns="{NS_2012}"/>'.encode(),
])
def test_documents_that_are_not_fmk_1_4_orders_are_refused(data: bytes) -> None:
    content_error(data)


@pytest.mark.parametrize("ns", [
    "http://www.dkma.dk/medicinecard/xml.schema/2009/01/01",  # FMK 1.2
    "http://hl7.org/fhir",
    "urn:example:not-fmk",
])
def test_fmk_shaped_messages_in_foreign_namespaces_are_refused(ns: str) -> None:
    assert "namespace" in content_error(card(drug_medication("1"), ns=ns)).message


def test_what_is_refused_is_named_without_quoting_the_document() -> None:
    error = content_error(f'<x{PERSON} xmlns="{NS_2015}"/>'.encode())
    assert "not imported" in error.message
    assert "1.6" in content_error(b'<DrugMedication xmlns="http://fmk-teknik.dk/160"/>').message


def test_a_card_needs_exactly_one_medicine_card_and_its_person() -> None:
    two = card(drug_medication("1")).replace(b"</GetMedicineCardResponse>", b"")
    two += b"<MedicineCard/></GetMedicineCardResponse>"
    content_error(two)
    content_error(f'<GetMedicineCardResponse xmlns="{NS_2015}"><MedicineCard><Version>1'
                  "</Version></MedicineCard></GetMedicineCardResponse>".encode())


def test_input_must_be_bytes_of_a_modest_size() -> None:
    content_error(card().decode())  # type: ignore[arg-type]  # a str on purpose
    content_error(b" " * 10_000_001)


BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<DrugMedication xmlns="{NS_2015}"><Identifier>1</Identifier>
  <Drug><Name>&lol9;</Name></Drug>{dosage()}</DrugMedication>""".encode()

EXTERNAL_ENTITY = f"""<?xml version="1.0"?>
<!DOCTYPE DrugMedication [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<DrugMedication xmlns="{NS_2015}"><Identifier>1</Identifier>
  <Drug><Name>&secret;</Name></Drug>{dosage()}</DrugMedication>""".encode()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_tricks_are_refused(data: bytes) -> None:
    # libxml2 stops the expansion itself; any DTD that gets through is refused after it.
    error = content_error(data)
    assert "DOCTYPE" in error.message or "not well-formed" in error.message
    assert "root:" not in error.message


# -- person identifiers never leak ---------------------------------------------------------


def test_a_malformed_person_identifier_is_refused_without_being_quoted() -> None:
    for bad in ("111111111", "11111111180", "1111111l18"):
        error = content_error(card(drug_medication("1"), person=bad))
        assert bad not in error.message


def test_the_person_identifier_is_in_no_problem_or_event() -> None:
    hidden = f"<DrugMedicationWithNegativeConsent><Identifier>5</Identifier>" \
             f"<Version>{PERSON}x</Version></DrugMedicationWithNegativeConsent>"
    result = read_fmk(card(hidden, drug_medication("1", quantity=PERSON + ",0"),
                           drug_medication("2", name=""), version=PERSON + "x"))
    assert result.person_id == PERSON
    assert len(result.problems) == 4
    assert_no_person_in(result)


VALID_CARD = card(drug_medication("1"), drug_medication("2", extra=(
    "<Paused><FromDate>2024-03-30</FromDate><By/><DateTime>2024-03-20T10:00:00Z</DateTime>"
    "</Paused><Withdrawn><By/><DateTime>2024-04-01T10:00:00Z</DateTime></Withdrawn>")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(VALID_CARD)), at=st.integers(0, len(VALID_CARD) - 1),
       byte=st.integers(0, 255))
def test_damaged_cards_give_a_result_or_invalid_argument_and_never_the_person(
        cut: int, at: int, byte: int) -> None:
    for data in (VALID_CARD[:cut], VALID_CARD[:at] + bytes([byte]) + VALID_CARD[at + 1:]):
        try:
            result = read_fmk(data)
        except InvalidArgument as exc:
            assert PERSON not in exc.message
            continue
        assert_no_person_in(result)
        for order in result.orders:
            assert order.order_id and order.drug.name


def test_a_dose_card_keeps_its_unreadable_lines_and_lists_each_order_once() -> None:
    """The dose card's lines are what the pharmacy packs: an order the mirror cannot read
    is still in the pouches, and an order repeated per dispensing period is one line."""
    from tests.fmk_documents import PERSON, drug_medication14

    period = "".join(f"<DoseDispensedMedication>{m}</DoseDispensedMedication>"
                     for m in (drug_medication14("1", name="Kaleorid"),
                               drug_medication14("2", quantity="1,5", name="Corodil")))
    xml = f"""<GetDoseDispensingCardResponse
        xmlns="http://www.dkma.dk/medicinecard/xml.schema/2015/06/01">
      <PersonIdentifier>{PERSON}</PersonIdentifier>
      <DoseDispensingCard><Identifier>9</Identifier>
        <Period><StartDate>2026-01-05</StartDate><EndDate>2026-01-18</EndDate>{period}</Period>
        <Period><StartDate>2026-01-19</StartDate><EndDate>2026-02-01</EndDate>{period}</Period>
      </DoseDispensingCard></GetDoseDispensingCardResponse>""".encode()
    result = read_fmk(xml)
    assert [o.order_id for o in result.orders] == ["1"]
    assert {p.source_order_id for p in result.problems} == {"2"}
    card = result.dose_card
    assert card is not None
    assert [(li.order_id, li.drug_name) for li in card.lines] == [("1", "Kaleorid"),
                                                                  ("2", "Corodil")]
    assert (card.card_id, card.period_start, card.period_end) == (
        "9", date(2026, 1, 5), date(2026, 2, 1))
