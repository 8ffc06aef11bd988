"""FMK 1.4 XML messages to domain order contents (DOMAIN.md §2, §3).

`read_fmk(data)` reads one message of the FMK 1.4 family (namespaces 2012/06/01, 2013/*,
2015/01/01, 2015/06/01, their "/E2"-style extensions, or none, as some published examples
have). Elements are matched by local name, because 1.4 messages mix namespaces (a
2015/06/01/E2 dose-dispensing card holds 2015/06/01 DrugMedications).

- GetMedicineCardResponse: the whole card (`whole_card`), its person and card version;
- GetDoseDispensingCardResponse: the dose-dispensed orders, as a delta (the dose card does
  not list the staff-poured orders, so an order absent from it means nothing), and the card
  itself (`dose_card`: which orders it lists) for the inspection checks;
- GetDrugMedicationResponse, Create/UpdateDrugMedicationRequest, a bare DrugMedication:
  a delta;
- Pause/Unpause/WithdrawDrugMedicationRequest: `events`, because they name an order
  without carrying its content (see PauseEvent and friends).

Anything else (FMK 1.6, other FMK messages, responses that only confirm a change by
identifier and version, non-XML) raises InvalidArgument on "content". FMK 1.6 is told by its
namespace and by its elements, whatever the namespace (fmk_version): a namespace-less 1.6
document is refused whole, naming the first 1.6 element, never read as 1.4.

Each DrugMedication becomes an OrderContent whole, or an ImportProblem with its identifier,
location ("DrugMedication[3]/Dosage/Structure[1]/Day[1]/Dose[1]/Quantity") and reason; the
other orders proceed. Rules this importer decides:

- FMK dates are Danish calendar dates and FMK periods are inclusive: a date becomes an
  instant at midnight Europe/Copenhagen, and a pause "to" date D ends at the start of D+1.
  A date-time without an offset is Danish local time.
- A pause without a from-date starts when it was recorded in FMK (Paused/DateTime), or,
  in a request, when the mirror records it (None).
- An order is dose-dispensed when it comes from a dose-dispensing card, or when one of its
  current prescriptions (neither Deprecated nor Terminated) asks for dose dispensing.
- Orders hidden from the reader (negative consent, private dose-dispensed medication) are
  problems: the card holds an order that nobody at the home can check.
- An order listed twice (a dose card repeats it per dispensing period) is kept once; with
  different versions, the highest numeric version wins.
- Indication and route: their text, else their code (FMK often sends only the code).
- Card versions are whole numbers; one that is not is reported as a problem and dropped.

Person identifiers are read into `person_id` only; no message or problem ever holds one.
The parser never resolves entities, never loads a DTD and never touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lxml import etree
from lxml.etree import _Element as Element

from medservice.domain.card_checks import DoseCardLine, DoseDispensingCard
from medservice.domain.errors import DomainError, FieldViolation, InvalidArgument
from medservice.domain.orders import (
    DispensingMode,
    Dosage,
    Drug,
    OrderContent,
    Pause,
    validate_content,
)
from medservice.imports.fmk_dosage import parse_dosage
from medservice.imports.fmk_version import (
    FMK14_NAMESPACE,
    FMK16_NAMESPACE_PREFIX,
    fmk16_mark,
)
from medservice.imports.result import (
    ImportProblem,
    ImportResult,
    OrderEvent,
    PauseEvent,
    UnpauseEvent,
    WithdrawEvent,
)
from medservice.imports.xml_names import child as _child
from medservice.imports.xml_names import children as _children
from medservice.imports.xml_names import elements as _elements
from medservice.imports.xml_names import local_name as _name
from medservice.imports.xml_names import text as _text

FMK_ZONE = ZoneInfo("Europe/Copenhagen")
MAX_DOCUMENT_BYTES = 10_000_000

_PERSON_ID = re.compile(r"[0-9]{6}-?[0-9]{4}")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T.+")
_SAFE_NAME = re.compile(r"[A-Za-z]{1,80}")  # letters only: an element name fit for a message

_DOSE_DISPENSING_MARKS = frozenset(
    {"DoseDispensedRestriction", "DoseDispensedDispensing", "DoseDispensedPrescriptionDispensing"}
)
_PRESCRIPTIONS = frozenset({"Prescription", "PrescriptionMedication"})
_CARD_VERSION_NAMES = ("Version", "MedicineCardVersion", "MedicineCardVersionIdentifier")


@dataclass
class FmkImportResult(ImportResult):
    """An ImportResult, plus what only FMK messages carry."""

    # A request's MedicineCardVersion: the card version it was made against, not the one it
    # produced (FMK assigns that), so it is never reported as `card_version`.
    based_on_card_version: int | None = None


class _Unreadable(Exception):
    """One order (or event) cannot be read; becomes an ImportProblem."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


