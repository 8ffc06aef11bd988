"""`medctl record-offline FILE --facility F`: send what was documented on paper during an
outage (the emergency list) as RecordDoses, in parts, retried safely.

The file is JSON lines, one record a line (blank lines and lines starting with # are
skipped):

    {"resident": "r1", "order": "para", "outcome": "given", "quantity": "1",
     "route": "oral", "time": "2026-03-01T08:05:00+01:00"}

- resident: a resident id of the facility, or its full name; order: an order id of the
  resident (or its full name), or drug_id, or dose_id (its id or name);
- outcome: given, not-given or pn-given; quantity (a decimal string) when given;
  reason (refused, clinical-hold, drug-unavailable, resident-absent, other) and
  reason_text when not given; pn_reason for a PN dose; route; source (pouch, poured);
- time: when it was given, a calendar date and a time of day on the facility's clock:
  "05-12-2026 14:30" (or another date medctl reads: 2026-12-05, 05.12.2026, 05/12/2026),
  or ISO 8601 ("2026-12-05T14:30", with its UTC offset if it has one). Paper from an
  outage is often typed in a day later, so a time with no date ("14:30"), a date with no
  time, or a date relative to the day the file is sent ("i går 22:00") is refused: the
  line would land on the wrong day, and the same file sent on two days would name two
  records. A local time in the hour the clock skips in spring moves on by the gap; one
  the autumn night repeats is its first occurrence;
- ack: the check reasons acknowledged (["WRONG_DOSE"]), for a dose given although a check
  would have said STOP;
- request_id: optional. Without one the line's content names it (a UUID derived from the
  line's fields), so sending the same file again records nothing twice; two identical
  lines are then one record (give them request_ids if the same dose really was given
  twice).

Prints one line per record, by its line number (recorded, or why not), and exits 0 when
all were recorded, 3 when any was not, 2 when the file cannot be read (one line naming the
line and the field).
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from clients.client import MedClient
from clients.defaults import UsageError, facility_view, parse_instant
from clients.output import print_object
from clients.words import say
from medservice.i18n import msg
from medservice.v1 import rounds_pb2 as pb

_OUTCOMES = {"given": pb.ADMINISTRATION_OUTCOME_GIVEN,
             "not-given": pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
             "pn-given": pb.ADMINISTRATION_OUTCOME_PN_GIVEN}
_REASONS = {r.removeprefix("NOT_GIVEN_REASON_").lower().replace("_", "-"): v
            for r, v in pb.NotGivenReason.items() if v}
_SOURCES = {"pouch": pb.DOSE_SOURCE_POUCH, "poured": pb.DOSE_SOURCE_POURED}
_FIELDS = {"resident", "order", "drug_id", "dose_id", "outcome", "quantity", "route", "time",
           "reason", "reason_text", "pn_reason", "source", "ack", "request_id"}
# Names the request_id of a line without one: uuid5 of its content under this namespace.
_NAMESPACE = uuid.UUID("6f1c8f55-0c8e-4e37-9d51-6a2f5f0e1a16")
# A calendar date (year first or last, - . or / between) and a time of day, with seconds,
# fraction and offset as ISO 8601 allows: what a line's time must be.
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})[T ]\d{1,2}[:.]\d{2}"
                    r"([:.]\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


class LineError(UsageError):
    """A line of the file that cannot be sent: its number and what is wrong (medctl
    prints it as one line and exits 2)."""


def _name(value: str, prefix: str) -> str:
    return value if "/" in value else f"{prefix}/{value}"


def item_from_line(line: dict[str, Any], facility_id: str, number: int, zone: ZoneInfo,
                   today: date) -> pb.RecordDoseRequest:
    """One line of the file as a RecordDose request; its local times on the facility's
    clock (`zone`, `today` there)."""
    def fail(what: str) -> LineError:
        return LineError(f"line {number}: {what}")

    if not isinstance(line, dict):
        raise fail("is not a JSON object")
    unknown = sorted(set(line) - _FIELDS)
    if unknown:
        raise fail("unknown field " + ", ".join(unknown))
    text = {k: v for k, v in line.items() if k != "ack"}
    if any(not isinstance(v, str) for v in text.values()):
        raise fail("every field but ack is a string")
    if not line.get("resident"):
        raise fail("resident is required")
    resident = _name(line["resident"], f"facilities/{facility_id}/residents")
    outcome = _OUTCOMES.get(line.get("outcome", ""))
    if outcome is None:
        raise fail("outcome must be one of " + ", ".join(_OUTCOMES))
    if not line.get("time"):
        raise fail("time is required")
    if not _DATED.fullmatch(line["time"].strip()):
        raise fail(f"time {line['time']!r} needs its calendar date and time of day, "
                   "e.g. 05-12-2026 14:30 or 2026-12-05T14:30")
    try:
        at = parse_instant(line["time"], zone, today, f"line {number}: time")
    except UsageError as e:
        raise LineError(str(e)) from None
    ack = line.get("ack", [])
    if not isinstance(ack, list) or any(not isinstance(a, str) for a in ack):
        raise fail("ack is a list of reason codes")
    reason = line.get("reason", "")
    if reason and reason not in _REASONS:
        raise fail("reason must be one of " + ", ".join(_REASONS))
    source = line.get("source", "")
    if source and source not in _SOURCES:
        raise fail("source must be pouch or poured")
    when = Timestamp()
    when.FromDatetime(at)
    record = pb.AdministrationRecord(
        order=_name(line["order"], f"{resident}/orders") if line.get("order") else "",
        drug_id=line.get("drug_id", ""),
        dose_id=line.get("dose_id", ""), outcome=outcome, quantity=line.get("quantity", ""),
        route=line.get("route", ""), administration_time=when,
        not_given_reason=_REASONS.get(reason, pb.NOT_GIVEN_REASON_UNSPECIFIED),
        reason_text=line.get("reason_text", ""), pn_reason=line.get("pn_reason", ""),
        source=_SOURCES.get(source, pb.DOSE_SOURCE_UNSPECIFIED))
    item = pb.RecordDoseRequest(parent=resident, record=record)
    # Acknowledgements are left out of the derived id: a line sent again with the reason
    # acknowledged, after the service asked for it, is the same record.
    item.request_id = line.get("request_id") or str(uuid.uuid5(
        _NAMESPACE, item.SerializeToString(deterministic=True).hex()))
    item.acknowledged_reasons.extend(ack)
    return item


def read_items(path: str, facility_id: str, zone: ZoneInfo, today: date
               ) -> list[tuple[int, pb.RecordDoseRequest]]:
    """The file's records, each with its line number (times as item_from_line reads
    them)."""
    items = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as e:
                raise LineError(f"line {number}: not JSON ({e.msg})") from None
            items.append((number, item_from_line(line, facility_id, number, zone, today)))
    return items


def _why(status: Any) -> str:
    info = error_details_pb2.ErrorInfo()
    bad = error_details_pb2.BadRequest()
    reason = next((info.reason for d in status.details if d.Unpack(info)), "")
    fields = [f"{v.field}: {v.description}" for d in status.details if d.Unpack(bad)
              for v in bad.field_violations]
    return f"{reason or status.code}: " + ("; ".join(fields) or status.message)


def record_offline(client: MedClient, args: argparse.Namespace) -> int:
    facility = facility_view(client, args.facility)  # its clock reads the file's times
    items = read_items(args.file, args.facility, facility.zone, facility.today())
    results = client.record_doses(args.facility, [item for _, item in items],
                                  chunk=args.chunk)
    failed = 0
    for (i, _), r in zip(items, results, strict=True):
        if args.json:
            failed += r.status.code != 0
            print_object({"line": i, "recorded": r.status.code == 0,
                          "record": r.response.record.name,
                          "discrepancies": list(r.response.discrepancies),
                          "error": _why(r.status) if r.status.code else ""})
        elif r.status.code == 0:
            print(f"{i}: {say(msg('cli.recorded', name=r.response.record.name))}")
            for name in r.response.discrepancies:
                print(f"{i}:   {say(msg('cli.discrepancy', name=name))}")
        else:
            failed += 1
            print(f"{i}: {say(msg('cli.offline.not_recorded', why=_why(r.status)))}")
    if not args.json:
        print(say(msg("cli.offline.summary", recorded=len(results) - failed,
                      total=len(items))))
    return 3 if failed else 0


def add_offline_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("record-offline",
                       help="send records documented on paper during an outage (JSON lines)")
    p.add_argument("file", help="one record a line, as JSON (see medctl's docs)")
    p.add_argument("--facility", required=True)
    p.add_argument("--chunk", type=int, default=200, help="records per call (default 200)")
    p.set_defaults(handler=record_offline)
