"""FHIR R4 MedicationRequest to orders (DOMAIN.md §2, §4).

`read_fhir` reads one MedicationRequest, or a Bundle whose entries hold them. Each request
becomes an `OrderContent` or, when any part of it cannot be read, `ImportProblem`s saying
where ("entry[3].resource.dosageInstruction[0].timing.repeat.periodUnit") and why; nothing
of a refused order is imported, and the other orders proceed. Other resources in a Bundle
are ignored, except ones that look meant as orders (MedicationStatement, the DSTU
MedicationOrder/MedicationPrescription, a DELETE of a MedicationRequest), which are
reported. A document that is not JSON, or not a MedicationRequest or Bundle, raises
InvalidArgument on "content".

Decisions (FHIR leaves them to the receiver):

- Validation: each MedicationRequest is first validated with fhir.resources' R4B models
  (MedicationRequest, Dosage and Timing are the same in R4 and R4B; the package's default
  models are R5, which renamed medication[x] and reasonCode, so R4 JSON fails there).
  Values are then read from the plain JSON, parsed with decimals: quantities keep the
  digits the source sent, and a date bound stays a date (a whole local day) rather than
  being turned into a midnight in some zone.
- Identity: `id`, else the official identifier, else the first identifier with a value.
  Two requests with one id in a document: the second is refused.
- Drug: medicationCodeableConcept, or the Medication that medicationReference points to
  (contained "#id", or a Bundle entry). Name: the text, else a display (of a non-ATC coding
  first), else the reference's display. drug_id: the code of the first non-ATC coding.
  ATC coding (http://www.whocc.no/atc) -> atc_code. Form from Medication.form. A reference
  that cannot be resolved is refused: the drug is not identified.
- Treatment start/end come from the timing's boundsPeriod: it is the course of
  administration. dispenseRequest.validityPeriod is how long the prescription may be
  dispensed (the spec examples give a 5-day course a year's validity) and is not used.
  A date-time bound gives the date as the source wrote it.
- Status: active -> imported. on-hold -> imported with an open-ended pause (DOMAIN.md §2:
  a pause without dates runs from now, open-ended). completed and stopped -> imported
  only when the course's end is known (boundsPeriod.end): the order ends there, and a
  stopped order whose end is an instant is also discontinued at that instant; without an
  end they are refused, since importing them would make doses due that the source says
  are over. cancelled, entered-in-error, draft, unknown -> refused. intent proposal, plan
  or option, and doNotPerform -> refused: not an order to give.
- Dosage: one dosageInstruction with a timing -> `TimingDosage` (expanded by
  medservice.domain.fhir_timing, whose `timing_violation` refuses what it cannot schedule
  at import time); without a timing -> `FreeTextDosage(text)` (needs a manual schedule),
  or a PN `TimingDosage` when it is as needed (an allowance needs no rhythm). None at all
  -> `FreeTextDosage("")`. Several instructions, by `sequence` (FHIR: the same number is
  given together, increasing numbers one after the other): instructions given together
  (one number, or none on any) are combined when they differ only in their times of day
  (when/timeOfDay) and dose: one part per dose (`TimingDosage.also`), refused naming both
  instructions when two parts share a time of day (`fhir_timing.together_conflict`); all
  text-only ones are joined; anything else is refused naming both instructions. Groups
  with increasing numbers become steps (`TimingDosage.then`, placed by
  `fhir_timing.chain_steps`: a step without a start begins the day after the previous one
  ends), refused naming both
  instructions when the previous step has no end or the next begins before it ends. An
  instruction without a number beside numbered ones is refused: its place is not said.
- asNeededBoolean true or asNeededCodeableConcept -> PN. For PN, frequencyMax is the
  limit's frequency and periodMax is ignored (the shortest interval is the limit); the
  asNeeded concept is the indication when reasonCode gives none.
- timing.event: instants (a date alone is refused: it does not say when); see
  fhir_timing for what a repeat next to them means. Events alone end at the last one.
- What would change when or how much is refused rather than ignored:
  frequencyMax/periodMax/countMax/durationMax and boundsRange for fixed doses, a rate
  without a dose, a dose with a comparator, several doses in doseAndRate, a modifierExtension.
  repeat.duration (how long one administration lasts) is ignored when shorter than the
  time between doses, refused when not, or when there is no rhythm (a continuous infusion).
- Ignored: rates next to a dose (how fast, not when), method, site, additionalInstruction,
  maxDosePerAdministration, maxDosePerLifetime, dispenseRequest, substitution, priority.
- The person: subject.identifier, or the identifier of the Patient it references in the
  document, with the CPR system (urn:oid:1.2.208.176.1.2). Orders about different persons
  in one document raise InvalidArgument. An order whose subject has no CPR identifier
  (a reference such as "Patient/pat1", a display name) marks the result
  `person_unidentified`: the import then needs the `unidentified` flag. The value never
  appears in a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from medservice.domain.dosage import Amount, DoseUnit, FreeTextDosage
from medservice.domain.errors import DomainError, FieldViolation, InvalidArgument
from medservice.domain.facility import normalise_person_id
from medservice.domain.fhir_timing import (
    UNIT_LENGTHS,
    StepConflict,
    TimingDosage,
    chain_steps,
    shown,
    timing_violation,
    together_conflict,
)
from medservice.domain.orders import Drug, OrderContent, Pause, validate_content
from medservice.imports.result import ImportProblem, ImportResult

Json = dict[str, Any]
T = TypeVar("T")

MAX_DOCUMENT_BYTES = 5_000_000
ATC_SYSTEM = "http://www.whocc.no/atc"
CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"
TIMING_ABBREVIATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
_MEANT_AS_ORDERS = {
    "MedicationStatement": "a MedicationStatement records use, it is not an order; send "
                           "the MedicationRequest",
    "MedicationOrder": "MedicationOrder is FHIR DSTU2; send an R4 MedicationRequest",
    "MedicationPrescription": "MedicationPrescription is FHIR DSTU1; send an R4 "
                              "MedicationRequest",
}
_REFUSED_STATUS = {
    "cancelled": "cancelled before any administration: there is no order to mirror",
    "entered-in-error": "entered in error: it never was an order",
    "draft": "a draft is not yet an order in force",
    "unknown": "the source does not know whether the order is in force",
}
_ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order",
                            "instance-order"})
_FIXED_ONLY = {
    "frequencyMax": "a range of frequencies cannot be scheduled; give one frequency",
    "periodMax": "a range of periods cannot be scheduled; give one period",
    "countMax": "a range of counts cannot be scheduled; give one count",
    "durationMax": "a range of durations cannot be scheduled",
}
_DATE_RE = re.compile(r"^\d{4}(-\d{2})?(-\d{2})?$")
_MAX_VALIDATION_PROBLEMS = 5


class _Refused(Exception):
    """A part of an order that cannot be read: where (a FHIR path) and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


