"""Proto <-> domain converters for facilities and residents, and the one timestamp and one
enum converter every servicer uses. Bad input raises InvalidArgument naming the request
field.

`check_request` is the first thing done with every request (the `rpc` decorators call it):
it refuses, naming each field, any Timestamp outside the supported range or with nanos out
of range, any enum number the API does not define and any string holding a NUL character,
wherever in the request they are, so no later conversion, arithmetic or store meets one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from medservice.domain import bounds, names
from medservice.domain.access import Role
from medservice.domain.discrepancy import Severity
from medservice.domain.errors import FieldViolation, InvalidArgument, require
from medservice.domain.facility import (
    DEFAULT_TIME_ZONE,
    DEFAULT_VAGUE_INDICATIONS,
    Facility,
    MedicationTimes,
    PnDayMode,
    Resident,
    Shift,
    TimingWindows,
    default_shifts,
)
from medservice.i18n import DEFAULT_LANGUAGE
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


T = TypeVar("T")
D = TypeVar("D")


def from_timestamp(ts: Timestamp, field: str) -> datetime:
    """An instant a caller sent, as an aware UTC datetime; refused outside the supported
    range (medservice.domain.bounds)."""
    require([v for v in [bounds.timestamp_violation(ts.seconds, ts.nanos, field)] if v])
    return ts.ToDatetime(tzinfo=UTC)


def instant(message: Message, field: str, default: D, *, path: str | None = None
            ) -> datetime | D:
    """The Timestamp field `field` of `message`, or `default` when unset. `path` names it in
    a violation when the message is not the request itself (e.g. "record.")."""
    if not message.HasField(field):
        return default
    return from_timestamp(getattr(message, field), path or field)


def required_instants(message: Message, *fields: str) -> list[datetime]:
    """The Timestamp fields named, each of which must be set."""
    require([FieldViolation(f, "is required") for f in fields if not message.HasField(f)])
    return [from_timestamp(getattr(message, f), f) for f in fields]


def _enum(fd: FieldDescriptor) -> EnumDescriptor:
    enum = fd.enum_type
    assert enum is not None, fd.full_name  # called for enum fields only
    return enum


def _unknown_enum(fd: FieldDescriptor, number: int, field: str) -> FieldViolation | None:
    """A violation when `number` is not one of the values the field's enum defines."""
    enum = _enum(fd)
    if enum.values_by_number.get(number) is not None:
        return None
    allowed = ", ".join(v.name for v in enum.values)
    return FieldViolation(field, f"{number} is not a value of {enum.name}: one of {allowed}")


def enum_value(message: Message, field: str, mapping: Mapping[Any, T], *,
               path: str | None = None) -> T | None:
    """The domain value of the enum field `field` of `message`: None when unspecified (0);
    refused, naming the field, when the number is not one the API defines or not one that
    `mapping` accepts here."""
    number: int = getattr(message, field)
    name = path or field
    fd = cast(FieldDescriptor, message.DESCRIPTOR.fields_by_name[field])  # upb's or not
    require([v for v in [_unknown_enum(fd, number, name)] if v])
    if number == 0:
        return None
    if number not in mapping:
        value = _enum(fd).values_by_number[number].name
        raise InvalidArgument([FieldViolation(name, f"{value} is not accepted here")])
    return mapping[number]


def request_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Every Timestamp out of range, every unknown enum number and every string with a NUL
    character in `message`, at any depth, each named by its path (e.g.
    "card.orders[2].dispensing_mode")."""
    out: list[FieldViolation] = []
    for fd, value in message.ListFields():
        items = list(enumerate(value)) if fd.is_repeated else [(None, value)]
        for i, item in items:
            path = prefix + fd.name + (f"[{i}]" if i is not None else "")
            if fd.type == FieldDescriptor.TYPE_ENUM:
                bad = _unknown_enum(fd, item, path)
                out += [bad] if bad else []
            elif fd.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                # No text means it, and PostgreSQL cannot store it (request ids, notes, ...).
                out.append(FieldViolation(path, "must not contain the NUL character"))
            elif isinstance(item, Timestamp):
                bad = bounds.timestamp_violation(item.seconds, item.nanos, path)
                out += [bad] if bad else []
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                out += request_violations(item, path + ".")
    return out


def check_request(message: Message) -> None:
    """Refuse the request when any field holds what no conversion can take (see above)."""
    require(request_violations(message))


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
        vague_indication_terms=list(f.vague_indication_terms),
        approval_overdue_minutes=f.approval_overdue_minutes,
        language=f.language,
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
        "pn_day_mode": enum_value(p, "pn_day_mode", _PN_DAY_FROM_PROTO,
                                  path="facility.pn_day_mode") or PnDayMode.ROLLING_24_HOURS,
        "alert_escalation_minutes": p.alert_escalation_minutes or 15,
        "pn_evaluation_minutes": p.pn_evaluation_minutes or 120,
        "vague_indication_terms": tuple(p.vague_indication_terms) or DEFAULT_VAGUE_INDICATIONS,
        "approval_overdue_minutes": p.approval_overdue_minutes or 1440,
        "language": p.language or DEFAULT_LANGUAGE,
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
