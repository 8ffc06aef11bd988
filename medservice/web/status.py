"""gRPC statuses as HTTP answers: the google.rpc.Status (with its details) as JSON, and
the HTTP code usual for the gRPC code (as Google's APIs and grpc-gateway map them)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

_ = error_details_pb2  # the details' types must be known to print them as JSON

STATUS_DETAILS_KEY = "grpc-status-details-bin"

HTTP_CODES = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}


def http_code(status: status_pb2.Status) -> int:
    return HTTP_CODES.get(status.code, 500)


def from_metadata(code: int, message: str, metadata: Any) -> status_pb2.Status:
    """The rich status a call ended with: the one the server put in the trailers when it
    did (every error of the API does), else a plain one from code and message."""
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if status.code == code:
                return status
    return status_pb2.Status(code=code, message=message)


def from_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    return from_metadata(error.code().value[0], error.details() or "",
                         error.trailing_metadata())


def from_grpc_status(status: grpc.Status) -> status_pb2.Status:
    return from_metadata(status.code.value[0], status.details, status.trailing_metadata)


def simple(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)


def to_json(status: status_pb2.Status) -> dict[str, Any]:
    """{"code": 5, "message": "...", "details": [{"@type": "...", ...}]}; a detail of a
    type this process does not know is left out rather than failing the answer."""
    try:
        document: dict[str, Any] = json_format.MessageToDict(
            status, always_print_fields_with_no_presence=True)
        return document
    except (json_format.SerializeToJsonError, TypeError):
        return {"code": status.code, "message": status.message, "details": []}
