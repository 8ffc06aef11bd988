"""AlertService: watch (replay, then live, with heartbeats), list and acknowledge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import empty_pb2

from medservice.alerts.feed import AlertFeed
from medservice.api import convert
from medservice.api.convert import timestamp
from medservice.api.convert_alerts import (
    alert_to_proto,
    subscription_from_proto,
    subscription_to_proto,
)
from medservice.api.rpc import (
    Authenticate,
    Clock,
    principal_from_interceptor,
    rpc,
    rpc_stream,
    run_idempotent,
)
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.alerts import (
    ResumePoint,
    resume_token,
)
from medservice.domain.errors import FieldViolation, InvalidArgument, ResourceExhausted
from medservice.domain.webhooks import WebhookSubscription
from medservice.service import alerts as uc
from medservice.service import webhooks as webhooks_uc
from medservice.service.paging import read_page
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.v1 import alerts_pb2 as pb
from medservice.v1 import alerts_pb2_grpc

WATCHERS = (Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)
_SERVICE = "/medservice.v1.AlertService/"





def _audience(principal: Principal, request: pb.WatchAlertsRequest | pb.ListAlertsRequest
              ) -> Role | None:
    """The audience asked for; unspecified means the caller's own (an administrator: all)."""
    role = convert.enum_value(request, "audience", convert.ROLE_BACK)
    if role is None:
        return None if principal.role is Role.ADMIN else principal.role
    if role not in (Role.SHIFT_LEAD, Role.PHARMACIST):
        raise InvalidArgument([FieldViolation("audience", "alerts are for shift_lead or "
                                              "pharmacist")])
    uc.may_watch(principal, role)
    return role


