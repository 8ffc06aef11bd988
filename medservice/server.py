"""Assembling and running the gRPC server."""

from __future__ import annotations

import errno
import gc
import signal
import socket
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from medservice.alerts.feed import AlertFeed
from medservice.alerts.listener import PgListener
from medservice.alerts.webhooks import HttpPoster, WebhookDispatcher, holder_id
from medservice.api.alerts import AlertServicer
from medservice.api.audit import AuditServicer
from medservice.api.audit_capture import pending_audit
from medservice.api.auth import TokenVerifier
from medservice.api.cards import MedicineCardServicer
from medservice.api.convert_alerts import webhook_body
from medservice.api.discrepancies import DiscrepancyServicer
from medservice.api.facilities import FacilityServicer
from medservice.api.limits import CallRates, RequestSizes
from medservice.api.reports import ReportServicer
from medservice.api.rounds import RoundServicer
from medservice.api.rpc import CallInterceptor, Clock, utc_now
from medservice.heap import HeapKeeper
from medservice.service.sweeper import Sweeper
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.service.webhooks import DeliveryTerms
from medservice.settings import Settings, development_secret
from medservice.store.audit import AuditAppender
from medservice.store.db import make_engine
from medservice.store.uow import uow_factory
from medservice.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    discrepancies_pb2,
    discrepancies_pb2_grpc,
    facilities_pb2,
    facilities_pb2_grpc,
    medicine_cards_pb2,
    medicine_cards_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    rounds_pb2,
    rounds_pb2_grpc,
)
from medservice.web.app import HttpApi
from medservice.web.metrics import Metrics, watch_metrics
from medservice.web.openapi import openapi_document
from medservice.web.routes import api_routes
from medservice.web.server import HttpListenError, HttpServer, add_internal_port, start_http

if TYPE_CHECKING:
    from medservice.reports.ahead import EmergencyListWriter

log = structlog.get_logger("medservice.server")
SQLITE_WORKERS_POLL_SECONDS = 0.5

SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in [
        (facilities_pb2, "FacilityService"),
        (medicine_cards_pb2, "MedicineCardService"),
        (rounds_pb2, "RoundService"),
        (discrepancies_pb2, "DiscrepancyService"),
        (alerts_pb2, "AlertService"),
        (audit_pb2, "AuditService"),
        (reports_pb2, "ReportService"),
    ]
)


def make_verifier(settings: Settings) -> TokenVerifier:
    if settings.jwt_public_key_files:
        verifier = TokenVerifier.from_key_files(
            settings.jwt_public_key_files, settings.jwt_issuer, settings.jwt_audience)
        if settings.jwt_secret:  # both may be configured during a key migration
            return TokenVerifier(settings.jwt_secret, verifier.public_keys,
                                 settings.jwt_issuer, settings.jwt_audience)
        return verifier
    return TokenVerifier(hmac_secret=development_secret(settings), issuer=settings.jwt_issuer,
                         audience=settings.jwt_audience)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    feed: AlertFeed
    sweeper: Sweeper
    listener: PgListener | None = None
    emergency_lists: EmergencyListWriter | None = None
    metrics: Metrics | None = None
    http: HttpServer | None = None
    webhooks: WebhookDispatcher | None = None
    audit: AuditAppender | None = None

    @property
    def http_port(self) -> int:
        return self.http.port if self.http is not None else 0

    def stop(self, grace: float | None = None) -> None:
        """Graceful: health goes NOT_SERVING first, then calls drain for `grace` seconds."""
        self.health.enter_graceful_shutdown()
        if self.http is not None:
            self.http.begin_stop()  # no new HTTP connections; calls in flight finish
        self.sweeper.shutdown()
        if self.webhooks is not None:
            self.webhooks.close()
        if self.emergency_lists is not None:
            self.emergency_lists.shutdown()
        stopped = self.server.stop(grace)
        self.feed.close()  # wakes the watch streams, which then end
        stopped.wait()
        if self.http is not None:
            self.http.join((grace or 0) + 5)
        if self.listener is not None:
            self.listener.close()
        if self.audit is not None:
            self.audit.close()  # after the calls: the last reads' events are written


