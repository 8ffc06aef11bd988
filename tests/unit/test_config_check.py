"""`medservice check-config` (issue 17): every problem of the settings said at once, one
line each naming the variable, without serving; a usable configuration passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from medservice.config_check import check, value_problems
from medservice.settings import Settings, SettingsError

GOOD = Settings(database_url="postgresql://db/medservice", jwt_secret="s" * 40)


def _keys_ok(settings: Settings) -> None:
    pass


def _current(url: str) -> str | None:
    return None


def test_a_usable_configuration_has_no_problem() -> None:
    assert check(GOOD, _keys_ok, _current) == []
    assert check(replace(GOOD, http_listen=""), _keys_ok, _current) == []


@pytest.mark.parametrize(("change", "named"), [
    ({"listen": "nowhere"}, "MEDSERVICE_LISTEN"),
    ({"http_listen": "8080"}, "MEDSERVICE_HTTP_LISTEN"),
    ({"http_listen": "127.0.0.1:50051"}, "MEDSERVICE_HTTP_LISTEN must differ"),
    ({"log_format": "xml"}, "MEDSERVICE_LOG_FORMAT"),
    ({"log_level": "loud"}, "MEDSERVICE_LOG_LEVEL"),
    ({"environment": "prod"}, "MEDSERVICE_ENVIRONMENT"),
    ({"max_concurrent_rpcs": 0}, "MEDSERVICE_MAX_CONCURRENT_RPCS"),
    ({"max_alert_watchers": 300}, "MEDSERVICE_MAX_ALERT_WATCHERS must be below"),
    ({"alert_heartbeat_seconds": 0.0}, "MEDSERVICE_ALERT_HEARTBEAT_SECONDS"),
    ({"tls_cert_file": "cert.pem"}, "go together"),
    ({"environment": "production", "database_url": "sqlite:///x.db",
      "log_format": "json"}, "production needs PostgreSQL"),
    ({"environment": "production", "log_format": "console"}, "must be JSON"),
    ({"webhook_lease_seconds": 5.0}, "MEDSERVICE_WEBHOOK_LEASE_SECONDS must be above"),
    ({"webhook_timeout_seconds": 0.0}, "MEDSERVICE_WEBHOOK_TIMEOUT_SECONDS"),
    ({"webhook_workers": -1}, "MEDSERVICE_WEBHOOK_WORKERS"),
    ({"webhook_retry_base_seconds": -1.0}, "MEDSERVICE_WEBHOOK_RETRY_BASE_SECONDS"),
    ({"webhook_retry_max_seconds": 0.5}, "MEDSERVICE_WEBHOOK_RETRY_MAX_SECONDS"),
    ({"environment": "production", "log_format": "json",
      "webhook_allow_http_localhost": True}, "MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST"),
])
def test_each_bad_value_is_named(change: dict[str, object], named: str) -> None:
    problems = value_problems(replace(GOOD, **change))  # type: ignore[arg-type]
    assert len(problems) == 1 and named in problems[0], problems


def test_all_problems_are_said_at_once(tmp_path: Path) -> None:
    def no_keys(settings: Settings) -> None:
        raise SettingsError("MEDSERVICE_JWT_SECRET must be at least 32 characters")

    def unreachable(url: str) -> str | None:
        raise ConnectionError("connection refused\nmore detail")

    bad = replace(GOOD, listen="x", tls_cert_file=str(tmp_path / "missing.pem"),
                  tls_key_file=str(tmp_path / "missing.key"))
    problems = check(bad, no_keys, unreachable)
    assert len(problems) == 4, problems
    assert any("MEDSERVICE_LISTEN" in p for p in problems)
    assert any("at least 32" in p for p in problems)
    assert any("missing.pem" in p for p in problems)
    assert any(p.startswith("cannot use the database: connection refused") for p in problems)


def test_a_database_behind_says_to_migrate() -> None:
    problems = check(GOOD, _keys_ok, lambda url: "the database has no medservice schema")
    assert problems == ["the database has no medservice schema: run `medservice migrate`"]


def test_a_key_file_that_is_not_a_key_is_said() -> None:
    def not_pem(settings: Settings) -> None:
        raise ValueError("Could not deserialize key data")

    problems = check(GOOD, not_pem, _current)
    assert problems == ["MEDSERVICE_JWT_PUBLIC_KEY_FILES names a file that is not a PEM "
                        "public key"]


def test_development_without_keys_is_not_a_problem_and_writes_nothing(tmp_path: Path) -> None:
    settings = replace(GOOD, jwt_secret="", var_dir=str(tmp_path / "var"))
    called: list[Settings] = []
    assert check(settings, called.append, _current) == []
    assert called == [] and not (tmp_path / "var").exists()


@pytest.mark.parametrize(("text", "allowed"), [("true", True), ("1", True), ("off", False),
                                               ("", False)])
def test_webhook_settings_are_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, text: str, allowed: bool) -> None:
    from medservice.settings import load_settings

    monkeypatch.setenv("MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST", text)
    monkeypatch.setenv("MEDSERVICE_WEBHOOK_LEASE_SECONDS", "45")
    monkeypatch.setenv("MEDSERVICE_WEBHOOK_CA_FILE", "/etc/care-ca.pem")
    settings = load_settings()
    assert settings.webhook_allow_http_localhost is allowed
    assert settings.webhook_lease_seconds == 45.0
    assert settings.webhook_ca_file == "/etc/care-ca.pem"


def test_a_webhook_switch_that_is_no_boolean_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from medservice.settings import load_settings

    monkeypatch.setenv("MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST", "maybe")
    with pytest.raises(SettingsError, match="MEDSERVICE_WEBHOOK_ALLOW_HTTP_LOCALHOST"):
        load_settings()


def test_a_webhook_ca_file_that_is_no_certificate_is_said(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    problems = check(replace(GOOD, webhook_ca_file=str(bad)), _keys_ok, lambda url: None)
    assert any("MEDSERVICE_WEBHOOK_CA_FILE" in p for p in problems), problems
