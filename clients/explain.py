"""A failed call as the one line medctl prints: what went wrong, the stable reason, and
what to do about it where medctl knows (the --ack to give, the token to get)."""

from __future__ import annotations

import grpc

from clients.client import MedServiceError
from clients.words import say
from medservice.i18n import msg

# ErrorInfo metadata medctl turns into advice; any other key is shown as it is.
_ADVICE_KEYS = {"reasons", "roles"}


def explain(error: MedServiceError, target: str = "") -> str:
    """One line. Field violations appear once (the message of an INVALID_ARGUMENT already
    names them; only a bare message gets them appended)."""
    message = error.message
    if error.violations:
        said = "; ".join(f"{f}: {d}" for f, d in error.violations)
        message = message if message and all(f in message for f, _ in error.violations) \
            else said
    text = f"{error.code.name}: {message}"
    if error.reason and error.reason != error.code.name:
        text += f" [{error.reason}]"
    extra = [f"{k}: {v}" for k, v in sorted(error.metadata.items()) if k not in _ADVICE_KEYS]
    if extra:
        text += " (" + "; ".join(extra) + ")"
    advice = _advice(error, target)
    return f"{text}; {advice}" if advice else text


def _advice(error: MedServiceError, target: str) -> str:
    if error.reason == "CHECK_NOT_ACKNOWLEDGED":
        codes = [c for c in error.metadata.get("reasons", "").split(",") if c]
        return say(msg("cli.advice.ack", acks=" ".join(
            f"--ack {c}" for c in codes or ["CODE"])))
    if error.reason == "ROLE_NOT_ALLOWED" and "roles" in error.metadata:
        return say(msg("cli.advice.role"))
    if error.code == grpc.StatusCode.UNAUTHENTICATED:
        return say(msg("cli.advice.token"))
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return say(msg("cli.advice.unavailable", target=target or "--target"))
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return say(msg("cli.advice.deadline"))
    return ""
