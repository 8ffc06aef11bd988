"""FMK 1.4 or 1.6, decided by the elements as well as the namespace (issue 21,
medservice.imports.fmk_version): an FMK 1.6 document is refused whole, naming the element,
whatever its namespace; the same for a dosage on its own. Without a database."""

from __future__ import annotations

import pytest

from medservice.domain.dosage import FreeTextDosage, LocalSchemaDosage
from medservice.domain.errors import InvalidArgument
from medservice.imports.fmk import read_fmk
from medservice.imports.fmk_dosage import parse_dosage_xml
from medservice.imports.fmk_version import FMK16_ELEMENTS
from tests.fmk_documents import (
    FMK16_CARD,
    FMK16_FREE_TEXT_DOSAGE,
    FMK16_LOCAL_SCHEMA_DOSAGE,
    FMK16_STRUCTURED_DOSAGE,
    NS_16,
    NS_2012,
    NS_2015,
    PERSON,
    card14,
    drug_medication14,
    strip_namespaces,
)


def refused(data: bytes) -> str:
    """What a whole-document refusal says: InvalidArgument on "content" only, never with
    the person identifier."""
    with pytest.raises(InvalidArgument) as caught:
        read_fmk(data)
    [violation] = caught.value.violations
    assert violation.field == "content"
    assert PERSON not in caught.value.message
    return violation.description


def dosage_refused(data: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_dosage_xml(data)
    return caught.value


# -- the whole document --------------------------------------------------------------------


def test_an_fmk_16_card_in_its_namespace_is_refused() -> None:
    message = refused(FMK16_CARD)
    assert "GetMedicineCardResponse is in the FMK 1.6 namespace" in message
    assert "send FMK 1.4" in message


def test_an_fmk_16_card_without_its_namespace_is_refused_naming_the_element() -> None:
    # Before issue 21 this card read as 1.4: order 201, withdrawn (ActivePeriod/EndedReason),
    # came out active with no end; 203's 1.6 local-schema dosage was accepted; 202 was a
    # misleading "has no Structure" problem.
    message = refused(strip_namespaces(FMK16_CARD))
    assert message.startswith("ActivePeriod at GetMedicineCardResponse/MedicineCard/"
                              "DrugMedication[1]/ActivePeriod is the FMK 1.6 treatment period")
    assert "FMK 1.6 is not supported" in message


def test_fmk_16_elements_in_a_14_namespace_are_refused_too() -> None:
    order = drug_medication14("101").replace(
        "<BeginEndDate>", "<ActivePeriod><TreatmentStartDate>2026-01-01</TreatmentStartDate>"
        "<EndedReason><Reason>Withdrawn</Reason></EndedReason></ActivePeriod><BeginEndDate>")
    assert "ActivePeriod at" in refused(card14(order, ns=NS_2015))


def test_an_element_of_the_16_namespace_inside_a_14_card_is_refused() -> None:
    order = drug_medication14("101", dosage=f'<Dosage xmlns="{NS_16}"><FreeText>'
                                            "<Text>1 tablet</Text></FreeText></Dosage>")
    message = refused(card14(order))
    assert "Dosage at GetMedicineCardResponse/MedicineCard/DrugMedication/Dosage is in the " \
           "FMK 1.6 namespace" in message


@pytest.mark.parametrize("name", sorted(FMK16_ELEMENTS))
def test_each_16_element_is_named_wherever_it_is(name: str) -> None:
    order = drug_medication14("101").replace("</Drug>", f"</Drug><{name}/>")
    message = refused(card14(order, ns=None))
    assert message.startswith(f"{name} at GetMedicineCardResponse/MedicineCard/"
                              f"DrugMedication/{name} is ")


@pytest.mark.parametrize(("dosage", "named"), [
    (FMK16_FREE_TEXT_DOSAGE, "Type at"),
    (FMK16_LOCAL_SCHEMA_DOSAGE, "Type at"),
    (FMK16_STRUCTURED_DOSAGE, "Precondition at"),
])
def test_a_16_dosage_without_namespace_refuses_the_document(dosage: str, named: str) -> None:
    message = refused(card14(drug_medication14("101", dosage=dosage), ns=None))
    assert message.startswith(named)
    assert "/DrugMedication/Dosage/" in message


@pytest.mark.parametrize("ns", [NS_2015, None])
def test_a_14_card_still_reads(ns: str | None) -> None:
    free_text = ("<Dosage><FreeText><StartDate>2026-01-01</StartDate><DosageEndingUndetermined/>"
                 "<Text>efter skema</Text></FreeText><Type>fast</Type></Dosage>")
    result = read_fmk(card14(drug_medication14("101"), drug_medication14("102", dosage=free_text),
                             ns=ns))
    assert [o.order_id for o in result.orders] == ["101", "102"]
    assert result.orders[1].dosage == FreeTextDosage("efter skema")
    assert not result.problems


def test_an_element_name_holding_digits_is_never_quoted() -> None:
    order = drug_medication14("101").replace("</Drug>", f"</Drug><x{PERSON}><ActivePeriod/>"
                                                        f"</x{PERSON}>")
    assert "DrugMedication/*/ActivePeriod" in refused(card14(order, ns=None))


# -- a dosage on its own (fmk_dosage, medctl dosage) ----------------------------------------


def _dosage(body: str, ns: str | None) -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return f"<Dosage{xmlns}>{body}</Dosage>".encode()


def _inner(dosage: str) -> str:
    return dosage.strip().removeprefix("<Dosage>").removesuffix("</Dosage>")


@pytest.mark.parametrize("ns", [None, NS_16])
@pytest.mark.parametrize(("dosage", "field"), [
    (FMK16_FREE_TEXT_DOSAGE, "Dosage.Type"),
    (FMK16_LOCAL_SCHEMA_DOSAGE, "Dosage.Type"),
    (FMK16_STRUCTURED_DOSAGE, "Dosage.Precondition"),
])
def test_a_16_dosage_is_refused_naming_the_element(dosage: str, field: str, ns: str | None
                                                   ) -> None:
    # Before issue 21 the free-text and local-schema ones read as 1.4, namespace or not.
    error = dosage_refused(_dosage(_inner(dosage), ns))
    [violation] = error.violations
    assert violation.field == ("Dosage" if ns else field)
    assert "FMK 1.6 dosages are not supported" in violation.description


def test_a_16_dosage_element_deeper_in_the_dosage_is_named() -> None:
    body = "<UnitTexts><Singular>a</Singular><Plural>b</Plural></UnitTexts><DosagePeriod/>"
    [violation] = dosage_refused(_dosage(body, None)).violations
    assert violation.field == "Dosage.DosagePeriod"


@pytest.mark.parametrize("ns", ["urn:example:other",
                                "http://www.dkma.dk/medicinecard/xml.schema/2009/01/01"])
def test_a_dosage_in_another_namespace_is_refused(ns: str) -> None:
    error = dosage_refused(_dosage("<FreeText>1 tablet</FreeText>", ns))
    assert [v.field for v in error.violations] == ["Dosage"]
    assert "not an FMK 1.4 dosage" in error.message


@pytest.mark.parametrize("ns", [None, NS_2012, NS_2015])
def test_14_free_text_and_local_schema_dosages_still_read(ns: str | None) -> None:
    assert parse_dosage_xml(_dosage("<FreeText>1 tablet</FreeText><Type>kombineret</Type>",
                                    ns)) == FreeTextDosage("1 tablet")
    assert parse_dosage_xml(_dosage("<AdministrationAccordingToSchemaInLocalSystem/>"
                                    "<Type>fast</Type>", ns)) == LocalSchemaDosage()
