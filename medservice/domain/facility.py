"""Facilities and residents: the settings that make a facility's clock and its rounds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.i18n import DEFAULT_LANGUAGE, LANGUAGES

DEFAULT_TIME_ZONE = "Europe/Copenhagen"

# Indications that say nothing about why a drug is given (the inspection checks of the
# medicine card, domain/card_checks.py). A facility may set its own list; compared whole,
# after card_checks.normalise_indication: "for smerter" is vague, "for smerter i knæet" not.
DEFAULT_VAGUE_INDICATIONS: tuple[str, ...] = (
    "for smerter", "mod smerter", "ved smerter", "smerter",
    "ved behov", "efter behov", "pn", "p.n.",
    "efter aftale", "ifølge aftale", "iflg. aftale", "som aftalt",
    "se journal", "se notat", "ukendt", "andet", "diverse",
)
MAX_VAGUE_TERMS = 200
MAX_VAGUE_TERM_LENGTH = 100


class PnDayMode(Enum):
    """How a PN "day" is counted for daily maximums (DOMAIN.md §3)."""

    ROLLING_24_HOURS = "rolling_24_hours"
    CALENDAR_DAY = "calendar_day"


@dataclass(frozen=True)
class MedicationTimes:
    """Clock times of the named dose times (DOMAIN.md §5)."""

    morning: time = time(8, 0)
    noon: time = time(12, 0)
    evening: time = time(18, 0)
    night: time = time(22, 0)


@dataclass(frozen=True)
class Shift:
    """A shift; one that ends at or before its start runs past midnight."""

    shift_id: str
    display_name: str
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


def default_shifts() -> tuple[Shift, ...]:
    # Staff read the names (Danish first, issue 15); APIs and medctl take the ids.
    return (
        Shift("day", "Dag", time(7, 0), time(15, 0)),
        Shift("evening", "Aften", time(15, 0), time(23, 0)),
        Shift("night", "Nat", time(23, 0), time(7, 0)),
    )


@dataclass(frozen=True)
class TimingWindows:
    """Half-widths of dose windows in minutes (DOMAIN.md §6, ISMP 2011)."""

    time_critical_minutes: int = 30
    more_than_daily_minutes: int = 60
    daily_or_less_minutes: int = 120
    late_documentation_minutes: int = 240


@dataclass(frozen=True)
class Facility:
    facility_id: str
    display_name: str
    time_zone: str = DEFAULT_TIME_ZONE
    medication_times: MedicationTimes = field(default_factory=MedicationTimes)
    shifts: tuple[Shift, ...] = field(default_factory=default_shifts)
    timing_windows: TimingWindows = field(default_factory=TimingWindows)
    pn_day_mode: PnDayMode = PnDayMode.ROLLING_24_HOURS
    alert_escalation_minutes: int = 15
    # A PN dose's effect must be evaluated within this (issue 16; default 2 hours).
    pn_evaluation_minutes: int = 120
    # Indications the inspection checks call vague (issue 16; default the Danish list).
    vague_indication_terms: tuple[str, ...] = DEFAULT_VAGUE_INDICATIONS
    # A clinical card change not approved within this is overdue (issue 16; default a day).
    approval_overdue_minutes: int = 1440
    # The language of the texts staff read (issue 15): "da" (default) or "en"; a caller may
    # ask for another per call (accept-language).
    language: str = DEFAULT_LANGUAGE
    create_time: datetime | None = None
    update_time: datetime | None = None
    etag: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def shift(self, shift_id: str) -> Shift | None:
        return next((s for s in self.shifts if s.shift_id == shift_id), None)


@dataclass(frozen=True)
class Resident:
    resident_id: str
    facility_id: str
    person_id: str
    display_name: str
    room: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None
    etag: str = ""


_ID_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PERSON_ID_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})-?(\d{4})$")
MAX_NAME_LENGTH = 200


def validate_resource_id(value: str, field_name: str) -> list[FieldViolation]:
    if not _ID_RE.match(value):
        return [
            FieldViolation(
                field_name,
                "must be 1-63 lowercase letters, digits or hyphens, not starting or ending "
                "with a hyphen",
            )
        ]
    return []


def normalise_person_id(value: str) -> str:
    """Return the CPR-style identifier as ten digits, or raise InvalidArgument.

    Checks the form and that the first six digits are a real date (DDMMYY). The modulus-11
    check is deliberately not applied: CPR numbers issued since 2007 need not satisfy it.
    The message never repeats the value: it is a person identifier.
    """
    m = _PERSON_ID_RE.match(value.strip())
    if m is None:
        raise InvalidArgument(
            [FieldViolation("person_id", "must be ten digits, as DDMMYY-SSSS or DDMMYYSSSS")]
        )
    day, month = int(m.group(1)), int(m.group(2))
    year = 2000 + int(m.group(3))  # any leap-year-correct century will do for the day check
    try:
        datetime(year if not (month == 2 and day == 29) else 2000, month, day)
    except ValueError:
        raise InvalidArgument(
            [FieldViolation("person_id", "the first six digits must be a date, DDMMYY")]
        ) from None
    return "".join(m.groups())


def validate_time_zone(value: str, field_name: str = "time_zone") -> list[FieldViolation]:
    if value not in _known_zones():
        return [FieldViolation(field_name, "is not a known IANA time zone")]
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return [FieldViolation(field_name, "is not a known IANA time zone")]
    return []


_ZONES: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _ZONES  # a read-only cache of the zone database, not configuration
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def validate_facility(f: Facility, prefix: str = "facility") -> list[FieldViolation]:
    """Every problem with a facility's fields, each naming its field."""
    v: list[FieldViolation] = []
    if not f.display_name.strip():
        v.append(FieldViolation(f"{prefix}.display_name", "is required"))
    elif len(f.display_name) > MAX_NAME_LENGTH:
        v.append(FieldViolation(f"{prefix}.display_name", "is longer than 200 characters"))
    v += validate_time_zone(f.time_zone, f"{prefix}.time_zone")
    if not f.shifts:
        v.append(FieldViolation(f"{prefix}.shifts", "at least one shift is required"))
    seen: set[str] = set()
    for i, s in enumerate(f.shifts):
        if s.shift_id in seen:
            v.append(FieldViolation(f"{prefix}.shifts[{i}].shift_id", "is used twice"))
        seen.add(s.shift_id)
        v += validate_resource_id(s.shift_id, f"{prefix}.shifts[{i}].shift_id")
        if s.start == s.end:
            v.append(FieldViolation(f"{prefix}.shifts[{i}].end_time", "must differ from start"))
    v += _validate_shift_cover(f.shifts, f"{prefix}.shifts")
    w = f.timing_windows
    for name in ("time_critical_minutes", "more_than_daily_minutes", "daily_or_less_minutes",
                 "late_documentation_minutes"):
        value = getattr(w, name)
        if not 1 <= value <= 24 * 60:
            v.append(FieldViolation(f"{prefix}.timing_windows.{name}",
                                    "must be between 1 and 1440 minutes"))
    if not 1 <= f.alert_escalation_minutes <= 24 * 60:
        v.append(FieldViolation(f"{prefix}.alert_escalation_minutes",
                                "must be between 1 and 1440 minutes"))
    # At most a day: reconciliation looks a day around a record (engine.context_range).
    if not 1 <= f.pn_evaluation_minutes <= 24 * 60:
        v.append(FieldViolation(f"{prefix}.pn_evaluation_minutes",
                                "must be between 1 and 1440 minutes"))
    v += _validate_vague_terms(f.vague_indication_terms, f"{prefix}.vague_indication_terms")
    if not 1 <= f.approval_overdue_minutes <= 7 * 24 * 60:
        v.append(FieldViolation(f"{prefix}.approval_overdue_minutes",
                                "must be between 1 and 10080 minutes (a week)"))
    if f.language not in LANGUAGES:
        v.append(FieldViolation(f"{prefix}.language",
                                f"must be one of {', '.join(LANGUAGES)}"))
    return v


