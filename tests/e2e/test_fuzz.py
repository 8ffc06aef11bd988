"""Fuzzing every RPC of medservice.v1 with requests built from their descriptors (issue 13).

Each request message is generated field by field from its descriptor: extreme integers,
timestamps with out-of-range seconds or nanos, unknown enum numbers, odd strings, dates at
the ends of the calendar, and resource names biased towards a seeded facility so that the
calls get past the name checks and reach the use cases. Each call is made with a token of a
role the method admits (probed), so it reaches the servicer. The service must never answer
INTERNAL or UNKNOWN (those are for real faults), every INVALID_ARGUMENT must carry a
BadRequest field violation, and a request carrying an unknown enum number, an instant
outside the supported range or a string with a NUL character anywhere must be refused
with INVALID_ARGUMENT naming each such field: every field is validated before use.

Bounded: derandomized, EXAMPLES per RPC, no shrinking; all bad replies are collected and
reported together, per RPC, with the first request that showed each kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MethodDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from medservice.domain.access import Role
from medservice.server import SERVICE_NAMES
from medservice.v1 import common_pb2 as common
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture, token_for

EXAMPLES = 80  # per RPC; about 36 RPCs
MAX_DEPTH = 7  # Order > Dosage > StructuredDosage > DosagePeriod > DosageDay > DosageDose > ...

# The instants the service supports (medservice.domain.bounds): [1900-01-01, 9000-01-01).
SUPPORTED_FROM = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())
SUPPORTED_UNTIL = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp())
BASE = int(datetime(2026, 1, 15, tzinfo=UTC).timestamp())  # near the seeded card

F = "facilities/f"
R1 = f"{F}/residents/r1"
CARD = f"{R1}/medicineCard"
ORDER = f"{R1}/orders/para"
PN_ORDER = f"{R1}/orders/pn"


def _methods() -> Iterator[MethodDescriptor]:
    """Every method of every service the server serves (a new service is fuzzed too)."""
    for name in SERVICE_NAMES:
        yield from descriptor_pool.Default().FindServiceByName(name).methods


# Strategies -----------------------------------------------------------------------------

INT32 = [0, 1, -1, 2, 7, 24, 60, 100, 1440, 10_000, 2**31 - 1, -(2**31)]
INT64 = [*INT32, 2**53, 2**63 - 1, -(2**63)]
UINT = [0, 1, 2, 100, 2**32 - 1]

_SECONDS = st.one_of(
    st.integers(BASE - 90 * 86400, BASE + 90 * 86400),
    st.sampled_from([
        0, -62135596800, -62135596801,  # 0001-01-01T00:00Z and just before
        253402300799, 253402300800,  # 9999-12-31T23:59:59Z and just after
        253402214400,  # 9999-12-31T00:00Z
        -2208988800, -2208988801,  # 1900-01-01T00:00Z and just before
        SUPPORTED_UNTIL - 1, SUPPORTED_UNTIL,
        2**63 - 1, -(2**63)]))
_NANOS = st.one_of(st.integers(0, 999_999_999),
                   st.sampled_from([0, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31)]))
TIMESTAMPS = st.builds(Timestamp, seconds=_SECONDS, nanos=_NANOS)

ODD = ["", " ", "x", "\x00", "ø", "💊", "a" * 300, "../etc", "%s", "null", "-1",
       "facilities/", "facilities//residents/r1", f"{ORDER}/x", " facilities/f",
       "Facilities/F", f"{R1}/orders/" + "o" * 300]
NAMES = [F, "facilities/-", R1, CARD, ORDER, PN_ORDER,
         f"{F}/discrepancies/" + "0" * 32, f"{F}/alerts/1", f"{R1}/administrations/none"]
DATES = ["2026-01-15", "2026-03-01", "0001-01-01", "0001-01-02", "9999-12-31", "9999-12-30",
         "1899-12-31", "1900-01-01", "8999-12-31", "9000-01-01", "2026-02-30", "26-1-1", ""]
CLOCKS = ["08:00", "12:30", "23:59", "24:00", "7:00", "", "08:00:00"]
DECIMALS = ["1", "2", "0.5", "0", "-1", "NaN", "Infinity", "1e999999", "1E+999999999",
            "0.0000000000000000000000001", "abc", ""]
BY_FIELD: dict[str, list[str]] = {
    "facility": [F] * 4, "resident": [R1] * 4, "order": [ORDER, PN_ORDER] * 2,
    "name": NAMES, "parent": NAMES, "record": NAMES, "discrepancy": NAMES,
    "shift_id": ["day", "evening", "night", "nope"], "time_zone": [
        "Europe/Copenhagen", "UTC", "Mars/Base", "America/St_Johns"],
    "dose_id": ["", "0", "para:2026-01-15T07:00:00Z"],
    "facility_id": ["g", "h", ""], "resident_id": ["r2", "r3", ""],
    "display_name": ["Home", "A"], "drug_id": ["id-paracetamol", "id-morfin"],
    "paths": ["display_name", "pn_day_mode", "room", "time_zone", "shifts",
              "timing_windows", "bogus", "a.b"],
    "acknowledged_reasons": ["NOT_DUE", "UNKNOWN_DRUG", "bogus"],
}
CLOCK_FIELDS = {"morning", "noon", "evening", "night", "clock_time", "time_of_day",
                "start_time", "end_time"}
DECIMAL_FIELDS = {"quantity", "min_quantity", "max_quantity", "period", "bounds_duration",
                  "max_dose_quantity"}


def _pool(field: FieldDescriptor) -> list[str]:
    n = field.name
    if n in BY_FIELD:
        return BY_FIELD[n]
    if n == "date" or n.endswith("_date"):
        return DATES
    if n in CLOCK_FIELDS:
        return CLOCKS
    if n in DECIMAL_FIELDS:
        return DECIMALS
    return []


def _string(field: FieldDescriptor) -> st.SearchStrategy[str]:
    odd = st.one_of(st.sampled_from(ODD), st.text(max_size=12))
    pool = _pool(field)
    if not pool:
        return odd
    # Mostly the well-formed values of the field, so that the call gets past it.
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(pool), odd)


def _enum_type(field: FieldDescriptor) -> EnumDescriptor:
    assert field.enum_type is not None
    return field.enum_type


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None
    return field.message_type


def _enum(field: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in _enum_type(field).values]
    return st.one_of(st.sampled_from(known), st.sampled_from(known),
                     st.sampled_from([9, 42, 77, -1, 2**31 - 1, -(2**31)]))


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        return message_strategy(_message_type(field), depth + 1)
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    if t == FieldDescriptor.TYPE_STRING:
        return _string(field)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.sampled_from([b"", b"<x/>", b"{}", b"[]", b"\xff\xfe", b"null",
                                          b'{"resourceType": "Bundle"}']),
                         st.binary(max_size=40))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
             FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(INT32), st.integers(-10, 100))
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64,
             FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(INT64), st.integers(-10, 100))
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32,
             FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.sampled_from(UINT)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    raise AssertionError(f"no strategy for field type {t} of {field.full_name}")


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """A value of the field, or None (left unset) about one time in four: set more often
    than not, so that a call gets past the fields it requires."""
    one = _scalar(field, depth)
    if field.is_repeated:
        return st.lists(one, max_size=3 if depth < 3 else 1)
    return st.one_of(st.none(), one, one, one)


def message_strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of the type with any subset of their fields set to generated values."""
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == Timestamp.DESCRIPTOR.full_name:
        return TIMESTAMPS
    if depth > MAX_DEPTH:
        return st.just(cls())
    fields = {f.name: _field(f, depth) for f in descriptor.fields}

    def build(values: dict[str, Any]) -> Message:
        msg = cls()
        for name, value in values.items():
            if value is None:
                continue
            f = descriptor.fields_by_name[name]
            if f.is_repeated:
                target = getattr(msg, name)
                for item in value:
                    if f.type == FieldDescriptor.TYPE_MESSAGE:
                        target.add().CopyFrom(item)
                    else:
                        target.append(item)
            elif f.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries(fields).map(build)


