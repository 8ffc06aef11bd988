"""`medctl card changes`, `medctl card approve`: the clinical changes of a facility's
medicine cards waiting for a nurse's or shift lead's approval (issue 16)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict

from clients.client import MedClient, MedServiceError
from clients.words import say
from medservice.i18n import msg
from medservice.v1 import medicine_cards_pb2 as cpb


def _since(change: cpb.CardChange) -> str:
    at = change.detect_time.ToDatetime(tzinfo=UTC).astimezone(ZoneInfo(change.time_zone))
    return f"{at:%d-%m-%Y %H:%M}"


def _show(change: cpb.CardChange) -> None:
    stop = f"  ({say(msg('cli.change.stops_doses'))})" if change.stops_doses else ""
    print(f"{change.name}")
    print(f"  {change.drug_name}: {', '.join(change.aspects_da)}{stop}")
    print(f"  {say(msg('cli.change.before', value=change.before))}")
    print(f"  {say(msg('cli.change.after', value=change.after))}")
    print(f"  {say(msg('cli.change.since', at=_since(change), zone=change.time_zone))}; "
          f"etag {change.etag}")


def changes(client: MedClient, args: argparse.Namespace) -> int:
    resident = f"facilities/{args.facility}/residents/{args.resident}" if args.resident else ""
    items = list(client.list_card_changes(args.facility, resident))
    if args.json:
        for c in items:
            print(json.dumps(MessageToDict(c, preserving_proto_field_name=True),
                             ensure_ascii=False))
        return 0
    if not items:
        print(say(msg("cli.change.none_waiting")))
    for c in items:
        _show(c)
    return 0


def approve(client: MedClient, args: argparse.Namespace) -> int:
    """Approve a change. Without --etag, the change is read first and what is approved is
    printed: the approval still fails if the change moves on in between."""
    etag = args.etag
    if not etag:
        facility = args.name.split("/")[1] if args.name.startswith("facilities/") else ""
        resident = args.name.split("/orders/")[0]
        found = next((c for c in client.list_card_changes(facility, resident)
                      if c.name == args.name), None)
        if found is None:
            raise MedServiceError(grpc.StatusCode.NOT_FOUND,
                                  "no such change waiting for approval",
                                  "CARD_CHANGE_NOT_FOUND")
        _show(found)
        etag = found.etag
    done = client.approve_card_change(args.name, etag)
    at = done.approve_time.ToDatetime(tzinfo=UTC).astimezone(ZoneInfo(done.time_zone))
    print(say(msg("cli.change.approved", name=done.name, who=done.approved_by,
                  at=f"{at:%d-%m-%Y %H:%M}", zone=done.time_zone)))
    return 0


def add_card_change_commands(card: argparse._SubParsersAction) -> None:
    p = card.add_parser("changes", help="clinical card changes waiting for approval")
    p.add_argument("--facility", required=True)
    p.add_argument("--resident", help="only this resident's (its id)")
    p.set_defaults(handler=changes)
    p = card.add_parser("approve", help="approve a clinical card change (nurse, shift lead)")
    p.add_argument("name", help="facilities/F/residents/R/orders/O/changes/N")
    p.add_argument("--etag", help="the etag as read (default: read it now and show the change)")
    p.set_defaults(handler=approve)
