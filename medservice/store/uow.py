"""Unit of work: one transaction, and the repositories that work inside it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from medservice.domain.errors import AlreadyExists
from medservice.store.alerts import AlertRepository
from medservice.store.audit import AuditDraft, AuditLog
from medservice.store.caches import Caches
from medservice.store.card_changes import CardChangeRepository
from medservice.store.cards import CardRepository
from medservice.store.db import take_writer_turn
from medservice.store.discrepancies import DiscrepancyRepository
from medservice.store.records import RecordRepository
from medservice.store.repositories import (
    FacilityRepository,
    RequestLog,
    ResidentRepository,
)
from medservice.store.schedule import ScheduleRepository
from medservice.store.webhooks import WebhookRepository

# Told (facility id, last position) after a commit that appended to a facility's alert log.
AlertsCommitted = Callable[[str, int], None]


class SqlUnitOfWork:
    """A transaction on SQLite or PostgreSQL (service.unit_of_work.UnitOfWork). Use cases
    run inside one that their caller opened and commits, so a
    request's work and its idempotency record land together or not at all."""

    facilities: FacilityRepository
    residents: ResidentRepository
    requests: RequestLog
    cards: CardRepository
    card_changes: CardChangeRepository
    records: RecordRepository
    discrepancies: DiscrepancyRepository
    alerts: AlertRepository
    schedule: ScheduleRepository
    audit: AuditLog
    webhooks: WebhookRepository

    def __init__(self, engine: Engine, *, write: bool = True,
                 on_alerts: AlertsCommitted | None = None, caches: Caches | None = None
                 ) -> None:
        self._engine = engine
        self._write = write
        # What this process keeps between calls for this database (store.caches).
        self.caches = caches if caches is not None else Caches()
        # The audit event of the API call this unit of work serves (None: no call, or a
        # read): a write commits it with its work (store.audit).
        self.audit_draft: AuditDraft | None = None
        # Told, after commit, of each facility whose alert log grew: wakes this process's
        # watchers at once (other replicas hear of it by NOTIFY).
        self.on_alerts = on_alerts
        self._alerted: dict[str, int] = {}
        self._conn: Connection | None = None
        self._committed = False
        self._locked: threading.Lock | None = None
        # PostgreSQL: a read's audit event commits in the read's own transaction (one
        # insert and commit, no second transaction and no hand-off to a group commit);
        # PostgreSQL groups concurrent commits' WAL flushes itself. Not on SQLite: a read
        # transaction that writes would queue for, or fail to upgrade to, the write lock.
        self._audits_reads = engine.dialect.name == "postgresql"

    @property
    def writes(self) -> bool:
        """A write transaction (else read-only)."""
        return self._write

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "unit of work is not open"
        return self._conn

    def __enter__(self) -> SqlUnitOfWork:
        if self._write and self.audit_draft is not None:
            # A call that writes gets its event with its work or at its end, never from a
            # read after it (run_idempotent reads after a write that lost a race).
            self.audit_draft.with_reads = False
        if self._write:  # SQLite: queue here, not in its busy handler (store/db.py)
            self._locked = take_writer_turn(self._engine)
        try:
            conn = self._engine.connect()
            conn.info["write"] = self._write  # read by the SQLite begin hook (BEGIN IMMEDIATE)
            conn.begin()
        except BaseException:
            self._unlock()
            raise
        self._conn = conn
        self.facilities = FacilityRepository(conn)
        self.residents = ResidentRepository(conn)
        self.requests = RequestLog(conn)
        self.cards = CardRepository(conn, self.caches.versions)
        self.card_changes = CardChangeRepository(conn)
        self.records = RecordRepository(conn)
        self.discrepancies = DiscrepancyRepository(conn)
        self._alerted = {}
        self.alerts = AlertRepository(conn, self._alerted)
        self.schedule = ScheduleRepository(conn)
        self.audit = AuditLog(conn)
        self.webhooks = WebhookRepository(conn)
        return self

    def commit(self) -> None:
        # The call's audit event commits with its work (store/audit.py).
        audited = self.audit_draft if self._write else None
        if audited is not None and audited.written:
            audited = None
        if audited is not None:
            self.audit.add(audited.completed("OK"))
        try:
            self.conn.commit()
        except IntegrityError as e:
            raise AlreadyExists("a concurrent request created the same resource") from e
        self._committed = True
        if audited is not None:
            audited.written = True
        if self.on_alerts is not None:
            for facility_id, position in sorted(self._alerted.items()):
                self.on_alerts(facility_id, position)
        self._alerted.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if exc is None:
                self._commit_read_audit(conn)
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.info.pop("write", None)
            conn.close()
            self._conn = None
            self._unlock()
        if isinstance(exc, IntegrityError):
            # A unique key lost a race with a concurrent request: say so, in domain terms.
            raise AlreadyExists("a concurrent request created the same resource") from exc


    def _commit_read_audit(self, conn: Connection) -> None:
        """A read that ended without error commits its call's event, outcome OK (as a write
        does with its work); should that fail, the call's end writes it (api.audit_capture)."""
        draft = self.audit_draft
        if (self._write or not self._audits_reads or draft is None or draft.written
                or not draft.with_reads):
            return
        try:
            self.audit.add(draft.completed("OK"))
            conn.commit()
        except Exception:
            return
        draft.written = True

    def _unlock(self) -> None:
        if self._locked is not None:
            self._locked.release()
            self._locked = None


def uow_factory(engine: Engine, on_alerts: AlertsCommitted | None = None
                ) -> Callable[..., SqlUnitOfWork]:
    """Units of work on one database, sharing one set of caches (store.caches)."""
    caches = Caches()

    def make(*, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, write=write, on_alerts=on_alerts, caches=caches)

    return make
