"""Proto <-> domain converters for facilities and residents. Bad input raises InvalidArgument
naming the request field."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from medservice.domain import names
from medservice.domain.access import Role
from medservice.domain.discrepancy import Severity
from medservice.domain.errors import FieldViolation, InvalidArgument, require
from medservice.domain.facility import (
    DEFAULT_TIME_ZONE,
    Facility,
    MedicationTimes,
    PnDayMode,
    Resident,
    Shift,
    TimingWindows,
    default_shifts,
)
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def clock_time(value: str, field: str, violations: list[FieldViolation]) -> time:
    try:
        if len(value) != 5 or value[2] != ":":
            raise ValueError
        return time.fromisoformat(value)
    except ValueError:
        violations.append(FieldViolation(field, "must be a clock time HH:MM"))
        return time(0, 0)


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


_PN_DAY_TO_PROTO = {
    PnDayMode.ROLLING_24_HOURS: fpb.PN_DAY_MODE_ROLLING_24_HOURS,
    PnDayMode.CALENDAR_DAY: fpb.PN_DAY_MODE_CALENDAR_DAY,
}
_PN_DAY_FROM_PROTO = {v: k for k, v in _PN_DAY_TO_PROTO.items()}


def facility_to_proto(f: Facility) -> fpb.Facility:
    m, w = f.medication_times, f.timing_windows
    return fpb.Facility(
        name=names.facility_name(f.facility_id),
        display_name=f.display_name,
        time_zone=f.time_zone,
        medication_times=fpb.MedicationTimes(
            morning=_hhmm(m.morning), noon=_hhmm(m.noon), evening=_hhmm(m.evening),
            night=_hhmm(m.night)),
        shifts=[fpb.Shift(shift_id=s.shift_id, display_name=s.display_name,
                          start_time=_hhmm(s.start), end_time=_hhmm(s.end)) for s in f.shifts],
        timing_windows=fpb.TimingWindows(
            time_critical_minutes=w.time_critical_minutes,
            more_than_daily_minutes=w.more_than_daily_minutes,
            daily_or_less_minutes=w.daily_or_less_minutes,
            late_documentation_minutes=w.late_documentation_minutes),
        pn_day_mode=_PN_DAY_TO_PROTO[f.pn_day_mode],
        alert_escalation_minutes=f.alert_escalation_minutes,
        pn_evaluation_minutes=f.pn_evaluation_minutes,
        create_time=timestamp(f.create_time),
        update_time=timestamp(f.update_time),
        etag=f.etag,
    )


def _medication_times(p: fpb.Facility, v: list[FieldViolation]) -> MedicationTimes:
    if not p.HasField("medication_times"):
        return MedicationTimes()
    m, d = p.medication_times, MedicationTimes()
    f = "facility.medication_times."
    return MedicationTimes(
        morning=clock_time(m.morning, f + "morning", v) if m.morning else d.morning,
        noon=clock_time(m.noon, f + "noon", v) if m.noon else d.noon,
        evening=clock_time(m.evening, f + "evening", v) if m.evening else d.evening,
        night=clock_time(m.night, f + "night", v) if m.night else d.night,
    )


def _shifts(p: fpb.Facility, v: list[FieldViolation]) -> tuple[Shift, ...]:
    if not p.shifts:
        return default_shifts()
    return tuple(
        Shift(s.shift_id, s.display_name or s.shift_id,
              clock_time(s.start_time, f"facility.shifts[{i}].start_time", v),
              clock_time(s.end_time, f"facility.shifts[{i}].end_time", v))
        for i, s in enumerate(p.shifts)
    )


def _windows(p: fpb.Facility) -> TimingWindows:
    w, d = p.timing_windows, TimingWindows()
    return TimingWindows(
        time_critical_minutes=w.time_critical_minutes or d.time_critical_minutes,
        more_than_daily_minutes=w.more_than_daily_minutes or d.more_than_daily_minutes,
        daily_or_less_minutes=w.daily_or_less_minutes or d.daily_or_less_minutes,
        late_documentation_minutes=w.late_documentation_minutes or d.late_documentation_minutes,
    )


def facility_fields(p: fpb.Facility) -> dict[str, Any]:
    """The writable fields of a proto facility as domain values; unset ones take defaults."""
    v: list[FieldViolation] = []
    fields: dict[str, Any] = {
        "display_name": p.display_name,
        "time_zone": p.time_zone or DEFAULT_TIME_ZONE,
        "medication_times": _medication_times(p, v),
        "shifts": _shifts(p, v),
        "timing_windows": _windows(p),
        "pn_day_mode": _PN_DAY_FROM_PROTO.get(p.pn_day_mode, PnDayMode.ROLLING_24_HOURS),
        "alert_escalation_minutes": p.alert_escalation_minutes or 15,
        "pn_evaluation_minutes": p.pn_evaluation_minutes or 120,
    }
    require(v)
    return fields


def facility_from_proto(p: fpb.Facility, facility_id: str) -> Facility:
    return Facility(facility_id=facility_id, **facility_fields(p))


def masked_patch(fields: dict[str, Any], mask: FieldMask, field: str = "update_mask"
                 ) -> dict[str, Any]:
    """The entries of `fields` named by the mask's top-level paths; all when the mask is
    empty. Unknown paths are refused, naming them."""
    if not mask.paths:
        return dict(fields)
    unknown = [p for p in mask.paths if p.split(".")[0] not in fields]
    if unknown:
        raise InvalidArgument([FieldViolation(field, f"unknown or read-only path {p!r}")
                               for p in unknown])
    return {p.split(".")[0]: fields[p.split(".")[0]] for p in mask.paths}


def resident_to_proto(r: Resident) -> fpb.Resident:
    return fpb.Resident(
        name=names.resident_name(r.facility_id, r.resident_id),
        person_id=r.person_id,
        display_name=r.display_name,
        room=r.room,
        create_time=timestamp(r.create_time),
        update_time=timestamp(r.update_time),
        etag=r.etag,
    )


def resident_from_proto(p: fpb.Resident, facility_id: str, resident_id: str) -> Resident:
    return Resident(resident_id=resident_id, facility_id=facility_id, person_id=p.person_id,
                    display_name=p.display_name, room=p.room)


def resident_fields(p: fpb.Resident) -> dict[str, Any]:
    return {"display_name": p.display_name, "room": p.room}


def decimal_field(value: str, field: str) -> Decimal | None:
    """A decimal string a caller sent, or None when empty."""
    if not value:
        return None
    try:
        d = Decimal(value)
        if not d.is_finite() or d < 0:
            raise InvalidOperation
        return d
    except InvalidOperation:
        raise InvalidArgument([FieldViolation(field, "must be a decimal number, such as 0.5")]
                              ) from None


# Severity <-> proto, for every service that shows one.
SEVERITY = {s: getattr(common_pb2, f"SEVERITY_{s.name}") for s in Severity}
SEVERITY_BACK = {v: k for k, v in SEVERITY.items()}

ROLE = {r: getattr(common_pb2, f"ROLE_{r.name}") for r in Role}
ROLE_BACK = {v: k for k, v in ROLE.items()}
