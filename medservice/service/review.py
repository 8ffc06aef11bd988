"""Use cases of the pharmacist's review (DOMAIN.md §8-9): the review queue, a decision on
one discrepancy under its etag, and its history. Each runs in the caller's unit of work.

A decision can be made again (a re-decision after follow-up), each time with the etag the
reviewer saw. A withdrawn discrepancy cannot be reviewed; a reviewed one that
reconciliation no longer finds is withdrawn like an open one, and one found again after
its withdrawal is open again (its earlier reviews stay in its history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medservice.domain.discrepancy import Decision
from medservice.domain.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    require,
)
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.discrepancies import (
    DiscrepancyEntry,
    DiscrepancyEvent,
    DiscrepancyFilter,
    QueueKey,
    Status,
    queue_key,
)

MAX_NOTE_LENGTH = 4000


def get_discrepancy(uow: UnitOfWork, facility_id: str, discrepancy_id: str
                    ) -> DiscrepancyEntry:
    return _entry(uow, facility_id, discrepancy_id)


def list_discrepancies(uow: UnitOfWork, query: DiscrepancyFilter, page: Page
                       ) -> tuple[list[DiscrepancyEntry], str]:
    """The discrepancies that match, newest occurrence first, a page at a time."""
    after = tuple(page.after) if page.after else None
    rows = uow.discrepancies.page(query, limit=page.size + 1, after=after)
    items = rows[: page.size]
    last = ([items[-1].discrepancy.occurred_at.isoformat(), items[-1].discrepancy_id]
            if items else None)
    return items, next_token(page, rows, last)


def _entry(uow: UnitOfWork, facility_id: str, discrepancy_id: str) -> DiscrepancyEntry:
    entry = uow.discrepancies.get(facility_id, discrepancy_id)
    if entry is None:
        raise NotFound("no such discrepancy", reason="DISCREPANCY_NOT_FOUND")
    return entry


def _require_reviewable(entry: DiscrepancyEntry, etag: str) -> None:
    if entry.status is Status.WITHDRAWN:
        raise FailedPrecondition("the discrepancy was withdrawn: it no longer applies",
                                 reason="DISCREPANCY_WITHDRAWN")
    if etag != entry.etag:
        raise Aborted("the discrepancy changed since it was read; read it again",
                      reason="ETAG_MISMATCH")


def review_discrepancy(uow: UnitOfWork, facility_id: str, discrepancy_id: str,
                       decision: Decision | None, note: str, etag: str, reviewer: str,
                       now: datetime) -> DiscrepancyEntry:
    """Record the reviewer's decision if the discrepancy still has the etag they saw."""
    violations = []
    if decision is None:
        violations.append(FieldViolation("decision", "is required"))
    if not etag:
        violations.append(FieldViolation("etag", "is required: the etag as read"))
    if len(note) > MAX_NOTE_LENGTH:
        violations.append(FieldViolation("note", f"is longer than {MAX_NOTE_LENGTH} "
                                                 "characters"))
    require(violations)
    assert decision is not None
    _require_reviewable(_entry(uow, facility_id, discrepancy_id), etag)
    if not uow.discrepancies.review(discrepancy_id, etag, decision, note, reviewer, now):
        # A concurrent review or withdrawal committed after the read: say which.
        _require_reviewable(_entry(uow, facility_id, discrepancy_id), etag)
        raise Aborted("the discrepancy changed concurrently; read it again",
                      reason="ETAG_MISMATCH")
    return _entry(uow, facility_id, discrepancy_id)


def _bad_token() -> InvalidArgument:
    return InvalidArgument([FieldViolation("page_token", "is not a valid page token")])


def _queue_after(raw: Any) -> QueueKey | None:
    """The queue position a page token carries: [rank, facility, occurrence ISO, id]."""
    if raw is None:
        return None
    try:
        rank, facility_id, at, discrepancy_id = raw
        return int(rank), str(facility_id), datetime.fromisoformat(at), str(discrepancy_id)
    except (TypeError, ValueError):
        raise _bad_token() from None


def review_queue(uow: UnitOfWork, facility_ids: frozenset[str] | None, page: Page
                 ) -> tuple[list[DiscrepancyEntry], str]:
    """What awaits a pharmacist: open discrepancies, and reviewed ones that need follow-up;
    open first, then high .. info, then by facility, oldest first. Keyset-paged."""
    rows = uow.discrepancies.review_queue(facility_ids, limit=page.size + 1,
                                          after=_queue_after(page.after))
    items = rows[: page.size]
    last = None
    if items:
        rank, facility_id, at, discrepancy_id = queue_key(items[-1])
        last = [rank, facility_id, at.isoformat(), discrepancy_id]
    return items, next_token(page, rows, last)


def discrepancy_history(uow: UnitOfWork, facility_id: str, discrepancy_id: str, page: Page
                        ) -> tuple[list[DiscrepancyEvent], str]:
    """The discrepancy's events, oldest first."""
    _entry(uow, facility_id, discrepancy_id)
    after = None
    if page.after is not None:
        try:
            at, event_id = page.after
            after = datetime.fromisoformat(at), int(event_id)
        except (TypeError, ValueError):
            raise _bad_token() from None
    rows = uow.discrepancies.events(discrepancy_id, limit=page.size + 1, after=after)
    items = rows[: page.size]
    last = [items[-1].event_time.isoformat(), items[-1].event_id] if items else None
    return items, next_token(page, rows, last)