# -- the document -------------------------------------------------------------------------


def read_fhir(data: bytes) -> ImportResult:
    """The orders of a MedicationRequest or a Bundle of them, and why others were refused."""
    root = _load(data)
    doc = _Document.of(root)
    result = ImportResult()
    seen: set[str] = set()
    persons: set[str] = set()
    for prefix, resource in _requests(root, result):
        order, problems, person = _read_request(resource, prefix, doc)
        if order is not None and order.order_id in seen:
            order, problems = None, [(_at(prefix, "id"), "another MedicationRequest in the "
                                                          "document has the same id")]
        if order is None:
            source_id = _source_id(resource)
            result.problems += [ImportProblem(source_id, where, why) for where, why in problems]
            continue
        seen.add(order.order_id)
        result.orders.append(order)
        if person:
            persons.add(person)
        else:
            result.person_unidentified = True
    if len(persons) > 1:
        raise InvalidArgument([FieldViolation("content", "the orders are about more than one "
                                                         "person")])
    result.person_id = next(iter(persons), "")
    return result


def read_fhir_dosage(data: bytes) -> tuple[TimingDosage | FreeTextDosage, date | None]:
    """The dosage of the document's first MedicationRequest and its course's start, read as
    the importer reads it, for a look at its doses (`medctl dosage expand`): whatever the
    order's status, drug or patient (a course that begins at its first administration is
    the caller's to anchor). Raises InvalidArgument naming the field when
    the dosage cannot be read or scheduled."""
    root = _load(data)
    found = next(_requests(root, ImportResult()), None)
    if found is None:
        raise InvalidArgument([FieldViolation("content", "holds no MedicationRequest")])
    prefix, res = found
    invalid = _validation_problems(res)
    if invalid:
        raise InvalidArgument([FieldViolation(_at(prefix, where), why) for where, why in invalid])
    try:
        read = _dosage(res)
    except _Refused as refused:
        raise InvalidArgument([FieldViolation(_at(prefix, refused.path), refused.reason)]
                              ) from None
    return read.dosage, _treatment_dates(read.timing)[0]


