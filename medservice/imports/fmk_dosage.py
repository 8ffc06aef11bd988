"""FMK 1.4 `Dosage` XML to the domain dosage model (medservice.domain.dosage).

Reads the 1.4 family by element name: 2012/06/01 (1.4.0), 2013/06/01 (1.4.2,
DosageForRequest), 2015/01/01 (1.4.4) and 2015/06/01 (1.4.6), or no namespace. The `Dosage`
element's own namespace must be one of those (its parts may mix them, as real messages do).
A dosage in an FMK 1.6 namespace, or holding an FMK 1.6 element or dosage type in any
namespace (fmk_version: `Precondition`, `DosagePeriod`, `<Type>Not Specified</Type>` ...),
is refused naming that element, however much of it looks like 1.4 (a 1.6 free-text dosage
does). The shapes:

- 1.4.0: `Structure` elements directly in `Dosage`, each with its own `UnitText(s)`;
- 1.4.2/1.4.4: `Structures` holding `UnitText(s)` and `Structure`/`EmptyStructure` elements;
- 1.4.6: `UnitTexts` in `Dosage`, structures in `StructuresFixed` and
  `StructuresAccordingToNeed`;
- `FreeText` (its text, or a `Text` child), `AdministrationAccordingToSchemaInLocalSystem`.

Early drafts' spellings are accepted too (`DosageTimes`, `DayNumber`, `NotNumbered`,
`StartDateTime`/`EndDateTime`). Dosage structures of FMK 1.2 and 1.6 are refused.

Bad input raises InvalidArgument naming the element, e.g.
"Structure[2].Day[1].Dose[3].Quantity: not a decimal". The parser never resolves
entities and never touches the network.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from lxml import etree
from lxml.etree import _Element as Element

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
from medservice.domain.errors import DomainError, FieldViolation, InvalidArgument
from medservice.domain.orders import Dosage
from medservice.imports.fmk_version import FMK14_NAMESPACE, fmk16_mark
from medservice.imports.xml_names import child as _child
from medservice.imports.xml_names import children as _children
from medservice.imports.xml_names import elements as _elements
from medservice.imports.xml_names import local_name as _name
from medservice.imports.xml_names import text as _text

_NAMED_TIMES = {
    "morning": TimeKind.MORNING,
    "noon": TimeKind.NOON,
    "evening": TimeKind.EVENING,
    "night": TimeKind.NIGHT,
}
_STRUCTURE_NAMES = ("Structure", "EmptyStructure", "DosageTimes")
_STRUCTURE_HOLDERS = ("Structures", "StructuresFixed", "StructuresAccordingToNeed")
_UNSUPPORTED = {
    "DosageStructure": "FMK 1.2 dosage structures are not supported",
    "DosageTimesStructure": "FMK 1.2 dosage structures are not supported",
    "StructuredDosage": "FMK 1.6 dosages are not supported",
}
MAX_DOCUMENT_BYTES = 5_000_000


def parse_dosage_xml(data: bytes) -> Dosage:
    """Parse a document whose root is a `Dosage` element of any supported namespace."""
    return parse_dosage(_parse(data, "Dosage"))


def parse_dosage_proposal(data: bytes | str) -> dict[str, Dosage]:
    """The dosages of a DKMA dosage proposal ("Doseringsforslag") document, by FMK version.

    A proposal holds the same dosage once per schema version, each in a
    `<Dosage><Version>1.4.4</Version><m15:Dosage>...</m15:Dosage></Dosage>` block; the 1.4
    versions are returned ("1.4.0", "1.4.2", "1.4.4"), FMK 1.2 blocks are skipped."""
    raw = data.encode() if isinstance(data, str) else data
    root = _parse(raw, "DosageProposals")
    found: dict[str, Dosage] = {}
    for number, block in enumerate(_elements(root), start=1):
        version_element = _child(block, "Version")
        version = _text(version_element) if version_element is not None else ""
        if not version.startswith("1.4"):
            continue
        inner = _child(block, "Dosage")
        if inner is None:
            raise _bad(f"DosageProposals.Dosage[{number}]", "has no inner Dosage element")
        found[version] = parse_dosage(inner)
    return found


def parse_dosage(element: Element) -> Dosage:
    """Parse an lxml `Dosage` element."""
    if _name(element) != "Dosage":
        raise _bad(_name(element) or "Dosage", "expected a Dosage element")
    _check_version(element)
    for child in _elements(element):
        reason = _UNSUPPORTED.get(_name(child))
        if reason:
            raise _bad(f"Dosage.{_name(child)}", reason)
    free_text = _child(element, "FreeText")
    if free_text is not None:
        return FreeTextDosage(_free_text(free_text))
    if _child(element, "AdministrationAccordingToSchemaInLocalSystem") is not None:
        return LocalSchemaDosage()
    return _structured(element)


def _check_version(dosage: Element) -> None:
    """FMK 1.4 only: refuse FMK 1.6 (by namespace or element) and unknown namespaces."""
    mark = fmk16_mark(dosage)
    if mark is not None:
        raise _bad(mark.path("."), f"{mark.what}; FMK 1.6 dosages are not supported, "
                                   "send FMK 1.4")
    namespace = etree.QName(dosage).namespace
    if namespace is not None and not FMK14_NAMESPACE.fullmatch(namespace):
        raise _bad("Dosage", "not an FMK 1.4 dosage (FMK 1.2 or an unknown namespace)")


def _parse(data: bytes, what: str) -> Element:
    """Parse untrusted XML: no entity resolution, no DTD, no network, bounded size."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _bad(what, "the document is larger than 5 MB")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _bad(what, f"not well-formed XML ({exc.msg})") from None


