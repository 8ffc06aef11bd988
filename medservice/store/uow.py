"""Unit of work: one transaction, and the repositories that work inside it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from medservice.domain.errors import AlreadyExists
from medservice.store.cards import CardRepository
from medservice.store.discrepancies import DiscrepancyRepository
from medservice.store.records import RecordRepository
from medservice.store.repositories import (
    FacilityRepository,
    RequestLog,
    ResidentRepository,
)


class UnitOfWork:
    """A transaction. Use cases run inside one that their caller opened and commits, so a
    request's work and its idempotency record land together or not at all."""

    facilities: FacilityRepository
    residents: ResidentRepository
    requests: RequestLog
    cards: CardRepository
    records: RecordRepository
    discrepancies: DiscrepancyRepository

    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._conn: Connection | None = None
        self._committed = False

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "unit of work is not open"
        return self._conn

    def __enter__(self) -> UnitOfWork:
        conn = self._engine.connect()
        conn.info["write"] = self._write  # read by the SQLite begin hook (BEGIN IMMEDIATE)
        conn.begin()
        self._conn = conn
        self.facilities = FacilityRepository(conn)
        self.residents = ResidentRepository(conn)
        self.requests = RequestLog(conn)
        self.cards = CardRepository(conn)
        self.records = RecordRepository(conn)
        self.discrepancies = DiscrepancyRepository(conn)
        return self

    def commit(self) -> None:
        try:
            self.conn.commit()
        except IntegrityError as e:
            raise AlreadyExists("a concurrent request created the same resource") from e
        self._committed = True

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
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.info.pop("write", None)
            conn.close()
            self._conn = None
        if isinstance(exc, IntegrityError):
            # A unique key lost a race with a concurrent request: say so, in domain terms.
            raise AlreadyExists("a concurrent request created the same resource") from exc


UnitOfWorkFactory = Callable[..., UnitOfWork]


def uow_factory(engine: Engine) -> UnitOfWorkFactory:
    def make(*, write: bool = True) -> UnitOfWork:
        return UnitOfWork(engine, write=write)

    return make
