"""Webhook delivery in this process: a few threads that claim subscriptions with alerts to
deliver (service.webhooks.deliver_once) and POST them over HTTPS.

Woken like the watchers' feed (a local commit that appended alerts, or a NOTIFY from any
replica) and otherwise looking every `poll_seconds`: a lost wake-up costs latency, never an
alert, since the cursor in the database says what is still to deliver. Retries wait in the
database too (the cursor's next attempt), so they survive a restart.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from medservice.domain.alerts import Alert
from medservice.domain.errors import InvalidArgument
from medservice.domain.webhooks import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSubscription,
    check_endpoint,
    failure_text,
    sign,
)
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.service.webhooks import (
    Delivered,
    DeliveryTerms,
    Post,
    PostResult,
    deliver_once,
)
from medservice.store.webhooks import Claim

log = structlog.get_logger("medservice.webhooks")

# The JSON body of one alert to one subscription (api.convert_alerts.webhook_body).
Encode = Callable[[WebhookSubscription, Alert], bytes]


def holder_id() -> str:
    """This process's name on the leases it holds (host, pid and a random part: a restarted
    process with the same pid is another holder)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class HttpPoster:
    """POSTs one alert, signed, and says whether the receiver answered 2xx. Redirects are
    not followed (an answer 3xx is a failure): the subscription's URL is where alerts go."""

    def __init__(self, encode: Encode, clock: Callable[[], datetime], *,
                 timeout_seconds: float, allow_http_localhost: bool, ca_file: str = "") -> None:
        self._encode = encode
        self._clock = clock
        self._timeout = timeout_seconds
        self._allow_http = allow_http_localhost
        self._tls = ssl.create_default_context()  # verifies the certificate and host name
        if ca_file:
            self._tls.load_verify_locations(cafile=ca_file)

    def __call__(self, claim: Claim, alert: Alert) -> PostResult:
        sub = claim.subscription
        try:  # again at each POST: the server's settings may have changed since
            check_endpoint(sub.url, allow_http_localhost=self._allow_http)
        except InvalidArgument:
            return PostResult(False, "refused: the URL is not allowed by this server's "
                                     "settings (https only)")
        body = self._encode(sub, alert)
        timestamp = int(self._clock().timestamp())
        headers = {"Content-Type": "application/json", "User-Agent": "medservice-webhooks/1",
                   ID_HEADER: alert.alert_id, TIMESTAMP_HEADER: str(timestamp),
                   SIGNATURE_HEADER: sign(claim.secret, timestamp, body)}
        parts = urlsplit(sub.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                               timeout=self._timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                              timeout=self._timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(64 * 1024)  # the answer's body is not used; bounded
            if 200 <= response.status < 300:
                return PostResult(True)
            return PostResult(False, failure_text(response.status))
        except TimeoutError:
            return PostResult(False, failure_text(None, "timeout"))
        except ssl.SSLCertVerificationError as e:
            return PostResult(False, failure_text(
                None, f"TLS: certificate not trusted ({e.verify_message or 'failed'})"))
        except ssl.SSLError as e:
            return PostResult(False, failure_text(None, f"TLS: {e.reason or 'failed'}"))
        except (OSError, http.client.HTTPException) as e:
            return PostResult(False, failure_text(None, _transport_error(e)))
        finally:
            conn.close()


def _transport_error(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, socket.gaierror):
        return "host not found"
    return type(e).__name__


class WebhookDispatcher:
    """`workers` threads, each delivering one claimed subscription at a time."""

    def __init__(self, uow_factory: UnitOfWorkFactory, post: Post,
                 clock: Callable[[], datetime], terms: DeliveryTerms, *, workers: int = 2,
                 poll_seconds: float = 1.0, delivered: Delivered | None = None) -> None:
        self._uow = uow_factory
        self._post = post
        self._clock = clock
        self._terms = terms
        self._poll = poll_seconds
        self._delivered = delivered
        self._woken = threading.Condition()
        self._wakes = 0
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"webhooks-{i}", daemon=True)
                         for i in range(workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def wake(self, *_: object) -> None:
        """Alerts may be waiting (any arguments are ignored: a feed's wake-up signature)."""
        with self._woken:
            self._wakes += 1
            self._woken.notify_all()

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._woken:
                seen = self._wakes
            try:
                report = deliver_once(self._uow, self._post, self._clock, self._terms,
                                      self._delivered)
            except Exception as e:  # the database is away: the next look tries again
                log.warning("webhook delivery failed", error=type(e).__name__)
                report = None
            if report is not None and (report.moved or report.failed or report.lost_lease):
                # More may be due: the next batch, or another subscription (a failed one
                # is not due again before its back-off, so this never spins on it).
                continue
            with self._woken:
                if self._wakes == seen and not self._stopped.is_set():
                    self._woken.wait(self._poll)
