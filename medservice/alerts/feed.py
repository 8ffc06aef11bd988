"""The in-process alert feed: one reader per facility log fans new alerts out to every
watcher in this process.

A wake-up (after a local commit, or a NOTIFY from any replica) only says "look": the
dispatcher thread then reads the log after the last position it has, in order, and wakes
the watchers, who take what lies after their own position. So a lost or duplicated
wake-up costs latency, never an alert; a periodic look covers a lost one. The log's
positions become visible in order (see store/alerts.py), so reading after a position
never skips a row that commits late.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque

import structlog

from medservice.domain.alerts import Alert
from medservice.service.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger("medservice.alerts")


class _Log:
    """What this process has read of one facility's log: the rows after `base`."""

    def __init__(self, head: int) -> None:
        self.cond = threading.Condition()
        self.rows: deque[Alert] = deque()
        self.positions: deque[int] = deque()
        self.base = head  # every row after base up to head is in rows
        self.head = head


class AlertFeed:
    READ_LIMIT = 500

    def __init__(self, uow_factory: UnitOfWorkFactory, *, keep: int = 2000,
                 poll_seconds: float = 5.0) -> None:
        self._uow = uow_factory
        self._keep = keep
        self._poll = poll_seconds
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._woken = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        self._woken.set()
        self._thread.join(timeout=5)

    # -- wake-ups -------------------------------------------------------------------------

    def wake(self, facility_id: str, position: int | None = None) -> None:
        """The facility's log grew (to `position`, if known) or may have: read it soon."""
        feed = self._logs.get(facility_id)
        if feed is not None and position is not None and feed.head >= position:
            return  # already read
        with self._lock:
            self._pending.add(facility_id)
        self._woken.set()

    def wake_all(self) -> None:
        """After a missed stretch of notifications (a reconnect): read every log."""
        with self._lock:
            self._pending.update(self._logs)
        self._woken.set()

    def _run(self) -> None:
        looked = time.monotonic()
        while not self._stopped.is_set():
            self._woken.wait(max(0.0, looked + self._poll - time.monotonic()))
            self._woken.clear()
            # Every log at least once a poll, however often local commits wake the feed:
            # a lost NOTIFY, or a sibling process on SQLite, is heard of no later.
            everything = time.monotonic() >= looked + self._poll
            if everything:
                looked = time.monotonic()
            with self._lock:
                todo = set(self._logs) if everything else set(self._pending)
                self._pending.clear()
            for facility_id in sorted(todo):
                try:
                    self._refresh(facility_id)
                except Exception:  # the database is away; the next look tries again
                    log.warning("alert feed read failed", facility=facility_id,
                                exc_info=True)

    def _refresh(self, facility_id: str) -> None:
        feed = self._logs.get(facility_id)
        if feed is None:
            return
        while True:
            with self._uow(write=False) as uow:
                rows = uow.alerts.after(facility_id, feed.head, self.READ_LIMIT)
            if not rows:
                return
            with feed.cond:
                for a in rows:
                    if a.position > feed.head:
                        feed.rows.append(a)
                        feed.positions.append(a.position)
                        feed.head = a.position
                while len(feed.rows) > self._keep:
                    feed.rows.popleft()
                    feed.base = feed.positions.popleft()
                feed.cond.notify_all()
            if len(rows) < self.READ_LIMIT:
                return

    # -- watchers -------------------------------------------------------------------------

    def _log(self, facility_id: str) -> _Log:
        with self._lock:
            feed = self._logs.get(facility_id)
        if feed is not None:
            return feed
        with self._uow(write=False) as uow:
            head = uow.alerts.bounds(facility_id)[1]
        with self._lock:
            feed = self._logs.setdefault(facility_id, _Log(head))
        self.wake(facility_id)  # what committed while this log was being set up
        return feed

    def head(self, facility_id: str) -> int:
        return self._log(facility_id).head

    def base(self, facility_id: str) -> int:
        return self._log(facility_id).base

    def wait_after(self, facility_id: str, position: int, timeout: float
                   ) -> list[Alert] | None:
        """The alerts after `position`, waiting up to `timeout` seconds for some; [] when
        none came; None when `position` is older than this process keeps (read the log)."""
        feed = self._log(facility_id)
        with feed.cond:
            if position < feed.base:
                return None
            if feed.head <= position:
                feed.cond.wait(timeout)
                if position < feed.base:
                    return None
            i = bisect.bisect_right(feed.positions, position)
            return [feed.rows[j] for j in range(i, len(feed.rows))]

    def poke(self, facility_id: str) -> None:
        """Wake the facility's watchers without new rows (a watcher's call ended)."""
        feed = self._logs.get(facility_id)
        if feed is not None:
            with feed.cond:
                feed.cond.notify_all()
