"""Bearer tokens: JWTs naming the subject, one role and the facilities it may touch.

Development uses an HMAC secret (HS256); production gives PEM public keys (RS256, ES256,
EdDSA) so the service never holds a signing key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from medservice.domain.access import ALL, Principal, Role, may_hold_all_facilities
from medservice.domain.errors import Unauthenticated

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
# NumericDate claims (RFC 7519 §2): PyJWT reads them with int(), so "1999999999" passed.
DATE_CLAIMS = ("exp", "iat", "nbf")


class VerifiedTokens:
    """Principals of tokens already verified, by the token string, each until its `exp`:
    a signature check cost more than the rest of a small call. Only successes are kept,
    a bounded number, least recently used out first; thread-safe."""

    def __init__(self, max_entries: int = 1_000) -> None:
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        with self._lock:
            found = self._entries.get(token)
            if found is None:
                return None
            principal, expires = found
            if time.time() >= expires:  # past exp: verified again (and refused after leeway)
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return principal

    def put(self, token: str, principal: Principal, expires: float) -> None:
        with self._lock:
            self._entries[token] = (principal, expires)
            self._entries.move_to_end(token)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class TokenVerifier:
    hmac_secret: str = ""
    public_keys: tuple[Any, ...] = ()
    issuer: str = ""
    audience: str = ""
    # Not an init field: a verifier made from another (dataclasses.replace) starts empty.
    verified: VerifiedTokens = field(default_factory=VerifiedTokens, init=False,
                                     compare=False, repr=False)

    @classmethod
    def from_key_files(cls, files: Sequence[str], issuer: str = "", audience: str = ""
                       ) -> TokenVerifier:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        keys = tuple(load_pem_public_key(Path(f).read_bytes()) for f in files)
        return cls(public_keys=keys, issuer=issuer, audience=audience)

    def verify(self, token: str) -> Principal:
        cached = self.verified.get(token)
        if cached is not None:
            return cached
        claims = self._decode(token)
        _require_numeric_dates(claims)
        principal = self._principal(claims)
        self.verified.put(token, principal, float(claims["exp"]))
        return principal

    @staticmethod
    def _principal(claims: dict[str, Any]) -> Principal:
        try:
            role = Role(claims["role"])
            subject = str(claims["sub"])
            facilities = claims.get("facilities", [])
            if not isinstance(facilities, list) or not all(isinstance(f, str)
                                                           for f in facilities):
                raise ValueError
        except (KeyError, ValueError):
            raise Unauthenticated("token lacks a valid sub, role or facilities claim",
                                  reason="INVALID_TOKEN") from None
        if not subject:
            raise Unauthenticated("token has an empty subject", reason="INVALID_TOKEN")
        if ALL in facilities and not may_hold_all_facilities(role):
            raise Unauthenticated(
                f"a {role.value} token must name its facilities: '*' (every facility) is "
                "only for admin, integration and pharmacist tokens", reason="INVALID_TOKEN")
        return Principal(subject=subject, role=role, facilities=frozenset(facilities))

    def _decode(self, token: str) -> dict[str, Any]:
        options = {"require": ["exp", "sub"]}
        kwargs: dict[str, Any] = {"options": options, "leeway": 30}
        if self.issuer:
            kwargs["issuer"] = self.issuer
        if self.audience:
            kwargs["audience"] = self.audience
        else:
            options["verify_aud"] = False  # type: ignore[assignment]
        keys: list[tuple[Any, list[str]]] = [(k, ASYMMETRIC_ALGORITHMS) for k in self.public_keys]
        if self.hmac_secret:
            keys.append((self.hmac_secret, ["HS256"]))
        last: Exception | None = None
        for key, algorithms in keys:
            try:
                return jwt.decode(token, key, algorithms=algorithms, **kwargs)
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("token has expired", reason="TOKEN_EXPIRED") from None
            except jwt.InvalidTokenError as e:
                last = e
        raise Unauthenticated("invalid bearer token", reason="INVALID_TOKEN") from last


def _require_numeric_dates(claims: dict[str, Any]) -> None:
    for name in DATE_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthenticated(f"token claim {name} must be a number (seconds since "
                                  "the epoch)", reason="INVALID_TOKEN")


def mint_token(secret: str, *, subject: str, role: Role, facilities: Sequence[str],
               ttl: timedelta = timedelta(hours=12), issuer: str = "", audience: str = "",
               now: datetime | None = None) -> str:
    """A development token signed with the HMAC secret."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject, "role": role.value, "facilities": list(facilities),
        "iat": issued, "exp": issued + ttl,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
