"""Orders of the medicine card mirror, with both clocks (DOMAIN.md §2).

Every change to an order is a new `OrderVersion`: its content applies from `valid_from`
(valid time), and the mirror learned it at `recorded_at` (recorded time). Changes can arrive
late and back-dated, so the content in force at a valid time V, as known at a recorded time
R, is decided by this rule:

    among the versions recorded at or before R whose valid_from is at or before V,
    the one recorded last wins.

Equivalently: each version, when recorded, overrides the order from its valid_from onward.
`order_timeline` turns a version history into those pieces, so the scheduler can expand
each piece with the content that applied then.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import TypeAlias

from medservice.domain import bounds
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    needs_manual_schedule,
)
from medservice.domain.errors import FieldViolation
from medservice.domain.fhir_timing import TimingDosage, timing_problem
from medservice.i18n import Msg, msg

# The four kinds of dosage an order can have: FMK's structured, free text and "according
# to a schema in a local system", and a FHIR timing (whose schedulability
# fhir_timing.timing_problem decides; OrderContent.manual_schedule_reason dispatches).
Dosage: TypeAlias = StructuredDosage | FreeTextDosage | LocalSchemaDosage | TimingDosage


class DispensingMode(Enum):
    DOSE_DISPENSED = "dose_dispensed"  # pouches packed by the pharmacy
    STAFF_POURED = "staff_poured"


class OrderState(Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISCONTINUED = "discontinued"
    ENDED = "ended"  # treatment end date has passed
    NOT_STARTED = "not_started"  # treatment starts on a later date


@dataclass(frozen=True)
class Drug:
    name: str
    drug_id: str = ""
    atc_code: str = ""
    form: str = ""
    strength: str = ""


@dataclass(frozen=True)
class Pause:
    """[start, end) in UTC; None start: from when it was recorded; None end: open-ended."""

    start: datetime | None = None
    end: datetime | None = None

    def covers(self, instant: datetime) -> bool:
        return (self.start is None or self.start <= instant) and (
            self.end is None or instant < self.end)


@dataclass(frozen=True)
class OrderContent:
    """What the source says about one order: what a sync or an import carries."""

    order_id: str
    drug: Drug
    dosage: Dosage = field(default_factory=lambda: FreeTextDosage(""))
    source_version: str = ""
    indication: str = ""
    route: str = ""
    treatment_start: date | None = None
    treatment_started_previously: bool = False
    treatment_end: date | None = None  # inclusive; None is undetermined
    dispensing_mode: DispensingMode = DispensingMode.STAFF_POURED
    time_critical: bool = False
    window_minutes: int | None = None
    pauses: tuple[Pause, ...] = ()
    discontinued_at: datetime | None = None
    # Set by the mirror, never by a source: the source's current version of this order could
    # not be read, so this content is the one last read, kept as it was. Why, in words for
    # staff and the pharmacist (never a person identifier). A readable version clears it.
    cannot_check: str | None = None
    # Set by the mirror, never by a source: when a course that begins at its first
    # administration (fhir_timing.awaits_first_dose) was first given; its later doses
    # follow from this instant. Kept across the source's later versions of the order.
    first_given_at: datetime | None = None

    @property
    def manual_schedule_reason(self) -> Msg | None:
        """Why the dosage cannot be scheduled by the engine, or None. (A FHIR timing's
        reason is its field's validation text, in English: docs/i18n.md.)"""
        if isinstance(self.dosage, TimingDosage):
            problem = timing_problem(self.dosage, order_start=self.treatment_start,
                                     first_dose_anchors=True)
            return None if problem is None else msg("schedule.timing", text=problem)
        return needs_manual_schedule(self.dosage)

    @property
    def needs_attention(self) -> Msg | None:
        """What staff and the pharmacist must see about this order, or None: it cannot be
        checked against its source (`cannot_check`), or its dosage needs a manual schedule.
        One path says it everywhere: the round list's NEEDS_MANUAL_SCHEDULE note, CheckDose's
        reason and the NEEDS_MANUAL_SCHEDULE discrepancy in the review queue."""
        texts = []
        if self.cannot_check is not None:
            texts.append(msg("attention.cannot_check", reason=self.cannot_check))
        reason = self.manual_schedule_reason
        if reason is not None:
            texts.append(msg("attention.manual_schedule", reason=reason))
        if len(texts) == 2:
            return msg("finding.both", first=texts[0], second=texts[1])
        return texts[0] if texts else None


@dataclass(frozen=True)
class OrderVersion:
    """One version of one order of one resident. `removed`: absent from the source card
    from valid_from on (nothing is ever deleted)."""

    facility_id: str
    resident_id: str
    content: OrderContent
    version: int
    valid_from: datetime
    recorded_at: datetime
    removed: bool = False

    @property
    def order_id(self) -> str:
        return self.content.order_id


@dataclass(frozen=True)
class TimelinePiece:
    """`version` is the content in force over [start, end); end None is open-ended."""

    start: datetime
    end: datetime | None
    version: OrderVersion


def order_timeline(versions: list[OrderVersion], known_at: datetime | None = None
                   ) -> list[TimelinePiece]:
    """The valid-time pieces of one order as known at `known_at` (default: everything)."""
    pieces: list[TimelinePiece] = []
    ordered = sorted(versions, key=lambda v: (v.recorded_at, v.version))
    for v in ordered:
        if known_at is not None and v.recorded_at > known_at:
            break
        kept = []
        for p in pieces:
            if p.start >= v.valid_from:
                continue
            end = v.valid_from if p.end is None or p.end > v.valid_from else p.end
            kept.append(TimelinePiece(p.start, end, p.version))
        pieces = [*kept, TimelinePiece(v.valid_from, None, v)]
    return pieces


def version_at(versions: list[OrderVersion], valid_at: datetime,
               known_at: datetime | None = None) -> OrderVersion | None:
    """The version in force at valid time `valid_at`, as known at `known_at`."""
    for piece in order_timeline(versions, known_at):
        if piece.start <= valid_at and (piece.end is None or valid_at < piece.end):
            return piece.version
    return None


def latest_known(versions: list[OrderVersion], known_at: datetime | None = None
                 ) -> OrderVersion | None:
    """The version recorded last, at or before known_at."""
    known = [v for v in versions if known_at is None or v.recorded_at <= known_at]
    return max(known, key=lambda v: (v.recorded_at, v.version), default=None)


def effective_content(version: OrderVersion, latest: OrderVersion) -> OrderContent:
    """The content of `version` with the pauses, discontinuation and first administration
    of `latest`.

    Pauses and a discontinuation are absolute intervals and instants: whatever the mirror
    knows of them applies at the times they name, including a back-dated discontinuation
    recorded after the fact. Dosage, route and the rest apply from their version's
    valid_from (see order_timeline)."""
    if version is latest:
        return version.content
    return replace(version.content, pauses=latest.content.pauses,
                   discontinued_at=latest.content.discontinued_at,
                   first_given_at=latest.content.first_given_at)


def in_force(versions: list[OrderVersion], valid_at: datetime, known_at: datetime
             ) -> tuple[OrderVersion, OrderContent] | None:
    """The order as it is on the card at valid time `valid_at`, as known at `known_at`: the
    version in force and its content with the pauses and discontinuation known then; None
    when it is not on the card then (not yet valid, or removed). GetMedicineCard shows it,
    the inspection checks check it."""
    version = version_at(versions, valid_at, known_at)
    latest = latest_known(versions, known_at)
    if version is None or latest is None or version.removed:
        return None
    return version, effective_content(version, latest)


# -- the order's state at an instant: the one rule for "not to give" --------------------------

_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)


