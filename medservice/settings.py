"""Settings, read once at start-up into one object and passed down (no module globals)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var") / "medservice.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    listen: str = "127.0.0.1:50051"
    # HTTP/JSON, Server-Sent Events and /metrics; empty serves no HTTP.
    http_listen: str = "127.0.0.1:8080"
    # Development: an HMAC secret (HS256). Production: PEM public keys (RS256/ES256/EdDSA).
    jwt_secret: str = ""
    jwt_public_key_files: tuple[str, ...] = ()
    jwt_issuer: str = ""
    jwt_audience: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    log_format: str = "console"  # or "json"
    log_level: str = "info"
    # Thread pool size. Each alert watch stream holds a thread while it is open.
    worker_threads: int = 256
    # Calls beyond this answer RESOURCE_EXHAUSTED instead of queueing forever.
    max_concurrent_rpcs: int = 512
    # Watch streams beyond this answer RESOURCE_EXHAUSTED: keeps threads for the rounds.
    max_alert_watchers: int = 200
    alert_heartbeat_seconds: float = 10.0
    # The missed-dose sweep runs this often in every replica; 0 turns it off here.
    sweep_interval_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    # Per caller (the token's subject): calls per second sustained, and at once. Beyond,
    # RESOURCE_EXHAUSTED with RetryInfo. 0 per second turns the limit off.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: float = 200.0
    # Largest request body: imports and card syncs carry documents, the rest are small.
    # The server receives nothing larger than the larger of the two.
    max_request_bytes: int = 64 * 1024
    max_document_request_bytes: int = 10_000_000 + 64 * 1024
    # Emergency lists (nødlister) of the coming shifts are written ahead to this folder
    # every emergency_interval_seconds, so they exist when the network does not; "" is off.
    emergency_dir: str = ""
    emergency_interval_seconds: float = 900.0
    # Behind a load balancer: a connection older than this is asked to go (GOAWAY, then
    # the grace below), so long watch streams reconnect and spread over replicas; 0: never.
    max_connection_age_seconds: float = 0.0
    max_connection_age_grace_seconds: float = 30.0
    # Server pings on idle connections this often, to find dead peers; 0: gRPC's 2 hours.
    keepalive_seconds: float = 0.0
    # "development" may create a local JWT secret; "production" must be given keys.
    environment: str = "development"
    var_dir: str = "var"
    # Server processes sharing the listening port (SO_REUSEPORT; `serve --workers`).
    workers: int = 1
    # Webhooks (docs/webhooks.md): threads delivering in this process (0: none here), how
    # long one POST may take, how long a replica's claim on a subscription lasts without
    # progress (above the timeout), the backoff of retries, and how often to look for work
    # when no commit woke the deliverers. http:// endpoints to localhost only when allowed
    # (tests, a local relay); HTTPS otherwise.
    webhook_workers: int = 2
    webhook_timeout_seconds: float = 10.0
    webhook_lease_seconds: float = 30.0
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 600.0
    webhook_poll_seconds: float = 1.0
    webhook_allow_http_localhost: bool = False
    # PEM CA certificates trusted for webhook endpoints besides the system's (a care
    # system's private CA); "" trusts the system's only.
    webhook_ca_file: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(Exception):
    """A setting an operator gave is wrong: said in one line, naming the variable."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"MEDSERVICE_{name}", default)


def _int(name: str, default: int) -> int:
    text = _env(name, str(default))
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"MEDSERVICE_{name} must be a whole number, not {text!r}") from None


def _float(name: str, default: float) -> float:
    text = _env(name, str(default))
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"MEDSERVICE_{name} must be a number, not {text!r}") from None


def _bool(name: str, default: bool) -> bool:
    text = _env(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"MEDSERVICE_{name} must be true or false, not {text!r}")


