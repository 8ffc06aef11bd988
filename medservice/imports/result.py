"""What an importer hands to the mirror: the orders it could read, and why it could not read
the others. An order is either read whole or reported; never applied half-way."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from medservice.domain.card_checks import DoseDispensingCard
from medservice.domain.orders import OrderContent, Pause

# Order events: messages that name an order without carrying its content (FMK pause,
# unpause and withdraw requests). The mirror applies them as pause/resume/discontinue.


@dataclass(frozen=True)
class PauseEvent:
    """Pause the order over [start, end). start None: from when the mirror records it;
    end None: until unpaused. Apply as a new order version with this pause added."""

    order_id: str
    start: datetime | None = None
    end: datetime | None = None

    @property
    def pause(self) -> Pause:
        return Pause(self.start, self.end)


@dataclass(frozen=True)
class UnpauseEvent:
    """Lift the order's pauses from when the mirror records it."""

    order_id: str


@dataclass(frozen=True)
class WithdrawEvent:
    """Discontinue the order at `at`; None (FMK 1.4 requests carry no time): when the
    mirror records it. Reversible by the source, like any discontinuation."""

    order_id: str
    at: datetime | None = None


OrderEvent = PauseEvent | UnpauseEvent | WithdrawEvent


# An order's place in its document ("DrugMedication[3]", "entry[2].resource"): changes from
# one card to the next, so it is left out of what is kept on the order (ImportProblem.detail).
_ORDER_PLACE = re.compile(
    r"^(?:DrugMedication\w*|PrivateDoseDispensedMedication|entry)\[\d+\](?:\.resource)?[/.]?")


@dataclass(frozen=True)
class ImportProblem:
    source_order_id: str  # "" when even the identifier could not be read
    location: str  # where in the document, e.g. "DrugMedication[3]/Dosage"
    reason: str
    # False for a problem with the document rather than with an order (an unreadable card
    # version): it is reported, but neither keeps nor refuses an order.
    about_order: bool = True

    @property
    def detail(self) -> str:
        """Where in the order and why, without the order's place in the document:
        "Dosage/Structure[1]/Day[1]/Dose[1]/Quantity: not a decimal"."""
        inner = _ORDER_PLACE.sub("", self.location)
        return f"{inner}: {self.reason}" if inner else self.reason


@dataclass
class ImportResult:
    orders: list[OrderContent] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    # The person the document is about (FMK carries it; FHIR references a Patient). Compared
    # with the resident before anything is applied; never logged.
    person_id: str = ""
    # True when an order read names no person by CPR number (a FHIR subject that is only a
    # reference or a display): the document may be about anyone, so the caller must say it
    # checked the patient before it is applied.
    person_unidentified: bool = False
    # The source's card version, when the document carries one.
    card_version: int | None = None
    # True when the document is the whole card (absent orders were removed), not a delta.
    whole_card: bool = False
    # Pause, unpause and withdraw events, in document order; applied after the orders.
    events: list[OrderEvent] = field(default_factory=list)
    # An FMK dose-dispensing card: which orders the pharmacy packs (kept as the resident's
    # latest dose-dispensing card for the inspection checks; its orders are in `orders`).
    dose_card: DoseDispensingCard | None = None
