"""Administration records and discrepancies as FHIR R4 resources (issue 20), checked with
the same fhir.resources models the export uses, and the specification's own examples
parsed by them (our shapes are the standard's)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.medicationadministration import MedicationAdministration

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.discrepancy import Code, Discrepancy, Severity
from medservice.domain.dosage import DoseUnit
from medservice.domain.facility import Facility
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import Drug, OrderContent
from medservice.exports.fhir import detected_issue, medication_administration, searchset
from medservice.store.discrepancies import Decision, DiscrepancyEntry, Status

CLOCK = FacilityClock.from_facility(Facility("f", "Home"))
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fhir-r4"
ORDER = OrderContent("rx1", Drug("Panodil 500 mg", atc_code="N02BE01"),
                     TimingDosage(unit=DoseUnit("tablet", "tabletter"), amount=None,
                                  as_needed=True))
SUMMER = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # 08:00 CEST
WINTER = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 CET


def _record(**fields: object) -> AdministrationRecord:
    values: dict[str, object] = dict(
        record_id="rec1", facility_id="f", resident_id="r1", order_id="rx1",
        drug_id="N02BE01", outcome=Outcome.GIVEN, administered_at=SUMMER,
        recorded_at=SUMMER, performer="carer-7", quantity=Decimal("2"), route="oral")
    values.update(fields)
    return AdministrationRecord(**values)  # type: ignore[arg-type]


def test_a_given_dose_is_a_completed_administration() -> None:
    ma = medication_administration(_record(), ORDER, CLOCK)
    MedicationAdministration.model_validate(ma)
    assert ma["status"] == "completed"
    assert ma["effectiveDateTime"] == "2026-06-01T08:00:00+02:00"  # UTC with the offset
    assert ma["request"] == {"reference": "MedicationRequest/rx1"}
    assert ma["performer"][0]["actor"]["identifier"]["value"] == "carer-7"
    assert ma["subject"]["identifier"]["value"] == "facilities/f/residents/r1"
    assert ma["medicationCodeableConcept"]["coding"][0]["code"] == "N02BE01"
    assert ma["dosage"]["route"] == {"text": "oral"}
    assert Decimal(str(ma["dosage"]["dose"]["value"])) == 2
    winter = medication_administration(_record(administered_at=WINTER), ORDER, CLOCK)
    assert winter["effectiveDateTime"] == "2026-12-01T08:00:00+01:00"


@pytest.mark.parametrize(("quantity", "unit"), [
    ("1", "tablet"), ("0.5", "tablet"), ("2", "tabletter"), ("1.5", "tabletter")])
def test_the_dose_unit_is_singular_up_to_one_as_staff_read_it(quantity: str, unit: str
                                                              ) -> None:
    ma = medication_administration(_record(quantity=Decimal(quantity)), ORDER, CLOCK)
    assert ma["dosage"]["dose"]["unit"] == unit
    # A unit the vocabulary does not know keeps the source's own singular or plural.
    own = OrderContent("rx1", Drug("Creme"), TimingDosage(
        unit=DoseUnit("strimmel", "strimler"), amount=None, as_needed=True))
    assert medication_administration(_record(quantity=Decimal(quantity)), own, CLOCK)[
        "dosage"]["dose"]["unit"] == ("strimmel" if unit == "tablet" else "strimler")


def test_a_dose_not_given_is_not_done_with_its_reason_coded() -> None:
    away = medication_administration(_record(
        outcome=Outcome.NOT_GIVEN, not_given_reason=NotGivenReason.RESIDENT_ABSENT,
        quantity=None), ORDER, CLOCK)
    assert away["status"] == "not-done"
    codes = [(c["system"].rsplit("/", 1)[1], c["code"]) for c in away["statusReason"][0]["coding"]]
    assert codes == [("reason-medication-not-given", "b"), ("not-given-reason", "resident_absent")]
    refused = medication_administration(_record(
        outcome=Outcome.NOT_GIVEN, not_given_reason=NotGivenReason.REFUSED), ORDER, CLOCK)
    assert [c["code"] for c in refused["statusReason"][0]["coding"]] == ["refused"]


def test_a_corrected_record_is_entered_in_error_saying_by_whom() -> None:
    ma = medication_administration(_record(
        entered_in_error=True, correction_reason="wrong resident", corrected_by="nurse-2",
        corrected_at=SUMMER), ORDER, CLOCK)
    assert ma["status"] == "entered-in-error"
    assert ma["note"][0]["text"] == "entered in error: wrong resident"
    assert ma["note"][0]["authorReference"]["identifier"]["value"] == "nurse-2"
    assert "extension" not in ma  # it replaces nothing itself


def test_a_correction_s_replacement_references_the_record_it_replaces() -> None:
    ma = medication_administration(_record(record_id="rec2", replaces_record_id="rec1"),
                                   ORDER, CLOCK)
    parsed = MedicationAdministration.model_validate(ma)
    [ext] = parsed.extension or []
    assert ext.url == "https://medservice.dk/fhir/StructureDefinition/replaces-record"
    assert ext.valueReference is not None
    assert ext.valueReference.reference == "MedicationAdministration/rec1"
    assert ma["status"] == "completed"
    assert "extension" not in medication_administration(_record(), ORDER, CLOCK)


def _entry(decision: Decision | None) -> DiscrepancyEntry:
    d = Discrepancy("k", Code.WRONG_DOSE, Severity.HIGH, True, "f", "r1", "rx1", None, "rec1",
                    SUMMER, "2 tabletter givet, 1 ordineret")
    return DiscrepancyEntry("d1", d, SUMMER, Status.OPEN, decision,
                            "talked to GP" if decision else "", "pharm-1" if decision else "",
                            WINTER if decision else None, "e1")


def test_a_discrepancy_is_a_detected_issue_mitigated_once_reviewed() -> None:
    issue = detected_issue(_entry(None), CLOCK)
    DetectedIssue.model_validate(issue)
    assert (issue["status"], issue["severity"]) == ("preliminary", "high")
    assert issue["code"]["coding"][0]["code"] == "WRONG_DOSE"
    assert [i["reference"] for i in issue["implicated"]] == [
        "MedicationAdministration/rec1", "MedicationRequest/rx1"]
    assert "mitigation" not in issue
    reviewed = detected_issue(_entry(Decision.CONFIRMED_ERROR), CLOCK)
    assert reviewed["status"] == "final"
    [m] = reviewed["mitigation"]
    assert (m["action"]["coding"][0]["code"], m["action"]["text"], m["date"]) == (
        "confirmed_error", "talked to GP", "2026-12-01T08:00:00+01:00")
    assert m["author"]["identifier"]["value"] == "pharm-1"


def test_a_searchset_bundle_holds_them_all() -> None:
    resources = [medication_administration(_record(), ORDER, CLOCK),
                 detected_issue(_entry(None), CLOCK)]
    bundle = searchset(resources)
    Bundle.model_validate(bundle)
    assert (bundle["type"], bundle["total"]) == ("searchset", 2)
    json.dumps(bundle)  # JSON as it is


def _examples(prefix: str) -> list[Path]:
    if not EXAMPLES.is_dir():
        if os.environ.get("MEDSERVICE_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"FHIR R4 examples not found at {EXAMPLES}")
        pytest.skip(f"FHIR R4 examples not found at {EXAMPLES}")
    return sorted(EXAMPLES.glob(f"{prefix}*.json"))


def test_the_specifications_examples_parse_with_the_export_models() -> None:
    administrations = _examples("medicationadministration")
    issues = _examples("detectedissue")
    assert (len(administrations), len(issues)) == (14, 4)
    for path in administrations:
        MedicationAdministration.model_validate(json.loads(path.read_text()))
    for path in issues:
        DetectedIssue.model_validate(json.loads(path.read_text()))


def _posted(**fields: object) -> bytes:
    return json.dumps({
        "resourceType": "MedicationAdministration", "status": "completed",
        "identifier": [{"system": "urn:front-end:mar", "value": "adm-1"}],
        "medicationCodeableConcept": {"text": "Panodil 500 mg"},
        "subject": {"identifier": {"system": "https://medservice.dk/fhir/resident",
                                   "value": "facilities/f/residents/r1"}},
        "effectiveDateTime": "2026-06-01T08:00:00+02:00", **fields}).encode()


def _ack(code: object, kind: str = "valueCode") -> dict[str, object]:
    return {"url": "https://medservice.dk/fhir/StructureDefinition/acknowledged-reason",
            kind: code}


def test_a_posted_administration_acknowledges_check_reasons_by_extension() -> None:
    from medservice.domain.errors import InvalidArgument
    from medservice.web.fhir import record_request

    assert list(record_request(_posted()).acknowledged_reasons) == []
    other = {"url": "https://example.org/x", "valueString": "not ours"}
    request = record_request(_posted(extension=[_ack("WRONG_DOSE"), other,
                                                _ack("DOSE_OF_OTHER_RESIDENT")]))
    assert list(request.acknowledged_reasons) == ["WRONG_DOSE", "DOSE_OF_OTHER_RESIDENT"]
    for extension, field in (([_ack("wrong_dose")], "extension[0].valueCode"),
                             ([other, _ack("NOPE")], "extension[1].valueCode"),
                             ([_ack("WRONG_DOSE", "valueString")], "extension[0].valueCode")):
        with pytest.raises(InvalidArgument) as info:
            record_request(_posted(extension=extension))
        assert [v.field for v in info.value.violations] == [field]
