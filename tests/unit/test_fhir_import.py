"""The FHIR R4 MedicationRequest importer: orders read whole or refused with where and why
(DOMAIN.md §2, §4)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import Amount, FreeTextDosage
from medservice.domain.errors import InvalidArgument
from medservice.domain.facility import Facility
from medservice.domain.fhir_timing import (
    TimingDosage,
    expand_timing,
    timing_problem,
    timing_text,
)
from medservice.domain.orders import OrderContent, Pause
from medservice.imports.fhir import read_fhir
from medservice.imports.result import ImportResult

CLOCK = FacilityClock.from_facility(Facility("f", "Home"))
ATC = "http://www.whocc.no/atc"
CPR = "urn:oid:1.2.208.176.1.2"
TEST_PERSON = "2512489996"  # well-known Danish test persons
OTHER_TEST_PERSON = "1111111118"


def dosage(**fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "text": "1 tablet twice daily",
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                              "display": "Oral Route"}]},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
    }
    found.update(fields)
    return {k: v for k, v in found.items() if v is not None}


def request(rid: str | None = "rx1", **fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {
            "coding": [{"system": "https://fmk.example/drug", "code": "28101234",
                        "display": "Panodil 500 mg"},
                       {"system": ATC, "code": "N02BE01", "display": "paracetamol"}]},
        "reasonCode": [{"text": "pain"}],
        "dosageInstruction": [dosage()],
    }
    found.update(fields)
    return {k: v for k, v in found.items() if v is not None}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r}
                      for i, r in enumerate(resources)]}


def read(document: dict[str, Any]) -> ImportResult:
    return read_fhir(json.dumps(document).encode())


def only_order(document: dict[str, Any]) -> OrderContent:
    result = read(document)
    assert result.problems == []
    assert len(result.orders) == 1
    return result.orders[0]


def only_timing(document: dict[str, Any]) -> TimingDosage:
    found = only_order(document).dosage
    assert isinstance(found, TimingDosage)
    return found


def refusal(document: dict[str, Any]) -> list[tuple[str, str]]:
    result = read(document)
    assert result.orders == []
    assert result.problems
    return [(p.location, p.reason) for p in result.problems]


def refused_at(document: dict[str, Any], location: str, reason: str) -> None:
    problems = refusal(document)
    assert any(where == location and reason in why for where, why in problems), problems


# -- a whole order ------------------------------------------------------------------------


def test_an_order_is_read_whole() -> None:
    order = only_order(request())
    assert order.order_id == "rx1"
    assert (order.drug.name, order.drug.drug_id, order.drug.atc_code) == (
        "Panodil 500 mg", "28101234", "N02BE01")
    assert order.route == "Oral Route" and order.indication == "pain"
    assert order.treatment_start is None and order.treatment_end is None
    assert order.pauses == () and order.discontinued_at is None
    t = order.dosage
    assert isinstance(t, TimingDosage)
    assert (t.frequency, t.period, t.period_unit, t.amount) == (
        2, Decimal(1), "d", Amount.exact(1))
    assert t.unit.singular == "tablet" and not t.as_needed


def test_a_single_resource_reports_plain_locations() -> None:
    document = request(dosageInstruction=[dosage(
        timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}})])
    refused_at(document, "dosageInstruction[0].timing.repeat.periodUnit",
               "months and years have no fixed length")
    assert read(document).problems[0].source_order_id == "rx1"


def test_quantities_are_exact_decimals() -> None:
    raw = json.dumps(request(dosageInstruction=[dosage(
        doseAndRate=[{"doseQuantity": {"value": "X", "unit": "mg"}}])]))
    order = read_fhir(raw.replace('"X"', "0.025").encode()).orders[0]
    assert isinstance(order.dosage, TimingDosage)
    assert order.dosage.amount == Amount(quantity=Decimal("0.025"))
    assert isinstance(order.dosage.amount.quantity, Decimal)


def test_a_dose_range() -> None:
    t = only_timing(request(dosageInstruction=[dosage(doseAndRate=[{"doseRange": {
        "low": {"value": 1, "unit": "TAB"}, "high": {"value": 2, "unit": "TAB"}}}])]))
    assert t.amount == Amount.between(1, 2)


def test_the_source_version_and_a_source_without_reason() -> None:
    order = only_order(request(meta={"versionId": "7"}, reasonCode=None))
    assert order.source_version == "7" and order.indication == ""


# -- identity -----------------------------------------------------------------------------


def test_the_identifier_stands_in_for_a_missing_id() -> None:
    order = only_order(request(rid=None, identifier=[
        {"system": "x", "value": "secondary"}, {"use": "official", "value": "FMK-42"}]))
    assert order.order_id == "FMK-42"


def test_an_order_without_identity_is_refused() -> None:
    refused_at(request(rid=None), "id", "neither an id nor an identifier")
    refused_at(request(rid=None, identifier=[{"value": "a/b"}]), "identifier[0].value",
               "without '/'")


def test_the_same_id_twice_refuses_the_second() -> None:
    result = read(bundle(request("rx1"), request("rx1")))
    assert [o.order_id for o in result.orders] == ["rx1"]
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("rx1", "entry[1].resource.id")]


# -- drug ---------------------------------------------------------------------------------


def test_a_contained_medication() -> None:
    order = only_order(request(
        medicationCodeableConcept=None,
        contained=[{"resourceType": "Medication", "id": "m1",
                    "code": {"coding": [{"system": ATC, "code": "C03BA04",
                                         "display": "chlortalidon"},
                                        {"system": "http://snomed.info/sct",
                                         "code": "317935006",
                                         "display": "Chlorthalidone 50mg tablet"}]},
                    "form": {"text": "tablet"}}],
        medicationReference={"reference": "#m1"}))
    assert order.drug.name == "Chlorthalidone 50mg tablet"  # not the ATC display
    assert (order.drug.drug_id, order.drug.atc_code, order.drug.form) == (
        "317935006", "C03BA04", "tablet")


def test_a_medication_in_the_bundle_and_a_compounded_one() -> None:
    medication = {"resourceType": "Medication", "id": "m2", "ingredient": [
        {"itemCodeableConcept": {"text": "salicylsyre"},
         "strength": {"numerator": {"value": 5, "code": "g"},
                      "denominator": {"value": 100, "code": "g"}}},
        {"itemCodeableConcept": {"text": "vaselin"},
         "strength": {"numerator": {"value": 95, "code": "g"},
                      "denominator": {"value": 100, "code": "g"}}}]}
    result = read(bundle(medication, request(medicationCodeableConcept=None,
                                             medicationReference={"reference": "Medication/m2"})))
    assert result.problems == []
    drug = result.orders[0].drug
    assert (drug.name, drug.strength) == ("salicylsyre + vaselin", "5 g/100 g + 95 g/100 g")


def test_an_unresolvable_medication_is_refused() -> None:
    refused_at(request(medicationCodeableConcept=None,
                       medicationReference={"reference": "Medication/elsewhere",
                                            "display": "prescribed medication"}),
               "medicationReference", "the drug is not identified")
    refused_at(request(medicationCodeableConcept={"coding": [{"code": "123"}]}),
               "medication[x]", "has no name")


# -- status, intent -----------------------------------------------------------------------


def test_on_hold_is_an_open_ended_pause() -> None:
    assert only_order(request(status="on-hold")).pauses == (Pause(),)


def bounded(start: str, end: str) -> dict[str, Any]:
    return dosage(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                     "boundsPeriod": {"start": start, "end": end}}})


def test_treatment_dates_come_from_the_timing_bounds() -> None:
    order = only_order(request(
        dosageInstruction=[bounded("2026-03-02", "2026-03-06")],
        dispenseRequest={"validityPeriod": {"start": "2026-01-01", "end": "2026-12-31"}}))
    assert (order.treatment_start, order.treatment_end) == (date(2026, 3, 2), date(2026, 3, 6))
    t = order.dosage
    assert isinstance(t, TimingDosage)
    assert (t.bounds_first_date, t.bounds_last_date) == (date(2026, 3, 2), date(2026, 3, 6))
    slots = expand_timing(t, CLOCK, date(2026, 3, 1), date(2026, 3, 31),
                          order_start=order.treatment_start)
    assert [s.local_date.day for s in slots] == [2, 3, 4, 5, 6]


def test_completed_with_an_end_is_imported_as_ended() -> None:
    order = only_order(request(status="completed",
                               dosageInstruction=[bounded("2026-03-02", "2026-03-06")]))
    assert order.treatment_end == date(2026, 3, 6) and order.discontinued_at is None


def test_stopped_at_an_instant_is_discontinued_then() -> None:
    order = only_order(request(status="stopped", dosageInstruction=[
        bounded("2026-03-02", "2026-03-04T10:30:00+01:00")]))
    assert order.discontinued_at == datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    assert order.treatment_end == date(2026, 3, 4)


@pytest.mark.parametrize("status", ["completed", "stopped"])
def test_over_without_an_end_is_refused(status: str) -> None:
    refused_at(request(status=status), "status", "the timing gives no end")


@pytest.mark.parametrize(("status", "reason"), [
    ("cancelled", "cancelled before any administration"),
    ("entered-in-error", "never was an order"),
    ("draft", "not yet an order"),
    ("unknown", "does not know"),
])
def test_statuses_that_are_not_orders(status: str, reason: str) -> None:
    refused_at(request(status=status), "status", reason)


def test_a_refused_status_and_a_refused_dosage_are_both_told() -> None:
    problems = refusal(request(status="completed", dosageInstruction=[dosage(
        timing={"repeat": {"frequency": 1, "period": 6, "periodUnit": "h", "when": ["MORN"]}})]))
    assert [where for where, _ in problems] == ["dosageInstruction[0].timing.repeat.when",
                                                "status"]


def test_a_course_with_no_start_is_imported_to_begin_at_its_first_dose() -> None:
    t = only_timing(request(dosageInstruction=[dosage(timing={"repeat": {
        "frequency": 1, "period": 6, "periodUnit": "h"}})]))
    assert timing_problem(t, order_start=None, first_dose_anchors=True) is None
    refused_at(request(dosageInstruction=[dosage(timing={"repeat": {
        "frequency": 2, "period": 1, "periodUnit": "d", "count": 6}})]),
        "dosageInstruction[0].timing.repeat.boundsPeriod.start", "which of the day's times")


def test_requests_that_are_not_orders_to_give() -> None:
    refused_at(request(intent="plan"), "intent", "not an order to give")
    refused_at(request(doNotPerform=True), "doNotPerform", "forbids the drug")
    refused_at(request(modifierExtension=[{"url": "http://x", "valueBoolean": True}]),
               "modifierExtension", "not understood")


# -- dosage -------------------------------------------------------------------------------


def test_text_only_needs_a_manual_schedule() -> None:
    order = only_order(request(dosageInstruction=[{"text": "1 tablet as directed"}]))
    assert order.dosage == FreeTextDosage("1 tablet as directed")
    assert order.manual_schedule_reason is not None
    assert only_order(request(dosageInstruction=None)).dosage == FreeTextDosage("")


def test_as_needed_boolean_is_pn_with_its_limit() -> None:
    t = only_timing(request(dosageInstruction=[dosage(
        asNeededBoolean=True,
        timing={"repeat": {"frequency": 1, "period": 4, "periodUnit": "h"}},
        maxDosePerPeriod={"numerator": {"value": 3, "unit": "tablet"},
                          "denominator": {"value": 1, "code": "d"}})]))
    assert t.as_needed
    assert (t.max_dose_quantity, t.max_dose_unit, t.max_dose_period) == (
        Decimal(3), "tablet", timedelta(days=1))
    assert expand_timing(t, CLOCK, date(2026, 3, 1), date(2026, 3, 31), order_start=None) == []


def test_as_needed_concept_is_pn_and_the_indication() -> None:
    order = only_order(request(reasonCode=None, dosageInstruction=[dosage(
        timing=None, asNeededCodeableConcept={"text": "smerter"},
        patientInstruction="ved smerter")]))
    assert isinstance(order.dosage, TimingDosage) and order.dosage.as_needed
    assert order.indication == "smerter"


def test_pn_takes_the_upper_frequency_as_its_limit() -> None:
    t = only_timing(request(dosageInstruction=[dosage(asNeededBoolean=True, timing={
        "repeat": {"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"}})]))
    assert t.frequency == 3


def test_repeat_elements_are_read() -> None:
    t = only_timing(request(dosageInstruction=[dosage(timing={"repeat": {
        "when": ["ACM"], "offset": 15, "dayOfWeek": ["mon", "thu"],
        "boundsPeriod": {"start": "2026-03-02T07:00:00+01:00"}, "count": 8}})]))
    assert (t.when, t.offset_minutes, t.day_of_week, t.count) == (
        ("ACM",), 15, ("mon", "thu"), 8)
    assert t.bounds_start == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    clock_times = [s.local_time for s in expand_timing(
        t, CLOCK, date(2026, 3, 2), date(2026, 3, 8), order_start=None)]
    assert clock_times == [time(7, 45), time(7, 45)]


def test_a_timing_code() -> None:
    t = only_timing(request(dosageInstruction=[dosage(timing={"code": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
         "code": "BID"}]}})]))
    assert t.code == "BID" and t.frequency == 0
    refused_at(request(dosageInstruction=[dosage(timing={"code": {"coding": [
        {"system": "http://example.org/local", "code": "2x"}]}})]),
        "dosageInstruction[0].timing.code", "only HL7 timing abbreviations")


def test_a_code_with_text_only_is_free_text() -> None:
    order = only_order(request(dosageInstruction=[{"timing": {"code": {"text": "som aftalt"}}}]))
    assert order.dosage == FreeTextDosage("som aftalt")


def test_instructions_at_different_times_are_combined() -> None:
    morning = dosage(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                        "when": ["MORN"]}})
    evening = dosage(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                        "when": ["EVE"]}})
    t = only_timing(request(dosageInstruction=[morning, evening]))
    assert (t.when, t.frequency) == (("MORN", "EVE"), 2)
    slots = expand_timing(t, CLOCK, date(2026, 3, 2), date(2026, 3, 2), order_start=None)
    assert [s.slot for s in slots] == ["MORN", "EVE"]


def test_different_doses_at_different_times_are_given_together() -> None:
    first = dosage(timing={"repeat": {"when": ["MORN"]}})
    second = dosage(timing={"repeat": {"when": ["EVE"]}},
                    doseAndRate=[{"doseQuantity": {"value": 2, "unit": "tablet"}}])
    noon = dosage(timing={"repeat": {"when": ["NOON"]}})
    t = only_timing(request(dosageInstruction=[first, second, noon]))
    assert [p.amount for p in t.parts] == [Amount.exact(1), Amount.exact(2)]
    assert (t.when, t.also[0].when) == (("MORN", "NOON"), ("EVE",))
    slots = expand_timing(t, CLOCK, date(2026, 3, 2), date(2026, 3, 2), order_start=None)
    assert [(s.slot, str(s.amount.quantity), s.doses_that_day) for s in slots] == [
        ("MORN", "1", 3), ("NOON", "1", 3), ("EVE", "2", 3)]
    assert timing_text(t, "da") == "1 tablet morgen og middag og 2 tablet aften"


def test_parts_that_cannot_be_given_together_are_refused_naming_both() -> None:
    first = dosage(timing={"repeat": {"when": ["MORN"]}})
    same_time = dosage(timing={"repeat": {"when": ["WAKE"]}},
                       doseAndRate=[{"doseQuantity": {"value": 2, "unit": "tablet"}}])
    refused_at(request(dosageInstruction=[first, same_time]), "dosageInstruction[1]",
               "given together with dosageInstruction[0]: has a dose at the same time of day")
    other_unit = dosage(timing={"repeat": {"when": ["EVE"]}},
                        doseAndRate=[{"doseQuantity": {"value": 5, "unit": "ml"}}])
    refused_at(request(dosageInstruction=[first, other_unit]), "dosageInstruction[1]",
               "differs from dosageInstruction[0] in dose unit")
    bounded = dosage(timing={"repeat": {"when": ["EVE"], "boundsPeriod": {
        "start": "2026-03-02"}}}, doseAndRate=[{"doseQuantity": {"value": 2, "unit": "tablet"}}])
    refused_at(request(dosageInstruction=[first, bounded]), "dosageInstruction[1]",
               "differs from dosageInstruction[0] in dose, bounds")


def test_a_taper_without_sequence_numbers_is_refused() -> None:
    refused_at(request(dosageInstruction=[bounded("2026-03-02", "2026-03-06"),
                                          bounded("2026-03-07", "2026-03-11")]),
               "dosageInstruction[1]", "in bounds")


def _step(n: int, quantity: int, repeat: dict[str, Any]) -> dict[str, Any]:
    return dosage(sequence=n, timing={"repeat": {"frequency": 1, "period": 1,
                                                 "periodUnit": "d", **repeat}},
                  doseAndRate=[{"doseQuantity": {"value": quantity, "unit": "tablet"}}])


def _doses(t: TimingDosage, first: date, last: date) -> list[tuple[date, str, str]]:
    return [(s.local_date, s.local_time.strftime("%H:%M"), str(s.amount.quantity))
            for s in expand_timing(t, CLOCK, first, last, order_start=None)]


def test_increasing_sequence_numbers_follow_one_another() -> None:
    # Listed out of order: the numbers count. Step 2 has no start: the day after step 1.
    order = only_order(request(dosageInstruction=[
        _step(2, 1, {"boundsDuration": {"value": 2, "unit": "d", "code": "d"}}),
        _step(1, 2, {"boundsPeriod": {"start": "2026-03-28", "end": "2026-03-29"}})]))
    t = order.dosage
    assert isinstance(t, TimingDosage) and len(t.then) == 1
    assert (t.then[0].bounds_first_date, t.then[0].bounds_last_date) == (
        date(2026, 3, 30), date(2026, 3, 31))
    assert (order.treatment_start, order.treatment_end) == (date(2026, 3, 28), date(2026, 3, 31))
    assert _doses(t, date(2026, 3, 27), date(2026, 4, 1)) == [
        (date(2026, 3, 28), "08:00", "2"), (date(2026, 3, 29), "08:00", "2"),  # DST day too
        (date(2026, 3, 30), "08:00", "1"), (date(2026, 3, 31), "08:00", "1")]
    assert timing_text(t, "da") == "2 tablet 1 gang daglig, derefter 1 tablet 1 gang daglig"


def test_a_step_after_one_with_no_end_is_refused_naming_both() -> None:
    refused_at(request(dosageInstruction=[_step(1, 2, {}), _step(2, 1, {})]),
               "dosageInstruction[1]",
               "sequence 2 follows dosageInstruction[0] (sequence 1): the previous step has "
               "no end")


def test_overlapping_steps_are_refused_naming_both() -> None:
    refused_at(request(dosageInstruction=[
        _step(1, 2, {"boundsPeriod": {"start": "2026-03-02", "end": "2026-03-06"}}),
        _step(2, 1, {"boundsPeriod": {"start": "2026-03-06", "end": "2026-03-10"}})]),
        "dosageInstruction[1]", "follows dosageInstruction[0] (sequence 1): begins before "
                                "the previous step has ended")


def test_a_missing_sequence_number_beside_others_is_refused() -> None:
    refused_at(request(dosageInstruction=[_step(1, 2, {}), dosage()]),
               "dosageInstruction[1].sequence", "their order is not said")


def test_same_sequence_numbers_run_together() -> None:
    morning = _step(1, 1, {"when": ["MORN"]})
    evening = _step(1, 1, {"when": ["EVE"]})
    later = _step(2, 1, {"when": ["EVE"], "boundsPeriod": {"start": "2026-03-10"}})
    first = {**morning, "timing": {"repeat": {**morning["timing"]["repeat"],
                                              "boundsPeriod": {"end": "2026-03-09"}}}}
    second = {**evening, "timing": {"repeat": {**evening["timing"]["repeat"],
                                               "boundsPeriod": {"end": "2026-03-09"}}}}
    t = only_timing(request(dosageInstruction=[first, second, later]))
    assert _doses(t, date(2026, 3, 9), date(2026, 3, 10)) == [
        (date(2026, 3, 9), "08:00", "1"), (date(2026, 3, 9), "18:00", "1"),
        (date(2026, 3, 10), "18:00", "1")]


def test_a_pn_step_in_a_sequence_is_refused() -> None:
    pn = dosage(sequence=2, asNeededBoolean=True, timing={"repeat": {
        "frequency": 1, "period": 1, "periodUnit": "d", "boundsPeriod": {"start": "2026-03-10"}}})
    refused_at(request(dosageInstruction=[
        _step(1, 2, {"boundsPeriod": {"start": "2026-03-02", "end": "2026-03-06"}}), pn]),
        "dosageInstruction[1].asNeeded", "allowance (PN) has no course to follow")


def test_listed_instants_are_due_as_listed() -> None:
    t = only_timing(request(dosageInstruction=[dosage(timing={"event": [
        "2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-27T21:15:00+01:00"]})]))
    slots = expand_timing(t, CLOCK, date(2026, 10, 24), date(2026, 10, 31), order_start=None)
    # The autumn night: 01:30 summer time, then 02:30 after the clocks went back (its second).
    assert [(s.local_date, s.slot, s.due_time.isoformat(), s.doses_that_day, s.one_time)
            for s in slots] == [
        (date(2026, 10, 25), "01:30", "2026-10-24T23:30:00+00:00", 2, False),
        (date(2026, 10, 25), "02:30-2", "2026-10-25T01:30:00+00:00", 2, False),
        (date(2026, 10, 27), "21:15", "2026-10-27T20:15:00+00:00", 1, False)]
    # Events alone end at the last one: a completed order is imported.
    once = only_order(request(status="completed", dosageInstruction=[dosage(timing={
        "event": ["2026-10-27T21:15:00+01:00"]})]))
    assert (once.treatment_start, once.treatment_end) == (date(2026, 10, 27), date(2026, 10, 27))
    assert isinstance(once.dosage, TimingDosage)
    assert timing_text(once.dosage, "en") == "1 tablet at 21:15 27.10.2026 (+01:00)"
    [single] = expand_timing(once.dosage, CLOCK, date(2026, 10, 27), date(2026, 10, 27),
                             order_start=None)
    assert single.one_time  # one listed instant: a one-time dose, no window


def test_an_interval_runs_from_each_event_until_the_next() -> None:
    t = only_timing(request(dosageInstruction=[dosage(timing={
        "event": ["2026-03-02T08:00:00+01:00", "2026-03-02T21:00:00+01:00"],
        "repeat": {"frequency": 1, "period": 6, "periodUnit": "h", "count": 5}})]))
    assert [(d, at) for d, at, _ in _doses(t, date(2026, 3, 1), date(2026, 3, 5))] == [
        (date(2026, 3, 2), "08:00"), (date(2026, 3, 2), "14:00"), (date(2026, 3, 2), "20:00"),
        (date(2026, 3, 2), "21:00"), (date(2026, 3, 3), "03:00")]  # count 5 in all
    assert timing_problem(t, order_start=None) is None  # the events anchor the course
    assert timing_text(t, "en") == ("1 tablet every 6 hours from 08:00 02.03.2026 (+01:00) and "
                                    "21:00 02.03.2026 (+01:00), 5 times in total")


def test_instructions_without_times_cannot_be_combined() -> None:
    refused_at(request(dosageInstruction=[dosage(), dosage()]), "dosageInstruction[0].timing",
               "gives no time of day")


def test_text_only_instructions_are_joined() -> None:
    order = only_order(request(dosageInstruction=[{"text": "1 om morgenen"},
                                                  {"text": "2 om aftenen"}]))
    assert order.dosage == FreeTextDosage("1 om morgenen; 2 om aftenen")


def test_instructions_with_different_routes_are_refused() -> None:
    refused_at(request(dosageInstruction=[
        dosage(timing={"repeat": {"when": ["MORN"]}}),
        dosage(timing={"repeat": {"when": ["EVE"]}}, route={"text": "rektalt"})]),
        "dosageInstruction[1].route", "differs")


@pytest.mark.parametrize(("instruction", "location", "reason"), [
    (dosage(timing={"event": ["2026-03-02"]}),
     "dosageInstruction[0].timing.event[0]", "a date without a time of day"),
    (dosage(timing={"event": ["2026-03-02T08:00:00+01:00"],
                    "repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}),
     "dosageInstruction[0].timing.event", "which one rules is not said"),
    (dosage(timing={"repeat": {"frequency": 1, "frequencyMax": 2, "period": 1,
                               "periodUnit": "d"}}),
     "dosageInstruction[0].timing.repeat.frequencyMax", "range of frequencies"),
    (dosage(timing={"repeat": {"frequency": 1, "period": 4, "periodMax": 6, "periodUnit": "h"}}),
     "dosageInstruction[0].timing.repeat.periodMax", "range of periods"),
    (dosage(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                               "boundsRange": {"low": {"value": 3, "code": "d"}}}}),
     "dosageInstruction[0].timing.repeat.boundsRange", "uncertain length"),
    (dosage(timing={"repeat": {"duration": 2, "durationUnit": "h"}}),
     "dosageInstruction[0].timing.repeat.duration", "continuous infusion"),
    (dosage(timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "h", "duration": 2,
                               "durationUnit": "h"}}),
     "dosageInstruction[0].timing.repeat.duration", "as long as the time between doses"),
    (dosage(doseAndRate=[{"rateQuantity": {"value": 50, "unit": "ml/h"}}]),
     "dosageInstruction[0].doseAndRate", "only a rate"),
    (dosage(doseAndRate=[{"doseQuantity": {"value": 2, "comparator": "<"}}]),
     "dosageInstruction[0].doseAndRate[0].doseQuantity.comparator", "not an exact dose"),
    (dosage(doseAndRate=[{"doseQuantity": {"value": 1}}, {"doseQuantity": {"value": 2}}]),
     "dosageInstruction[0].doseAndRate", "several doses"),
    (dosage(doseAndRate=[{"doseRange": {"low": {"value": 3}, "high": {"value": 2}}}]),
     "dosageInstruction[0].doseAndRate[0].doseRange", "low is greater than high"),
    (dosage(doseAndRate=None), "dosageInstruction[0].doseAndRate", "needs a dose quantity"),
    (dosage(timing={"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}}),
     "dosageInstruction[0].timing.repeat.frequency", "does not fall on whole days"),
    (dosage(timing={"repeat": {"when": ["AFT"]}}),
     "dosageInstruction[0].timing.repeat.when", "not one of the facility's times"),
    (dosage(timing={"repeat": {"boundsPeriod": {"start": "2026-03"}, "frequency": 1,
                               "period": 1, "periodUnit": "d"}}),
     "dosageInstruction[0].timing.repeat.boundsPeriod.start", "has no day"),
    (dosage(timing={"repeat": {"dayOfWeek": ["monday"], "frequency": 1, "period": 1,
                               "periodUnit": "d"}}),
     "dosageInstruction[0].timing.repeat.dayOfWeek", "not a weekday code"),
])
def test_refused_dosages_say_where_and_why(instruction: dict[str, Any], location: str,
                                           reason: str) -> None:
    refused_at(request(dosageInstruction=[instruction]), location, reason)


def test_a_rate_next_to_a_dose_is_ignored() -> None:
    t = only_timing(request(dosageInstruction=[dosage(doseAndRate=[
        {"doseQuantity": {"value": 4.5, "unit": "g"},
         "rateQuantity": {"value": 50, "unit": "ml/h"}}])]))
    assert t.amount == Amount.exact("4.5")


# -- documents ----------------------------------------------------------------------------


def test_a_bundle_imports_the_good_orders_and_reports_the_rest() -> None:
    bad = request("rx2", dosageInstruction=[dosage(
        timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}})])
    result = read(bundle(
        {"resourceType": "Patient", "id": "p1"}, request("rx1"), bad,
        {"resourceType": "Practitioner", "id": "dr"}, request("rx3")))
    assert [o.order_id for o in result.orders] == ["rx1", "rx3"]
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("rx2", "entry[2].resource.dosageInstruction[0].timing.repeat.periodUnit")]
    assert not result.whole_card


def test_resources_meant_as_orders_are_reported() -> None:
    result = read(bundle({"resourceType": "MedicationStatement", "id": "ms1"},
                         {"resourceType": "MedicationOrder", "id": "mo1"}))
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("ms1", "entry[0].resource"), ("mo1", "entry[1].resource")]
    assert "not an order" in result.problems[0].reason


def test_a_removal_in_a_transaction_is_reported() -> None:
    result = read({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "MedicationRequest/rx9"}}]})
    assert [(p.source_order_id, p.location) for p in result.problems] == [
        ("rx9", "entry[0].request")]


def test_invalid_r4_is_refused_per_order() -> None:
    bad = request("rx2", dosageInstruction=[dosage(timing={"repeat": {"timeOfDay": ["9am"]}})])
    r5 = request("rx3", medicationCodeableConcept=None, medication={"concept": {"text": "x"}})
    result = read(bundle(request("rx1"), bad, r5))
    assert [o.order_id for o in result.orders] == ["rx1"]
    locations = [(p.source_order_id, p.location) for p in result.problems]
    assert ("rx2", "entry[1].resource.dosageInstruction[0].timing.repeat.timeOfDay[0]") \
        in locations
    assert ("rx3", "entry[2].resource.medication") in locations
    assert all(p.reason.startswith("not valid FHIR R4") for p in result.problems)


@pytest.mark.parametrize("content", [
    b"{not json", b"[]", b"\xff\xfe", b'{"resourceType": "Patient", "id": "p"}',
    b'{"id": "x"}', b'{"resourceType": "Bundle", "entry": {}}', b'{"value": NaN}',
])
def test_content_that_is_not_a_fhir_order_document(content: bytes) -> None:
    with pytest.raises(InvalidArgument) as raised:
        read_fhir(content)
    assert [v.field for v in raised.value.violations] == ["content"]


def test_the_person_comes_from_the_subject() -> None:
    patient = {"resourceType": "Patient", "id": "p1",
               "identifier": [{"system": CPR, "value": "251248-9996"}]}
    assert read(bundle(patient, request())).person_id == TEST_PERSON
    direct = request(subject={"identifier": {"system": CPR, "value": TEST_PERSON}})
    assert read(direct).person_id == TEST_PERSON
    assert read(request()).person_id == ""


def test_an_order_naming_nobody_by_cpr_marks_the_document_unidentified() -> None:
    named = request("rx1", subject={"identifier": {"system": CPR, "value": TEST_PERSON}})
    assert not read(named).person_unidentified
    # A reference to a Patient not in the document, or one without a CPR identifier, or
    # an identifier of another system: nobody is named.
    for subject in ({"reference": "Patient/pat1", "display": "Donald Duck"},
                    {"identifier": {"system": "urn:other", "value": TEST_PERSON}}):
        assert read(request(subject=subject)).person_unidentified
    unnamed = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Duck"}]}
    assert read(bundle(unnamed, request())).person_unidentified
    # One such order among named ones: the document may still be about someone else.
    mixed = read(bundle(named, request("rx2", subject={"reference": "Patient/x"})))
    assert (mixed.person_id, mixed.person_unidentified) == (TEST_PERSON, True)
    # A refused order applies nothing, so it needs no confirmation.
    refused = read(request(status="draft", subject={"reference": "Patient/x"}))
    assert (refused.orders, refused.person_unidentified) == ([], False)


def test_orders_about_two_persons_are_refused_without_naming_them() -> None:
    one = request("rx1", subject={"identifier": {"system": CPR, "value": TEST_PERSON}})
    two = request("rx2", subject={"identifier": {"system": CPR, "value": OTHER_TEST_PERSON}})
    with pytest.raises(InvalidArgument) as raised:
        read(bundle(one, two))
    assert TEST_PERSON not in str(raised.value) and OTHER_TEST_PERSON not in str(raised.value)


def test_values_that_could_be_a_person_are_not_repeated() -> None:
    problems = refusal(request(status=TEST_PERSON))
    assert problems == [("status", "the value given is not a MedicationRequest status")]
    problems = refusal(request(dosageInstruction=[dosage(
        timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": TEST_PERSON}})]))
    assert all(TEST_PERSON not in why for _, why in problems)
