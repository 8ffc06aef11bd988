"""The one place that turns domain errors into google.rpc.Status with details."""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from medservice.domain import errors as e

ERROR_DOMAIN = "medservice.dk"

_CODES: list[tuple[type[e.DomainError], int]] = [
    (e.InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (e.NotFound, code_pb2.NOT_FOUND),
    (e.AlreadyExists, code_pb2.ALREADY_EXISTS),
    (e.FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (e.Aborted, code_pb2.ABORTED),
    (e.OutOfRange, code_pb2.OUT_OF_RANGE),
    (e.ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (e.PermissionDenied, code_pb2.PERMISSION_DENIED),
    (e.Unauthenticated, code_pb2.UNAUTHENTICATED),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_for(error: e.DomainError) -> grpc.Status:
    return rpc_status.to_status(status_message(error))


def status_message(error: e.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error, as a message (a batch item's result)."""
    code = next((c for cls, c in _CODES if isinstance(error, cls)), code_pb2.FAILED_PRECONDITION)
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN,
                                                 metadata=error.metadata))]
    if isinstance(error, e.InvalidArgument):
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ])))
    return status_pb2.Status(code=code, message=error.message, details=details)


def internal_status() -> grpc.Status:
    """For anything unexpected: a plain message, never a stack trace."""
    return rpc_status.to_status(internal_message())


def internal_message() -> status_pb2.Status:
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error; the service has logged it",
        details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))])


def simple_status(code: int, reason: str, message: str,
                  metadata: dict[str, str] | None = None) -> grpc.Status:
    return rpc_status.to_status(status_pb2.Status(
        code=code, message=message,
        details=[_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN,
                                                   metadata=metadata))]))


def retry_status(code: int, reason: str, message: str, retry_after: float) -> grpc.Status:
    """A refusal the caller may retry after `retry_after` seconds (google.rpc.RetryInfo)."""
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(max(1, math.ceil(retry_after * 1000)))
    return rpc_status.to_status(status_pb2.Status(
        code=code, message=message,
        details=[_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)),
                 _pack(error_details_pb2.RetryInfo(retry_delay=delay))]))
