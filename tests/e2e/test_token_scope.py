"""Which tokens the server takes, on SQLite and PostgreSQL (issue 13): "every facility" only
for the roles whose work spans care homes, and date claims only as numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from clients.client import MedClient, MedServiceError
from medservice import cli
from medservice.api.auth import TokenVerifier
from medservice.domain.access import CROSS_FACILITY_ROLES, Role
from medservice.v1 import facilities_pb2 as fpb
from tests.conftest import TEST_SECRET, ServerFixture, token_for


def _seeded(server: ServerFixture) -> None:
    admin = server.client(Role.ADMIN)
    for f in ("a", "b"):
        admin.create_facility(fpb.Facility(display_name=f"Home {f}"), f)
    admin.create_resident("b", fpb.Resident(person_id="010145-1234", display_name="Test Person",
                                            room="1"), "r1")


def _refused(target: str, token: str) -> MedServiceError:
    with MedClient(target, token) as c, pytest.raises(MedServiceError) as info:
        c.get_resident("facilities/b/residents/r1")
    return info.value


@pytest.mark.parametrize("role", [Role.CARER, Role.SHIFT_LEAD])
def test_a_round_role_with_every_facility_is_refused(server: ServerFixture, role: Role) -> None:
    _seeded(server)
    err = _refused(server.target, token_for(role, "*"))
    assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert "must name its facilities" in err.message
    # The same role naming its facility reads it; "*" among named ones is still refused.
    assert server.client(role, "b").get_resident("facilities/b/residents/r1").person_id
    err = _refused(server.target, token_for(role, "b", "*"))
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("role", [r for r in Role if r in CROSS_FACILITY_ROLES])
def test_cross_facility_roles_may_hold_every_facility(server: ServerFixture, role: Role) -> None:
    _seeded(server)
    assert [f.name for f in server.client(role, "*").list_facilities()] == [
        "facilities/a", "facilities/b"]


def _claims(**override: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {"sub": "nurse-1", "role": "carer", "facilities": ["b"], "iat": now,
            "exp": now + 3600} | override


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_date_claims_must_be_numbers(server: ServerFixture, claim: str) -> None:
    _seeded(server)
    now = int(datetime.now(UTC).timestamp())
    good = {"exp": now + 3600, "iat": now, "nbf": now - 60}[claim]
    # A number is taken, the same instant as a string is not (PyJWT reads it with int()).
    with MedClient(server.target, jwt.encode(_claims(**{claim: good}), TEST_SECRET)) as c:
        assert c.get_resident("facilities/b/residents/r1").name
    for bad in (str(good), f"{good}.0", None, [good], True):
        err = _refused(server.target, jwt.encode(_claims(**{claim: bad}), TEST_SECRET))
        assert err.code == grpc.StatusCode.UNAUTHENTICATED, bad
        # (PyJWT reads an exp of true as 1: expired before it gets here.)
        assert err.reason == "INVALID_TOKEN" or (bad is True and claim == "exp"), bad


def test_a_float_exp_is_a_number() -> None:
    exp = datetime.now(UTC).timestamp() + 60.5
    token = jwt.encode(_claims(exp=exp), TEST_SECRET)
    assert TokenVerifier(hmac_secret=TEST_SECRET).verify(token).subject == "nurse-1"


# `medservice token`: refuses to mint what the server refuses, in one line.

@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    # main() would point structlog at the captured stderr, closed after the test: later
    # tests' log lines would then fail.
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)
    monkeypatch.setenv("MEDSERVICE_JWT_SECRET", TEST_SECRET)
    for name in ("MEDSERVICE_JWT_ISSUER", "MEDSERVICE_JWT_AUDIENCE", "MEDSERVICE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("role", ["carer", "shift_lead"])
@pytest.mark.parametrize("facility", [[], ["--facility", "*"], ["--facility", "a",
                                                                "--facility", "*"]])
def test_token_command_needs_a_facility_for_round_roles(
        capsys: pytest.CaptureFixture[str], role: str, facility: list[str]) -> None:
    assert cli.main(["token", "--role", role, *facility]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "--facility" in err


@pytest.mark.usefixtures("cli_env")
def test_token_command_mints_what_the_server_takes(capsys: pytest.CaptureFixture[str]) -> None:
    verifier = TokenVerifier(hmac_secret=TEST_SECRET)
    for role, args, facilities in [("carer", ["--facility", "a"], {"a"}),
                                   ("pharmacist", [], {"*"}), ("integration", [], {"*"}),
                                   ("admin", ["--facility", "*"], {"*"})]:
        assert cli.main(["token", "--role", role, *args]) == 0
        p = verifier.verify(capsys.readouterr().out.strip())
        assert (p.role.value, p.facilities) == (role, frozenset(facilities))


@pytest.mark.usefixtures("cli_env")
def test_demo_tokens_are_all_taken(capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_demo_tokens(cli.load_settings(), 50051)
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()
             if ln.startswith("  ") and len(ln.split()) == 2]
    verifier = TokenVerifier(hmac_secret=TEST_SECRET)
    taken = {verifier.verify(token).role for _, token in lines}
    assert taken == set(Role)


def test_verified_tokens_keep_no_refused_token() -> None:
    verifier = TokenVerifier(hmac_secret=TEST_SECRET)
    token = token_for(Role.CARER, "*", ttl=timedelta(minutes=5))
    for _ in range(2):  # refused every time, never served from the cache of verified ones
        with pytest.raises(Exception, match="must name its facilities"):
            verifier.verify(token)
