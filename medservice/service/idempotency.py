"""Idempotent writes (AIP-155): a write with a request_id is done once; a retry gets the
first response. The response is stored in the transaction that does the work, so the two
land together or not at all."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from medservice.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
# AIP-155: a request_id is a UUID (any version, either case). Nothing else is accepted, so
# a caller cannot put a name or a CPR number where logs and the audit trail keep it.
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


def is_request_id(value: object) -> bool:
    """Whether `value` is a well-formed (non-empty) request_id: a UUID."""
    return isinstance(value, str) and _UUID.match(value) is not None


def run_idempotent(uow_factory: UnitOfWorkFactory, subject: str, method: str,
                   request_id: str, digest: str, work: Callable[[UnitOfWork], T],
                   encode: Callable[[T], bytes], decode: Callable[[bytes], T],
                   now: datetime) -> T:
    """Do `work` in one unit of work and store its response (`encode`d) under the
    caller's request_id, in the same transaction. A retry with the same request (same
    `digest`) returns the stored response and leaves nothing done; a concurrent twin that
    loses the race also gets the winner's. The same request_id for another request is
    refused."""
    if request_id and not is_request_id(request_id):
        raise InvalidArgument([FieldViolation(
            "request_id", "must be a UUID such as 0b7f3c1e-2f7b-4a57-9a39-4d1b8c3f2e10")])
    if not request_id:
        with uow_factory() as uow:
            response = work(uow)
            uow.commit()
            return response
    # A first attempt, by far the common case, reads nothing of the request log: the work
    # and its response go in, and the log's key refuses a request_id stored before
    # (ALREADY_EXISTS, the transaction rolled back with the work). Only then, or when the
    # work fails (a retry's work may fail for what the first did: the dose is recorded,
    # the record corrected), is the log read: a retry gets the first response, another
    # request with the same request_id REQUEST_ID_REUSED, a first attempt its own error.
    try:
        with uow_factory() as uow:
            response = work(uow)
            uow.requests.add(subject, method, request_id, digest, encode(response), now)
            uow.commit()
            return response
    except DomainError:
        with uow_factory(write=False) as uow:
            prior = _stored(uow, subject, method, request_id, digest)
        if prior is not None:
            return decode(prior)
        raise


def _stored(uow: UnitOfWork, subject: str, method: str, request_id: str, digest: str
            ) -> bytes | None:
    found = uow.requests.get(subject, method, request_id)
    if found is None:
        return None
    stored_digest, payload = found
    if stored_digest != digest:
        raise FailedPrecondition("this request_id was used for a different request",
                                 reason="REQUEST_ID_REUSED")
    return payload