def _load(data: bytes) -> Json:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument([FieldViolation("content", "is larger than 5 MB")])
    try:
        root = json.loads(data, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
        raise InvalidArgument([FieldViolation("content", "is not JSON")]) from None
    kind = root.get("resourceType") if isinstance(root, dict) else None
    if kind not in ("MedicationRequest", "Bundle"):
        found = f"resourceType {shown(kind)}" if isinstance(kind, str) else "no FHIR resource"
        raise InvalidArgument([FieldViolation(
            "content", f"a FHIR MedicationRequest or a Bundle of them is expected, found {found}")])
    if kind == "Bundle" and not isinstance(root.get("entry", []), list):
        raise InvalidArgument([FieldViolation("content", "Bundle.entry is not a list")])
    return root


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@dataclass(frozen=True)
class _Document:
    """Resources of the document that a reference may point to."""

    by_reference: dict[str, Json]

    @classmethod
    def of(cls, root: Json) -> _Document:
        found: dict[str, Json] = {}
        for entry in root.get("entry", []) if root.get("resourceType") == "Bundle" else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            if isinstance(entry.get("fullUrl"), str):
                found[entry["fullUrl"]] = resource
            kind, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(kind, str) and isinstance(rid, str):
                found[f"{kind}/{rid}"] = resource
        return cls(found)

    def resolve(self, reference: Json, holder: Json, kind: str) -> Json | None:
        """The resource a Reference points to: contained ("#id") or in the Bundle."""
        ref = reference.get("reference")
        if not isinstance(ref, str):
            return None
        if ref.startswith("#"):
            found = next((c for c in _list(holder.get("contained"))
                          if isinstance(c, dict) and c.get("id") == ref[1:]), None)
        else:
            found = self.by_reference.get(ref)
            if found is None and "/" in ref:  # an absolute URL ending in Type/id
                found = self.by_reference.get("/".join(ref.rstrip("/").split("/")[-2:]))
        return found if found is not None and found.get("resourceType") == kind else None


def _requests(root: Json, result: ImportResult) -> Iterator[tuple[str, Json]]:
    """(location prefix, resource) of every MedicationRequest; others meant as orders are
    reported on the way."""
    if root["resourceType"] == "MedicationRequest":
        yield "", root
        return
    for i, entry in enumerate(root.get("entry", [])):
        where = f"entry[{i}]"
        if not isinstance(entry, dict):
            result.problems.append(ImportProblem("", where, "a Bundle entry must be an object"))
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            request = entry.get("request")
            url = request.get("url", "") if isinstance(request, dict) else ""
            if isinstance(url, str) and url.startswith("MedicationRequest"):
                result.problems.append(ImportProblem(
                    url.partition("/")[2], f"{where}.request",
                    "a request without a resource (a removal) is not imported from FHIR"))
            continue
        kind = resource.get("resourceType")
        if kind == "MedicationRequest":
            yield f"{where}.resource", resource
        elif kind in _MEANT_AS_ORDERS:
            result.problems.append(ImportProblem(_source_id(resource), f"{where}.resource",
                                                 _MEANT_AS_ORDERS[kind]))
        elif not isinstance(kind, str):
            result.problems.append(ImportProblem("", f"{where}.resource",
                                                 "a resource without a resourceType"))


def _at(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path or "MedicationRequest"


def _source_id(resource: Json) -> str:
    try:
        return _order_id(resource)
    except _Refused:
        return ""


# -- one MedicationRequest ----------------------------------------------------------------


@dataclass(frozen=True)
class _DosageRead:
    dosage: TimingDosage | FreeTextDosage
    route: str
    timing: TimingDosage | None


def _read_request(res: Json, prefix: str, doc: _Document
                  ) -> tuple[OrderContent | None, list[tuple[str, str]], str]:
    """(the order or None, problems as (location, reason), the person id or "")."""
    invalid = _validation_problems(res)
    if invalid:
        return None, [(_at(prefix, where), why) for where, why in invalid], ""
    problems: list[tuple[str, str]] = []

    def attempt(read: Callable[[], T]) -> T | None:
        try:
            return read()
        except _Refused as refused:
            problems.append((_at(prefix, refused.path), refused.reason))
            return None

    order_id = attempt(lambda: _order_id(res))
    attempt(lambda: _check_request(res))
    drug = attempt(lambda: _drug(res, doc))
    read = attempt(lambda: _dosage(res))
    # A refused dosage hides whether the course has an end; other statuses are still told.
    terms = attempt(lambda: _status_terms(res, read.timing if read else None, read is not None))
    person = attempt(lambda: _person_id(res, doc))
    if problems or order_id is None or drug is None or read is None or terms is None:
        return None, problems, ""
    start, end = _treatment_dates(read.timing)
    pauses, discontinued_at = terms
    order = OrderContent(
        order_id=order_id,
        drug=drug,
        # TimingDosage joins the Dosage union in medservice.domain.dosage (not yet there).
        dosage=read.dosage,
        source_version=_text_at(res.get("meta"), "versionId"),
        indication=_indication(res),
        route=read.route,
        treatment_start=start,
        treatment_end=end,
        pauses=pauses,
        discontinued_at=discontinued_at,
    )
    violations = validate_content(order, "order")
    if violations:
        return None, [(_at(prefix, v.field), v.description) for v in violations], ""
    return order, [], person or ""


def _validation_problems(res: Json) -> list[tuple[str, str]]:
    """Where the resource breaks the R4 structure (types, required elements, formats).

    pydantic's messages are used without the input values: they could be a person's.
    The model loads with the first document, not with every server (issue 19)."""
    from fhir.resources.R4B.medicationrequest import MedicationRequest

    try:
        MedicationRequest.model_validate(res)
    except ValidationError as error:
        found = [(_loc_path(e["loc"]), f"not valid FHIR R4: {e['msg']}")
                 for e in error.errors(include_input=False, include_url=False)]
        return found[:_MAX_VALIDATION_PROBLEMS]
    except (ValueError, TypeError, KeyError) as error:  # raised by some root validators
        return [("", f"not valid FHIR R4: {type(error).__name__}")]
    return []


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _order_id(res: Json) -> str:
    rid = res.get("id")
    if isinstance(rid, str) and rid:
        return _checked_id(rid, "id")
    identifiers = [(i, x) for i, x in enumerate(_list(res.get("identifier")))
                   if isinstance(x, dict) and isinstance(x.get("value"), str) and x["value"]]
    official = [(i, x) for i, x in identifiers if x.get("use") == "official"]
    for i, x in official or identifiers:
        return _checked_id(x["value"], f"identifier[{i}].value")
    raise _Refused("id", "the order has neither an id nor an identifier")


def _checked_id(value: str, path: str) -> str:
    if len(value) > 63 or "/" in value:
        raise _Refused(path, "an order id must be at most 63 characters without '/'")
    return value


def _check_request(res: Json) -> None:
    _no_modifiers(res, "")
    intent = res.get("intent")
    if intent not in _ORDER_INTENTS:
        raise _Refused("intent", f"intent {shown(intent)} is not an order to give")
    if res.get("doNotPerform") is True:
        raise _Refused("doNotPerform", "a 'do not perform' request forbids the drug; it is "
                                       "not an order to give it")


def _no_modifiers(element: Json, path: str) -> None:
    if element.get("modifierExtension"):
        raise _Refused(f"{path}.modifierExtension" if path else "modifierExtension",
                       "a modifier extension changes the meaning, and it is not understood")


def _status_terms(res: Json, timing: TimingDosage | None, dosage_read: bool
                  ) -> tuple[tuple[Pause, ...], datetime | None]:
    """(pauses, discontinued_at) for the request's status (see the module docstring)."""
    status = res.get("status")
    if status == "active":
        return (), None
    if status == "on-hold":
        return (Pause(),), None
    if status in ("completed", "stopped"):
        known_end = (timing is not None and _known_end(timing.steps[-1])
                     if dosage_read else _every_instruction_ends(res))
        if not known_end:
            raise _Refused("status", f"{status}, and the timing gives no end "
                                     "(boundsPeriod.end): imported as it is, its doses would "
                                     "fall due though the source says the order is over")
        stopped_at = (timing.steps[-1].bounds_end if timing is not None and status == "stopped"
                      else None)
        return (), stopped_at
    reason = _REFUSED_STATUS.get(str(status),
                                 f"{shown(status)} is not a MedicationRequest status")
    raise _Refused("status", reason)


def _every_instruction_ends(res: Json) -> bool:
    """Whether every dosage instruction gives a boundsPeriod.end (read from the raw JSON,
    for a status check when the dosage itself was refused)."""
    instructions = _list(res.get("dosageInstruction"))
    return bool(instructions) and all(
        "end" in _dict(_dict(_dict(_dict(d).get("timing")).get("repeat")).get("boundsPeriod"))
        for d in instructions)


def _treatment_dates(timing: TimingDosage | None) -> tuple[date | None, date | None]:
    """From the first step's start (bounds, else its first event) to the last step's end."""
    if timing is None:
        return None, None
    last = timing.steps[-1]
    return timing.first_date, last.last_date if _known_end(last) else None


def _known_end(timing: TimingDosage) -> bool:
    """Whether the course ends on a date the source gives: boundsPeriod.end, or its last
    event when events alone make the doses (a boundsDuration counts from the order's start,
    which this gives)."""
    return (timing.bounds_end is not None or timing.bounds_last_date is not None
            or (bool(timing.events) and timing.last_date is not None))


def _person_id(res: Json, doc: _Document) -> str:
    subject = res.get("subject")
    if not isinstance(subject, dict):
        return ""
    identifiers = [subject.get("identifier")]
    patient = doc.resolve(subject, res, "Patient")
    if patient is not None:
        identifiers += _list(patient.get("identifier"))
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("system") == CPR_SYSTEM:
            try:
                return normalise_person_id(str(identifier.get("value", "")))
            except DomainError:
                raise _Refused("subject", "the CPR identifier is not a CPR number") from None
    return ""


# -- drug, route, indication --------------------------------------------------------------


def _drug(res: Json, doc: _Document) -> Drug:
    concept = res.get("medicationCodeableConcept")
    form, fallback_name, strength = "", "", ""
    if not isinstance(concept, dict):
        reference = res.get("medicationReference")
        if not isinstance(reference, dict):
            raise _Refused("medication[x]", "the order names no drug")
        medication = doc.resolve(reference, res, "Medication")
        if medication is None:
            raise _Refused("medicationReference", "the Medication it references is neither "
                                                  "contained nor in the Bundle: the drug is "
                                                  "not identified")
        _no_modifiers(medication, "medicationReference")
        concept = _dict(medication.get("code"))
        form = _concept_text(medication.get("form"))
        ingredients = _ingredients(medication)
        # A compounded drug has no code: its ingredients name it (0329 of the spec).
        fallback_name = _text_at(reference, "display") or " + ".join(n for n, _ in ingredients)
        strengths = [s for _, s in ingredients]
        strength = " + ".join(strengths) if strengths and all(strengths) else ""
    codings = [c for c in _list(concept.get("coding")) if isinstance(c, dict)]
    atc = [c for c in codings if c.get("system") == ATC_SYSTEM]
    others = [c for c in codings if c.get("system") != ATC_SYSTEM]
    name = (_text_at(concept, "text")
            or next((c["display"] for c in others + atc if _text_at(c, "display")), "")
            or fallback_name)
    if not name.strip():
        raise _Refused("medication[x]", "the drug has no name (text or a coding's display)")
    return Drug(
        name=name.strip(),
        drug_id=next((c["code"] for c in others if _text_at(c, "code")), ""),
        atc_code=next((c["code"] for c in atc if _text_at(c, "code")), ""),
        form=form,
        strength=strength,
    )


def _ingredients(medication: Json) -> list[tuple[str, str]]:
    """(name, strength) of a Medication's ingredients: "Lorazepam", "2 mg/1 mL"."""
    found = []
    for ingredient in _list(medication.get("ingredient")):
        item = _dict(ingredient)
        name = _concept_text(item.get("itemCodeableConcept")) or _text_at(
            item.get("itemReference"), "display")
        strength = _dict(item.get("strength"))
        parts = [_quantity_text(strength.get(k)) for k in ("numerator", "denominator")]
        found.append((name, "/".join(parts) if all(parts) else ""))
    return [(n, s) for n, s in found if n]


def _quantity_text(quantity: Any) -> str:
    q = _dict(quantity)
    value = _decimal(q.get("value"))
    unit = _text_at(q, "unit") or _text_at(q, "code")
    return f"{format(value.normalize(), 'f')} {unit}".strip() if value is not None else ""


def _route(instruction: Json) -> str:
    return _concept_text(instruction.get("route"))


def _indication(res: Json) -> str:
    reasons = [_concept_text(c) for c in _list(res.get("reasonCode"))]
    if not any(reasons):  # "as needed for rib pain": the PN reason is the indication
        reasons = [_concept_text(d.get("asNeededCodeableConcept"))
                   for d in _list(res.get("dosageInstruction")) if isinstance(d, dict)]
    return "; ".join(dict.fromkeys(r for r in reasons if r))


def _concept_text(concept: Any) -> str:
    """A CodeableConcept's text, else its first display, else its first code."""
    if not isinstance(concept, dict):
        return ""
    codings = [c for c in _list(concept.get("coding")) if isinstance(c, dict)]
    return (_text_at(concept, "text")
            or next((c["display"] for c in codings if _text_at(c, "display")), "")
            or next((c["code"] for c in codings if _text_at(c, "code")), ""))


# -- dosage -------------------------------------------------------------------------------


def _dosage(res: Json) -> _DosageRead:
    instructions = _list(res.get("dosageInstruction"))
    if not instructions:
        return _DosageRead(FreeTextDosage(""), "", None)
    parts: list[tuple[str, TimingDosage | FreeTextDosage]] = []
    route = _route(instructions[0])
    for i, instruction in enumerate(instructions):
        path = f"dosageInstruction[{i}]"
        if _route(instruction) != route:
            raise _Refused(f"{path}.route", "differs from dosageInstruction[0]'s route")
        parts.append((path, _instruction(instruction, path)))
    groups = _sequence_groups(instructions, parts)
    if len(groups) == 1:
        for path, part in parts:
            if isinstance(part, TimingDosage):
                _check_timing(part, path)
        dosage = _combine(parts)
        if isinstance(dosage, TimingDosage) and len(parts) > 1:
            _check_timing(dosage, "dosageInstruction")
        timing = dosage if isinstance(dosage, TimingDosage) else None
        return _DosageRead(dosage, route, timing)
    chained = _chain(groups)
    return _DosageRead(chained, route, chained)


def _sequence_groups(instructions: list[Any], parts: list[tuple[str, TimingDosage |
                                                                 FreeTextDosage]]
                     ) -> list[tuple[int, list[tuple[str, TimingDosage | FreeTextDosage]]]]:
    """The instructions by Dosage.sequence, in increasing order: each group is given
    together, one group after the other. No numbers (or one for all): one group."""
    found = [_dict(d).get("sequence") for d in instructions]
    if len(set(found)) == 1:
        return [(0, parts)]
    numbers: list[int] = []
    for i, number in enumerate(found):
        if not isinstance(number, int) or isinstance(number, bool):
            raise _Refused(f"dosageInstruction[{i}].sequence", "other dosage instructions have "
                                                             "a sequence number and this one "
                                                             "has none: their order is not said")
        numbers.append(number)
    groups: dict[int, list[tuple[str, TimingDosage | FreeTextDosage]]] = {}
    for number, part in zip(numbers, parts, strict=True):
        groups.setdefault(number, []).append(part)
    return sorted(groups.items())


def _chain(groups: list[tuple[int, list[tuple[str, TimingDosage | FreeTextDosage]]]]
           ) -> TimingDosage:
    """Groups one after the other (FHIR sequence) as one TimingDosage with steps `then`."""
    steps: list[TimingDosage] = []
    for _, group in groups:
        step = _combine(group)
        if not isinstance(step, TimingDosage):
            raise _Refused(group[0][0], "has no timing, and a sequence of steps needs one for "
                                        "each step")
        steps.append(step)
    placed = chain_steps(tuple(steps))
    if isinstance(placed, StepConflict):
        earlier, later = groups[placed.earlier], groups[placed.later]
        raise _Refused(later[1][0][0], f"sequence {later[0]} follows {earlier[1][0][0]} "
                                       f"(sequence {earlier[0]}): {placed.reason}")
    for (_, group), step in zip(groups, placed, strict=True):
        if step.as_needed:
            raise _Refused(f"{group[0][0]}.asNeeded", "a step of a sequence must fall due: an "
                                                      "allowance (PN) has no course to follow")
        _check_timing(step, group[0][0] if len(group) == 1 else "dosageInstruction")
    return replace(placed[0], then=placed[1:])


def _check_timing(timing: TimingDosage, path: str) -> None:
    # A course with no start begins at its first administration (the mirror records it).
    start, _ = _treatment_dates(timing)
    violation = timing_violation(timing, order_start=start, first_dose_anchors=True)
    if violation is not None:
        raise _Refused(f"{path}.{violation.field}", violation.description)


def _instruction(di: Json, path: str) -> TimingDosage | FreeTextDosage:
    _no_modifiers(di, path)
    as_needed = di.get("asNeededBoolean") is True or "asNeededCodeableConcept" in di
    amount, unit = _dose(_list(di.get("doseAndRate")), f"{path}.doseAndRate")
    limit = _max_per_period(di.get("maxDosePerPeriod"), f"{path}.maxDosePerPeriod")
    timing = di.get("timing")
    if not _structured(timing, f"{path}.timing"):
        if as_needed:
            return _timing_dosage(path, unit=unit, amount=amount, as_needed=True, **limit)
        code_text = _concept_text(timing.get("code")) if isinstance(timing, dict) else ""
        return FreeTextDosage(_text_at(di, "text") or _text_at(di, "patientInstruction")
                              or code_text)
    assert isinstance(timing, dict)
    return _timing(timing, path, unit, amount, as_needed, limit)


def _structured(timing: Any, path: str) -> bool:
    """Whether a Timing says something structured (a repeat, events, or a coded code)."""
    if not isinstance(timing, dict):
        return False
    return bool(timing.get("repeat") or timing.get("event") or _timing_code(timing, path))


def _timing_code(timing: Json, path: str) -> str:
    concept = timing.get("code")
    if not isinstance(concept, dict):
        return ""
    codings = [c for c in _list(concept.get("coding")) if isinstance(c, dict)]
    for c in codings:
        if c.get("system") in (None, TIMING_ABBREVIATION_SYSTEM) and _text_at(c, "code"):
            return str(c["code"])
    if codings:
        raise _Refused(f"{path}.code", "only HL7 timing abbreviations (v3-GTSAbbreviation) "
                                       "are understood")
    return ""


def _timing(timing: Json, path: str, unit: DoseUnit, amount: Amount | None, as_needed: bool,
            limit: dict[str, Any]) -> TimingDosage:
    tpath, rpath = f"{path}.timing", f"{path}.timing.repeat"
    _no_modifiers(timing, tpath)
    events = tuple(_event(v, f"{tpath}.event[{i}]") for i, v in enumerate(_list(
        timing.get("event"))))
    repeat = _dict(timing.get("repeat"))
    _no_modifiers(repeat, rpath)
    code = _timing_code(timing, tpath)
    if not as_needed:
        for key, reason in _FIXED_ONLY.items():
            if key in repeat:
                raise _Refused(f"{rpath}.{key}", reason)
        _check_duration(repeat, rpath, bool(code) or bool(events))
    if "boundsRange" in repeat:
        raise _Refused(f"{rpath}.boundsRange", "a course of uncertain length cannot be "
                                               "scheduled")
    frequency = repeat.get("frequencyMax", repeat.get("frequency", 0)) if as_needed \
        else repeat.get("frequency", 0)
    return _timing_dosage(
        path, unit=unit, amount=amount, as_needed=as_needed, code=code,
        frequency=frequency,
        period=_decimal(repeat.get("period")),
        period_unit=str(repeat.get("periodUnit", "")),
        when=tuple(str(w) for w in _list(repeat.get("when"))),
        time_of_day=tuple(_time(v, f"{rpath}.timeOfDay[{i}]")
                          for i, v in enumerate(_list(repeat.get("timeOfDay")))),
        day_of_week=tuple(str(d) for d in _list(repeat.get("dayOfWeek"))),
        count=repeat.get("count"),
        offset_minutes=repeat.get("offset", 0),
        events=events,
        **_bounds(repeat, rpath),
        **limit,
    )


def _timing_dosage(path: str, **values: Any) -> TimingDosage:
    try:
        return TimingDosage(**values)
    except InvalidArgument as error:
        v = error.violations[0]
        raise _Refused(f"{path}.{v.field}", v.description) from None


def _check_duration(repeat: Json, rpath: str, coded: bool) -> None:
    """One administration lasting `duration` must end before the next one starts."""
    if "duration" not in repeat:
        return
    length = _length(repeat.get("duration"), repeat.get("durationUnit"), f"{rpath}.duration")
    period, unit = _decimal(repeat.get("period")), repeat.get("periodUnit")
    if period is None and not coded and not repeat.get("when") and not repeat.get("timeOfDay"):
        raise _Refused(f"{rpath}.duration", "an administration that lasts with no rhythm is a "
                                            "continuous infusion, not doses given at a time")
    if period is not None and unit in UNIT_LENGTHS:
        between = period * int(UNIT_LENGTHS[unit].total_seconds()) / (repeat.get("frequency")
                                                                      or 1)
        if length.total_seconds() >= between:
            raise _Refused(f"{rpath}.duration", "each administration lasts as long as the time "
                                                "between doses or longer")


def _length(value: Any, unit: Any, path: str) -> timedelta:
    amount = _decimal(value)
    if amount is None or unit not in UNIT_LENGTHS:
        raise _Refused(path, "needs a value and a unit of s, min, h, d or wk")
    return timedelta(seconds=int(amount * int(UNIT_LENGTHS[unit].total_seconds())))


def _bounds(repeat: Json, rpath: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    period = repeat.get("boundsPeriod")
    if isinstance(period, dict):
        for end, (instant, day) in (("start", ("bounds_start", "bounds_first_date")),
                                    ("end", ("bounds_end", "bounds_last_date"))):
            if end in period:
                value = _date_or_instant(period[end], f"{rpath}.boundsPeriod.{end}")
                found[instant if isinstance(value, datetime) else day] = value
    duration = repeat.get("boundsDuration")
    if isinstance(duration, dict):
        found["bounds_duration"] = _decimal(duration.get("value"))
        found["bounds_duration_unit"] = str(duration.get("code") or duration.get("unit") or "")
        if found["bounds_duration"] is None:
            raise _Refused(f"{rpath}.boundsDuration", "needs a value")
    return found


def _date_or_instant(value: Any, path: str) -> date | datetime:
    """A FHIR date (a whole local day) or dateTime with a time (an instant)."""
    text = str(value)
    if _DATE_RE.match(text):
        if len(text) < 10:
            raise _Refused(path, "has no day: a course needs a date")
        return date.fromisoformat(text)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise _Refused(path, "is not a FHIR date or dateTime") from None
    if instant.utcoffset() is None:
        raise _Refused(path, "a time needs a time zone")
    return instant


def _event(value: Any, path: str) -> datetime:
    """A timing.event: an instant (a date alone does not say when the dose is due)."""
    found = _date_or_instant(value, path)
    if not isinstance(found, datetime):
        raise _Refused(path, "a date without a time of day does not say when the dose is due")
    return found


def _time(value: Any, path: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise _Refused(path, "is not a time of day (hh:mm:ss)") from None


def _dose(entries: list[Any], path: str) -> tuple[Amount | None, DoseUnit]:
    """The ordered dose of doseAndRate: a doseQuantity or a doseRange."""
    doses = [(i, e) for i, e in enumerate(entries)
             if isinstance(e, dict) and ("doseQuantity" in e or "doseRange" in e)]
    if len(doses) > 1:
        doses = [(i, e) for i, e in doses if _concept_code(e.get("type")) == "ordered"]
        if len(doses) != 1:
            raise _Refused(path, "several doses, and which one is ordered is not said")
    if not doses:
        if any(isinstance(e, dict) and any(k.startswith("rate") for k in e) for e in entries):
            raise _Refused(path, "only a rate is given: an infusion rate is not a dose given "
                                 "at a time")
        return None, DoseUnit.single("")
    i, entry = doses[0]
    where = f"{path}[{i}]"
    try:
        if "doseQuantity" in entry:
            value, unit = _quantity(entry["doseQuantity"], f"{where}.doseQuantity")
            return Amount.exact(value), DoseUnit.single(unit)
        low, low_unit = _quantity(_dict(entry["doseRange"]).get("low"), f"{where}.doseRange.low")
        high, high_unit = _quantity(_dict(entry["doseRange"]).get("high"),
                                    f"{where}.doseRange.high")
    except InvalidArgument as error:
        raise _Refused(where, error.violations[0].description) from None
    if low_unit and high_unit and low_unit != high_unit:
        raise _Refused(f"{where}.doseRange", "low and high have different units")
    try:
        return Amount.between(low, high), DoseUnit.single(low_unit or high_unit)
    except InvalidArgument:
        raise _Refused(f"{where}.doseRange", "low is greater than high") from None


def _quantity(quantity: Any, path: str) -> tuple[Decimal, str]:
    q = _dict(quantity)
    value = _decimal(q.get("value"))
    if value is None:
        raise _Refused(path, "needs a value")
    if q.get("comparator"):
        raise _Refused(f"{path}.comparator", "a dose with a comparator is not an exact dose")
    return value, str(q.get("unit") or q.get("code") or "")


def _max_per_period(ratio: Any, path: str) -> dict[str, Any]:
    """maxDosePerPeriod (the PN limit) as TimingDosage fields."""
    if not isinstance(ratio, dict):
        return {}
    quantity, unit = _quantity(ratio.get("numerator"), f"{path}.numerator")
    denominator = _dict(ratio.get("denominator"))
    period = _length(denominator.get("value"),
                     denominator.get("code") or denominator.get("unit"), f"{path}.denominator")
    return {"max_dose_quantity": quantity, "max_dose_unit": unit, "max_dose_period": period}


def _combine(parts: list[tuple[str, TimingDosage | FreeTextDosage]]
             ) -> TimingDosage | FreeTextDosage:
    """Several dosage instructions as one dosage (see the module docstring)."""
    if len(parts) == 1:
        return parts[0][1]
    texts = [p for _, p in parts if isinstance(p, FreeTextDosage)]
    if len(texts) == len(parts):
        return FreeTextDosage("; ".join(t.text for t in texts if t.text))
    timings: list[tuple[str, TimingDosage]] = []
    for path, part in parts:
        if not isinstance(part, TimingDosage):
            raise _Refused(path, "has no timing while other dosage instructions have one")
        timings.append((path, part))
    base_path, base = timings[0]
    for path, part in timings[1:]:
        differences = _differences(base, part)
        if differences and differences != "dose":
            raise _Refused(path, f"differs from {base_path} in {differences}: dosage "
                                 "instructions given together (the same sequence number, or "
                                 "none) are combined only when they give the same dose over "
                                 "the same course at different times of day; steps one after "
                                 "the other need increasing sequence numbers")
    for path, part in timings:
        if not part.when and not part.time_of_day:
            raise _Refused(f"{path}.timing", "gives no time of day (when or timeOfDay), so "
                                             "its doses cannot be told apart from the other "
                                             "dosage instructions'")
    # One part per dose (in the order first given), each at the times of its instructions.
    by_dose: dict[Amount | None, list[tuple[str, TimingDosage]]] = {}
    for path, part in timings:
        by_dose.setdefault(part.amount, []).append((path, part))
    groups = list(by_dose.values())
    joined = tuple(_join_times(group) for group in groups)
    conflict = together_conflict(joined)
    if conflict is not None:
        raise _Refused(groups[conflict.later][0][0], f"given together with "
                       f"{groups[conflict.earlier][0][0]}: {conflict.reason}")
    return replace(joined[0], also=joined[1:])


def _join_times(timings: list[tuple[str, TimingDosage]]) -> TimingDosage:
    """Instructions giving one dose at different times of day, as one."""
    base = timings[0][1]
    when = tuple(w for _, t in timings for w in t.when)
    time_of_day = tuple(at for _, t in timings for at in t.time_of_day)
    frequency = 0 if all(t.frequency == 0 for _, t in timings) else len(when) + len(time_of_day)
    return replace(base, when=when, time_of_day=time_of_day, frequency=frequency)


# What a part may differ in (its times of day) and FHIR names for the rest.
_COMBINABLE = frozenset({"when", "time_of_day", "frequency"})
_FHIR_NAMES = {"amount": "dose", "unit": "dose unit", "period": "period",
               "period_unit": "period", "day_of_week": "dayOfWeek", "count": "count",
               "offset_minutes": "offset", "code": "timing code", "as_needed": "asNeeded"}


def _differences(a: TimingDosage, b: TimingDosage) -> str:
    names = [_FHIR_NAMES.get(f.name, "bounds" if f.name.startswith("bounds") else
                             "maxDosePerPeriod" if f.name.startswith("max_dose") else f.name)
             for f in fields(TimingDosage)
             if f.name not in _COMBINABLE and getattr(a, f.name) != getattr(b, f.name)]
    return ", ".join(dict.fromkeys(names))


# -- plain JSON ---------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _text_at(element: Any, key: str) -> str:
    value = element.get(key) if isinstance(element, dict) else None
    return value if isinstance(value, str) else ""


def _concept_code(concept: Any) -> str:
    codings = [c for c in _list(_dict(concept).get("coding")) if isinstance(c, dict)]
    return next((c["code"] for c in codings if _text_at(c, "code")), "")


def _decimal(value: Any) -> Decimal | None:
    """A JSON number as a Decimal (floats were parsed as Decimal); None when absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return None
