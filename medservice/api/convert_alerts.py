"""Proto <-> domain for alerts."""

from __future__ import annotations

import json

from google.protobuf import json_format

from medservice.api import convert
from medservice.api.convert import timestamp
from medservice.domain import names
from medservice.domain.access import Role
from medservice.domain.alerts import (
    Alert,
    AlertKind,
)
from medservice.domain.webhooks import WebhookSubscription, check_audience, check_endpoint
from medservice.i18n import localised
from medservice.service.webhooks import SubscriptionView
from medservice.v1 import alerts_pb2 as pb

_KIND = {k: getattr(pb, f"ALERT_KIND_{k.name}") for k in AlertKind}


def alert_to_proto(a: Alert) -> pb.Alert:
    base = names.facility_name(a.facility_id)
    return pb.Alert(
        name=f"{base}/alerts/{a.alert_id}", position=a.position, kind=_KIND[a.kind],
        audience=convert.ROLE[a.audience], shift_id=a.shift_id, shift_date=a.shift_date,
        discrepancy=f"{base}/discrepancies/{a.discrepancy_id}" if a.discrepancy_id else "",
        resident=names.resident_name(a.facility_id, a.resident_id) if a.resident_id else "",
        severity=convert.SEVERITY[a.severity], summary=localised(a.message, a.summary),
        create_time=timestamp(a.created_at), acknowledged=a.acknowledged_at is not None,
        acknowledged_by=a.acknowledged_by, acknowledge_time=timestamp(a.acknowledged_at),
        escalates=f"{base}/alerts/{a.escalates}" if a.escalates else "")


def subscription_to_proto(view: SubscriptionView) -> pb.WebhookSubscription:
    """A subscription with its delivery state; the secret only when the view carries it
    (a create's answer)."""
    s, state = view.subscription, view.state
    base = names.facility_name(s.facility_id)
    return pb.WebhookSubscription(
        name=names.webhook_subscription_name(s.facility_id, s.subscription_id),
        audience=convert.ROLE[s.audience], url=s.url, secret=view.secret,
        create_time=timestamp(s.created_at),
        last_delivered_alert=(f"{base}/alerts/{state.last_delivered_alert}"
                              if state.last_delivered_alert else ""),
        last_delivery_time=timestamp(state.last_delivered_at),
        failing_since=timestamp(state.failing_since), last_error=state.last_error,
        failed_attempts=state.attempts,
        next_attempt_time=timestamp(state.next_attempt_at if state.attempts else None),
        delivered_position=state.position, pending_alerts=view.pending)


def subscription_from_proto(message: pb.WebhookSubscription, *, allow_http_localhost: bool
                            ) -> tuple[Role, str]:
    """The audience and URL asked for, checked (field paths as in the create request)."""
    audience = check_audience(convert.enum_value(
        message, "audience", convert.ROLE_BACK, path="webhook_subscription.audience"),
        "webhook_subscription.audience")
    check_endpoint(message.url, allow_http_localhost=allow_http_localhost,
                   field="webhook_subscription.url")
    return audience, message.url


def webhook_body(subscription: WebhookSubscription, alert: Alert) -> bytes:
    """What a receiver gets: the subscription's name and the alert as the HTTP API shows
    it (proto3 JSON), so there is one contract."""
    return json.dumps({
        "subscription": names.webhook_subscription_name(subscription.facility_id,
                                                        subscription.subscription_id),
        "alert": json_format.MessageToDict(alert_to_proto(alert)),
    }, separators=(",", ":"), sort_keys=True).encode()
