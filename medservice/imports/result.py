"""What an importer hands to the mirror: the orders it could read, and why it could not read
the others. An order is either read whole or reported; never applied half-way."""

from __future__ import annotations

from dataclasses import dataclass, field

from medservice.domain.orders import OrderContent


@dataclass(frozen=True)
class ImportProblem:
    source_order_id: str  # "" when even the identifier could not be read
    location: str  # where in the document, e.g. "DrugMedication[3]/Dosage"
    reason: str


@dataclass
class ImportResult:
    orders: list[OrderContent] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    # The person the document is about (FMK carries it; FHIR references a Patient). Compared
    # with the resident before anything is applied; never logged.
    person_id: str = ""
    # The source's card version, when the document carries one.
    card_version: int | None = None
    # True when the document is the whole card (absent orders were removed), not a delta.
    whole_card: bool = False