# The oracle -------------------------------------------------------------------------------


def invalid_fields(msg: Message, prefix: str = "") -> list[str]:
    """Paths of the fields no service could accept: an unknown enum number, an instant
    outside the supported range or with nanos outside 0..999,999,999, or a string with a
    NUL character (which PostgreSQL cannot store)."""
    out: list[str] = []
    for f, value in msg.ListFields():
        items = list(enumerate(value)) if f.is_repeated \
            else [(None, value)]
        for i, item in items:
            path = f"{prefix}{f.name}" + (f"[{i}]" if i is not None else "")
            if f.type == FieldDescriptor.TYPE_ENUM:
                if _enum_type(f).values_by_number.get(item) is None:
                    out.append(path)
            elif f.type == FieldDescriptor.TYPE_STRING:
                if "\x00" in item:
                    out.append(path)
            elif f.type == FieldDescriptor.TYPE_MESSAGE:
                if isinstance(item, Timestamp):
                    if not (SUPPORTED_FROM <= item.seconds < SUPPORTED_UNTIL
                            and 0 <= item.nanos <= 999_999_999):
                        out.append(path)
                else:
                    out += invalid_fields(item, path + ".")
    return out


def _violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    fields: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


class Caller:
    """Calls one method by its descriptor with raw bytes out, as any client would."""

    def __init__(self, channel: grpc.Channel, method: MethodDescriptor) -> None:
        path = f"/{method.containing_service.full_name}/{method.name}"
        self.streaming = method.server_streaming
        if self.streaming:
            self._stream = channel.unary_stream(
                path, request_serializer=lambda m: m.SerializeToString())
        else:
            self._unary = channel.unary_unary(
                path, request_serializer=lambda m: m.SerializeToString())

    def __call__(self, request: Message, token: str
                 ) -> tuple[grpc.StatusCode, grpc.RpcError | None]:
        metadata = (("authorization", f"Bearer {token}"),)
        try:
            if self.streaming:  # the first message (replay or heartbeat) is enough
                call = self._stream(request, metadata=metadata, timeout=10)
                try:
                    next(iter(call), None)
                finally:
                    call.cancel()
            else:
                self._unary(request, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            return e.code(), e
        return grpc.StatusCode.OK, None


def verdict(code: grpc.StatusCode, error: grpc.RpcError | None, request: Message
            ) -> tuple[str, str] | None:
    """What is wrong with this reply to this request, as (kind, the field concerned);
    None when nothing is."""
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return code.name, ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "no answer within 10 s", ""
    if code == grpc.StatusCode.INVALID_ARGUMENT and error is not None \
            and not _violations(error):
        return "INVALID_ARGUMENT without a field violation", ""
    bad = invalid_fields(request)
    if not bad or code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return None
    if code != grpc.StatusCode.INVALID_ARGUMENT:
        return f"{code.name} to an invalid field", bad[0]
    named = set(_violations(error)) if error is not None else set()
    missed = [b for b in bad if b not in named]
    return ("INVALID_ARGUMENT not naming an invalid field", missed[0]) if missed else None


ROLE_ORDER = (Role.ADMIN, Role.INTEGRATION, Role.PHARMACIST, Role.SHIFT_LEAD, Role.CARER)


def _admitted_role(caller: Caller, request: Message, subject: str) -> Role:
    """The first role (administrator first) the method admits: the role check comes before
    anything else, so an empty request tells."""
    for role in ROLE_ORDER:
        code, _ = caller(request, token_for(role, subject=subject))
        if code != grpc.StatusCode.PERMISSION_DENIED:
            return role
    raise AssertionError("no role reaches the method")


def _seed(server: ServerFixture) -> None:
    """Facility f with resident r1 and a card of two orders, the names the fuzz aims at."""
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111", display_name="A",
                                            room="1"), "r1")
    integration = server.client(Role.INTEGRATION, "f")
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=CARD, card_version=1, orders=[
            order(R1, "para", "Paracetamol", morning_evening("2")),
            order(R1, "pn", "Morfin", structured(
                [dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)] * 2),
                mode=common.DISPENSING_MODE_STAFF_POURED)]),
        valid_time=ts(CARD_VALID_FROM)))
    carer = server.client(Role.CARER, "f")
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, record=rpb.AdministrationRecord(
            order=PN_ORDER, outcome=rpb.ADMINISTRATION_OUTCOME_PN_GIVEN, quantity="5",
            pn_reason="pain")))