def _free_text(element: Element) -> str:
    text_child = _child(element, "Text")
    source = text_child if text_child is not None else element
    return (source.text or "").strip()


def _structured(dosage: Element) -> StructuredDosage:
    holders = [c for c in _elements(dosage) if _name(c) in _STRUCTURE_HOLDERS]
    structures = [c for c in _elements(dosage) if _name(c) in _STRUCTURE_NAMES]
    for holder in holders:
        structures += [c for c in _elements(holder) if _name(c) in _STRUCTURE_NAMES]
    if not structures:
        raise _bad("Dosage", "has no Structure, FreeText or "
                             "AdministrationAccordingToSchemaInLocalSystem")
    unit: DoseUnit | None = _unit(dosage, "Dosage")
    for holder in holders:
        unit = unit or _unit(holder, _name(holder))
    periods = []
    for number, structure in enumerate(structures, start=1):
        path = f"Structure[{number}]"
        own_unit = _unit(structure, path)
        if own_unit is not None:
            if unit is not None and own_unit != unit:
                raise _bad(f"{path}.UnitTexts", "differs from the first structure's unit")
            unit = own_unit
        periods.append(_period(structure, path))
    if unit is None:
        raise _bad("Dosage.UnitTexts", "is required for a structured dosage")
    return StructuredDosage(unit=unit, periods=tuple(periods))


def _unit(element: Element, path: str) -> DoseUnit | None:
    texts = _child(element, "UnitTexts")
    if texts is not None:
        singular = _text(_required(texts, "Singular", f"{path}.UnitTexts"))
        plural = _text(_required(texts, "Plural", f"{path}.UnitTexts"))
        return DoseUnit(singular, plural)
    single = _child(element, "UnitText")
    if single is not None:
        text = _text(single)
        if not text:
            raise _bad(f"{path}.UnitText", "is empty")
        return DoseUnit.single(text)
    return None


def _period(structure: Element, path: str) -> DosagePeriod:
    start = _date_of(structure, ("StartDate", "StartDateTime"), path, required=True)
    assert start is not None
    end = _date_of(structure, ("EndDate", "EndDateTime"), path, required=False)
    interval = 0 if _name(structure) == "EmptyStructure" else _interval(structure, path)
    supplementary = _child(structure, "SupplementaryText")
    days = _days(structure, path)
    try:
        return DosagePeriod(
            start_date=start,
            end_date=end,
            iteration_interval_days=interval,
            supplementary_text=_text(supplementary) if supplementary is not None else "",
            days=days,
        )
    except DomainError as exc:
        raise _bad(path, exc.message) from None


def _interval(structure: Element, path: str) -> int:
    if _child(structure, "NotIterated") is not None:
        return 0
    element = _child(structure, "IterationInterval")
    if element is None:
        raise _bad(f"{path}.IterationInterval", "IterationInterval or NotIterated is required")
    value = _integer(element, f"{path}.IterationInterval")
    if value < 0:
        raise _bad(f"{path}.IterationInterval", "must not be negative")
    return value