def _validate_vague_terms(terms: tuple[str, ...], field_name: str) -> list[FieldViolation]:
    if len(terms) > MAX_VAGUE_TERMS:
        return [FieldViolation(field_name, f"at most {MAX_VAGUE_TERMS} terms")]
    for i, term in enumerate(terms):
        if not any(c.isalnum() for c in term):
            return [FieldViolation(f"{field_name}[{i}]", "must have letters or digits")]
        if len(term) > MAX_VAGUE_TERM_LENGTH:
            return [FieldViolation(f"{field_name}[{i}]",
                                   f"is longer than {MAX_VAGUE_TERM_LENGTH} characters")]
    return []


def _validate_shift_cover(shifts: tuple[Shift, ...], field_name: str) -> list[FieldViolation]:
    """Shifts must not overlap: every dose instant belongs to at most one shift."""
    minutes = [0] * (24 * 60)
    for s in shifts:
        start = s.start.hour * 60 + s.start.minute
        end = s.end.hour * 60 + s.end.minute
        if end <= start:
            end += 24 * 60
        for m in range(start, end):
            minutes[m % (24 * 60)] += 1
    if any(c > 1 for c in minutes):
        return [FieldViolation(field_name, "shifts overlap")]
    return []


def validate_resident(r: Resident, prefix: str = "resident") -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if not r.display_name.strip():
        v.append(FieldViolation(f"{prefix}.display_name", "is required"))
    elif len(r.display_name) > MAX_NAME_LENGTH:
        v.append(FieldViolation(f"{prefix}.display_name", "is longer than 200 characters"))
    if len(r.room) > 50:
        v.append(FieldViolation(f"{prefix}.room", "is longer than 50 characters"))
    return v
