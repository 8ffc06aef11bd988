"""What a dose check or record loads before the rules run, kept between calls where it
cannot go stale:

- a facility's settings and the clock built from them, by the facility's etag (every
  change to a facility gives it a new etag; the etag is read in each call, with the
  resident's existence, in one query);
- an order's doses on a run of local dates, by the order versions known and the
  facility's etag (order versions are never changed once written, so the versions known
  at a time name the schedule exactly).

Both are per process and bounded; a miss costs what every call cost before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from medservice.domain.errors import NotFound
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DoseWithOrder, doses_on_dates
from medservice.reconcile import FacilityRules
from medservice.service.facilities import get_facility
from medservice.store import round_reads
from medservice.store.uow import UnitOfWork

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A small thread-safe LRU map."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# (facility id, etag) -> the facility and its rules. The rules' clock memoizes dose times,
# so keeping it also keeps that memo warm.
FACILITIES: Lru[tuple[str, str], tuple[Facility, FacilityRules]] = Lru(1_000)

# (facility id, etag, resident id, order id, (version, recorded_at) of each version known,
# first date, last date) -> the order's doses on those dates (doses_on_dates).
_DoseKey = tuple[str, str, str, str, tuple[tuple[int, datetime], ...], object, object]
DOSES: Lru[_DoseKey, list[DoseWithOrder]] = Lru(50_000)


def facility_of(uow: UnitOfWork, facility_id: str, resident_id: str
                ) -> tuple[Facility, FacilityRules]:
    """The facility and its rules, after checking that it and the resident exist (the
    errors get_facility and get_resident give, in that order)."""
    found = round_reads.facility_etag(uow.conn, facility_id, resident_id)
    if found is None:
        raise NotFound("no such facility", reason="FACILITY_NOT_FOUND")
    etag, resident_exists = found
    cached = FACILITIES.get((facility_id, etag))
    if cached is None:
        facility = get_facility(uow, facility_id)
        cached = (facility, FacilityRules.from_facility(facility))
        FACILITIES.put((facility_id, facility.etag), cached)
    if not resident_exists:
        raise NotFound("no such resident", reason="RESIDENT_NOT_FOUND")
    return cached


def cached_doses(facility: Facility, rules: FacilityRules,
                  versions: Sequence[OrderVersion], start: datetime, end: datetime,
                  now: datetime) -> list[DoseWithOrder]:
    """rounds.doses_between(versions, rules.clock, start, end, now), from the cache when
    the same versions were expanded over the same local dates before."""
    known = tuple((v.version, v.recorded_at) for v in versions if v.recorded_at <= now)
    if not known:
        return []  # no version known yet: no piece to schedule
    clock = rules.clock
    first = clock.local_date_of(start)
    last = clock.local_date_of(end - timedelta(microseconds=1))
    head = versions[0]
    key = (facility.facility_id, facility.etag, head.resident_id, head.order_id, known,
           first, last)
    doses = DOSES.get(key)
    if doses is None:
        doses = doses_on_dates(list(versions), clock, first, last, now)
        DOSES.put(key, doses)
    return [pair for pair in doses if start <= pair[0].due_time < end]
