"""The FMK importer against the published FMK 1.4 example messages (trifork/fmk-schemas),
and the FMK 1.6 drafts of 2022, each refused whole.

The examples live beside the project, in ../shared/reference; without them these tests skip,
unless MEDSERVICE_REQUIRE_REFERENCE=1 (CI), which turns the skip into a failure. Dosage
documents (root `Dosage`) are the dosage parser's concern and are not read here, except the
tapering one, carried inside a DrugMedication to show the importer keeps it whole.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from medservice.domain.dosage import StructuredDosage, TimeKind
from medservice.domain.errors import InvalidArgument
from medservice.domain.orders import DispensingMode, OrderContent, Pause
from medservice.imports.fmk import (
    FmkImportResult,
    PauseEvent,
    UnpauseEvent,
    WithdrawEvent,
    read_fmk,
)
from medservice.imports.fmk_version import fmk16_mark

pytestmark = pytest.mark.reference

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fmk" / "examples"
FOLDERS = ("2012/06/01", "2015/01/01", "2015/06/01")
REQUIRE_ENV = "MEDSERVICE_REQUIRE_REFERENCE"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

# Every message in FOLDERS but the Dosage documents: read, or refused as a whole.
READ = "read"
REFUSED = "refused"
EXPECTED = {
    "2012/06/01/GetMedicineCardResponse.xml": READ,
    "2012/06/01/PauseDrugMedicationRequest.xml": READ,
    "2012/06/01/PauseDrugMedicationRequest-dates.xml": READ,
    "2012/06/01/UnpauseDrugMedicationRequest.xml": READ,
    "2012/06/01/WithdrawDrugMedicationRequest.xml": READ,
    "2015/01/01/CreateDrugMedicationRequest.xml": READ,
    "2015/01/01/UpdateDrugMedicationRequest.xml": READ,
    "2015/01/01/GetDrugMedicationResponse.xml": READ,
    "2015/06/01/GetDoseDispensingCardResponse.xml": READ,
    # They confirm a change by identifier and version only (a pause's dates are not in it).
    "2012/06/01/PauseDrugMedicationResponse.xml": REFUSED,
    "2012/06/01/UnpauseDrugMedicationResponse.xml": REFUSED,
    "2012/06/01/WithdrawDrugMedicationResponse.xml": REFUSED,
    # Fragments and messages without orders.
    "2012/06/01/DosageTranslation.xml": REFUSED,
    "2012/06/01/DrugMedicationBeginEndDate-BeginDateEndDate.xml": REFUSED,
    "2012/06/01/DrugMedicationBeginEndDate-BeginDateTimeEndDateTime.xml": REFUSED,
    "2012/06/01/DrugMedicationBeginEndDate-Variant.xml": REFUSED,
    "2012/06/01/EffectuationExample-IsEffectuatedAccordingToDrugMedication.xml": REFUSED,
    "2015/01/01/GetDrugMedicationHistoryRequest.xml": REFUSED,
    "2015/01/01/GetDrugMedicationHistoryResponse.xml": REFUSED,
    "2015/01/01/GetDrugMedicationVersionsRequest.xml": REFUSED,
    "2015/01/01/GetDrugMedicationVersionsResponse.xml": REFUSED,
    "2015/01/01/GetMedicinCardVersionsResponse.xml": REFUSED,
    "2015/01/01/GetMedicineCardVersionsRequest.xml": REFUSED,
    "2015/01/01/GetMedicineCardVersionsResponse.xml": REFUSED,
    "2015/01/01/GetMedicinecardVersionsRequest.xml": REFUSED,
}


@pytest.fixture(scope="module")
def examples() -> Path:
    if EXAMPLES.is_dir():
        return EXAMPLES
    reason = f"FMK example messages not found at {EXAMPLES}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1")
    pytest.skip(f"{reason} (../shared/reference is not part of a clone)")


def read(examples: Path, name: str) -> FmkImportResult:
    return read_fmk((examples / name).read_bytes())


def persons_in(data: bytes) -> set[str]:
    root = etree.fromstring(data, SAFE_PARSER)
    return {(e.text or "").strip() for e in root.iter("{*}PersonIdentifier")} - {""}


def by_id(result: FmkImportResult) -> dict[str, OrderContent]:
    return {o.order_id: o for o in result.orders}


def test_the_expected_list_covers_every_message(examples: Path) -> None:
    messages = set()
    for folder in FOLDERS:
        for path in (examples / folder).glob("*.xml"):
            root = etree.fromstring(path.read_bytes(), SAFE_PARSER)
            if etree.QName(root).localname != "Dosage":
                messages.add(f"{folder}/{path.name}")
    assert messages == set(EXPECTED)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_every_message_is_read_or_refused_without_naming_the_person(
        examples: Path, name: str, expected: str) -> None:
    data = (examples / name).read_bytes()
    persons = persons_in(data)
    if expected == REFUSED:
        with pytest.raises(InvalidArgument) as caught:
            read_fmk(data)
        assert [v.field for v in caught.value.violations] == ["content"]
        assert not any(p in caught.value.message for p in persons)
        return
    result = read_fmk(data)
    assert result.orders or result.problems or result.events
    assert result.person_id in persons
    said = repr(result.problems) + repr(result.events)
    assert not any(p in said for p in persons)


# -- 2012/06/01 (FMK 1.4.0) ---------------------------------------------------------------


def test_the_medicine_card_is_the_whole_card(examples: Path) -> None:
    result = read(examples, "2012/06/01/GetMedicineCardResponse.xml")
    assert result.whole_card is True
    assert result.person_id == "1111111118"
    assert result.card_version == 1341404077657004001
    assert [o.order_id for o in result.orders] == ["13143641280998"]
    # The order under negative consent shows no details: reported, not imported.
    [hidden] = result.problems
    assert hidden.source_order_id == "11222123131213"
    assert hidden.location == "DrugMedicationWithNegativeConsent[1]"


def test_the_card_order_is_read_in_full(examples: Path) -> None:
    [order] = read(examples, "2012/06/01/GetMedicineCardResponse.xml").orders
    assert order.source_version == "1341404071689002001"
    assert order.drug.name == "Primcillin"
    assert order.drug.drug_id == "28100902276"
    assert order.drug.atc_code == "J01CE02"
    assert order.drug.form == "filmovertrukne tabletter"
    assert order.drug.strength == "400.0 milligram"
    assert order.indication == "mod mellemørebetændelse"
    assert order.route == "Oral anvendelse"
    assert (order.treatment_start, order.treatment_end) == (date(2012, 2, 10), date(2012, 4, 21))
    assert order.dispensing_mode is DispensingMode.STAFF_POURED
    # Paused at 2011-02-13T15:31:10Z, open-ended; withdrawn at 2011-02-11T11:04:11Z.
    assert order.pauses == (Pause(datetime(2011, 2, 13, 15, 31, 10, tzinfo=UTC), None),)
    assert order.discontinued_at == datetime(2011, 2, 11, 11, 4, 11, tzinfo=UTC)
    assert isinstance(order.dosage, StructuredDosage)
    [period] = order.dosage.periods
    assert (period.start_date, period.end_date) == (date(2012, 2, 10), date(2012, 2, 19))
    assert period.iteration_interval_days == 1
    assert period.supplementary_text == "ved måltid"
    assert [(d.time_kind, d.amount.quantity) for d in period.days[0].doses] == [
        (TimeKind.MORNING, Decimal(1)), (TimeKind.EVENING, Decimal(1))]


@pytest.mark.parametrize("name", ["PauseDrugMedicationRequest.xml",
                                  "PauseDrugMedicationRequest-dates.xml"])
def test_a_pause_request_is_an_open_ended_pause_event(examples: Path, name: str) -> None:
    result = read(examples, f"2012/06/01/{name}")
    assert result.events == [PauseEvent("1971221231", None, None)]
    assert (result.orders, result.whole_card) == ([], False)
    assert result.card_version is None
    assert result.based_on_card_version == 1341404079116002001


def test_unpause_and_withdraw_requests_are_events(examples: Path) -> None:
    unpause = read(examples, "2012/06/01/UnpauseDrugMedicationRequest.xml")
    assert unpause.events == [UnpauseEvent("1971221231")]
    assert unpause.based_on_card_version == 133283361300010002
    withdraw = read(examples, "2012/06/01/WithdrawDrugMedicationRequest.xml")
    assert withdraw.events == [WithdrawEvent("1971221231", None)]  # FMK 1.4 sends no time
    assert withdraw.based_on_card_version == 1341404077657004001


def drug_medication_with(examples: Path, fragment: str, as_name: str) -> bytes:
    """A minimal DrugMedication carrying an example fragment (renamed to `as_name`)."""
    part = etree.fromstring((examples / fragment).read_bytes(), SAFE_PARSER)
    ns = etree.QName(part).namespace
    part.tag = f"{{{ns}}}{as_name}"
    order = etree.fromstring(
        f'<DrugMedication xmlns="{ns}"><Identifier>1</Identifier><Drug><Name>Panodil</Name>'
        "</Drug><Dosage><FreeText>efter aftale</FreeText></Dosage></DrugMedication>",
        SAFE_PARSER)
    existing = order.find(f"{{{ns}}}{as_name}")
    if existing is not None:
        order.replace(existing, part)
    else:
        order.insert(1, part)
    return etree.tostring(order)


@pytest.mark.parametrize(("fragment", "start", "previously", "end"), [
    ("DrugMedicationBeginEndDate-BeginDateEndDate.xml", date(2012, 4, 13), False,
     date(2012, 4, 22)),
    ("DrugMedicationBeginEndDate-BeginDateTimeEndDateTime.xml", date(2012, 4, 13), False,
     date(2012, 4, 22)),
    ("DrugMedicationBeginEndDate-Variant.xml", None, True, None),
])
def test_the_begin_end_date_examples(examples: Path, fragment: str, start: date | None,
                                     previously: bool, end: date | None) -> None:
    data = drug_medication_with(examples, f"2012/06/01/{fragment}", "BeginEndDate")
    [order] = read_fmk(data).orders
    assert (order.treatment_start, order.treatment_started_previously,
            order.treatment_end) == (start, previously, end)


def test_the_tapering_dosage_stays_whole_in_an_order(examples: Path) -> None:
    data = drug_medication_with(examples, "2012/06/01/Dosage-nedtrapning.xml", "Dosage")
    [order] = read_fmk(data).orders
    assert isinstance(order.dosage, StructuredDosage)
    [period] = order.dosage.periods
    assert period.iteration_interval_days == 0  # NotIterated: each day happens once
    daily = [sum(d.amount.high for d in day.doses) for day in period.days]
    assert daily == [Decimal(7), Decimal(5), Decimal("2.5"), Decimal(1), Decimal(1)]


# -- 2015/01/01 (FMK 1.4.4) ---------------------------------------------------------------


def test_the_create_request_has_no_order_identifier_yet(examples: Path) -> None:
    result = read(examples, "2015/01/01/CreateDrugMedicationRequest.xml")
    assert result.orders == []
    [problem] = result.problems
    assert (problem.source_order_id, problem.location) == ("", "DrugMedication[1]/Identifier")
    assert result.based_on_card_version == 1341404071666006001


def test_the_update_request_is_a_warfarin_delta(examples: Path) -> None:
    result = read(examples, "2015/01/01/UpdateDrugMedicationRequest.xml")
    assert (result.whole_card, result.problems) == (False, [])
    [order] = result.orders
    assert order.order_id == "1347404071666006001"
    assert order.source_version == ""  # FMK assigns it
    assert (order.drug.name, order.drug.drug_id) == ('Warfarin "Orion"', "28104557609")
    assert (order.route, order.indication) == ("OR", "42")  # codes only in the message
    assert (order.treatment_start, order.treatment_end) == (date(2014, 5, 10), None)
    assert isinstance(order.dosage, StructuredDosage)
    assert order.dosage.unit.plural == "tabletter"
    [period] = order.dosage.periods
    assert period.iteration_interval_days == 2
    assert [d.day_number for d in period.days] == [1, 2]


def test_the_drug_medication_response_with_placeholders_is_a_problem(examples: Path) -> None:
    # The published example elides its content with "..."; the order cannot be read.
    result = read(examples, "2015/01/01/GetDrugMedicationResponse.xml")
    assert result.orders == []
    [problem] = result.problems
    assert (problem.source_order_id, problem.location) == ("1", "DrugMedication[1]/Drug/Name")


# -- 2015/06/01 (FMK 1.4.6) ---------------------------------------------------------------


def test_the_dose_dispensing_card(examples: Path) -> None:
    result = read(examples, "2015/06/01/GetDoseDispensingCardResponse.xml")
    assert result.whole_card is False  # staff-poured orders are not on a dose card
    assert (result.person_id, result.card_version) == ("1403837853", None)
    orders = by_id(result)
    assert {i: o.drug.name for i, o in orders.items()} == {
        "1280998": "Kaleorid", "1380002": "Corodil", "14364128": 'Lansoprazol "KRKA"',
        "14364228": 'Simvastatin "Actavis"'}
    assert all(o.dispensing_mode is DispensingMode.DOSE_DISPENSED for o in orders.values())
    [private] = result.problems
    assert (private.source_order_id, private.location) == (
        "13143641281027", "PrivateDoseDispensedMedication[1]")


def test_the_dose_dispensing_card_itself_is_kept(examples: Path) -> None:
    """What the inspection checks compare with the orders: every line, the private one
    too, and the dispensing period."""
    card = read(examples, "2015/06/01/GetDoseDispensingCardResponse.xml").dose_card
    assert card is not None
    assert (card.card_id, card.period_start, card.period_end) == (
        "763418", date(2016, 6, 6), date(2016, 6, 19))
    assert [(li.order_id, li.drug_name, li.hidden) for li in card.lines] == [
        ("1280998", "Kaleorid", False), ("1380002", "Corodil", False),
        ("14364128", 'Lansoprazol "KRKA"', False), ("14364228", 'Simvastatin "Actavis"', False),
        ("13143641281027", "", True)]
    assert read(examples, "2012/06/01/GetMedicineCardResponse.xml").dose_card is None


def test_the_dose_dispensed_orders_in_detail(examples: Path) -> None:
    orders = by_id(read(examples, "2015/06/01/GetDoseDispensingCardResponse.xml"))
    kaleorid = orders["1280998"]
    assert kaleorid.source_version == "1341404071666006001"
    assert (kaleorid.drug.form, kaleorid.drug.strength) == ("tabletter", "750 mg")
    assert (kaleorid.treatment_start, kaleorid.treatment_end) == (
        date(2016, 3, 7), date(2017, 3, 7))

    def times(order: OrderContent) -> list[TimeKind]:
        assert isinstance(order.dosage, StructuredDosage)
        return [d.time_kind for d in order.dosage.periods[0].days[0].doses]

    assert times(kaleorid) == [TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING]
    assert times(orders["1380002"]) == [TimeKind.MORNING, TimeKind.EVENING]
    assert times(orders["14364228"]) == [TimeKind.NIGHT]


# -- 2022/01/01 (FMK 1.6 drafts): each refused whole, cleanly (issue 21) --------------------

FMK16_FOLDER = "2022/01/01"
# HealthcareProfessionalIdentifier source="CPR" (a request header) is a person identifier
# too, but not in a PersonIdentifier element.
_CPR_SHAPED = re.compile(rb">\s*([0-9]{6}-?[0-9]{4})\s*<")


def fmk16_examples(examples: Path) -> list[Path]:
    files = sorted((examples / FMK16_FOLDER).glob("*.xml"))
    assert len(files) >= 40, f"the FMK 1.6 drafts are missing from {examples / FMK16_FOLDER}"
    return files


def refusal(data: bytes) -> str:
    with pytest.raises(InvalidArgument) as caught:
        read_fmk(data)
    [violation] = caught.value.violations
    assert violation.field == "content"
    return caught.value.message


def strip_namespaces(data: bytes) -> bytes:
    root = etree.fromstring(data, SAFE_PARSER)
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(root)
    return bytes(etree.tostring(root))


def test_every_fmk_16_draft_is_refused_whole_with_and_without_its_namespace(
        examples: Path) -> None:
    failures = []
    for path in fmk16_examples(examples):
        data = path.read_bytes()
        persons = {m.decode().replace("-", "") for m in _CPR_SHAPED.findall(data)}
        try:
            root = etree.fromstring(data, SAFE_PARSER)
        except etree.XMLSyntaxError:  # one draft is not well-formed
            assert "not well-formed" in refusal(data), path.name
            continue
        said = refusal(data)
        if "FMK 1.6" not in said:
            failures.append(f"{path.name}: {said}")
        stripped = refusal(strip_namespaces(data))
        orders = any(etree.QName(e).localname == "DrugMedication" for e in root.iter()
                     if isinstance(e.tag, str))
        # A draft with orders shows FMK 1.6 elements, named; the others (headers, warrant
        # requests) are not messages the importer reads.
        if orders and "FMK 1.6 is not supported" not in stripped:
            failures.append(f"{path.name} without its namespace: {stripped}")
        if not orders and "not imported" not in stripped:
            failures.append(f"{path.name} without its namespace: {stripped}")
        if any(p in said or p in stripped for p in persons):
            failures.append(f"{path.name}: a person identifier in the refusal")
    assert not failures, "\n".join(failures)


def test_no_fmk_14_example_shows_an_fmk_16_mark(examples: Path) -> None:
    """The 1.6 marks never hit the 1.4 examples (messages and dosages), with or without
    their namespaces: telling the versions apart refuses no FMK 1.4 document."""
    for folder in FOLDERS:
        for path in sorted((examples / folder).glob("*.xml")):
            root = etree.fromstring(path.read_bytes(), SAFE_PARSER)
            assert fmk16_mark(root) is None, path.name
            stripped = etree.fromstring(strip_namespaces(path.read_bytes()), SAFE_PARSER)
            assert fmk16_mark(stripped) is None, path.name
