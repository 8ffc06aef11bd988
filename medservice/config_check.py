"""`medservice check-config`: every setting checked as `serve` would use it, without
serving, so an operator (or a deployment's pre-start job) learns all that is wrong at once."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from medservice.settings import Settings, SettingsError

LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
ENVIRONMENTS = ("development", "production")


def _address(name: str, value: str, *, may_be_empty: bool = False) -> str | None:
    if may_be_empty and value == "":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"MEDSERVICE_{name}={value!r} must be HOST:PORT, e.g. 127.0.0.1:50051"
    return None


def value_problems(settings: Settings) -> list[str]:
    """What is wrong with the values themselves (no file, key or database touched)."""
    problems = [p for p in (
        _address("LISTEN", settings.listen),
        _address("HTTP_LISTEN", settings.http_listen, may_be_empty=True)) if p]
    if settings.http_listen and settings.http_listen == settings.listen:
        problems.append("MEDSERVICE_HTTP_LISTEN must differ from MEDSERVICE_LISTEN")
    if settings.log_format not in LOG_FORMATS:
        problems.append(f"MEDSERVICE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    if settings.log_level.lower() not in LOG_LEVELS:
        problems.append(f"MEDSERVICE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    if settings.environment not in ENVIRONMENTS:
        problems.append(f"MEDSERVICE_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
    for name, value in (("WORKER_THREADS", settings.worker_threads),
                        ("MAX_CONCURRENT_RPCS", settings.max_concurrent_rpcs),
                        ("MAX_ALERT_WATCHERS", settings.max_alert_watchers)):
        if value < 1:
            problems.append(f"MEDSERVICE_{name} must be at least 1")
    if settings.max_alert_watchers >= settings.worker_threads:
        problems.append("MEDSERVICE_MAX_ALERT_WATCHERS must be below MEDSERVICE_WORKER_THREADS"
                        " (each watch holds a thread; the rounds need the rest)")
    if settings.alert_heartbeat_seconds <= 0:
        problems.append("MEDSERVICE_ALERT_HEARTBEAT_SECONDS must be above 0")
    for name, seconds in (("MAX_CONNECTION_AGE_SECONDS", settings.max_connection_age_seconds),
                          ("MAX_CONNECTION_AGE_GRACE_SECONDS",
                           settings.max_connection_age_grace_seconds),
                          ("KEEPALIVE_SECONDS", settings.keepalive_seconds)):
        if seconds < 0:
            problems.append(f"MEDSERVICE_{name} must be 0 or more")
    if settings.sweep_interval_seconds < 0:
        problems.append("MEDSERVICE_SWEEP_INTERVAL_SECONDS must be 0 (off) or more")
    problems += _webhook_problems(settings)
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        problems.append("MEDSERVICE_TLS_CERT_FILE and MEDSERVICE_TLS_KEY_FILE go together")
    if settings.environment == "production":
        if settings.is_sqlite:
            problems.append("production needs PostgreSQL in MEDSERVICE_DATABASE_URL "
                            "(SQLite is for one process on one machine)")
        if settings.log_format != "json":
            problems.append("production logs must be JSON (MEDSERVICE_LOG_FORMAT=json) for "
                            "log shipping")
    return problems


def _webhook_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.webhook_workers < 0:
        problems.append("MEDSERVICE_WEBHOOK_WORKERS must be 0 (none in this process) or more")
    for name, seconds in (("WEBHOOK_TIMEOUT_SECONDS", settings.webhook_timeout_seconds),
                          ("WEBHOOK_RETRY_BASE_SECONDS", settings.webhook_retry_base_seconds),
                          ("WEBHOOK_POLL_SECONDS", settings.webhook_poll_seconds)):
        if seconds <= 0:
            problems.append(f"MEDSERVICE_{name} must be above 0")
    if settings.webhook_lease_seconds <= settings.webhook_timeout_seconds:
        problems.append("MEDSERVICE_WEBHOOK_LEASE_SECONDS must be above "
                        "MEDSERVICE_WEBHOOK_TIMEOUT_SECONDS (a live replica's claim must not "
                        "run out during a POST)")
    if settings.webhook_retry_max_seconds < settings.webhook_retry_base_seconds:
        problems.append("MEDSERVICE_WEBHOOK_RETRY_MAX_SECONDS must be at least "
                        "MEDSERVICE_WEBHOOK_RETRY_BASE_SECONDS")
    if settings.environment == "production" and settings.webhook_allow_http_localhost:
        problems.append("MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST is for tests: production "
                        "delivers over HTTPS only")
    return problems


def _webhook_ca(settings: Settings) -> str | None:
    if not settings.webhook_ca_file:
        return None
    try:
        ssl.create_default_context().load_verify_locations(cafile=settings.webhook_ca_file)
    except (OSError, ssl.SSLError):
        return ("MEDSERVICE_WEBHOOK_CA_FILE must be a readable file of PEM CA certificates: "
                f"{settings.webhook_ca_file}")
    return None


def _tls(settings: Settings) -> str | None:
    if not settings.tls_cert_file or not settings.tls_key_file:
        return None
    for path in (settings.tls_cert_file, settings.tls_key_file):
        if not Path(path).is_file():
            return f"cannot read {path}"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert_file, settings.tls_key_file)
    except (ssl.SSLError, OSError) as e:
        return f"MEDSERVICE_TLS_CERT_FILE/KEY_FILE are not a certificate and its key: {e}"
    return None


def check(settings: Settings, keys: Callable[[Settings], object],
          schema: Callable[[str], str | None]) -> list[str]:
    """Every problem found, in one list. `keys` raises SettingsError or ValueError for
    unusable JWT keys (server.make_verifier); `schema` says why the database is not
    ready (store.migrate.schema_behind), raising if it cannot be reached."""
    problems = value_problems(settings)
    try:
        if settings.jwt_secret or settings.jwt_public_key_files or \
                settings.environment == "production":  # else `serve` makes a local secret
            keys(settings)
    except SettingsError as e:
        problems.append(str(e))
    except ValueError:
        problems.append("MEDSERVICE_JWT_PUBLIC_KEY_FILES names a file that is not a PEM "
                        "public key")
    except OSError as e:
        problems.append(f"cannot read {e.filename}")
    problems.extend(p for p in [_tls(settings), _webhook_ca(settings)] if p)
    if settings.is_sqlite and not Path(settings.database_url.removeprefix("sqlite:///")
                                       ).exists():
        return problems  # `serve` creates and migrates an embedded database itself
    try:
        behind = schema(settings.database_url)
    except Exception as e:  # unreachable, refused, bad URL: one line, no password
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0][:300]
        problems.append(f"cannot use the database: {first} (check MEDSERVICE_DATABASE_URL)")
    else:
        if behind is not None:
            problems.append(f"{behind}: run `medservice migrate`")
    return problems