def _parse_alert_name(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "facilities" or parts[2] != "alerts" or not all(parts):
        raise InvalidArgument([FieldViolation("name", "must be facilities/{facility}/alerts/"
                                              "{alert}")])
    return parts[1], parts[3]


class Slots:
    """At most `limit` concurrent watch streams: each holds a server thread."""

    def __init__(self, limit: int) -> None:
        self._sem = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_use = 0  # read by the metrics

    def take(self) -> bool:
        if not self._sem.acquire(blocking=False):
            return False
        with self._lock:
            self.in_use += 1
        return True

    def give(self) -> None:
        with self._lock:
            self.in_use -= 1
        self._sem.release()


class AlertServicer(alerts_pb2_grpc.AlertServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, feed: AlertFeed, *,
                 heartbeat_seconds: float = 10.0, max_watchers: int = 200,
                 authenticate: Authenticate = principal_from_interceptor,
                 delivered: Callable[[float], None] | None = None,
                 webhook_allow_http_localhost: bool = False) -> None:
        self._uow = uow
        self._allow_http = webhook_allow_http_localhost
        self._clock = clock
        self.authenticate = authenticate
        self._feed = feed
        self._heartbeat = heartbeat_seconds
        self._slots = Slots(max_watchers)
        self._delivered = delivered or (lambda seconds: None)  # alert age at hand-over

    @property
    def open_watchers(self) -> int:
        return self._slots.in_use

    @rpc_stream(*WATCHERS)
    def WatchAlerts(self, request: pb.WatchAlertsRequest, context: Any,
                    principal: Principal) -> Iterator[pb.WatchAlertsResponse]:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        audience = _audience(principal, request)
        with self._uow(write=False) as uow:
            position = uc.watch_from(uow, facility_id, request.resume_token)
        if not self._slots.take():
            raise ResourceExhausted("too many alert watchers on this replica; try another "
                                    "or later", reason="TOO_MANY_WATCHERS")
        ended = threading.Event()

        def on_end() -> None:  # the client went away or the server is stopping
            ended.set()
            self._feed.poke(facility_id)

        context.add_callback(on_end)
        try:
            for event in uc.watch(self._uow, self._feed, facility_id, audience, position,
                                  self._heartbeat, ended):
                token = resume_token(ResumePoint(facility_id, event.position))
                if event.alert is None:
                    yield pb.WatchAlertsResponse(
                        heartbeat=pb.Heartbeat(time=timestamp(self._clock())),
                        resume_token=token)
                else:
                    self._delivered((self._clock() - event.alert.created_at).total_seconds())
                    yield pb.WatchAlertsResponse(alert=alert_to_proto(event.alert),
                                                 resume_token=token)
        finally:
            self._slots.give()

    @rpc(*WATCHERS)
    def ListAlerts(self, request: pb.ListAlertsRequest, context: Any,
                   principal: Principal) -> pb.ListAlertsResponse:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        audience = _audience(principal, request)
        page = read_page(request.page_size, request.page_token, {
            "parent": request.parent, "audience": audience.value if audience else "",
            "unacknowledged_only": request.unacknowledged_only})
        with self._uow(write=False) as uow:
            shown, token = uc.list_alerts(uow, facility_id, audience,
                                          request.unacknowledged_only, page)
        return pb.ListAlertsResponse(alerts=[alert_to_proto(a) for a in shown],
                                     next_page_token=token)

    @rpc(*WATCHERS)
    def AcknowledgeAlert(self, request: pb.AcknowledgeAlertRequest, context: Any,
                         principal: Principal) -> pb.Alert:
        facility_id, alert_id = _parse_alert_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> pb.Alert:
            return alert_to_proto(uc.acknowledge_alert(uow, principal, facility_id,
                                                       alert_id, now))

        return run_idempotent(self._uow, principal, _SERVICE + "AcknowledgeAlert", request,
                              request.request_id, pb.Alert, work, now)

    # -- webhooks (administrators) --------------------------------------------------------

    @rpc(Role.ADMIN)
    def CreateWebhookSubscription(self, request: pb.CreateWebhookSubscriptionRequest,
                                  context: Any, principal: Principal
                                  ) -> pb.WebhookSubscription:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        audience, url = subscription_from_proto(request.webhook_subscription,
                                                allow_http_localhost=self._allow_http)
        now = self._clock()
        draft = WebhookSubscription(facility_id, "", audience, url, now)

        def work(uow: UnitOfWork) -> pb.WebhookSubscription:
            return subscription_to_proto(webhooks_uc.create_subscription(
                uow, facility_id, draft, request.webhook_subscription.secret, now))

        return run_idempotent(self._uow, principal, _SERVICE + "CreateWebhookSubscription",
                              request, request.request_id, pb.WebhookSubscription, work, now)

    @rpc(Role.ADMIN)
    def ListWebhookSubscriptions(self, request: pb.ListWebhookSubscriptionsRequest,
                                 context: Any, principal: Principal
                                 ) -> pb.ListWebhookSubscriptionsResponse:
        facility_id = names.parse_facility_name(request.parent, "parent")
        principal.require_facility(facility_id)
        page = read_page(request.page_size, request.page_token, {"parent": request.parent})
        with self._uow(write=False) as uow:
            shown, token = webhooks_uc.list_subscriptions(uow, facility_id, page)
        return pb.ListWebhookSubscriptionsResponse(
            webhook_subscriptions=[subscription_to_proto(v) for v in shown],
            next_page_token=token)

    @rpc(Role.ADMIN)
    def GetWebhookSubscription(self, request: pb.GetWebhookSubscriptionRequest,
                               context: Any, principal: Principal
                               ) -> pb.WebhookSubscription:
        facility_id, subscription_id = names.parse_webhook_subscription_name(request.name)
        principal.require_facility(facility_id)
        with self._uow(write=False) as uow:
            return subscription_to_proto(webhooks_uc.get_subscription(
                uow, facility_id, subscription_id))

    @rpc(Role.ADMIN)
    def DeleteWebhookSubscription(self, request: pb.DeleteWebhookSubscriptionRequest,
                                  context: Any, principal: Principal) -> empty_pb2.Empty:
        facility_id, subscription_id = names.parse_webhook_subscription_name(request.name)
        principal.require_facility(facility_id)
        now = self._clock()

        def work(uow: UnitOfWork) -> empty_pb2.Empty:
            webhooks_uc.delete_subscription(uow, facility_id, subscription_id)
            return empty_pb2.Empty()

        return run_idempotent(self._uow, principal, _SERVICE + "DeleteWebhookSubscription",
                              request, request.request_id, empty_pb2.Empty, work, now)
