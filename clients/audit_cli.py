"""`medctl audit list`: the audit trail, newest first (pharmacists and administrators)."""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToJson

from clients.client import MedClient
from clients.defaults import FacilityView, facility_view, resident_name
from clients.output import print_table
from clients.words import role
from medservice.i18n import Msg, msg
from medservice.v1 import audit_pb2 as pb

MAX_PAGE_SIZE = 500
HEADER = (msg("cli.col.time"), msg("cli.col.subject"), msg("cli.col.role"), msg("cli.col.method"),
          msg("cli.col.resource"), msg("cli.col.request_id"), msg("cli.col.outcome"))


def _instant(value: str) -> datetime:
    """ISO date or date-time; without a zone it is local time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(value)


def _row(e: pb.AuditEvent, facility: FacilityView | None) -> tuple[str | Msg, ...]:
    """One event; its time on the facility's clock with the zone when the list is of one
    facility, else in UTC, said so."""
    method = e.method.rsplit(".", 1)[-1]  # "/medservice.v1.RoundService/X" -> "RoundService/X"
    when = (facility.local_text(e.event_time, "%Y-%m-%d %H:%M:%S") if facility is not None
            else e.event_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return (when, e.subject, role(e.role), method, e.resource or "-", e.request_id or "-",
            e.outcome)


def audit_list(client: MedClient, args: argparse.Namespace) -> int:
    parent = f"facilities/{args.facility}" if args.facility else "facilities/-"
    resident = resident_name(args.resident, args.facility) if args.resident else ""
    events = list(itertools.islice(client.audit_events(
        parent, subject=args.subject or "", resident=resident, method=args.method or "",
        since=args.since, page_size=min(args.limit, MAX_PAGE_SIZE)), args.limit))
    if args.json:
        for e in events:
            print(MessageToJson(e, indent=None, preserving_proto_field_name=True))
    else:
        facility = facility_view(client, args.facility) if args.facility else None
        print_table([_row(e, facility) for e in events], HEADER)
    return 0


def add_audit_commands(top: argparse._SubParsersAction) -> None:
    audit = top.add_parser("audit", help="the audit trail (pharmacists, administrators)")
    sub = audit.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="events newest first")
    p.add_argument("--facility", help="facility id (default: every facility of the token)")
    p.add_argument("--subject", help="only this caller (the token's subject)")
    p.add_argument("--resident", help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--method", help="e.g. RecordDose, RoundService/RecordDose or the full name")
    p.add_argument("--since", type=_instant, help="ISO date or time, e.g. 2026-11-23T08:00")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many (50)")
    p.set_defaults(handler=audit_list)