def build_server(
    settings: Settings,
    uow: UnitOfWorkFactory,
    verifier: TokenVerifier,
    clock: Clock = utc_now,
    extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
    engine: Engine | None = None,
) -> RunningServer:
    """Start a server with every service on settings.listen, and its HTTP/JSON face on
    settings.http_listen unless that is empty. `extra_handlers` go on the same stack
    (interceptors, limits): benchmarks use it for an echo baseline. `engine`, when given,
    is the database the metrics report the pool and the sweep's lag of, and the audit
    events that commit on their own are appended to directly (store.audit.AuditAppender;
    without it, through units of work)."""
    # Sibling worker processes on SQLite have no NOTIFY: the feed's periodic look is what
    # brings their alerts, so it looks often (one indexed read per watched facility).
    feed = AlertFeed(uow, poll_seconds=SQLITE_WORKERS_POLL_SECONDS
                     if settings.is_sqlite and settings.workers > 1 else 5.0)
    metrics = Metrics()
    webhooks = _webhooks(settings, uow, clock, metrics)
    # New alerts (committed here, or NOTIFY from any replica) wake watchers and deliverers.
    woken = feed if webhooks is None else _Both(feed, webhooks)
    uow = _serving(uow, woken)
    rates = CallRates(settings.rate_limit_per_second, settings.rate_limit_burst)
    sizes = RequestSizes(default=settings.max_request_bytes,
                         documents=settings.max_document_request_bytes)
    audit = AuditAppender(engine) if engine is not None else None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.worker_threads,
                                   thread_name_prefix="rpc"),
        interceptors=[CallInterceptor(verifier, uow, clock, metrics, rates=rates,
                                      sizes=sizes, append_audit=audit)],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        # gRPC receives up to the largest per-method limit; the interceptor checks each
        # method's own after authentication, before decoding. Port sharing is off unless
        # this is one of `serve --workers` processes: otherwise a second server on the port
        # would silently share its calls.
        options=[("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
                 ("grpc.max_receive_message_length", sizes.largest),
                 *connection_options(settings)],
    )
    facilities_pb2_grpc.add_FacilityServiceServicer_to_server(
        FacilityServicer(uow, clock), server)
    medicine_cards_pb2_grpc.add_MedicineCardServiceServicer_to_server(
        MedicineCardServicer(uow, clock), server)
    rounds_pb2_grpc.add_RoundServiceServicer_to_server(RoundServicer(uow, clock), server)
    discrepancies_pb2_grpc.add_DiscrepancyServiceServicer_to_server(
        DiscrepancyServicer(uow, clock), server)
    alert_servicer = AlertServicer(
        uow, clock, feed, heartbeat_seconds=settings.alert_heartbeat_seconds,
        max_watchers=settings.max_alert_watchers,
        delivered=lambda seconds: metrics.alert_delivered("watch", seconds),
        webhook_allow_http_localhost=settings.webhook_allow_http_localhost)
    alerts_pb2_grpc.add_AlertServiceServicer_to_server(alert_servicer, server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(uow, clock), server)
    reports_pb2_grpc.add_ReportServiceServicer_to_server(ReportServicer(uow, clock), server)
    for handler in extra_handlers:
        server.add_generic_rpc_handlers((handler,))

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    port = _bind(server, settings)
    internal = add_internal_port(server) if settings.http_listen else None
    feed.start()
    listener = None
    if settings.database_url.startswith("postgresql"):
        listener = PgListener(settings.database_url, woken.wake, woken.wake_all)
        listener.start()
    server.start()
    if webhooks is not None:
        webhooks.start()
    sweeper = Sweeper(uow, clock, settings.sweep_interval_seconds)
    if settings.sweep_interval_seconds > 0:
        sweeper.start()
    emergency_lists = None
    if settings.emergency_dir:
        # Imported only when on: reportlab is memory a server without it never needs.
        from medservice.reports.ahead import EmergencyListWriter

        emergency_lists = EmergencyListWriter(uow, clock, Path(settings.emergency_dir),
                                              settings.emergency_interval_seconds)
        emergency_lists.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, port, health_servicer, feed, sweeper, listener,
                            emergency_lists, metrics, webhooks=webhooks, audit=audit)
    watch_metrics(metrics, alert_servicer, engine, clock)
    if internal is not None:
        try:
            running.http = start_http(settings.http_listen, HttpApi(
                api_routes(), verifier, openapi_document, metrics.exposition,
                lambda seconds: metrics.alert_delivered("sse", seconds), clock),
                *internal, settings.shutdown_grace_seconds,
                # The gRPC port's certificate serves HTTPS too: tokens never go in clear.
                (settings.tls_cert_file, settings.tls_key_file)
                if settings.tls_cert_file else None, reuse_port=settings.workers > 1)
        except HttpListenError as e:
            running.stop(0)
            raise ListenError(str(e)) from None
    return running


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC channel arguments for connection age and keepalive (deployment guide)."""
    options = []
    if settings.max_connection_age_seconds > 0:
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            ("grpc.max_connection_age_grace_ms",
             int(settings.max_connection_age_grace_seconds * 1000))]
    if settings.keepalive_seconds > 0:
        options += [("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
                    ("grpc.keepalive_timeout_ms", 20_000)]
    return options


def _webhooks(settings: Settings, uow: UnitOfWorkFactory, clock: Clock, metrics: Metrics
              ) -> WebhookDispatcher | None:
    """This process's webhook deliverers (none with MEDSERVICE_WEBHOOK_WORKERS=0)."""
    if settings.webhook_workers <= 0:
        return None
    post = HttpPoster(webhook_body, clock, timeout_seconds=settings.webhook_timeout_seconds,
                      allow_http_localhost=settings.webhook_allow_http_localhost,
                      ca_file=settings.webhook_ca_file)
    terms = DeliveryTerms(
        holder=holder_id(), lease=timedelta(seconds=settings.webhook_lease_seconds),
        retry_base=timedelta(seconds=settings.webhook_retry_base_seconds),
        retry_cap=timedelta(seconds=settings.webhook_retry_max_seconds))
    return WebhookDispatcher(
        uow, post, clock, terms, workers=settings.webhook_workers,
        poll_seconds=settings.webhook_poll_seconds,
        delivered=lambda claim, alert: metrics.alert_delivered(
            "webhook", (clock() - alert.created_at).total_seconds()))


