"""FMK 1.4 or FMK 1.6: decided by the namespace *and* by the elements (issue 21).

The readers match FMK elements by local name, because real FMK 1.4 messages mix namespaces
(fmk.py). That alone would read an FMK 1.6 document as 1.4 once its namespace is gone (some
middleware and published examples strip it): a 1.6 card's `ActivePeriod`/`EndedReason`
(a withdrawn order) would go unseen and the order be mirrored as active. FMK 1.6 is not in
production (its schema still changed monthly in 2026) and is refused whole, never
half-read. So a document is FMK 1.6, and refused, when any of its elements

- is in an FMK 1.6 namespace (`http://fmk-teknik.dk/...`), or
- has the name of an element that only FMK 1.6 has (`FMK16_ELEMENTS`), or
- is a dosage `Type` with an FMK 1.6 value ("Fixed", "PRN", "Combined", "Not Specified";
  FMK 1.4 says "fast", "efter behov", "kombineret", "ikke angivet"): the one mark of a
  namespace-less 1.6 free-text or local-schema dosage, whose other elements 1.4 shares.

`FMK16_ELEMENTS` are element names the public FMK 1.6.0 schema declares (trifork/fmk-schemas,
etc/schemas/2022/01/01, namespace http://fmk-teknik.dk/160) and no FMK 1.4 schema does
(2012/06/01, 2013/*, 2015/01/01, 2015/06/01 and their /E extensions; nor the MedCom, SDSD
and OIO schemas they import), of the parts the importer reads: the card, its drug medications
and their dosages. Added: the dosage elements of the FMK 1.6 drafts of 2022 (`DosageUnit`,
`StructuredDosage`), which the published draft examples use. Element names are the
schema's own, so a message may quote them; a document's other names are shown only when
they are plain letters (never a number such as a person identifier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from lxml.etree import _Element as Element

from medservice.imports.xml_names import elements, local_name, text

FMK16_NAMESPACE_PREFIX = "http://fmk-teknik.dk/"
FMK14_NAMESPACE = re.compile(
    r"http://www\.dkma\.dk/medicinecard/xml\.schema/"
    r"(2012/06/01|2013/\d\d/\d\d|2015/01/01|2015/06/01)(/E\d+)?"
)

# name -> what 1.4 has instead (or what it is), for the message.
FMK16_ELEMENTS: dict[str, str] = {
    # a drug medication
    "ActivePeriod": "the FMK 1.6 treatment period (FMK 1.4: BeginEndDate)",
    "ActivePeriodForRequest": "the FMK 1.6 treatment period (FMK 1.4: BeginEndDate)",
    "ActivePeriodForResponse": "the FMK 1.6 treatment period (FMK 1.4: BeginEndDate)",
    "EndedReason": "the FMK 1.6 end of an order (FMK 1.4: Withdrawn)",
    "HandoverPreference": "an FMK 1.6 element",
    "ActiveSince": "an FMK 1.6 element",
    "DrugAdministration": "an FMK 1.6 element",
    "DrugAdministrationRegistrationRequested": "an FMK 1.6 element",
    "DrugMedicationRelations": "an FMK 1.6 element",
    "RequireSecondaryHandover": "an FMK 1.6 element",
    # a medicine card
    "Warrant": "an FMK 1.6 element (FMK 1.4: Prescription)",
    "InvalidWarrant": "an FMK 1.6 element",
    "RequestsForWarrantExist": "an FMK 1.6 element",
    "DispensingSummary": "an FMK 1.6 element",
    # a dosage
    "IsSelfAdministration": "an FMK 1.6 dosage element",
    "Precondition": "an FMK 1.6 dosage element",
    "Parameter": "an FMK 1.6 dosage element",
    "DosagePeriod": "an FMK 1.6 dosage period (FMK 1.4: Structure)",
    "Profile": "an FMK 1.6 dosage element",
    # the 2022 drafts
    "DosageUnit": "an FMK 1.6 draft dosage element (FMK 1.4: UnitTexts)",
    "StructuredDosage": "an FMK 1.6 draft dosage element (FMK 1.4: Structures)",
}
FMK16_DOSAGE_TYPES = frozenset({"Fixed", "PRN", "Combined", "Not Specified"})
_SAFE_NAME = re.compile(r"[A-Za-z]{1,80}")


@dataclass(frozen=True)
class Fmk16Mark:
    """Where a document shows it is FMK 1.6: the element's path from the scanned element
    (its local names, indexed where siblings share one) and what the element is."""

    steps: tuple[str, ...]
    element: str  # the element's name, as the schema spells it (or "this element")
    what: str

    def path(self, separator: str = "/") -> str:
        return separator.join(self.steps)

    def message(self) -> str:
        where = f" at {self.path()}" if len(self.steps) > 1 else ""
        return f"{self.element}{where} is {self.what}; FMK 1.6 is not supported, send FMK 1.4"


def fmk16_mark(root: Element) -> Fmk16Mark | None:
    """The first element of `root` (itself included, document order) that makes it FMK 1.6,
    or None."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # a comment or processing instruction
        name = local_name(element)
        namespace = etree.QName(element).namespace
        if namespace is not None and namespace.startswith(FMK16_NAMESPACE_PREFIX):
            what = "in the FMK 1.6 namespace"
        elif name in FMK16_ELEMENTS:
            what = FMK16_ELEMENTS[name]
        elif name == "Type" and _is_dosage_type(element) and text(element) in \
                FMK16_DOSAGE_TYPES:
            what = f"an FMK 1.6 dosage type ({text(element)}; FMK 1.4 says fast, efter " \
                   "behov, kombineret or ikke angivet)"
        else:
            continue
        shown = name if _SAFE_NAME.fullmatch(name) else "this element"
        return Fmk16Mark(_steps(root, element), shown, what)
    return None


def _is_dosage_type(element: Element) -> bool:
    parent = element.getparent()
    return parent is not None and local_name(parent) == "Dosage"


def _steps(root: Element, element: Element) -> tuple[str, ...]:
    steps: list[str] = []
    current: Element | None = element
    while current is not None:
        name = local_name(current)
        step = name if _SAFE_NAME.fullmatch(name) else "*"
        parent = current.getparent()
        if parent is not None and current is not root:
            same = [c for c in elements(parent) if local_name(c) == name]
            if len(same) > 1:
                step += f"[{same.index(current) + 1}]"
        steps.append(step)
        if current is root:
            break
        current = parent
    return tuple(reversed(steps))