# -- entry point ---------------------------------------------------------------------------


def read_fmk(data: bytes) -> FmkImportResult:
    """Read one FMK 1.4 message. Raises InvalidArgument on "content" when the document as a
    whole cannot be used; problems with single orders are in the result."""
    root = _parse(data)
    name = _document_name(root)
    reader = _READERS.get(name)
    if reader is None:
        shown = name if _SAFE_NAME.fullmatch(name) else "this"
        raise _content(f"{shown} messages are not imported; send a GetMedicineCardResponse, "
                       "a GetDoseDispensingCardResponse, a drug medication or a "
                       "pause/unpause/withdraw request")
    return reader(root)


def _parse(data: bytes) -> Element:
    if not isinstance(data, bytes):
        raise _content("must be the bytes of an XML document")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _content("the document is larger than 10 MB")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        # libxml2's message may quote the document; the position is enough.
        line, column = exc.position
        raise _content(f"not well-formed XML (line {line}, column {column})") from None
    except ValueError:
        raise _content("not an XML document") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # FMK messages never have one; refusing it rules out entity tricks altogether.
        raise _content("a DOCTYPE is not allowed in an FMK message")
    return root


def _document_name(root: Element) -> str:
    """The root's name, once the document is known to be FMK 1.4: not in another namespace,
    and with no FMK 1.6 element in any namespace (fmk_version)."""
    namespace = etree.QName(root).namespace
    if namespace is not None and not namespace.startswith(FMK16_NAMESPACE_PREFIX) \
            and not FMK14_NAMESPACE.fullmatch(namespace):
        raise _content("not an FMK 1.4 document (unknown namespace)")
    mark = fmk16_mark(root)
    if mark is not None:
        raise _content(mark.message())
    return _name(root)


# -- documents -----------------------------------------------------------------------------


def _read_medicine_card(root: Element) -> FmkImportResult:
    cards = _children(root, "MedicineCard")
    if len(cards) != 1:
        raise _content("a GetMedicineCardResponse must hold exactly one MedicineCard")
    card = cards[0]
    result = FmkImportResult(person_id=_person_id(card, required=True), whole_card=True)
    version = _first_child(card, _CARD_VERSION_NAMES)
    if version is not None:
        result.card_version = _version_number(version, "MedicineCard/Version", result)
    _report_hidden(_children(card, "DrugMedicationWithNegativeConsent"), "Identifier",
                   "the resident has withheld this order (negative consent); FMK shows "
                   "no details, so it cannot be checked", result)
    _read_orders(_children(card, "DrugMedication"), result, dose_dispensed=False)
    return result


def _read_dose_dispensing_card(root: Element) -> FmkImportResult:
    # Not the whole card: staff-poured orders are not on it.
    result = FmkImportResult(person_id=_person_id(root, required=True))
    _report_hidden(list(root.iter("{*}PrivateDoseDispensedMedication")),
                   "DrugMedicationIdentifier",
                   "a private dose-dispensed order; FMK shows no details, so it cannot be "
                   "checked", result)
    orders = [
        order
        for medication in root.iter("{*}DoseDispensedMedication")
        for order in _children(medication, "DrugMedication")
    ]
    _read_orders(orders, result, dose_dispensed=True)
    result.dose_card = _dose_card(root)
    return result


def _dose_card(root: Element) -> DoseDispensingCard:
    """Which orders the dose-dispensing card lists (readable or not: a line the mirror
    cannot read is still in the pouches), and the dispensing periods it covers."""
    card = _child(root, "DoseDispensingCard")
    lines: dict[str, DoseCardLine] = {}
    for medication in root.iter("{*}DoseDispensedMedication"):
        for order in _children(medication, "DrugMedication"):
            order_id = _text_of(order, "Identifier")
            drug = _child(order, "Drug")
            if order_id and order_id not in lines:
                lines[order_id] = DoseCardLine(
                    order_id, _text_of(order, "Version"),
                    _text_of(drug, "Name") if drug is not None else "")
    for private in root.iter("{*}PrivateDoseDispensedMedication"):
        order_id = _text_of(private, "DrugMedicationIdentifier")
        if order_id and order_id not in lines:
            lines[order_id] = DoseCardLine(order_id, _text_of(private, "Version"), hidden=True)
    starts, ends = [], []
    for period in root.iter("{*}Period"):
        try:
            start = _date(_child(period, "StartDate"), "Period/StartDate")
            end = _date(_child(period, "EndDate"), "Period/EndDate")
        except _Unreadable:
            continue  # the periods are for the reader; the lines are what is checked
        starts += [start] if start is not None else []
        ends += [end] if end is not None else []
    return DoseDispensingCard(
        card_id=_text_of(card, "Identifier") if card is not None else "",
        lines=tuple(lines.values()),
        period_start=min(starts, default=None), period_end=max(ends, default=None))