class _Both:
    """Wakes this process's alert feed and its webhook deliverers alike."""

    def __init__(self, feed: AlertFeed, webhooks: WebhookDispatcher) -> None:
        self._feed = feed
        self._webhooks = webhooks

    def wake(self, facility_id: str, position: int | None = None) -> None:
        self._feed.wake(facility_id, position)
        self._webhooks.wake()

    def wake_all(self) -> None:
        self._feed.wake_all()
        self._webhooks.wake()


class _Woken(Protocol):
    def wake(self, facility_id: str, position: int | None = None) -> None: ...
    def wake_all(self) -> None: ...


def _serving(uow: UnitOfWorkFactory, feed: _Woken) -> UnitOfWorkFactory:
    """Units of work that wake this process's watchers after committing new alerts, and
    carry the audit event of the API call in progress (if any) to commit with a write."""

    def make(*, write: bool = True) -> UnitOfWork:
        unit = uow(write=write)
        unit.on_alerts = feed.wake
        unit.audit_draft = pending_audit.get()
        return unit

    return make


class ListenError(Exception):
    """The server cannot listen where it was told to: an operator's mistake, said in one
    line by `medservice serve`."""


def _bind(server: grpc.Server, settings: Settings) -> int:
    if settings.workers <= 1:  # workers: the parent checked before starting them
        _check_free(settings.listen)
    try:
        if settings.tls_cert_file or settings.tls_key_file:
            credentials = grpc.ssl_server_credentials([(
                Path(settings.tls_key_file).read_bytes(),
                Path(settings.tls_cert_file).read_bytes())])
            port = server.add_secure_port(settings.listen, credentials)
        else:
            port = server.add_insecure_port(settings.listen)
    except RuntimeError:  # gRPC's "Failed to bind": taken between the check and now
        port = 0
    if port == 0:
        raise ListenError(f"cannot listen on {settings.listen}")
    return port


def _check_free(listen: str) -> None:
    """Refuse a taken or unusable address before gRPC tries it (gRPC would only say
    "Failed to bind", after logging its own error line)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenError(f"cannot listen on {listen!r}: give HOST:PORT, e.g. 127.0.0.1:50051")
    port = int(port_text)
    if port == 0:
        return  # any free port
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ListenError(f"cannot listen on {listen}: the host {host!r} is not known") \
            from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise ListenError(
                        f"cannot listen on {listen}: the port is in use (is medservice already "
                        "running? stop it, or pass --listen HOST:PORT or set "
                        "MEDSERVICE_LISTEN)") from None
                raise ListenError(f"cannot listen on {listen}: {e.strerror}") from None


def serve(settings: Settings, *, on_ready: object = None,
          extra_handlers: Sequence[grpc.GenericRpcHandler] = ()) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully. `extra_handlers`: see
    build_server (the round-call benchmark serves an echo baseline so)."""
    engine = make_engine(settings.database_url)
    running = build_server(settings, uow_factory(engine), make_verifier(settings),
                           engine=engine, extra_handlers=extra_handlers)
    heap = HeapKeeper()
    heap.start()
    log.info("serving", port=running.port, tls=bool(settings.tls_cert_file),
             http_port=running.http_port or None)
    if callable(on_ready):
        on_ready(running)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if heap.tick() == "thorough":  # what freezing kept waiting, to watch for
            log.info("heap collected", unreachable=heap.last_found,
                     frozen=gc.get_freeze_count())
    log.info("shutting down", grace_seconds=settings.shutdown_grace_seconds)
    running.stop(settings.shutdown_grace_seconds)
    engine.dispose()
    log.info("stopped")