def _days(structure: Element, path: str) -> tuple[DosageDay, ...]:
    days = []
    numbered = 0
    for element in _elements(structure):
        if _name(element) == "AnyDay":
            days.append(_day(element, f"{path}.AnyDay", number=0))
        elif _name(element) == "Day":
            numbered += 1
            day_path = f"{path}.Day[{numbered}]"
            days.append(_day(element, day_path, number=_day_number(element, day_path)))
    return tuple(days)


def _day_number(day: Element, path: str) -> int:
    if _child(day, "NotNumbered") is not None:
        return 0
    element = _child(day, "Number")
    if element is None:
        element = _child(day, "DayNumber")
    if element is None:
        raise _bad(f"{path}.Number", "is required")
    number = _integer(element, f"{path}.Number")
    if number < 1:
        raise _bad(f"{path}.Number", "must be 1 or more")
    return number


def _day(day: Element, path: str, number: int) -> DosageDay:
    doses = tuple(
        _dose(element, f"{path}.Dose[{i}]")
        for i, element in enumerate(_children(day, "Dose"), start=1)
    )
    if not doses:
        raise _bad(f"{path}.Dose", "a day needs at least one dose")
    return DosageDay(day_number=number, doses=doses)


def _dose(dose: Element, path: str) -> DosageDose:
    kind, clock_time = _time(dose, path)
    amount = _amount(dose, path)
    need = _child(dose, "IsAccordingToNeed")
    as_needed = need is not None and _text(need).lower() not in ("false", "0")
    return DosageDose(time_kind=kind, clock_time=clock_time, amount=amount, as_needed=as_needed)


def _time(dose: Element, path: str) -> tuple[TimeKind, time | None]:
    element = _child(dose, "Time")
    if element is None:
        return TimeKind.ANY, None
    value = _text(element)
    if value in _NAMED_TIMES:
        return _NAMED_TIMES[value], None
    try:
        return TimeKind.CLOCK, time.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise _bad(f"{path}.Time", "not morning, noon, evening, night or HH:MM") from None


def _amount(dose: Element, path: str) -> Amount:
    quantity = _child(dose, "Quantity")
    if quantity is not None:
        return Amount(quantity=_decimal(quantity, f"{path}.Quantity"))
    low = _child(dose, "MinimalQuantity")
    high = _child(dose, "MaximalQuantity")
    if low is None or high is None:
        raise _bad(f"{path}.Quantity", "Quantity or MinimalQuantity and MaximalQuantity "
                                       "are required")
    minimum = _decimal(low, f"{path}.MinimalQuantity")
    maximum = _decimal(high, f"{path}.MaximalQuantity")
    if minimum > maximum:
        raise _bad(f"{path}.MinimalQuantity", "is greater than MaximalQuantity")
    return Amount(min_quantity=minimum, max_quantity=maximum)


def _decimal(element: Element, path: str) -> Decimal:
    try:
        value = Decimal(_text(element))
    except InvalidOperation:
        raise _bad(path, "not a decimal") from None
    if not value.is_finite():
        raise _bad(path, "not a decimal")
    if value < 0:
        raise _bad(path, "must not be negative")
    return value


def _integer(element: Element, path: str) -> int:
    try:
        return int(_text(element))
    except ValueError:
        raise _bad(path, "not an integer") from None


def _date_of(
    parent: Element, names: tuple[str, str], path: str, *, required: bool
) -> date | None:
    date_name, datetime_name = names
    element = _child(parent, date_name)
    if element is not None:
        try:
            return date.fromisoformat(_text(element)[:10])
        except ValueError:
            raise _bad(f"{path}.{date_name}", "not a date (YYYY-MM-DD)") from None
    element = _child(parent, datetime_name)
    if element is not None:
        try:
            return datetime.fromisoformat(_text(element)).date()
        except ValueError:
            raise _bad(f"{path}.{datetime_name}", "not a date-time") from None
    if required:
        raise _bad(f"{path}.{date_name}", "is required")
    return None


# -- small lxml helpers (the shared ones are in xml_names) ---------------------------------










def _required(parent: Element, name: str, path: str) -> Element:
    element = _child(parent, name)
    if element is None:
        raise _bad(f"{path}.{name}", "is required")
    return element




def _bad(path: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(path, description)])