def _read_drug_medications(root: Element) -> FmkImportResult:
    result = FmkImportResult(person_id=_person_id(root, required=False))
    _read_based_on_version(root, result)
    orders = [root] if _name(root) == "DrugMedication" else _children(root, "DrugMedication")
    _read_orders(orders, result, dose_dispensed=False)
    return result


def _events_reader(make: Callable[[Element, str], OrderEvent]
                   ) -> Callable[[Element], FmkImportResult]:
    def read(root: Element) -> FmkImportResult:
        result = FmkImportResult(person_id=_person_id(root, required=True))
        _read_based_on_version(root, result)
        for number, element in enumerate(_children(root, "DrugMedication"), start=1):
            try:
                result.events.append(make(element, f"DrugMedication[{number}]"))
            except _Unreadable as exc:
                result.problems.append(
                    ImportProblem(_text_of(element, "Identifier"), exc.location, exc.reason))
        return result

    return read


def _pause_event(element: Element, path: str) -> PauseEvent:
    start = _pause_start(element, path)
    end = _pause_end(element, path)
    _check_pause(start, end, path)
    return PauseEvent(_order_id(element, path), start, end)


def _unpause_event(element: Element, path: str) -> UnpauseEvent:
    return UnpauseEvent(_order_id(element, path))


def _withdraw_event(element: Element, path: str) -> WithdrawEvent:
    return WithdrawEvent(_order_id(element, path))


_READERS: dict[str, Callable[[Element], FmkImportResult]] = {
    "GetMedicineCardResponse": _read_medicine_card,
    "GetDoseDispensingCardResponse": _read_dose_dispensing_card,
    "GetDrugMedicationResponse": _read_drug_medications,
    "CreateDrugMedicationRequest": _read_drug_medications,
    "UpdateDrugMedicationRequest": _read_drug_medications,
    "DrugMedication": _read_drug_medications,
    "PauseDrugMedicationRequest": _events_reader(_pause_event),
    "UnpauseDrugMedicationRequest": _events_reader(_unpause_event),
    "WithdrawDrugMedicationRequest": _events_reader(_withdraw_event),
}


# -- document parts ------------------------------------------------------------------------


def _person_id(container: Element, *, required: bool) -> str:
    element = _child(container, "PersonIdentifier")
    if element is None:
        element = _descendant(container, ("Patient", "Person", "PersonIdentifier"))
    if element is None:
        if required:
            raise _content("the message has no PersonIdentifier")
        return ""
    text = _text(element)
    if not _PERSON_ID.fullmatch(text):
        raise _content("the person identifier is not ten digits")  # never the value
    return text.replace("-", "")


def _read_based_on_version(root: Element, result: FmkImportResult) -> None:
    element = _child(root, "MedicineCardVersion")
    if element is not None:
        result.based_on_card_version = _version_number(element, "MedicineCardVersion", result)


def _version_number(element: Element, location: str, result: ImportResult) -> int | None:
    text = _text(element)
    if _WHOLE_NUMBER.fullmatch(text):
        return int(text)
    result.problems.append(ImportProblem(
        "", location, "the card version is not a whole number; it is ignored, so this "
                      "message cannot be checked for staleness", about_order=False))
    return None


def _report_hidden(elements: list[Element], id_name: str, reason: str,
                   result: ImportResult) -> None:
    seen: set[str] = set()
    for number, element in enumerate(elements, start=1):
        order_id = _text_of(element, id_name)
        if order_id in seen:
            continue  # a dose card lists an order once per dispensing period
        seen.add(order_id)
        result.problems.append(ImportProblem(order_id, f"{_name(element)}[{number}]", reason))


# -- orders --------------------------------------------------------------------------------


