"""Small FMK documents for the import tests (issue 21): FMK 1.4 cards built order by order,
and an FMK 1.6 GetMedicineCardResponse written from the public FMK 1.6.0 schema
(trifork/fmk-schemas, etc/schemas/2022/01/01, namespace http://fmk-teknik.dk/160).

`FMK16_CARD` is valid against that schema (checked with lxml against
GetMedicineCardResponse.xsd when it was written; the schema is not part of this project).
Its orders: 201 withdrawn (ActivePeriod/EndedReason) with a free-text dosage, 202 with a
structured 1.6 dosage, 203 "according to a schema in a local system". The drafts in
../shared/reference/fmk/examples/2022 are older and do not validate against it.
The person is the FMK test person of the published examples.
"""

from __future__ import annotations

from lxml import etree

NS_2012 = "http://www.dkma.dk/medicinecard/xml.schema/2012/06/01"
NS_2015 = "http://www.dkma.dk/medicinecard/xml.schema/2015/01/01"
NS_16 = "http://fmk-teknik.dk/160"
PERSON = "1111111118"
PERSON_DASHED = "111111-1118"


def dosage14(quantity: str = "1", time: str = "morning") -> str:
    """A daily FMK 1.4.4 structured dosage; a quantity such as "1,5" makes it unreadable."""
    return f"""
    <Dosage><Structures>
      <UnitTexts source="Local"><Singular>tablet</Singular><Plural>tabletter</Plural></UnitTexts>
      <Structure>
        <IterationInterval>1</IterationInterval><StartDate>2026-01-01</StartDate>
        <DosageEndingUndetermined/>
        <Day><Number>1</Number>
          <Dose><Time>{time}</Time><Quantity>{quantity}</Quantity></Dose>
        </Day>
      </Structure>
    </Structures></Dosage>"""


def drug_medication14(order_id: str | None, *, quantity: str = "1", version: str = "1",
                      name: str = "Panodil", dosage: str | None = None) -> str:
    """An FMK 1.4 DrugMedication; order_id None leaves the Identifier out (unreadable)."""
    identifier = "" if order_id is None else f"<Identifier>{order_id}</Identifier>"
    return f"""
  <DrugMedication>
    {identifier}<Version>{version}</Version>
    <BeginEndDate><TreatmentStartDate>2026-01-01</TreatmentStartDate>
      <TreatmentEndingUndetermined/></BeginEndDate>
    <RouteOfAdministration><Code source="Medicinpriser">OR</Code><Text>oral</Text>
    </RouteOfAdministration>
    <Drug><Identifier source="Medicinpriser">28100636474</Identifier><Name>{name}</Name>
      <Form><Code>TAB</Code><Text>tabletter</Text></Form></Drug>
    {dosage if dosage is not None else dosage14(quantity)}
  </DrugMedication>"""


def card14(*orders: str, version: int = 1, ns: str | None = NS_2015,
           person: str = PERSON) -> bytes:
    """A GetMedicineCardResponse (the whole card) of FMK 1.4."""
    xmlns = f' xmlns="{ns}"' if ns else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<GetMedicineCardResponse{xmlns}>
  <MedicineCard>
    <Patient><Person><PersonIdentifier source="CPR">{person}</PersonIdentifier></Person>
    </Patient>
    <Version>{version}</Version>
    {"".join(orders)}
  </MedicineCard>
</GetMedicineCardResponse>""".encode()


_CREATED = """<Created><By>
        <HealthcareProfessional><Identifier source="Autorisation">12345</Identifier>
          <Name>Test Læge</Name></HealthcareProfessional>
        <Role>Læge</Role></By><DateTime>2026-01-05T10:00:00+01:00</DateTime></Created>
      <Type>Lægeordineret</Type>"""
_CODES = """<Indication><Code source="Medicinpriser" date="2014-05-01">42</Code></Indication>
      <RouteOfAdministration><Code source="Medicinpriser" date="2014-05-01">OR</Code>
      </RouteOfAdministration>"""

FMK16_FREE_TEXT_DOSAGE = """<Dosage>
        <FreeText><StartDate>2026-01-05</StartDate><DosageEndingUndetermined/>
          <Text>1 tablet morgen</Text></FreeText>
        <Type>Fixed</Type>
      </Dosage>"""
FMK16_LOCAL_SCHEMA_DOSAGE = """<Dosage>
        <AdministrationAccordingToSchemaInLocalSystem><StartDate>2026-01-05</StartDate>
          <DosageEndingUndetermined/></AdministrationAccordingToSchemaInLocalSystem>
        <Type>Not Specified</Type>
      </Dosage>"""
FMK16_STRUCTURED_DOSAGE = """<Dosage>
        <Precondition><ValidFrom>2026-01-05</ValidFrom></Precondition>
        <UnitTexts><Singular>tablet</Singular><Plural>tabletter</Plural></UnitTexts>
        <DosagePeriod>
          <Fixed>
            <IterationInterval>1</IterationInterval>
            <Day><Dosage><PartOfDayDosage><Morning><Quantity>1</Quantity></Morning>
            </PartOfDayDosage></Dosage></Day>
            <Profile><ProfileCode>
              <DosageType>Fast</DosageType><PeriodType>Repeating</PeriodType>
              <Schedule>N/A</Schedule><Frequency>Morning, noon, evening, night</Frequency>
            </ProfileCode></Profile>
          </Fixed>
          <EndDate><Unknown/></EndDate>
        </DosagePeriod>
      </Dosage>"""

FMK16_CARD = f"""<?xml version="1.0" encoding="UTF-8"?>
<GetMedicineCardResponse xmlns="{NS_16}">
  <MedicineCard>
    <Patient><Person><PersonIdentifier source="CPR">{PERSON}</PersonIdentifier>
      <BirthDate>1911-11-11</BirthDate><Gender>male</Gender></Person></Patient>
    <Version>1341404077657004009</Version>
    <DrugMedication>
      <Identifier>201</Identifier><Version>3</Version>
      {_CREATED}
      <ActivePeriod>
        <TreatmentStartDate>2026-01-05</TreatmentStartDate>
        <TreatmentEndDate>2026-02-01</TreatmentEndDate>
        <EndedReason><Reason>Withdrawn</Reason></EndedReason>
      </ActivePeriod>
      {_CODES}
      <Drug><Name>Panodil</Name></Drug>
      {FMK16_FREE_TEXT_DOSAGE}
      <HandoverPreference>Treatment</HandoverPreference>
    </DrugMedication>
    <DrugMedication>
      <Identifier>202</Identifier><Version>1</Version>
      {_CREATED}
      <ActivePeriod><TreatmentStartDate>2026-01-05</TreatmentStartDate>
        <TreatmentEndingUndetermined/></ActivePeriod>
      {_CODES}
      <Drug><Name>Furix</Name></Drug>
      {FMK16_STRUCTURED_DOSAGE}
      <HandoverPreference>Treatment</HandoverPreference>
    </DrugMedication>
    <DrugMedication>
      <Identifier>203</Identifier><Version>1</Version>
      {_CREATED}
      <ActivePeriod><TreatmentStartDate>2026-01-05</TreatmentStartDate>
        <TreatmentEndingUndetermined/></ActivePeriod>
      {_CODES}
      <Drug><Name>Marevan</Name></Drug>
      {FMK16_LOCAL_SCHEMA_DOSAGE}
      <HandoverPreference>Treatment</HandoverPreference>
    </DrugMedication>
  </MedicineCard>
</GetMedicineCardResponse>""".encode()


def strip_namespaces(data: bytes) -> bytes:
    """The document with every element in no namespace, as some middleware passes FMK on."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
