"""A read's audit event commits in the read's own transaction on PostgreSQL (issue 19: no
second transaction and no hand-off to the group commit per call), only when the read ends
without error, only for unary calls, and never after the call has written; on SQLite reads
never write (the call's end writes the event, api.audit_capture.GroupCommit)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from medservice.domain.access import Role
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store import tables
from medservice.store.audit import AuditDraft, AuditEvent


def _draft(*, with_reads: bool = True) -> AuditDraft:
    return AuditDraft(AuditEvent(
        "", datetime(2026, 3, 1, tzinfo=UTC), "f", "nurse-1", Role.CARER,
        "/medservice.v1.RoundService/CheckDose", "facilities/f/residents/r1", "r1", "", ""),
        with_reads=with_reads)


def _events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(tables.audit_events.c.outcome)))


def _read(uow: UnitOfWorkFactory, draft: AuditDraft) -> UnitOfWork:
    unit = uow(write=False)
    unit.audit_draft = draft
    return unit


def test_a_read_that_ends_well_commits_its_event_on_postgresql_only(
        engine: Engine, uow: UnitOfWorkFactory) -> None:
    draft = _draft()
    with _read(uow, draft) as u:
        u.facilities.exists("f")
    on_pg = engine.dialect.name == "postgresql"
    assert _events(engine) == (["OK"] if on_pg else [])
    assert draft.written is on_pg
    with _read(uow, draft) as u:  # a second read of the same call adds nothing
        u.facilities.exists("f")
    assert len(_events(engine)) == (1 if on_pg else 0)


def test_a_read_that_fails_leaves_the_event_to_the_calls_end(
        engine: Engine, uow: UnitOfWorkFactory) -> None:
    draft = _draft()
    with pytest.raises(LookupError), _read(uow, draft):
        raise LookupError("no such resident")
    assert _events(engine) == [] and not draft.written


def test_a_stream_or_a_call_that_wrote_gets_no_event_from_a_read(
        engine: Engine, uow: UnitOfWorkFactory) -> None:
    stream = _draft(with_reads=False)
    with _read(uow, stream) as u:
        u.facilities.exists("f")
    # run_idempotent: a write that lost a race, then a read for the winner's response.
    wrote = _draft()
    write = uow()
    write.audit_draft = wrote  # as server.build_server's units of work are given it
    with pytest.raises(RuntimeError), write:
        raise RuntimeError("lost the race")
    with _read(uow, wrote) as u:
        u.facilities.exists("f")
    assert _events(engine) == [] and not stream.written and not wrote.written


def test_what_a_read_commits_is_one_row_per_call(engine: Engine, uow: UnitOfWorkFactory
                                                 ) -> None:
    drafts = [_draft() for _ in range(5)]
    for d in drafts:
        with _read(uow, d) as u:
            u.facilities.exists("f")
    with engine.connect() as conn:
        ids = conn.scalar(select(func.count(func.distinct(tables.audit_events.c.event_id))))
    assert ids == (5 if engine.dialect.name == "postgresql" else 0)