def treatment_dates(content: OrderContent) -> tuple[date | None, date | None]:
    """The first and last local date of the treatment period (None: open on that side);
    "started previously" has no first date."""
    start = None if content.treatment_started_previously else content.treatment_start
    return start, content.treatment_end


def outside_treatment(content: OrderContent, t: datetime, clock: FacilityClock) -> bool:
    """Whether `t` falls on a local date before the treatment start or after its end.
    Compared as instants: the first instant of a local date is its midnight on the clock
    (memoized), cheaper than the local date of every record."""
    start, end = treatment_dates(content)
    if end is not None and t >= clock.instant(end + _DAY, _MIDNIGHT):
        return True
    return start is not None and t < clock.instant(start, _MIDNIGHT)


def order_state(content: OrderContent, t: datetime, clock: FacilityClock) -> OrderState:
    """The order's state at `t` on the facility clock: discontinued from its instant on,
    paused inside a pause, ended after the treatment end date, not started before the
    start date, else active. Only an active order is to be given (`not_to_give`)."""
    if content.discontinued_at is not None and content.discontinued_at <= t:
        return OrderState.DISCONTINUED
    if any(p.covers(t) for p in content.pauses):
        return OrderState.PAUSED
    if outside_treatment(content, t, clock):
        start, _ = treatment_dates(content)
        return (OrderState.NOT_STARTED if start is not None
                and t < clock.instant(start, _MIDNIGHT) else OrderState.ENDED)
    return OrderState.ACTIVE


