"""Webhook subscriptions: the rules of where alerts may be pushed, how a delivery is signed,
and how long to wait before trying a failing receiver again (docs/webhooks.md).

A subscription delivers one facility's alerts for one audience, in log order, one alert per
POST. The receiver verifies `Medservice-Signature: v1=<hex>`, the HMAC-SHA256 under the
subscription's secret of `"<Medservice-Timestamp>." + body`, and may drop a repeat by
`Medservice-Webhook-Id` (the alert's id), which only a replica dying between the receiver's
2xx and its commit of the cursor can cause.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from medservice.domain.access import Role
from medservice.domain.errors import FieldViolation, InvalidArgument

SIGNATURE_HEADER = "Medservice-Signature"
TIMESTAMP_HEADER = "Medservice-Timestamp"
ID_HEADER = "Medservice-Webhook-Id"
SIGNATURE_VERSION = "v1"
# A receiver refuses a timestamp further than this from its clock: a replayed old request.
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
MIN_SECRET_LENGTH = 32
MAX_SECRET_LENGTH = 200
MAX_URL_LENGTH = 2000
AUDIENCES = (Role.SHIFT_LEAD, Role.PHARMACIST)


@dataclass(frozen=True)
class WebhookSubscription:
    facility_id: str
    subscription_id: str
    audience: Role
    url: str
    created_at: datetime


@dataclass(frozen=True)
class DeliveryState:
    """How delivery to a subscription stands: its cursor in the facility's alert log, and
    what the last attempts got."""

    position: int
    last_delivered_alert: str | None = None
    last_delivered_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None


def check_endpoint(url: str, *, allow_http_localhost: bool, field: str = "url") -> None:
    """HTTPS to a host, without credentials in the URL; plain HTTP only to the loopback
    interface and only where the server allows it (tests, a local relay): alerts carry
    health information and must not cross a network in clear."""
    problem = _endpoint_problem(url, allow_http_localhost)
    if problem:
        raise InvalidArgument([FieldViolation(field, problem)])


def _endpoint_problem(url: str, allow_http_localhost: bool) -> str:
    if not url:
        return "is required: the https:// address to POST alerts to"
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or " " in url:
        return f"must be an https:// address of at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    del port  # parsed only to refuse a bad port
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials: the signature authenticates the sender"
    if parts.fragment:
        return "must not have a #fragment"
    if not parts.hostname:
        return "must name a host"
    if parts.scheme == "https":
        return ""
    if parts.scheme == "http":
        if not allow_http_localhost:
            return "must be https:// (plain http is refused: alerts are health information)"
        if not is_loopback(parts.hostname):
            return "may be http:// only to localhost; use https:// for any other host"
        return ""
    return "must be an https:// address"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def new_secret() -> str:
    """A signing key the server makes when the administrator gives none (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def check_secret(secret: str, field: str = "secret") -> None:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or not secret.isascii() \
            or not secret.isprintable() or " " in secret:
        raise InvalidArgument([FieldViolation(
            field, f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable ASCII "
                   "characters without spaces, or empty for one the server makes")])


def check_audience(audience: Role | None, field: str = "audience") -> Role:
    if audience not in AUDIENCES:
        raise InvalidArgument([FieldViolation(field, "must be shift_lead or pharmacist")])
    assert audience is not None
    return audience


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>." + body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(secret: str, timestamp_header: str, body: bytes, signature_header: str,
           now: datetime) -> bool:
    """What a receiver checks (docs/webhooks.md has the same in a few lines): a signature
    of these bytes under the secret, made within TIMESTAMP_TOLERANCE of `now`."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > TIMESTAMP_TOLERANCE.total_seconds():
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature_header)


def retry_delay(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """How long after the `attempts`th failure in a row to try again: doubling from `base`,
    at most `cap`, so a receiver that is down is not hammered and one that is back is
    reached within `cap`."""
    if attempts <= 0:
        return timedelta(0)
    return min(cap, base * (2 ** min(attempts - 1, 30)))


def failure_text(status: int | None, error: str = "") -> str:
    """What a failed attempt got, for the subscription's state: the HTTP status, or the kind
    of transport error (never the URL, a body or a secret)."""
    if status is not None:
        return f"HTTP {status}"
    return error[:200] or "no answer"