def _read_orders(elements: list[Element], result: ImportResult, *, dose_dispensed: bool
                 ) -> None:
    read: dict[str, OrderContent] = {}
    unreadable: set[str] = set()
    for number, element in enumerate(elements, start=1):
        path = f"DrugMedication[{number}]"
        order_id = _text_of(element, "Identifier")
        try:
            order = _order(element, path, dose_dispensed=dose_dispensed)
            read[order_id] = _later(read.get(order_id), order, path)
        except _Unreadable as exc:
            result.problems.append(ImportProblem(order_id, exc.location, exc.reason))
            unreadable.add(order_id)
    # An order is read whole or reported, never both.
    result.orders.extend(o for i, o in read.items() if i not in unreadable)


def _later(previous: OrderContent | None, order: OrderContent, path: str) -> OrderContent:
    if previous is None or previous.source_version == order.source_version:
        return previous or order
    versions = (previous.source_version, order.source_version)
    if not all(_WHOLE_NUMBER.fullmatch(v) for v in versions):
        raise _Unreadable(f"{path}/Version", "the order is listed twice with different "
                                             "versions that cannot be ordered")
    return order if int(order.source_version) > int(previous.source_version) else previous


def _order(element: Element, path: str, *, dose_dispensed: bool) -> OrderContent:
    order_id = _order_id(element, path)
    start, started_previously, end = _treatment(element, path)
    content = OrderContent(
        order_id=order_id,
        drug=_drug(_required(element, "Drug", path), f"{path}/Drug"),
        dosage=_dosage(_required(element, "Dosage", path), f"{path}/Dosage"),
        source_version=_text_of(element, "Version"),
        indication=_coded_text(_child(element, "Indication")),
        route=_coded_text(_child(element, "RouteOfAdministration")),
        treatment_start=start,
        treatment_started_previously=started_previously,
        treatment_end=end,
        dispensing_mode=(DispensingMode.DOSE_DISPENSED
                         if dose_dispensed or _prescribed_dose_dispensed(element)
                         else DispensingMode.STAFF_POURED),
        pauses=_pauses(element, path),
        discontinued_at=_withdrawn_at(element, path),
    )
    violations = validate_content(content, path)
    if violations:  # backstop: what the mirror would refuse is reported here instead
        first = violations[0]
        raise _Unreadable(path, f"{first.field.removeprefix(path + '.')}: {first.description}")
    return content


def _order_id(element: Element, path: str) -> str:
    order_id = _text_of(element, "Identifier")
    if not order_id:
        raise _Unreadable(f"{path}/Identifier", "is required (a create request does not "
                                                "carry the identifier FMK assigns)")
    return order_id


def _drug(element: Element, path: str) -> Drug:
    name = _text_of(element, "Name")
    if not name:
        raise _Unreadable(f"{path}/Name", "is required")
    atc = _child(element, "ATC")
    return Drug(
        name=name,
        drug_id=_text_of(element, "Identifier"),
        atc_code=_text_of(atc, "Code") if atc is not None else "",
        form=_coded_text(_child(element, "Form")),
        strength=_strength(_child(element, "Strength")),
    )


def _strength(element: Element | None) -> str:
    if element is None:
        return ""
    text = _text_of(element, "Text")
    if text:
        return text
    unit = _text_of(element, "UnitText") or _text_of(element, "UnitCode")
    return " ".join(part for part in (_text_of(element, "Value"), unit) if part)


def _coded_text(element: Element | None) -> str:
    if element is None:
        return ""
    return (_text_of(element, "Text") or _text_of(element, "FreeText")
            or _text_of(element, "Code"))


def _dosage(element: Element, path: str) -> Dosage:
    try:
        return parse_dosage(element)
    except DomainError as exc:
        raise _dosage_problem(exc, path) from None


def _dosage_problem(exc: DomainError, path: str) -> _Unreadable:
    """fmk_dosage names places as "Structure[2].Day[1].Dose[3].Quantity" or
    "Dosage.UnitTexts"; turn them into this document's paths."""
    violations = exc.violations if isinstance(exc, InvalidArgument) else []
    if not violations:
        return _Unreadable(path, exc.message)
    inner = violations[0].field.removeprefix("Dosage").lstrip(".")
    location = f"{path}/{inner.replace('.', '/')}" if inner else path
    return _Unreadable(location, violations[0].description)


def _treatment(element: Element, path: str) -> tuple[date | None, bool, date | None]:
    """(start, started previously, end) from BeginEndDate; None end is undetermined."""
    dates = _child(element, "BeginEndDate")
    if dates is None:
        return None, False, None
    path = f"{path}/BeginEndDate"
    start = _local_date(dates, "TreatmentStartDate", "TreatmentStartDateTime", path)
    end = _local_date(dates, "TreatmentEndDate", "TreatmentEndDateTime", path)
    if start is not None and end is not None and end < start:
        raise _Unreadable(f"{path}/TreatmentEndDate", "is before the treatment start")
    return start, _flag(dates, "TreatmentStartedPreviously"), end


