"""The audit trail (issue 5): one event per authenticated API call, only ever added.

There is no method to change or remove an event, and the database refuses UPDATE and
DELETE on the table (migration 0005). The API passes the event of the call in progress to
the call's units of work (`SqlUnitOfWork.audit_draft`); a write unit of work adds it in the
transaction that does the work (`commit`), so work and its event land together or not at
all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from medservice.domain.access import Role
from medservice.domain.names import time_ordered_id
from medservice.store import tables as t
from medservice.store.db import begin_statement, writer_turn
from medservice.store.repositories import _utc, newest_first

_A = t.audit_events.c
_INSERT = insert(t.audit_events)


@dataclass(frozen=True)
class AuditEvent:
    event_id: str
    event_time: datetime
    facility_id: str | None  # None: the call named no facility
    subject: str
    role: Role
    method: str
    resource: str  # a resource name, never a person identifier
    resident_id: str | None
    request_id: str
    outcome: str  # the gRPC status code name
    # What the caller asserted that the call acted on ("unidentified": a document naming no
    # patient by CPR number imported on the caller's word); never a person identifier.
    detail: str = ""


@dataclass
class AuditDraft:
    """The event of the call in progress, before its outcome is known. `written` is set
    once an event with outcome OK has been committed for it. `with_reads`: a read unit of
    work may commit it too, when it ends without error (a unary call; see
    SqlUnitOfWork.__exit__)."""

    event: AuditEvent
    written: bool = False
    with_reads: bool = False

    def completed(self, outcome: str) -> AuditEvent:
        e = self.event  # the constructor: dataclasses.replace cost three times as much
        return AuditEvent(time_ordered_id(), e.event_time, e.facility_id, e.subject, e.role,
                          e.method, e.resource, e.resident_id, e.request_id, outcome,
                          e.detail)


@dataclass(frozen=True)
class AuditFilter:
    facility_ids: frozenset[str] | None  # None: every facility and calls naming none
    subject: str | None = None
    resident: tuple[str, str] | None = None  # (facility id, resident id)
    # A full method ("/medservice.v1.RoundService/RecordDose") or its tail
    # ("RoundService/RecordDose", "RecordDose").
    method: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _event(row: Any) -> AuditEvent:
    return AuditEvent(row.event_id, _utc(row.event_time), row.facility_id, row.subject,
                      Role(row.role), row.method, row.resource, row.resident_id,
                      row.request_id, row.outcome, row.detail)


def _row(e: AuditEvent) -> dict[str, Any]:
    return dict(event_id=e.event_id, event_time=e.event_time, facility_id=e.facility_id,
                subject=e.subject, role=e.role.value, method=e.method, resource=e.resource,
                resident_id=e.resident_id, request_id=e.request_id, outcome=e.outcome,
                detail=e.detail)


class AuditLog:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, e: AuditEvent) -> None:
        self.add_all([e])

    def add_all(self, events: Sequence[AuditEvent]) -> None:
        # A prepared statement with parameters, all events in one execution (executemany):
        # building insert().values() per event cost more than running it, and a group
        # commit's events went one execution each.
        self._conn.execute(_INSERT, [_row(e) for e in events])

    def page(self, f: AuditFilter, *, limit: int, after: tuple[str, str] | None
             ) -> list[AuditEvent]:
        """Newest first; `after` is (event_time ISO, event id) of the previous page."""
        q = select(t.audit_events)
        if f.facility_ids is not None:
            q = q.where(_A.facility_id.in_(sorted(f.facility_ids)))
        if f.subject:
            q = q.where(_A.subject == f.subject)
        if f.resident is not None:
            q = q.where(_A.facility_id == f.resident[0], _A.resident_id == f.resident[1])
        if f.method:
            if f.method.startswith("/"):
                q = q.where(_A.method == f.method)
            else:  # "RecordDose" ends "/RecordDose"; "RoundService/X" ends ".RoundService/X"
                tail = ("." if "/" in f.method else "/") + f.method
                q = q.where(_A.method.endswith(tail, autoescape=True))
        q = newest_first(q, _A.event_time, _A.event_id, f.start, f.end, after, limit)
        return [_event(r) for r in self._conn.execute(q)]


class _Disconnected(Exception):
    """The kept connection was found closed by the database (the driver's error is the
    cause)."""


class AuditAppender:
    """Appends audit events in a transaction of their own (the group commit's: reads,
    failures), on one database connection it keeps, through the driver: the same INSERT
    as AuditLog's, compiled once for the database, each value converted by its column's
    type as SQLAlchemy converts it. Through a unit of work such a transaction cost four
    times as much (pool checkout, the repositories, SQLAlchemy's execution), and every
    read on SQLite pays one. One caller at a time (the group commit's leader); a lock
    makes sure."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        compiled = _INSERT.compile(dialect=engine.dialect)
        self._sql = str(compiled)
        # qmark (SQLite): values by position; named or pyformat (psycopg): by name.
        self._positions = compiled.positiontup
        # The dialect's own type (SQLite's DATETIME under UtcDateTime): its converter is the
        # one that writes the text AuditLog writes; the generic type's leaves a datetime for
        # the driver to format its own way.
        dialect = engine.dialect
        self._convert = [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect))
                         for c in t.audit_events.c]
        self._begin = begin_statement(engine, write=True)
        self._lock = threading.Lock()
        self._conn: Any = None  # the pool's connection, kept (None: none yet, or dropped)
        self._closed = False

    def __call__(self, events: Callable[[], Sequence[AuditEvent]]) -> None:
        """Insert and commit the events `events()` gives once the transaction is open (who
        queued meanwhile goes along). Raises what the database raised; nothing is kept.
        A kept connection the database dropped (a restart, an idle timeout) is replaced
        and the events tried once more on the new one: the pool would have pinged it."""
        with self._lock, writer_turn(self._engine):
            if self._closed:
                raise RuntimeError("the audit appender is closed")
            # Once more only if the connection that failed had been kept from before.
            attempts = 1 if self._conn is None else 2
            for attempt in range(attempts):
                try:
                    self._append(events)
                    return
                except _Disconnected as e:
                    if attempt + 1 == attempts:
                        assert e.__cause__ is not None
                        raise e.__cause__ from None
                    # event ids are keys: a retry never stores an event twice

    def _append(self, events: Callable[[], Sequence[AuditEvent]]) -> None:
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        driver = self._conn.driver_connection
        try:
            cursor = driver.cursor()
            if self._begin:  # SQLite's autocommit mode (store.db): the transaction is ours
                cursor.execute(self._begin)
            cursor.executemany(self._sql, [self._values(e) for e in events()])
            driver.commit()
        except BaseException as e:
            # Whatever failed (the connection itself, perhaps): a new one next time.
            dialect = self._engine.dialect
            lost = (isinstance(e, dialect.loaded_dbapi.Error)
                    and dialect.is_disconnect(e, driver, None))
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # it is dropped either way
                conn.invalidate()
                conn.close()
            if lost:
                raise _Disconnected from e
            raise

    def _values(self, e: AuditEvent) -> Any:
        row = _row(e)
        for name, convert in self._convert:
            if convert is not None:
                row[name] = convert(row[name])
        return tuple(row[k] for k in self._positions) if self._positions else row

    def close(self) -> None:
        """Returns the connection; appending afterwards is refused (no connection leaks)."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
