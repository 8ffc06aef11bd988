"""`medctl review list|decide|history`: the pharmacist's review of discrepancies."""

from __future__ import annotations

import argparse
import sys

import grpc

from clients.client import MedClient, MedServiceError
from clients.defaults import FacilityViews, facility_child, facility_of, facility_view
from clients.output import print_json, print_table
from clients.words import decision, discrepancy_status, enum_word, say, severity
from medservice.i18n import msg
from medservice.v1 import discrepancies_pb2 as pb

DECISIONS = {d.removeprefix("REVIEW_DECISION_").lower().replace("_", "-"): v
             for d, v in pb.ReviewDecision.items() if v}


def _state(d: pb.Discrepancy) -> str:
    state = say(discrepancy_status(d.status))
    if d.HasField("review"):
        state += f" ({say(decision(d.review.decision))})"
    return state


def review_list(client: MedClient, args: argparse.Namespace) -> int:
    parent = f"facilities/{args.facility}" if args.facility else "facilities/-"
    items = list(client.review_queue(parent))
    if args.json:
        print_json(items)
        return 0
    views = FacilityViews(client)  # times on each discrepancy's facility clock
    print_table([(severity(d.severity),
                  _state(d), pb.DiscrepancyCode.Name(d.code).removeprefix("DISCREPANCY_CODE_"),
                  views.of(d.name).local_text(d.occurrence_time), d.resident, d.name)
                 for d in items],
                (msg("cli.col.severity"), msg("cli.col.state"), msg("cli.col.code"),
                 msg("cli.col.occurred"), msg("report.resident"), msg("cli.col.discrepancy")))
    return 0


def review_decide(client: MedClient, args: argparse.Namespace) -> int:
    """Decide with the etag given, else with the one read now: a review that crossed
    another's is refused, never overwrites it."""
    args.name = facility_child(args.name, args.facility, "discrepancies", "name")
    etag = args.etag or client.get_discrepancy(args.name).etag
    try:
        done = client.review_discrepancy(args.name, DECISIONS[args.decision], args.note,
                                         etag)
    except MedServiceError as e:
        if e.code != grpc.StatusCode.ABORTED:
            raise
        print(f"medctl: {say(msg('cli.review.changed', name=args.name))}", file=sys.stderr)
        return 1
    if args.json:
        print_json([done])
    else:
        print(say(msg("cli.review.done", name=done.name,
                      decision=decision(done.review.decision))))
    return 0


def review_history(client: MedClient, args: argparse.Namespace) -> int:
    args.name = facility_child(args.name, args.facility, "discrepancies", "name")
    events = list(client.discrepancy_events(args.name))
    if args.json:
        print_json(events)
        return 0
    facility = facility_view(client, facility_of(args.name))
    print_table([(facility.local_text(e.event_time, "%Y-%m-%d %H:%M:%S"),
                  enum_word("event", e.kind, ""), e.actor, e.detail) for e in events],
                (msg("cli.col.time"), msg("cli.col.event"), msg("cli.col.by"),
                 msg("cli.col.detail")))
    return 0


def add_review_commands(top: argparse._SubParsersAction) -> None:
    review = top.add_parser("review", help="the pharmacist's review of discrepancies")
    sub = review.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="the review queue: open first, then by severity")
    p.add_argument("--facility", help="one facility (default: every facility you may see)")
    p.set_defaults(handler=review_list)
    p = sub.add_parser("decide", help="record a decision on a discrepancy")
    p.add_argument("name", help="facilities/F/discrepancies/D, or D with --facility")
    p.add_argument("--facility")
    p.add_argument("--decision", required=True, choices=sorted(DECISIONS))
    p.add_argument("--note", default="")
    p.add_argument("--etag", help="the etag you reviewed (default: the current one)")
    p.set_defaults(handler=review_decide)
    p = sub.add_parser("history", help="what happened to a discrepancy, oldest first")
    p.add_argument("name", help="facilities/F/discrepancies/D, or D with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=review_history)
