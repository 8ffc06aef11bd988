"""Repository of discrepancies: saved by stable key (never twice), withdrawn when they no
longer apply, reviewed under an etag, and the history of each."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    or_,
    select,
    update,
)

from medservice import i18n
from medservice.domain.discrepancy import Code, Decision, Discrepancy, Severity
from medservice.domain.names import new_etag
from medservice.store import tables as t
from medservice.store.bulk import any_of, insert_rows
from medservice.store.repositories import _utc, newest_first

_D = t.discrepancies.c
_E = t.discrepancy_events.c
LOOKUP_CHUNK = 10_000  # ids per lookup (SQLite allows 32,766 parameters)


class Status(Enum):
    OPEN = "open"
    REVIEWED = "reviewed"
    WITHDRAWN = "withdrawn"


class EventKind(Enum):
    """What happened to a discrepancy (the API's DETECTED, REDETECTED, ...)."""

    DETECTED = "detected"
    REDETECTED = "redetected"  # found again after it had been withdrawn
    CHANGED = "changed"  # found again with other facts (its dose, record, time or text)
    WITHDRAWN = "withdrawn"
    REVIEWED = "reviewed"


RECONCILIATION = "reconciliation"  # the actor of detections and withdrawals
# What reconciliation finds about a discrepancy, beyond its key: refreshed when found again.
_FACTS = ("code", "severity", "is_error", "order_id", "dose_id", "record_id", "occurred_at",
          "description", "message", "known_at_administration")
# What save compares a stored row by.
_STORED = (_D.discrepancy_id, _D.facility_id, _D.resident_id, _D.status,
           *(_D[c] for c in _FACTS))


@dataclass(frozen=True)
class DiscrepancyEntry:
    """A stored discrepancy with its workflow state."""

    discrepancy_id: str
    discrepancy: Discrepancy
    detected_at: datetime
    status: Status
    decision: Decision | None
    review_note: str
    reviewer: str
    reviewed_at: datetime | None
    etag: str


@dataclass(frozen=True)
class DiscrepancyEvent:
    event_id: int
    discrepancy_id: str
    event_time: datetime
    kind: EventKind
    actor: str
    detail: str


def discrepancy_id(key: str) -> str:
    """The same key gives the same id in every replica."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _entry(row: Any) -> DiscrepancyEntry:
    d = Discrepancy(
        key=row.key, code=Code(row.code), severity=Severity(row.severity),
        is_error=row.is_error, facility_id=row.facility_id, resident_id=row.resident_id,
        order_id=row.order_id, dose_id=row.dose_id, record_id=row.record_id,
        occurred_at=_utc(row.occurred_at), description=row.description,
        known_at_administration=row.known_at_administration, message=i18n.decode(row.message))
    return DiscrepancyEntry(
        row.discrepancy_id, d, _utc(row.detected_at), Status(row.status),
        Decision(row.decision) if row.decision else None, row.review_note, row.reviewer,
        _utc(row.reviewed_at) if row.reviewed_at else None, row.etag)


@dataclass(frozen=True)
class DiscrepancyFilter:
    facility_ids: frozenset[str] | None  # None: every facility
    resident_id: str | None = None
    code: Code | None = None
    min_severity: Severity | None = None
    status: Status | None = None
    start: datetime | None = None
    end: datetime | None = None


# The pharmacist's review queue: open discrepancies, and reviewed ones whose decision asks
# for follow-up. Ordered by queue rank (open before follow-up, each high .. info), then
# facility, oldest occurrence, id.
_SEVERITY_ORDER = (Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)


def queue_rank(status: Status, severity: Severity) -> int:
    """0 (open, high) .. 7 (needs follow-up, info): the first key of the queue's order."""
    return (0 if status is Status.OPEN else len(_SEVERITY_ORDER)) + \
        _SEVERITY_ORDER.index(severity)


# The same rank in SQL, built from the function so the two cannot disagree.
_QUEUE_RANK = case({s.value: queue_rank(Status.OPEN, s) for s in Severity},
                   value=_D.severity) + \
    case((_D.status == Status.OPEN.value, 0), else_=queue_rank(Status.REVIEWED, Severity.HIGH))
_IN_QUEUE = or_(_D.status == Status.OPEN.value,
                and_(_D.status == Status.REVIEWED.value,
                     _D.decision == Decision.NEEDS_FOLLOW_UP.value))

QueueKey = tuple[int, str, datetime, str]  # rank, facility, occurrence, id


def queue_key(e: DiscrepancyEntry) -> QueueKey:
    d = e.discrepancy
    return queue_rank(e.status, d.severity), d.facility_id, d.occurred_at, e.discrepancy_id


def _after(columns: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after `values` in the ascending order of `columns` (a portable row-value
    comparison: (a, b) > (x, y) as a > x OR (a = x AND b > y))."""
    return or_(*(and_(*(c == v for c, v in zip(columns[:i], values[:i], strict=True)),
                      columns[i] > values[i]) for i in range(len(columns))))


class DiscrepancyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def save(self, found: Iterable[Discrepancy], now: datetime) -> list[str]:
        """Insert what is new (by key) and reopen what had been withdrawn; return the ids
        of the discrepancies that are new or reopened, and record each as detected or
        re-detected. A concurrent twin that inserted a key first counts it, not this call.

        Hot path of batch reconciliation: a fixed number of statements, whatever the
        number of discrepancies."""
        by_id = {discrepancy_id(d.key): d for d in found}
        if not by_id:
            return []
        # Most of a batch's findings were stored by an earlier run: look them up rather
        # than send them all to be refused by the key's constraint.
        ids = list(by_id)
        stored: dict[str, Any] = {}
        for i in range(0, len(ids), LOOKUP_CHUNK):
            stored.update((r.discrepancy_id, r) for r in self._conn.execute(
                select(*_STORED).where(
                    any_of(self._conn, _D.discrepancy_id, ids[i:i + LOOKUP_CHUNK]))))
        saved, events = self._save(by_id, stored, now)
        self._append(events, RECONCILIATION, now)
        return saved

    def save_and_withdraw(self, found: Sequence[Discrepancy], facility_id: str,
                          resident_id: str, start: datetime, end: datetime, now: datetime
                          ) -> list[str]:
        """`save(found)` then `withdraw_absent(facility_id, resident_id, start, end, keys
        found)`, with one read of what both look at (the rows found, and the resident's
        live rows in [start, end)) and one write of the history: what a record's
        reconciliation of one resident costs on the hot path. Returns what `save` does."""
        by_id = {discrepancy_id(d.key): d for d in found}
        scope = and_(_D.facility_id == facility_id, _D.resident_id == resident_id,
                     _D.occurred_at >= start, _D.occurred_at < end,
                     _D.status != Status.WITHDRAWN.value)
        if by_id:
            scope = or_(scope, any_of(self._conn, _D.discrepancy_id, list(by_id)))
        rows = self._conn.execute(select(*_STORED, _D.key).where(scope)).all()
        stored = {r.discrepancy_id: r for r in rows if r.discrepancy_id in by_id}
        saved, events = self._save(by_id, stored, now) if by_id else ([], [])
        # The rows save leaves alone are all of the scope's rows it was not given: save
        # only changes rows of keys found, and those are never withdrawn.
        produced = {d.key for d in found}
        stale = [r.discrepancy_id for r in rows
                 if r.key not in produced and r.facility_id == facility_id
                 and r.resident_id == resident_id and r.status != Status.WITHDRAWN.value
                 and start <= _utc(r.occurred_at) < end]
        self._append(events + self._withdraw(stale), RECONCILIATION, now)
        return saved

    def _save(self, by_id: dict[str, Discrepancy], stored: dict[str, Any], now: datetime
              ) -> tuple[list[str], list[tuple[str, EventKind, str]]]:
        """save's writes, given the stored rows of the ids found; the ids saved, and the
        events to record."""
        ids = list(by_id)
        rows = [self._row(i, d, now) for i, d in by_id.items() if i not in stored]
        new = set(insert_rows(self._conn, t.discrepancies, rows, on_conflict=["key"],
                              returning=_D.discrepancy_id)) if rows else set()
        # The same key found with other facts (a later record now matches the dose, a
        # back-dated change moved it): the stored row takes the facts found now, so the
        # review queue never shows an older truth than the round list.
        changed: list[tuple[str, EventKind, str]] = []
        for d_id, row in stored.items():
            facts = self._facts(by_id[d_id])
            held = {c: getattr(row, c) for c in _FACTS}
            held["occurred_at"] = _utc(row.occurred_at)  # SQLite gives it back naive
            differ = [c for c in _FACTS if held[c] != facts[c]]
            if differ:
                self._conn.execute(update(t.discrepancies).where(_D.discrepancy_id == d_id)
                                   .values(**facts, etag=new_etag()))
                if row.status != Status.WITHDRAWN.value:
                    changed.append((d_id, EventKind.CHANGED, ", ".join(differ)))
        withdrawn = [d_id for d_id, row in stored.items()
                     if row.status == Status.WITHDRAWN.value]
        reopened: set[str] = set()
        if withdrawn:
            # Found again after it no longer applied: open for review again. Its earlier
            # review (if any) stays in the history; the row shows the current state.
            reopened = {i for (i,) in self._conn.execute(
                update(t.discrepancies)
                .where(any_of(self._conn, _D.discrepancy_id, withdrawn),
                       _D.status == Status.WITHDRAWN.value)
                .values(status=Status.OPEN.value, decision=None, review_note="",
                        reviewer="", reviewed_at=None, etag=new_etag())
                .returning(_D.discrepancy_id))}
        saved = [i for i in ids if i in new or i in reopened]
        return saved, [(i, EventKind.DETECTED if i in new else EventKind.REDETECTED, "")
                       for i in saved] + changed

    @staticmethod
    def _facts(d: Discrepancy) -> dict[str, Any]:
        return dict(code=d.code.value, severity=d.severity.value, is_error=d.is_error,
                    order_id=d.order_id, dose_id=d.dose_id, record_id=d.record_id,
                    occurred_at=d.occurred_at, description=d.description,
                    message=i18n.encode(d.message),
                    known_at_administration=d.known_at_administration)

    @classmethod
    def _row(cls, discrepancy_id_: str, d: Discrepancy, now: datetime) -> dict[str, Any]:
        return dict(
            discrepancy_id=discrepancy_id_, key=d.key, facility_id=d.facility_id,
            resident_id=d.resident_id, **cls._facts(d), detected_at=now,
            status=Status.OPEN.value, decision=None, review_note="", reviewer="",
            reviewed_at=None, etag=new_etag())

    def withdraw_absent(self, facility_id: str, resident_id: str | None, start: datetime,
                        end: datetime, produced: set[str], now: datetime) -> int:
        """Withdraw the scope's discrepancies (open or reviewed) that reconciliation no
        longer finds, and record each withdrawal. Returns how many this call withdrew."""
        return self.withdraw_absent_in([facility_id], resident_id, start, end, produced, now)

    def withdraw_absent_in(self, facility_ids: Collection[str], resident_id: str | None,
                           start: datetime, end: datetime, produced: set[str],
                           now: datetime) -> int:
        """`withdraw_absent` over several facilities at once (a batch)."""
        q = select(_D.discrepancy_id, _D.key).where(
            any_of(self._conn, _D.facility_id, facility_ids), _D.occurred_at >= start,
            _D.occurred_at < end, _D.status != Status.WITHDRAWN.value)
        if resident_id is not None:
            q = q.where(_D.resident_id == resident_id)
        stale = [d_id for d_id, k in self._conn.execute(q).all() if k not in produced]
        events = self._withdraw(stale)
        self._append(events, RECONCILIATION, now)
        return len(events)

    def _withdraw(self, stale: list[str]) -> list[tuple[str, EventKind, str]]:
        """Withdraw these (if not withdrawn already); the events to record."""
        if not stale:
            return []
        # The status condition again: a concurrent twin may have withdrawn some already,
        # and each withdrawal is recorded once.
        withdrawn = list(self._conn.scalars(
            update(t.discrepancies)
            .where(any_of(self._conn, _D.discrepancy_id, stale),
                   _D.status != Status.WITHDRAWN.value)
            .values(status=Status.WITHDRAWN.value, etag=new_etag())
            .returning(_D.discrepancy_id)))
        return [(i, EventKind.WITHDRAWN, "no longer found") for i in withdrawn]

    def review(self, discrepancy_id_: str, etag: str, decision: Decision, note: str,
               reviewer: str, now: datetime) -> bool:
        """Record a review if the discrepancy still has `etag` and is not withdrawn: a
        compare-and-set, so of two reviewers who read the same etag one wins. False when
        the condition failed (the caller says why)."""
        done = self._conn.execute(
            update(t.discrepancies)
            .where(_D.discrepancy_id == discrepancy_id_, _D.etag == etag,
                   _D.status != Status.WITHDRAWN.value)
            .values(status=Status.REVIEWED.value, decision=decision.value, review_note=note,
                    reviewer=reviewer, reviewed_at=now, etag=new_etag()))
        if done.rowcount != 1:
            return False
        detail = f"decision={decision.value}" + (f": {note}" if note else "")
        self._append([(discrepancy_id_, EventKind.REVIEWED, detail)], reviewer, now)
        return True

    def _append(self, events: list[tuple[str, EventKind, str]], actor: str,
                now: datetime) -> None:
        insert_rows(self._conn, t.discrepancy_events, [
            dict(discrepancy_id=i, event_time=now, kind=kind.value, actor=actor,
                 detail=detail) for i, kind, detail in events])

    def get(self, facility_id: str, discrepancy_id_: str) -> DiscrepancyEntry | None:
        row = self._conn.execute(select(t.discrepancies).where(
            _D.facility_id == facility_id, _D.discrepancy_id == discrepancy_id_)).first()
        return _entry(row) if row else None

    def page(self, f: DiscrepancyFilter, *, limit: int, after: tuple[str, str] | None
             ) -> list[DiscrepancyEntry]:
        """Newest occurrence first; `after` is (occurred_at ISO, id) of the previous page."""
        q = select(t.discrepancies)
        if f.facility_ids is not None:
            q = q.where(_D.facility_id.in_(sorted(f.facility_ids)))
        if f.resident_id:
            q = q.where(_D.resident_id == f.resident_id)
        if f.code is not None:
            q = q.where(_D.code == f.code.value)
        if f.min_severity is not None:
            q = q.where(_D.severity.in_([s.value for s in Severity
                                         if s.rank >= f.min_severity.rank]))
        if f.status is not None:
            q = q.where(_D.status == f.status.value)
        q = newest_first(q, _D.occurred_at, _D.discrepancy_id, f.start, f.end, after, limit)
        return [_entry(r) for r in self._conn.execute(q)]

    def review_queue(self, facility_ids: frozenset[str] | None, *, limit: int,
                     after: QueueKey | None) -> list[DiscrepancyEntry]:
        """The pharmacist's queue in queue order (see `queue_rank`), after `after`."""
        order = (_QUEUE_RANK, _D.facility_id, _D.occurred_at, _D.discrepancy_id)
        q = select(t.discrepancies).where(_IN_QUEUE)
        if facility_ids is not None:
            q = q.where(_D.facility_id.in_(sorted(facility_ids)))
        if after is not None:
            q = q.where(_after(order, after))
        return [_entry(r) for r in self._conn.execute(q.order_by(*order).limit(limit))]

    def events(self, discrepancy_id_: str, *, limit: int,
               after: tuple[datetime, int] | None) -> list[DiscrepancyEvent]:
        """The discrepancy's history, oldest first; `after` is (event_time, event_id)."""
        order = (_E.event_time, _E.event_id)
        q = select(t.discrepancy_events).where(_E.discrepancy_id == discrepancy_id_)
        if after is not None:
            q = q.where(_after(order, after))
        return [DiscrepancyEvent(r.event_id, r.discrepancy_id, _utc(r.event_time),
                                 EventKind(r.kind), r.actor, r.detail)
                for r in self._conn.execute(q.order_by(*order).limit(limit))]
