"""Pure rules of the foundation: person identifiers, facility settings, names, paging,
tokens. No database, no server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medservice.api.auth import TokenVerifier, mint_token
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import InvalidArgument, PermissionDenied, Unauthenticated
from medservice.domain.facility import (
    Facility,
    Shift,
    TimingWindows,
    normalise_person_id,
    validate_facility,
)
from medservice.service.paging import Page, next_token, read_page

SECRET = "unit-test-secret-of-at-least-32-bytes!"


@pytest.mark.parametrize(("raw", "expected"), [
    ("010145-1234", "0101451234"), ("0101451234", "0101451234"),
    ("290200-1234", "2902001234"),  # 29 February exists in 2000
    (" 311299-0001 ", "3112990001"),
])
def test_person_id_normalised(raw: str, expected: str) -> None:
    assert normalise_person_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "010145", "320145-1234", "011345-1234", "310445-1234",
                                 "0101451234x", "01-01-45-1234", "abcdefghij"])
def test_person_id_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalise_person_id(raw)
    assert [v.field for v in info.value.violations] == ["person_id"]


def test_default_facility_is_valid() -> None:
    assert validate_facility(Facility("f", "Home")) == []


def test_overlapping_shifts_and_bad_windows_are_named() -> None:
    f = Facility("f", "Home", shifts=(
        Shift("day", "Day", time(7), time(15)), Shift("day", "Dup", time(14), time(23))),
        timing_windows=TimingWindows(time_critical_minutes=0))
    fields = {v.field for v in validate_facility(f)}
    assert {"facility.shifts[1].shift_id", "facility.shifts",
            "facility.timing_windows.time_critical_minutes"} <= fields


def test_night_shift_crossing_midnight_is_not_an_overlap() -> None:
    f = Facility("f", "Home", shifts=(Shift("day", "D", time(7), time(19)),
                                      Shift("night", "N", time(19), time(7))))
    assert validate_facility(f) == []
    assert f.shifts[1].crosses_midnight


def test_names() -> None:
    assert names.parse_resident_name("facilities/a/residents/r-1") == ("a", "r-1")
    for bad in ("facility/a", "facilities/A", "facilities/a/residents/", "facilities/"):
        with pytest.raises(InvalidArgument):
            names.parse_resident_name(bad)


def test_page_tokens_round_trip_and_are_bound_to_their_query() -> None:
    page = read_page(2, "", {"parent": "x"})
    token = next_token(page, [1, 2, 3], ["101", "r2"])
    assert read_page(2, token, {"parent": "x"}).after == ["101", "r2"]
    assert next_token(page, [1, 2], "k") == ""
    with pytest.raises(InvalidArgument):
        read_page(2, token, {"parent": "y"})
    assert read_page(0, "").size == 50
    assert read_page(10_000, "").size == 500
    assert isinstance(page, Page)


def test_principal_facility_and_role_rules() -> None:
    p = Principal("s", Role.CARER, frozenset({"a"}))
    p.require_facility("a")
    with pytest.raises(PermissionDenied):
        p.require_facility("b")
    with pytest.raises(PermissionDenied):
        p.require_role(Role.ADMIN)
    assert Principal("s", Role.ADMIN, frozenset({"*"})).may_access("anything")


def test_hmac_token_round_trip_and_refusals() -> None:
    token = mint_token(SECRET, subject="nurse-1", role=Role.CARER, facilities=["a"])
    p = TokenVerifier(hmac_secret=SECRET).verify(token)
    assert (p.subject, p.role, p.facilities) == ("nurse-1", Role.CARER, frozenset({"a"}))
    with pytest.raises(Unauthenticated):
        TokenVerifier(hmac_secret=SECRET + "-other").verify(token)
    bad_role = jwt.encode({"sub": "x", "role": "janitor", "facilities": [],
                           "exp": datetime.now(UTC) + timedelta(hours=1)}, SECRET)
    with pytest.raises(Unauthenticated):
        TokenVerifier(hmac_secret=SECRET).verify(bad_role)
    no_exp = jwt.encode({"sub": "x", "role": "carer", "facilities": []}, SECRET)
    with pytest.raises(Unauthenticated):
        TokenVerifier(hmac_secret=SECRET).verify(no_exp)


def test_verified_tokens_are_kept_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    decode = jwt.decode

    def counting(token: str, *a: Any, **k: Any) -> Any:
        decoded.append(token)
        return decode(token, *a, **k)

    monkeypatch.setattr(jwt, "decode", counting)
    verifier = TokenVerifier(hmac_secret=SECRET)
    token = mint_token(SECRET, subject="nurse-1", role=Role.CARER, facilities=["a"],
                       ttl=timedelta(minutes=5))
    first = verifier.verify(token)
    assert verifier.verify(token) is first and decoded == [token]  # kept: checked once
    # Past its exp a kept token is verified again (here still inside the leeway).
    now = datetime.now(UTC)
    monkeypatch.setattr("medservice.api.auth.time.time",
                        lambda: (now + timedelta(minutes=5, seconds=1)).timestamp())
    verifier.verify(token)
    assert decoded == [token, token]
    # Within the leeway after exp a token is accepted but not kept.
    monkeypatch.undo()
    monkeypatch.setattr(jwt, "decode", counting)
    late = mint_token(SECRET, subject="nurse-1", role=Role.CARER, facilities=["a"],
                      ttl=timedelta(seconds=10), now=now - timedelta(seconds=20))
    verifier.verify(late)
    verifier.verify(late)
    assert decoded.count(late) == 2
    # A refusal is never kept.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(forged)
    assert decoded.count(forged) == 2


def test_public_key_tokens_for_production(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "idp.pem").write_bytes(pem)
    verifier = TokenVerifier.from_key_files([str(tmp_path / "idp.pem")], issuer="idp",
                                            audience="medservice")
    claims = {"sub": "pharm-1", "role": "pharmacist", "facilities": ["a"], "iss": "idp",
              "aud": "medservice", "exp": datetime.now(UTC) + timedelta(minutes=5)}
    assert verifier.verify(jwt.encode(claims, key, algorithm="ES256")).role is Role.PHARMACIST
    with pytest.raises(Unauthenticated):  # wrong audience
        verifier.verify(jwt.encode({**claims, "aud": SECRET + "-other"}, key, algorithm="ES256"))
    with pytest.raises(Unauthenticated):  # an HS256 token must not pass a public-key setup
        verifier.verify(jwt.encode(claims, "guess" * 8, algorithm="HS256"))
