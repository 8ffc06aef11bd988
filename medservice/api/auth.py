"""Bearer tokens: JWTs naming the subject, one role and the facilities it may touch.

Development uses an HMAC secret (HS256); production gives PEM public keys (RS256, ES256,
EdDSA) so the service never holds a signing key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from medservice.domain.access import Principal, Role
from medservice.domain.errors import Unauthenticated

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


@dataclass(frozen=True)
class TokenVerifier:
    hmac_secret: str = ""
    public_keys: tuple[Any, ...] = ()
    issuer: str = ""
    audience: str = ""

    @classmethod
    def from_key_files(cls, files: Sequence[str], issuer: str = "", audience: str = ""
                       ) -> TokenVerifier:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        keys = tuple(load_pem_public_key(Path(f).read_bytes()) for f in files)
        return cls(public_keys=keys, issuer=issuer, audience=audience)

    def verify(self, token: str) -> Principal:
        claims = self._decode(token)
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