def _local_date(parent: Element, date_name: str, datetime_name: str, path: str
                ) -> date | None:
    day = _date(_child(parent, date_name), f"{path}/{date_name}")
    if day is not None:
        return day
    instant = _instant(_child(parent, datetime_name), f"{path}/{datetime_name}")
    return instant.astimezone(FMK_ZONE).date() if instant is not None else None


def _pauses(element: Element, path: str) -> tuple[Pause, ...]:
    paused = _child(element, "Paused")
    if paused is None:
        return ()
    path = f"{path}/Paused"
    start = _pause_start(paused, path) or _instant(_child(paused, "DateTime"),
                                                   f"{path}/DateTime")
    end = _pause_end(paused, path)
    _check_pause(start, end, path)
    return (Pause(start, end),)


def _pause_start(parent: Element, path: str) -> datetime | None:
    day = _date(_child(parent, "FromDate"), f"{path}/FromDate")
    if day is not None:
        return _midnight(day)
    return _instant(_child(parent, "FromDateTime"), f"{path}/FromDateTime")


def _pause_end(parent: Element, path: str) -> datetime | None:
    day = _date(_child(parent, "ToDate"), f"{path}/ToDate")
    if day is not None:
        return _midnight(day + timedelta(days=1))  # FMK periods are inclusive
    return _instant(_child(parent, "ToDateTime"), f"{path}/ToDateTime")


def _check_pause(start: datetime | None, end: datetime | None, path: str) -> None:
    if start is not None and end is not None and end <= start:
        raise _Unreadable(path, "the pause ends before it starts")


def _withdrawn_at(element: Element, path: str) -> datetime | None:
    withdrawn = _child(element, "Withdrawn")
    if withdrawn is None:
        return None
    stamp = _first_child(withdrawn, ("DateTime", "WithdrawnDateTime"))
    at = _instant(stamp, f"{path}/Withdrawn/DateTime")
    if at is None:
        raise _Unreadable(f"{path}/Withdrawn/DateTime",
                          "is required: a discontinuation takes effect at its timestamp")
    return at


def _prescribed_dose_dispensed(element: Element) -> bool:
    return any(
        _name(child) in _DOSE_DISPENSING_MARKS
        for prescription in _elements(element)
        if _name(prescription) in _PRESCRIPTIONS and _is_current(prescription)
        for child in _elements(prescription)
    )


def _is_current(prescription: Element) -> bool:
    return (_child(prescription, "Deprecated") is None
            and _child(prescription, "TerminatedDateTime") is None)


# -- values --------------------------------------------------------------------------------


def _date(element: Element | None, path: str) -> date | None:
    if element is None:
        return None
    match = _DATE.fullmatch(_text(element))
    try:
        if match is None:
            raise ValueError
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise _Unreadable(path, "not a date (YYYY-MM-DD)") from None


def _instant(element: Element | None, path: str) -> datetime | None:
    """An xs:dateTime as a UTC instant; without an offset it is Danish local time."""
    if element is None:
        return None
    text = _text(element)
    try:
        if not _DATE_TIME.fullmatch(text):
            raise ValueError
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Unreadable(path, "not a date-time (YYYY-MM-DDThh:mm:ssZ)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=FMK_ZONE)
    return value.astimezone(UTC)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=FMK_ZONE).astimezone(UTC)


def _flag(parent: Element, name: str) -> bool:
    element = _child(parent, name)
    return element is not None and _text(element).lower() not in ("false", "0")


def _content(description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation("content", description)])


# -- small lxml helpers (the shared ones are in xml_names) ---------------------------------










def _first_child(parent: Element, names: Iterable[str]) -> Element | None:
    for name in names:
        found = _child(parent, name)
        if found is not None:
            return found
    return None


def _descendant(parent: Element, names: Iterable[str]) -> Element | None:
    found: Element | None = parent
    for name in names:
        found = _child(found, name) if found is not None else None
    return found


def _required(parent: Element, name: str, path: str) -> Element:
    element = _child(parent, name)
    if element is None:
        raise _Unreadable(f"{path}/{name}", "is required")
    return element




def _text_of(parent: Element, name: str) -> str:
    element = _child(parent, name)
    return _text(element) if element is not None else ""
