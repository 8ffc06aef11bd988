"""What a process keeps between calls for one database: built with its unit-of-work
factory (`uow.uow_factory`), reached as `uow.caches`, never module-level, so two databases
in one process (or two tests) never share an entry.

Every entry is keyed so that it cannot go stale (see `service.round_context`): order
versions never change once written, and a facility's or resident's etag and order-change
count name what was read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from datetime import date, datetime
from typing import Generic, TypeVar

from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DoseWithOrder

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

    def __len__(self) -> int:
        return len(self._entries)


# The primary key plus recorded_at: should a database ever be restored or rebuilt, a row
# with the same key but another history is a different entry, never a stale hit.
VersionKey = tuple[str, str, str, int, datetime]
# (facility id, etag, resident id, order id, (version, recorded_at) of each version known,
# first date, last date)
DoseKey = tuple[str, str, str, str, tuple[tuple[int, datetime], ...], date, date]
# (facility id, etag, resident id, resident etag, order_changes, first date, last date)
ResidentDoseKey = tuple[str, str, str, str, int, date, date]


class Caches:
    """Bounded; a miss costs what every call cost before."""

    def __init__(self) -> None:
        # Parsed order versions by primary key (a round list then reads one narrow query).
        self.versions: Lru[VersionKey, OrderVersion] = Lru(50_000)
        # (facility id, etag) -> the facility and its clock (its dose-time memo stays warm).
        self.facilities: Lru[tuple[str, str], tuple[Facility, FacilityClock]] = Lru(1_000)
        # (facility id, resident id, resident etag, order_changes) -> order id -> versions.
        self.orders: Lru[tuple[str, str, str, int], dict[str, list[OrderVersion]]] = \
            Lru(10_000)
        # (facility id, resident id) -> the key in `orders` last seen current: a guess at
        # the resident's orders before the head is read (service.round_context).
        self.latest_orders: Lru[tuple[str, str], tuple[str, str, str, int]] = Lru(10_000)
        # An order's doses on a run of local dates (rounds.doses_on_dates).
        self.doses: Lru[DoseKey, list[DoseWithOrder]] = Lru(50_000)
        # A resident's doses on a run of local dates, order by order.
        self.resident_doses: Lru[ResidentDoseKey, list[DoseWithOrder]] = Lru(20_000)
