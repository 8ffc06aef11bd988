"""run_idempotent on both stores (issue 19): a first attempt reads nothing of the request
log; a retry, whether its work would succeed again or fail for what the first did, gets
the first response and leaves nothing done twice; another request under the same
request_id is refused and leaves nothing done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event

from medservice.domain.errors import FailedPrecondition, NotFound
from medservice.domain.facility import Facility, Resident
from medservice.service import facilities as facilities_uc
from medservice.service.idempotency import run_idempotent
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)

REQUEST_ID = "5f0c2d7e-8a41-4c39-9b6e-2d1f7a9c3e58"  # a UUID (AIP-155)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _residents(uow: UnitOfWorkFactory) -> list[str]:
    with uow(write=False) as u:
        return [r.resident_id for r in u.residents.list("f", limit=100, after=None)]


class AddsResident:
    """Work that succeeds every time it runs: a new resident per run."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, u: UnitOfWork) -> str:
        self.runs += 1
        rid = f"r{self.runs}"
        facilities_uc.create_resident(u, Resident(rid, "f", f"0101{self.runs:02d}-0000", rid,
                                                  "1"), NOW)
        return rid


def _run(uow: UnitOfWorkFactory, work: Any, digest: str = "d1") -> str:
    return run_idempotent(uow, "carer-1", "Add", REQUEST_ID, digest, work, str.encode,
                          bytes.decode, NOW)


@pytest.fixture
def facility(uow: UnitOfWorkFactory) -> None:
    with uow() as u:
        facilities_uc.create_facility(u, Facility("f", "Home"), NOW)
        u.commit()


def test_a_first_attempt_reads_no_request_log(uow: UnitOfWorkFactory, engine: Engine,
                                              facility: None) -> None:
    with _statements(engine) as seen:
        assert _run(uow, AddsResident()) == "r1"
    assert not [s for s in seen if s.startswith("SELECT") and "request_log" in s], seen
    assert [s for s in seen if s.startswith("INSERT INTO request_log")]


def test_a_retry_whose_work_would_succeed_again_does_nothing(
        uow: UnitOfWorkFactory, facility: None) -> None:
    work = AddsResident()
    assert _run(uow, work) == "r1"
    assert _run(uow, work) == "r1"  # the first response
    assert work.runs == 2 and _residents(uow) == ["r1"]  # the second run rolled back


def test_a_retry_whose_work_fails_gets_the_first_response(
        uow: UnitOfWorkFactory, facility: None) -> None:
    assert _run(uow, AddsResident()) == "r1"

    def already_done(u: UnitOfWork) -> str:
        raise FailedPrecondition("already corrected", reason="ALREADY_CORRECTED")

    assert _run(uow, already_done) == "r1"


def test_another_request_under_the_same_request_id_is_refused(
        uow: UnitOfWorkFactory, facility: None) -> None:
    work = AddsResident()
    _run(uow, work)
    with pytest.raises(FailedPrecondition) as refused:
        _run(uow, work, digest="d2")
    assert refused.value.reason == "REQUEST_ID_REUSED"
    assert _residents(uow) == ["r1"]

    def fails(u: UnitOfWork) -> str:
        raise NotFound("no such dose", reason="DOSE_NOT_FOUND")

    with pytest.raises(FailedPrecondition):
        _run(uow, fails, digest="d3")


def test_a_first_attempt_that_fails_gets_its_own_error(uow: UnitOfWorkFactory,
                                                       facility: None) -> None:
    def fails(u: UnitOfWork) -> str:
        raise NotFound("no such dose", reason="DOSE_NOT_FOUND")

    with pytest.raises(NotFound):
        _run(uow, fails)
    assert _run(uow, AddsResident()) == "r1"  # nothing was stored under the request_id
