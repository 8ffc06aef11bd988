"""Audit events of reads written several to a transaction (api/audit_capture.GroupCommit),
and SQLite writers queued on an in-process lock (store/db.writer_lock)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from medservice.api.audit_capture import GroupCommit, pending_audit, through_units
from medservice.domain.access import Role
from medservice.store.audit import AuditDraft, AuditEvent
from medservice.store.db import make_engine, writer_lock
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory


def _event(i: int) -> AuditEvent:
    return AuditEvent(f"e{i}", datetime(2026, 1, 1, tzinfo=UTC), "f", "s", Role.CARER,
                      "/medservice.v1.RoundService/CheckDose", "facilities/f", None, "", "OK")


class _Store:
    """Committed transactions, each a list of event ids; commits take a while, so that
    callers arriving meanwhile queue up."""

    def __init__(self, refuse: set[str] | None = None, delay: float = 0.005) -> None:
        self.committed: list[list[str]] = []
        self.refuse = refuse or set()
        self.delay = delay
        self.lock = threading.Lock()

    def unit(self, **_: Any) -> _Unit:
        return _Unit(self)


class _Unit:
    def __init__(self, store: _Store) -> None:
        self.store, self.audit = store, self
        self.added: list[str] = []
        # As server.build_server's units of work: the call's draft, if any, is passed in.
        self.audit_draft = pending_audit.get()

    def __enter__(self) -> _Unit:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add(self, event: AuditEvent) -> None:
        if event.event_id in self.store.refuse:
            raise RuntimeError("refused")
        self.added.append(event.event_id)

    def add_all(self, events: list[AuditEvent]) -> None:
        for event in events:  # one statement: any refused event fails them all
            self.add(event)

    def commit(self) -> None:
        draft = self.audit_draft  # what SqlUnitOfWork.commit would add along
        if draft is not None and not draft.written:
            self.added.append("pending draft")
        time.sleep(self.store.delay)
        with self.store.lock:
            self.store.committed.append(self.added)


def _group(store: _Store) -> GroupCommit:
    # _Unit has only what GroupCommit touches (audit.add_all, commit, audit_draft): not a whole
    # UnitOfWork on purpose, hence the ignore.
    return GroupCommit(through_units(store.unit))  # type: ignore[arg-type]


def _write_all(group: GroupCommit, n: int) -> dict[str, Exception | None]:
    results: dict[str, Exception | None] = {}
    start = threading.Barrier(n)

    def one(i: int) -> None:
        start.wait()
        results[f"e{i}"] = group.write(_event(i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_each_event_commits_once_and_callers_queued_together_share_a_commit() -> None:
    store = _Store()
    results = _write_all(_group(store), 24)
    assert results == {f"e{i}": None for i in range(24)}
    written = [e for batch in store.committed for e in batch]
    assert sorted(written) == sorted(f"e{i}" for i in range(24))
    assert len(store.committed) < 24  # some shared a transaction


def test_a_refused_event_fails_only_its_own_call() -> None:
    store = _Store(refuse={"e3"})
    results = _write_all(_group(store), 12)
    assert isinstance(results.pop("e3"), RuntimeError)
    assert results == {f"e{i}": None for i in range(12) if i != 3}
    written = [e for batch in store.committed for e in batch]
    assert sorted(written) == sorted(f"e{i}" for i in range(12) if i != 3)


def test_the_writers_pending_draft_does_not_ride_along() -> None:
    store = _Store(delay=0)
    token = pending_audit.set(AuditDraft(_event(99)))
    try:
        assert _group(store).write(_event(1)) is None
    finally:
        pending_audit.reset(token)
    assert store.committed == [["e1"]]


def test_sequential_writes_each_commit() -> None:
    store = _Store(delay=0)
    group = _group(store)
    assert [group.write(_event(i)) for i in range(3)] == [None, None, None]
    assert store.committed == [["e0"], ["e1"], ["e2"]]


@pytest.fixture
def sqlite_uow(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine, uow_factory(engine)
    engine.dispose()


def test_sqlite_writers_queue_on_the_writer_lock(sqlite_uow: Any) -> None:
    engine, uow = sqlite_uow
    lock = writer_lock(engine)
    assert lock is not None and writer_lock(engine) is lock
    order: list[str] = []

    def second() -> None:
        with uow():
            order.append("second in")

    with uow():
        assert lock.locked()
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.05)
        order.append("first out")
    t.join(5)
    assert order == ["first out", "second in"]
    assert not lock.locked()
    with uow(write=False):  # readers never take it
        assert not lock.locked()


def test_the_writer_lock_is_released_when_the_work_fails(sqlite_uow: Any) -> None:
    engine, uow = sqlite_uow
    with pytest.raises(RuntimeError), uow():
        raise RuntimeError("the work failed")
    lock = writer_lock(engine)
    assert lock is not None and not lock.locked()
    with uow() as u:  # and the next writer goes ahead
        u.commit()


def test_postgresql_has_no_writer_lock() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/none")
    assert writer_lock(engine) is None
    engine.dispose()
