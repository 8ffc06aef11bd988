"""Engines for the embedded SQLite default and for PostgreSQL (psycopg 3)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# SQLite has one writer at a time. Writers of this process queue on a lock per database
# file (see writer_lock) instead of on SQLite's busy handler, which sleeps in steps of up
# to 100 ms and wakes with no regard to order: under load that was most of a write's time.
_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()
# How long a writer queues in this process before it leaves it to busy_timeout (as before).
WRITER_LOCK_TIMEOUT = 30.0


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """hide_parameters: statement parameters may hold person identifiers; keep them out of
    exception messages and so out of logs."""
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(url, u.database, pool_size)
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         hide_parameters=True)


def writer_lock(engine: Engine) -> threading.Lock | None:
    """The in-process lock a write transaction on this SQLite database holds from before
    BEGIN IMMEDIATE until it ends; None for other databases. Taken with a timeout: a
    writer queued past WRITER_LOCK_TIMEOUT goes on to SQLite's own locking, as without it.
    A plain lock, not an RLock: it may be released by another thread than took it."""
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url.database or "")
    lock = _WRITER_LOCKS.get(key)
    if lock is None:
        with _WRITER_LOCKS_GUARD:
            lock = _WRITER_LOCKS.setdefault(key, threading.Lock())
    return lock


def take_writer_turn(engine: Engine) -> threading.Lock | None:
    """Queue for this process's writer lock before a write transaction (SQLite): the lock,
    taken, to release when the transaction ends; None when there is none to take (not
    SQLite) or it was not had within WRITER_LOCK_TIMEOUT (SQLite's own locking then)."""
    lock = writer_lock(engine)
    if lock is not None and lock.acquire(timeout=WRITER_LOCK_TIMEOUT):
        return lock
    return None


@contextlib.contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """take_writer_turn for the duration of a with-block."""
    lock = take_writer_turn(engine)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def begin_statement(engine: Engine, *, write: bool) -> str | None:
    """What opens a transaction on SQLite, whose connections run in autocommit mode here so
    that a writer takes the write lock up front (BEGIN IMMEDIATE): two writers then queue
    on busy_timeout instead of failing to upgrade. None: the driver opens its own."""
    if engine.dialect.name != "sqlite":
        return None
    return "BEGIN IMMEDIATE" if write else "BEGIN"


def _sqlite_engine(url: str, database: str | None, pool_size: int) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # A pool as large as PostgreSQL's: under concurrent calls the default five connections
    # overflowed, and each overflow connection was opened (with its pragmas) and closed
    # again per call.
    pooled: dict[str, Any] = {}
    if database and database != ":memory:":
        pooled = {"pool_size": pool_size, "max_overflow": pool_size}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           hide_parameters=True, **pooled)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself so that BEGIN IMMEDIATE can take the write lock
        # up front: two writers then queue on busy_timeout instead of failing to upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL syncs at checkpoints, not at each commit: a committed
        # transaction survives a crash of the process; only a power loss or OS crash may
        # lose the last commits (the database stays consistent).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver's connection: through SQLAlchemy's statement machinery this BEGIN
        # cost as much as a query, and every call opens at least one transaction.
        statement = begin_statement(engine, write=bool(conn.info.get("write")))
        assert statement is not None
        try:
            conn.connection.driver_connection.execute(statement)
        except sqlite3.Error as e:  # raised as SQLAlchemy would (the sweep catches DBAPIError)
            raise DBAPIError.instance(statement, None, e, sqlite3.Error,
                                      hide_parameters=True) from e

    return engine