Problems = dict[str, dict[str, tuple[int, str]]]  # method -> kind -> (count, first request)


def _fuzz(method: MethodDescriptor, caller: Caller, token: str, problems: Problems) -> None:
    """EXAMPLES generated requests of the method; bad replies are counted by kind, the first
    request of each kind kept."""

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(message_strategy(method.input_type))
    def fuzz(request: Message) -> None:
        code, error = caller(request, token)
        found = verdict(code, error, request)
        if found is not None:
            kind, field = found
            count, first = problems[method.name].get(kind, (0, f"{field} in {request}"[:400]))
            problems[method.name][kind] = (count + 1, first)

    fuzz()


@pytest.mark.timeout(600)
def test_no_request_gets_an_internal_error_or_is_accepted_when_invalid(
        server: ServerFixture) -> None:
    _seed(server)
    channel = grpc.insecure_channel(server.target)
    problems: Problems = defaultdict(dict)
    try:
        for method in _methods():
            caller = Caller(channel, method)
            empty = message_factory.GetMessageClass(method.input_type)()
            # A caller per method: each stays within the per-caller rate (test_edge.py)
            # while the fuzz runs as fast as the server answers.
            subject = f"fuzz-{method.name}"
            token = token_for(_admitted_role(caller, empty, subject), subject=subject)

            _fuzz(method, caller, token, problems)
    finally:
        channel.close()
    by_kind: dict[str, int] = defaultdict(int)
    for kinds in problems.values():
        for kind, (count, _) in kinds.items():
            by_kind[kind] += count
    report = "\n".join(
        f"{name}:\n" + "\n".join(f"  {kind} x{count}: {first!r}"
                                  for kind, (count, first) in kinds.items())
        for name, kinds in sorted(problems.items()))
    assert not problems, (
        f"{sum(by_kind.values())} bad replies on {len(problems)} RPCs "
        f"({', '.join(f'{k}: {n}' for k, n in sorted(by_kind.items()))}):\n{report}")
