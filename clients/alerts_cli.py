"""`medctl alerts watch|list|ack`: the shift lead's live console and the alert log."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError
from clients.defaults import FacilityView, facility_child, facility_of, facility_view
from clients.output import print_json
from medservice.v1 import alerts_pb2 as pb
from medservice.v1 import common_pb2

_KIND = {pb.ALERT_KIND_MISSED_DOSE: "MISSED DOSE", pb.ALERT_KIND_DISCREPANCY: "DISCREPANCY",
         pb.ALERT_KIND_ESCALATION: "ESCALATION"}
AUDIENCES = {"shift-lead": common_pb2.ROLE_SHIFT_LEAD,
             "pharmacist": common_pb2.ROLE_PHARMACIST}
# Errors after which reconnecting cannot help: tell the user and stop.
_FINAL = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
          grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
          grpc.StatusCode.OUT_OF_RANGE}


def _time(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")


def alert_line(a: pb.Alert, facility: FacilityView) -> str:
    """One alert, its time on the facility's clock with the zone (as its text's times)."""
    shift = f" [{a.shift_id} {a.shift_date}]" if a.shift_id else ""
    severity = common_pb2.Severity.Name(a.severity).removeprefix("SEVERITY_").lower()
    resident = a.resident.rsplit("/", 1)[-1] if a.resident else "-"
    return (f"{facility.local_text(a.create_time, '%Y-%m-%d %H:%M:%S')}  "
            f"{_KIND.get(a.kind, '?'):<11}  {severity:<6}  "
            f"{resident:<10}{shift}  {a.summary}  ({a.name})")


def _show(a: pb.Alert, facility: FacilityView, as_json: bool, suffix: str = "") -> None:
    if as_json:
        print_json([a])
    else:
        print(alert_line(a, facility) + suffix, flush=True)


def _say(text: str) -> None:
    """A line about the connection: on stderr, so stdout holds alerts only."""
    print(f"medctl: {text}", file=sys.stderr, flush=True)


def watch(client: MedClient, args: argparse.Namespace) -> int:
    """Print alerts as they come. On a broken stream, reconnect with the last resume token
    (kept in --token-file across restarts too): nothing missed, nothing shown twice."""
    token_file = Path(args.token_file) if args.token_file else None
    token = token_file.read_text().strip() if token_file and token_file.exists() else ""
    facility = facility_view(client, args.facility)
    whose = f"for {args.audience}" if args.audience else "for your role"
    seen: set[str] = set()
    delay = 0.5
    attempt = 0  # streams opened
    while True:
        try:
            opened = False
            for event in client.watch_alerts(args.facility, token,
                                             AUDIENCES.get(args.audience or "", 0)):
                delay = 0.5
                if not opened:  # the service's first message: the watch stands
                    opened, attempt = True, attempt + 1
                    where = ("from now" if not token else "resuming after the last alert "
                             "shown" if attempt > 1 else "resuming from --token-file")
                    _say(f"{'reconnected' if attempt > 1 else 'connected'} to {args.target}:"
                         f" alerts of {args.facility} {whose}, {where} (times "
                         f"{facility.zone.key})")
                if event.HasField("alert") and event.alert.name not in seen:
                    seen.add(event.alert.name)
                    _show(event.alert, facility, args.json)
                token = event.resume_token
                if token_file is not None:
                    token_file.write_text(token)
                if args.count and len(seen) >= args.count:
                    return 0
            return 0  # the server ended the stream
        except grpc.RpcError as e:
            error = MedServiceError.from_rpc_error(e)
            if error.code in _FINAL:
                if error.code == grpc.StatusCode.OUT_OF_RANGE:
                    print("medctl: the resume token is too old; use `medctl alerts list`",
                          file=sys.stderr)
                raise error from None
            _say(f"connection lost ({error.code.name}); reconnecting in {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def list_alerts(client: MedClient, args: argparse.Namespace) -> int:
    facility = facility_view(client, args.facility)
    for a in client.list_alerts(args.facility, unacknowledged_only=args.open,
                                audience=AUDIENCES.get(args.audience or "", 0)):
        ack = f"  acknowledged by {a.acknowledged_by}" if a.acknowledged else ""
        _show(a, facility, args.json, ack)
    return 0


def ack(client: MedClient, args: argparse.Namespace) -> int:
    a = client.acknowledge_alert(facility_child(args.name, args.facility, "alerts", "name"))
    if args.json:
        print_json([a])
    else:
        print(f"acknowledged by {a.acknowledged_by}: "
              f"{alert_line(a, facility_view(client, facility_of(a.name)))}")
    return 0


def add_alert_commands(top: argparse._SubParsersAction) -> None:
    alerts = top.add_parser("alerts", help="missed-dose and discrepancy alerts")
    sub = alerts.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("watch", help="a live console; reconnects and resumes on its own")
    p.add_argument("--facility", required=True)
    p.add_argument("--audience", choices=sorted(AUDIENCES),
                   help="default: the token's role")
    p.add_argument("--token-file", help="keep the resume token here, to resume after a "
                   "restart")
    p.add_argument("--count", type=int, default=0, help="exit after this many alerts")
    p.set_defaults(handler=watch)
    p = sub.add_parser("list", help="the alert log, newest first")
    p.add_argument("--facility", required=True)
    p.add_argument("--audience", choices=sorted(AUDIENCES))
    p.add_argument("--open", action="store_true", help="only unacknowledged alerts")
    p.set_defaults(handler=list_alerts)
    p = sub.add_parser("ack", help="acknowledge an alert")
    p.add_argument("name", help="facilities/F/alerts/A, or A with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=ack)