def load_settings() -> Settings:
    """Settings from MEDSERVICE_* environment variables (README lists them)."""
    keys = tuple(p for p in _env("JWT_PUBLIC_KEY_FILES").split(",") if p.strip())
    return Settings(
        database_url=_env("DATABASE_URL", Settings.database_url),
        listen=_env("LISTEN", Settings.listen),
        http_listen=os.environ.get("MEDSERVICE_HTTP_LISTEN", Settings.http_listen).strip(),
        jwt_secret=_env("JWT_SECRET"),
        jwt_public_key_files=keys,
        jwt_issuer=_env("JWT_ISSUER"),
        jwt_audience=_env("JWT_AUDIENCE"),
        tls_cert_file=_env("TLS_CERT_FILE"),
        tls_key_file=_env("TLS_KEY_FILE"),
        log_format=_env("LOG_FORMAT", "json" if _env("ENVIRONMENT") == "production"
                        else "console"),
        log_level=_env("LOG_LEVEL", "info"),
        worker_threads=_int("WORKER_THREADS", Settings.worker_threads),
        max_concurrent_rpcs=_int("MAX_CONCURRENT_RPCS", Settings.max_concurrent_rpcs),
        max_alert_watchers=_int("MAX_ALERT_WATCHERS", Settings.max_alert_watchers),
        alert_heartbeat_seconds=_float("ALERT_HEARTBEAT_SECONDS",
                                       Settings.alert_heartbeat_seconds),
        sweep_interval_seconds=_float("SWEEP_INTERVAL_SECONDS",
                                      Settings.sweep_interval_seconds),
        shutdown_grace_seconds=_float("SHUTDOWN_GRACE_SECONDS",
                                      Settings.shutdown_grace_seconds),
        rate_limit_per_second=_float("RATE_LIMIT_PER_SECOND", Settings.rate_limit_per_second),
        rate_limit_burst=_float("RATE_LIMIT_BURST", Settings.rate_limit_burst),
        max_request_bytes=_int("MAX_REQUEST_BYTES", Settings.max_request_bytes),
        max_document_request_bytes=_int("MAX_DOCUMENT_REQUEST_BYTES",
                                        Settings.max_document_request_bytes),
        emergency_dir=_env("EMERGENCY_DIR"),
        emergency_interval_seconds=_float("EMERGENCY_INTERVAL_SECONDS",
                                          Settings.emergency_interval_seconds),
        max_connection_age_seconds=_float("MAX_CONNECTION_AGE_SECONDS",
                                          Settings.max_connection_age_seconds),
        max_connection_age_grace_seconds=_float("MAX_CONNECTION_AGE_GRACE_SECONDS",
                                                Settings.max_connection_age_grace_seconds),
        keepalive_seconds=_float("KEEPALIVE_SECONDS", Settings.keepalive_seconds),
        environment=_env("ENVIRONMENT", "development"),
        var_dir=_env("VAR_DIR", "var"),
        workers=_int("WORKERS", Settings.workers),
        webhook_workers=_int("WEBHOOK_WORKERS", Settings.webhook_workers),
        webhook_timeout_seconds=_float("WEBHOOK_TIMEOUT_SECONDS",
                                       Settings.webhook_timeout_seconds),
        webhook_lease_seconds=_float("WEBHOOK_LEASE_SECONDS", Settings.webhook_lease_seconds),
        webhook_retry_base_seconds=_float("WEBHOOK_RETRY_BASE_SECONDS",
                                          Settings.webhook_retry_base_seconds),
        webhook_retry_max_seconds=_float("WEBHOOK_RETRY_MAX_SECONDS",
                                         Settings.webhook_retry_max_seconds),
        webhook_poll_seconds=_float("WEBHOOK_POLL_SECONDS", Settings.webhook_poll_seconds),
        webhook_allow_http_localhost=_bool("WEBHOOK_ALLOW_HTTP_LOCALHOST",
                                           Settings.webhook_allow_http_localhost),
        webhook_ca_file=_env("WEBHOOK_CA_FILE"),
    )


def development_secret(settings: Settings) -> str:
    """The JWT secret to use: the configured one, or in development a local one.

    In development the secret is created once under var/ so that `medservice token` and a
    running server agree without configuration. Production never gets one by default.
    """
    if settings.jwt_secret:
        if len(settings.jwt_secret) < 32:
            raise SettingsError("MEDSERVICE_JWT_SECRET must be at least 32 characters")
        return settings.jwt_secret
    if settings.environment == "production":
        raise SettingsError(
            "MEDSERVICE_JWT_SECRET or MEDSERVICE_JWT_PUBLIC_KEY_FILES must be set in production"
        )
    path = Path(settings.var_dir) / "dev-jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()
