"""FMK 1.4 Dosage XML to the domain dosage (medservice.imports.fmk_dosage)."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest
from lxml import etree

from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.errors import InvalidArgument
from medservice.imports.fmk_dosage import parse_dosage, parse_dosage_proposal, parse_dosage_xml

NS_2012 = "http://www.dkma.dk/medicinecard/xml.schema/2012/06/01"
NS_2013 = "http://www.dkma.dk/medicinecard/xml.schema/2013/06/01"
NS_2015 = "http://www.dkma.dk/medicinecard/xml.schema/2015/01/01"
NS_2015_06 = "http://www.dkma.dk/medicinecard/xml.schema/2015/06/01/E2"
TABLETS = DoseUnit("tablet", "tabletter")
START = date(2024, 1, 1)


def xml(body: str, ns: str = NS_2015) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><Dosage xmlns="{ns}">{body}</Dosage>'.encode()


UNIT_TEXTS = "<UnitTexts source='Local'><Singular>tablet</Singular><Plural>tabletter</Plural>" \
             "</UnitTexts>"


def structure(days: str, head: str = "<IterationInterval>1</IterationInterval>",
              dates: str = "<StartDate>2024-01-01</StartDate><DosageEndingUndetermined/>",
              extra: str = "") -> str:
    return f"<Structure>{head}{dates}{extra}{days}</Structure>"


def one_day(*doses: str, number: int = 1) -> str:
    return f"<Day><Number>{number}</Number>{''.join(doses)}</Day>"


def q(quantity: str, extra: str = "") -> str:
    return f"<Dose>{extra}<Quantity>{quantity}</Quantity></Dose>"


def daily(*doses: DosageDose, text: str = "", end: date | None = None) -> StructuredDosage:
    return StructuredDosage(TABLETS, (DosagePeriod(START, end, 1, text,
                                                   (DosageDay(1, doses),)),))


def test_fmk_144_structures() -> None:
    body = f"<Structures>{UNIT_TEXTS}" + structure(
        one_day(q("1", "<Time>morning</Time>"), q("0.5", "<Time>evening</Time>")),
        extra="<SupplementaryText>ved måltid</SupplementaryText>") + "</Structures>"
    assert parse_dosage_xml(xml(body)) == daily(
        DosageDose(TimeKind.MORNING, None, Amount.exact("1")),
        DosageDose(TimeKind.EVENING, None, Amount.exact("0.5")), text="ved måltid")


def test_fmk_140_structure_with_its_own_unit_text() -> None:
    body = structure(one_day(q("2"), q("2")),
                     dates="<StartDate>2024-01-01</StartDate><EndDate>2024-01-31</EndDate>",
                     extra="<UnitText source='Local'>stk</UnitText>")
    parsed = parse_dosage_xml(xml(body, NS_2012))
    assert parsed == StructuredDosage(DoseUnit("stk", "stk"), (DosagePeriod(
        START, date(2024, 1, 31), 1, "", (DosageDay(1, (DosageDose(
            TimeKind.ANY, None, Amount.exact(2)),) * 2),)),))


def test_fmk_142_request_with_mixed_namespaces() -> None:
    document = f"""<m13:Dosage xmlns:m12="{NS_2012}" xmlns:m13="{NS_2013}"><m13:Structures>
      <m13:UnitTexts source="Doseringsforslag"><m12:Singular>tablet</m12:Singular>
        <m12:Plural>tabletter</m12:Plural></m13:UnitTexts>
      <m13:Structure><m13:NotIterated/><m13:StartDate>2024-01-01</m13:StartDate>
        <m13:EndDate>2024-02-01</m13:EndDate>
        <m13:AnyDay><m12:Dose><m12:Quantity>1</m12:Quantity><m12:IsAccordingToNeed/></m12:Dose>
        </m13:AnyDay></m13:Structure></m13:Structures></m13:Dosage>"""
    assert parse_dosage_xml(document.encode()) == StructuredDosage(TABLETS, (DosagePeriod(
        START, date(2024, 2, 1), 0, "", (DosageDay(0, (DosageDose(
            TimeKind.ANY, None, Amount.exact(1), as_needed=True),)),)),))


def test_fmk_146_fixed_and_as_needed_structures() -> None:
    body = (UNIT_TEXTS + "<StructuresFixed>" + structure(one_day(q("1"))) + "</StructuresFixed>"
            "<StructuresAccordingToNeed>" + structure(one_day(
                q("2", "<Time>12:30</Time>") .replace("</Dose>", "<IsAccordingToNeed/></Dose>")))
            + "</StructuresAccordingToNeed><Type>fast</Type>")
    parsed = parse_dosage_xml(xml(body, NS_2015_06))
    assert isinstance(parsed, StructuredDosage) and len(parsed.periods) == 2
    pn = parsed.periods[1].days[0].doses[0]
    assert (pn.time_kind, pn.clock_time, pn.as_needed) == (TimeKind.CLOCK, time(12, 30), True)


def test_ranges_clock_times_and_empty_structures() -> None:
    ranged = "<Dose><Time>08:15:00</Time><MinimalQuantity>1</MinimalQuantity>" \
             "<MaximalQuantity>2</MaximalQuantity></Dose>"
    body = (f"<Structures>{UNIT_TEXTS}" + structure(one_day(ranged), head="<NotIterated/>",
                                                    dates="<StartDate>2024-01-01</StartDate>"
                                                    "<EndDate>2024-01-05</EndDate>")
            + "<EmptyStructure><StartDate>2024-01-06</StartDate>"
              "<EndDate>2024-01-10</EndDate></EmptyStructure></Structures>")
    parsed = parse_dosage_xml(xml(body))
    assert isinstance(parsed, StructuredDosage)
    assert parsed.periods[0].days[0].doses[0] == DosageDose(
        TimeKind.CLOCK, time(8, 15), Amount.between(1, 2))
    assert parsed.periods[1] == DosagePeriod(date(2024, 1, 6), date(2024, 1, 10))


def test_early_draft_spellings() -> None:
    body = ("<DosageTimes><NotIterated/><StartDateTime>2011-02-27T12:34:56</StartDateTime>"
            "<DosageEndingUndetermined/><UnitText source='Local'>sug</UnitText>"
            "<Day><NotNumbered/>" + q("1") + "</Day>"
            "<Day><DayNumber>2</DayNumber>" + q("0.025") + "</Day></DosageTimes>")
    parsed = parse_dosage_xml(xml(body, NS_2012))
    assert isinstance(parsed, StructuredDosage)
    period = parsed.periods[0]
    assert (period.start_date, [d.day_number for d in period.days]) == (date(2011, 2, 27),
                                                                        [0, 2])
    assert period.days[1].doses[0].amount.quantity == Decimal("0.025")


def test_free_text_and_local_schema() -> None:
    assert parse_dosage_xml(xml("<FreeText>Efter aftale</FreeText>", NS_2012)) == \
        FreeTextDosage("Efter aftale")
    assert parse_dosage_xml(xml("<FreeText><StartDate/><EndDate/><Text>Efter aftale</Text>"
                                "</FreeText>")) == FreeTextDosage("Efter aftale")
    assert parse_dosage_xml(xml("<AdministrationAccordingToSchemaInLocalSystem/>"
                                "<Type>fast</Type>", NS_2012)) == LocalSchemaDosage()


def test_parse_dosage_takes_an_element_inside_a_bigger_document() -> None:
    message = etree.fromstring(f"<DrugMedication xmlns='{NS_2015}'><Dosage><Structures>"
                               f"{UNIT_TEXTS}{structure(one_day(q('1')))}</Structures>"
                               "</Dosage></DrugMedication>")
    assert parse_dosage(message[0]) == daily(DosageDose(TimeKind.ANY, None, Amount.exact(1)))


@pytest.mark.parametrize(("body", "message"), [
    (f"<Structures>{UNIT_TEXTS}" + structure(one_day(q("1"))) + structure(
        one_day(q("1"), q("1"), q("x"))) + "</Structures>",
     "Structure[2].Day[1].Dose[3].Quantity: not a decimal"),
    (f"<Structures>{UNIT_TEXTS}" + structure(one_day(q("-1"))) + "</Structures>",
     "Structure[1].Day[1].Dose[1].Quantity: must not be negative"),
    (f"<Structures>{UNIT_TEXTS}" + structure(one_day(q("1", "<Time>dawn</Time>")))
     + "</Structures>", "Structure[1].Day[1].Dose[1].Time: not morning"),
    (f"<Structures>{UNIT_TEXTS}" + structure(one_day(q("1")), dates="") + "</Structures>",
     "Structure[1].StartDate: is required"),
    (f"<Structures>{UNIT_TEXTS}" + structure(one_day(q("1")), head="") + "</Structures>",
     "Structure[1].IterationInterval"),
    (f"<Structures>{UNIT_TEXTS}" + structure(
        one_day(q("1")), dates="<StartDate>2024-02-01</StartDate><EndDate>2024-01-01</EndDate>")
     + "</Structures>", "Structure[1]: end_date: is before start_date"),
    (f"<Structures>{UNIT_TEXTS}" + structure("<Day><Number>0</Number>" + q("1") + "</Day>")
     + "</Structures>", "Structure[1].Day[1].Number: must be 1 or more"),
    (f"<Structures>{UNIT_TEXTS}" + structure("<Day><Number>1</Number></Day>")
     + "</Structures>", "Structure[1].Day[1].Dose: a day needs at least one dose"),
    ("<Structures>" + structure(one_day(q("1"))) + "</Structures>",
     "Dosage.UnitTexts: is required"),
    ("<Type>fast</Type>", "Dosage: has no Structure"),
    ("<DosageStructure/>", "FMK 1.2 dosage structures are not supported"),
    ("<StructuredDosage/>", "FMK 1.6 dosages are not supported"),
])
def test_bad_input_names_the_element(body: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_dosage_xml(xml(body))
    assert message in caught.value.message


def test_not_xml_or_not_a_dosage() -> None:
    with pytest.raises(InvalidArgument, match="not well-formed"):
        parse_dosage_xml(b"<Dosage>")
    with pytest.raises(InvalidArgument, match="expected a Dosage element"):
        parse_dosage_xml(b"<DosageTranslation/>")


def test_entities_are_not_resolved() -> None:
    document = (b'<?xml version="1.0"?><!DOCTYPE Dosage [<!ENTITY secret SYSTEM '
                b'"file:///etc/hostname">]><Dosage><FreeText>&secret;</FreeText></Dosage>')
    parsed = parse_dosage_xml(document)
    assert parsed == FreeTextDosage("")


def test_a_dosage_proposal_by_version() -> None:
    inner = (f"<m15:Structures xmlns:m15='{NS_2015}'><m15:UnitTexts><m15:Singular>tablet"
             "</m15:Singular><m15:Plural>tabletter</m15:Plural></m15:UnitTexts>"
             "<m15:Structure><m15:IterationInterval>1</m15:IterationInterval>"
             "<m15:StartDate>2024-01-01</m15:StartDate><m15:DosageEndingUndetermined/>"
             "<m15:Day><m15:Number>1</m15:Number><m15:Dose><m15:Quantity>1</m15:Quantity>"
             "</m15:Dose></m15:Day></m15:Structure></m15:Structures>")
    document = ("<DosageProposals><Dosage><Version>1.2.6</Version><DosageStructure/></Dosage>"
                f"<Dosage><Version>1.4.4</Version><m15:Dosage xmlns:m15='{NS_2015}'>{inner}"
                "</m15:Dosage></Dosage></DosageProposals>")
    assert parse_dosage_proposal(document) == {
        "1.4.4": daily(DosageDose(TimeKind.ANY, None, Amount.exact(1)))}
