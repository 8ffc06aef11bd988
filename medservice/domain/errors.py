"""Domain errors. Each carries a stable reason; one place (api/errors.py) maps them to gRPC.

Messages must never contain a person identifier or a name: they reach callers and logs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class DomainError(Exception):
    """Base of errors a caller can act on. `reason` is a stable UPPER_SNAKE code."""

    reason = "DOMAIN_ERROR"

    def __init__(self, message: str, reason: str | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        # Goes to ErrorInfo.metadata: identifiers a caller can act on, never person data.
        self.metadata = metadata or {}


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        self.violations = violations
        text = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(text)


class NotFound(DomainError):
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrent change won (stale etag); re-read and try again."""

    reason = "ABORTED"


class OutOfRange(DomainError):
    """A position or token outside what the service can still serve (e.g. retention)."""

    reason = "OUT_OF_RANGE"


class ResourceExhausted(DomainError):
    reason = "RESOURCE_EXHAUSTED"


class PermissionDenied(DomainError):
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


def require(violations: list[FieldViolation]) -> None:
    """Raise InvalidArgument when there is any violation."""
    if violations:
        raise InvalidArgument(violations)