def not_to_give(content: OrderContent, t: datetime, clock: FacilityClock) -> bool:
    """Whether the order says not to give at `t`: discontinued, paused, or outside the
    treatment period. The scheduler, the ledger, the findings and the materialised plain
    parts all decide it so (tests/unit/test_order_state.py proves their fast forms equal)."""
    return order_state(content, t, clock) is not OrderState.ACTIVE


def first_known(versions: Sequence[OrderVersion]) -> datetime:
    """When the mirror first knew the order: the first recorded time of any version. A
    dose due before it is never missed (the home documented it elsewhere), per order."""
    return min(v.recorded_at for v in versions)


def _dates(c: OrderContent) -> Iterator[tuple[str, date | datetime | None]]:
    """Every date and instant of an order, by its field (relative to the order)."""
    yield "treatment_start_date", c.treatment_start
    yield "treatment_end_date", c.treatment_end
    yield "discontinue_time", c.discontinued_at
    for i, p in enumerate(c.pauses):
        yield f"pauses[{i}].start_time", p.start
        yield f"pauses[{i}].end_time", p.end
    if isinstance(c.dosage, StructuredDosage):
        for i, period in enumerate(c.dosage.periods):
            yield f"dosage.structured.periods[{i}].start_date", period.start_date
            yield f"dosage.structured.periods[{i}].end_date", period.end_date
    if isinstance(c.dosage, TimingDosage):
        for i, t in enumerate(c.dosage.steps):
            where = f"dosage.timing.then[{i - 1}]" if i else "dosage.timing"
            for name, value in (("bounds_start", t.bounds_start), ("bounds_end", t.bounds_end),
                                ("bounds_first_date", t.bounds_first_date),
                                ("bounds_last_date", t.bounds_last_date)):
                yield f"{where}.{name}", value
            for j, event in enumerate(t.events):
                yield f"{where}.events[{j}]", event


def bounds_violations(c: OrderContent, prefix: str) -> list[FieldViolation]:
    """Dates and instants outside what the service supports (medservice.domain.bounds)."""
    out: list[FieldViolation] = []
    for name, value in _dates(c):
        field = f"{prefix}.{name}"
        bad = (bounds.instant_violation(value, field) if isinstance(value, datetime)
               else bounds.date_violation(value, field) if value is not None else None)
        out += [bad] if bad else []
    return out


def validate_content(c: OrderContent, prefix: str, *, check_bounds: bool = True
                     ) -> list[FieldViolation]:
    """What is wrong with an order as a source sends it. `check_bounds` False only for
    what the mirror already holds: it was checked when it came in."""
    v: list[FieldViolation] = bounds_violations(c, prefix) if check_bounds else []
    if not c.order_id.strip():
        v.append(FieldViolation(f"{prefix}.name", "an order needs its source identifier"))
    elif len(c.order_id) > 63 or "/" in c.order_id:
        v.append(FieldViolation(f"{prefix}.name", "the order id must be at most 63 characters "
                                                   "without '/'"))
    if not c.drug.name.strip():
        v.append(FieldViolation(f"{prefix}.drug.name", "is required"))
    if (c.treatment_start and c.treatment_end and c.treatment_end < c.treatment_start):
        v.append(FieldViolation(f"{prefix}.treatment_end_date",
                                "is before the treatment start date"))
    if c.window_minutes is not None and not 1 <= c.window_minutes <= 24 * 60:
        v.append(FieldViolation(f"{prefix}.window_minutes", "must be between 1 and 1440"))
    for i, p in enumerate(c.pauses):
        if p.start and p.end and p.end <= p.start:
            v.append(FieldViolation(f"{prefix}.pauses[{i}].end_time", "must be after the start"))
    return v
