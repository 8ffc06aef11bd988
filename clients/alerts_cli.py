"""`medctl alerts watch|list|ack`: the shift lead's live console and the alert log;
`medctl webhooks create|list|get|delete`: an administrator's webhook subscriptions."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError
from clients.defaults import FacilityView, facility_child, facility_of, facility_view
from clients.output import print_json
from clients.words import decimal_text, enum_word, role, say, severity
from medservice.i18n import msg
from medservice.v1 import alerts_pb2 as pb
from medservice.v1 import common_pb2

AUDIENCES = {"shift-lead": common_pb2.ROLE_SHIFT_LEAD,
             "pharmacist": common_pb2.ROLE_PHARMACIST}
# Errors after which reconnecting cannot help: tell the user and stop.
_FINAL = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
          grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
          grpc.StatusCode.OUT_OF_RANGE}


def alert_line(a: pb.Alert, facility: FacilityView) -> str:
    """One alert, its time on the facility's clock with the zone (as its text's times)."""
    shift = f" [{a.shift_id} {a.shift_date}]" if a.shift_id else ""
    kind = say(enum_word("alert", pb.AlertKind.Name(a.kind), "ALERT_KIND_")).upper()
    resident = a.resident.rsplit("/", 1)[-1] if a.resident else "-"
    return (f"{facility.local_text(a.create_time, '%Y-%m-%d %H:%M:%S')}  "
            f"{kind:<14}  {say(severity(a.severity)):<6}  "
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
    whose = msg("cli.watch.for_role", role=role(AUDIENCES[args.audience])) if args.audience \
        else msg("cli.watch.for_your_role")
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
                    where = msg("cli.watch.from_now" if not token else
                                "cli.watch.resuming" if attempt > 1 else
                                "cli.watch.resuming_file")
                    _say(say(msg("cli.watch.reconnected" if attempt > 1 else
                                 "cli.watch.connected", target=args.target,
                                 facility=args.facility, whose=whose, where=where,
                                 zone=facility.zone.key)))
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
                    print(f"medctl: {say(msg('cli.watch.token_too_old'))}", file=sys.stderr)
                raise error from None
            _say(say(msg("cli.watch.lost", code=error.code.name,
                         seconds=decimal_text(f"{delay:g}"))))
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def list_alerts(client: MedClient, args: argparse.Namespace) -> int:
    facility = facility_view(client, args.facility)
    for a in client.list_alerts(args.facility, unacknowledged_only=args.open,
                                audience=AUDIENCES.get(args.audience or "", 0)):
        ack = f"  {say(msg('cli.alert.acknowledged_by', who=a.acknowledged_by))}" \
            if a.acknowledged else ""
        _show(a, facility, args.json, ack)
    return 0


def ack(client: MedClient, args: argparse.Namespace) -> int:
    a = client.acknowledge_alert(facility_child(args.name, args.facility, "alerts", "name"))
    if args.json:
        print_json([a])
    else:
        print(f"{say(msg('cli.alert.acknowledged_by', who=a.acknowledged_by))}: "
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


def _webhook_lines(s: pb.WebhookSubscription, facility: FacilityView) -> list[str]:
    """A subscription and how its delivery stands, times on the facility's clock with its
    zone; the secret only when the server shows it (the create's answer)."""
    def _time(ts: Timestamp) -> str:
        return facility.local_text(ts, "%Y-%m-%d %H:%M:%S")

    if s.HasField("failing_since"):
        state = msg("cli.webhook.failing", since=_time(s.failing_since), error=s.last_error,
                    attempts=s.failed_attempts, next=_time(s.next_attempt_time))
    elif s.pending_alerts:
        state = msg("cli.webhook.delivering")
    else:
        state = msg("cli.webhook.caught_up")
    last = msg("cli.webhook.last", alert=s.last_delivered_alert.rsplit("/", 1)[-1],
               at=_time(s.last_delivery_time)) if s.last_delivered_alert \
        else msg("cli.webhook.none_delivered")
    lines = [f"{s.name}  {say(role(s.audience))}  {s.url}",
             f"  {say(msg('cli.webhook.state', state=state, pending=s.pending_alerts, last=last))}"]
    if s.secret:
        lines.append(f"  {say(msg('cli.webhook.secret', secret=s.secret))}")
    return lines


def webhook_create(client: MedClient, args: argparse.Namespace) -> int:
    secret = Path(args.secret_file).read_text().strip() if args.secret_file else ""
    s = client.call(client.alerts.CreateWebhookSubscription,
                    pb.CreateWebhookSubscriptionRequest(
                        parent=f"facilities/{args.facility}",
                        webhook_subscription=pb.WebhookSubscription(
                            audience=AUDIENCES[args.audience], url=args.url, secret=secret),
                        request_id=str(uuid.uuid4())))
    _print_webhooks([s], facility_view(client, args.facility), args.json)
    return 0


def _print_webhooks(subscriptions: list[pb.WebhookSubscription], facility: FacilityView,
                    as_json: bool) -> None:
    if as_json:
        print_json(subscriptions)
        return
    for s in subscriptions:
        print("\n".join(_webhook_lines(s, facility)))


def webhook_list(client: MedClient, args: argparse.Namespace) -> int:
    token = ""
    facility = facility_view(client, args.facility)
    while True:
        page = client.call(client.alerts.ListWebhookSubscriptions,
                           pb.ListWebhookSubscriptionsRequest(
                               parent=f"facilities/{args.facility}", page_token=token))
        _print_webhooks(list(page.webhook_subscriptions), facility, args.json)
        token = page.next_page_token
        if not token:
            return 0


def webhook_get(client: MedClient, args: argparse.Namespace) -> int:
    name = facility_child(args.name, args.facility, "webhookSubscriptions", "name")
    s = client.call(client.alerts.GetWebhookSubscription,
                    pb.GetWebhookSubscriptionRequest(name=name))
    _print_webhooks([s], facility_view(client, facility_of(name)), args.json)
    return 0


def webhook_delete(client: MedClient, args: argparse.Namespace) -> int:
    client.call(client.alerts.DeleteWebhookSubscription,
                pb.DeleteWebhookSubscriptionRequest(name=args.name,
                                                    request_id=str(uuid.uuid4())))
    print(say(msg("cli.webhook.deleted", name=args.name)))
    return 0


def add_webhook_commands(top: argparse._SubParsersAction) -> None:
    hooks = top.add_parser("webhooks", help="alerts POSTed to a care system (administrators)")
    sub = hooks.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("create", help="subscribe an https:// endpoint; prints the secret once")
    p.add_argument("--facility", required=True)
    p.add_argument("--audience", choices=sorted(AUDIENCES), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--secret-file", help="the signing secret to use (default: the server "
                   "makes one)")
    p.set_defaults(handler=webhook_create)
    p = sub.add_parser("list", help="the facility's subscriptions and their state")
    p.add_argument("--facility", required=True)
    p.set_defaults(handler=webhook_list)
    p = sub.add_parser("get", help="one subscription and its state")
    p.add_argument("name", help="facilities/F/webhookSubscriptions/S, or S with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=webhook_get)
    p = sub.add_parser("delete", help="stop delivering")
    p.add_argument("name", help="facilities/F/webhookSubscriptions/S")
    p.set_defaults(handler=webhook_delete)
