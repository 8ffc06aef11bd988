"""Repository of the medicine card mirror: card versions and order versions (append-only)."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, tuple_, update

from medservice.domain.order_codec import content_from_dict, content_to_dict
from medservice.domain.orders import OrderVersion
from medservice.store import tables as t
from medservice.store.repositories import _utc

_V = t.order_versions.c
_KEY = (_V.facility_id, _V.resident_id, _V.order_id, _V.version)
_HEAD = (*_KEY, _V.recorded_at)

# The primary key plus recorded_at: should a database ever be restored or rebuilt, a row
# with the same key but another history is a different entry, never a stale hit.
VersionKey = tuple[str, str, str, int, datetime]


class VersionCache:
    """Parsed order versions by primary key. A version row never changes once written, so
    an entry never goes stale, in this process or across replicas; reading a round list
    then costs one narrow query instead of decoding every order's JSON again."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: OrderedDict[VersionKey, OrderVersion] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: VersionKey) -> OrderVersion | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, version: OrderVersion) -> None:
        key = (version.facility_id, version.resident_id, version.order_id, version.version,
               version.recorded_at)
        with self._lock:
            self._entries[key] = version
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)


VERSIONS = VersionCache()


def _version(row: Any) -> OrderVersion:
    version = OrderVersion(
        facility_id=row.facility_id, resident_id=row.resident_id,
        content=content_from_dict(row.content, "stored"), version=row.version,
        valid_from=_utc(row.valid_from), recorded_at=_utc(row.recorded_at),
        removed=row.removed)
    VERSIONS.put(version)
    return version


def _cached_or_load(conn: Connection, condition: Any) -> list[OrderVersion]:
    """The versions matching `condition`, ordered by key, parsed from the cache where it
    can; rows it has not seen are read with their content."""
    keys: list[VersionKey] = [(*r[:4], _utc(r[4])) for r in conn.execute(
        select(*_HEAD).where(condition).order_by(*_KEY))]  # type: ignore[misc]
    found = {k: VERSIONS.get(k) for k in keys}
    if any(v is None for v in found.values()):
        for row in conn.execute(select(t.order_versions).where(condition)):
            key = (row.facility_id, row.resident_id, row.order_id, row.version,
                   _utc(row.recorded_at))
            if found.get(key) is None:
                found[key] = _version(row)
    return [v for k in keys if (v := found[k]) is not None]


class CardRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def card_version(self, facility_id: str, resident_id: str, *, lock: bool = False
                     ) -> int | None:
        """The stored source card version. lock=True holds the card's row until commit, so
        two syncs of one card apply one after the other (PostgreSQL; SQLite writers are
        serialised by BEGIN IMMEDIATE already)."""
        c = t.medicine_cards.c
        q = select(c.card_version).where(c.facility_id == facility_id,
                                         c.resident_id == resident_id)
        if lock:
            q = q.with_for_update()
        row = self._conn.execute(q).first()
        return None if row is None else int(row.card_version)

    def set_card_version(self, facility_id: str, resident_id: str, card_version: int,
                         now: datetime) -> None:
        c = t.medicine_cards.c
        done = self._conn.execute(
            update(t.medicine_cards).where(c.facility_id == facility_id,
                                           c.resident_id == resident_id)
            .values(card_version=card_version, recorded_at=now))
        if done.rowcount == 0:
            self._conn.execute(insert(t.medicine_cards).values(
                facility_id=facility_id, resident_id=resident_id, card_version=card_version,
                recorded_at=now))

    def add_version(self, v: OrderVersion) -> None:
        self._conn.execute(insert(t.order_versions).values(
            facility_id=v.facility_id, resident_id=v.resident_id, order_id=v.order_id,
            version=v.version, valid_from=v.valid_from, recorded_at=v.recorded_at,
            removed=v.removed, content=content_to_dict(v.content)))
        r = t.residents.c  # invalidates the resident's schedule stamp (see store.schedule)
        self._conn.execute(update(t.residents).where(
            r.facility_id == v.facility_id, r.resident_id == v.resident_id
        ).values(order_changes=r.order_changes + 1))

    def next_version(self, facility_id: str, resident_id: str, order_id: str) -> int:
        current = self._conn.execute(select(func.max(_V.version)).where(
            _V.facility_id == facility_id, _V.resident_id == resident_id,
            _V.order_id == order_id)).scalar()
        return int(current or 0) + 1

    def order_versions(self, facility_id: str, resident_id: str, order_id: str
                       ) -> list[OrderVersion]:
        rows = self._conn.execute(select(t.order_versions).where(
            _V.facility_id == facility_id, _V.resident_id == resident_id,
            _V.order_id == order_id).order_by(_V.version))
        return [_version(r) for r in rows]

    def resident_versions(self, facility_id: str, resident_id: str
                          ) -> dict[str, list[OrderVersion]]:
        """Every version of every order of one resident, by order id."""
        out: dict[str, list[OrderVersion]] = defaultdict(list)
        for v in _cached_or_load(self._conn, (_V.facility_id == facility_id)
                                 & (_V.resident_id == resident_id)):
            out[v.order_id].append(v)
        return dict(out)

    def residents_versions(self, residents: Sequence[tuple[str, str]]
                           ) -> dict[tuple[str, str], dict[str, list[OrderVersion]]]:
        """(facility id, resident id) -> order id -> versions, for these residents."""
        out: dict[tuple[str, str], dict[str, list[OrderVersion]]] = defaultdict(
            lambda: defaultdict(list))
        for i in range(0, len(residents), 500):
            chunk = list(residents[i:i + 500])
            for v in _cached_or_load(self._conn,
                                     tuple_(_V.facility_id, _V.resident_id).in_(chunk)):
                out[(v.facility_id, v.resident_id)][v.order_id].append(v)
        return {k: dict(v) for k, v in out.items()}

    def facility_versions(self, facility_id: str
                          ) -> dict[str, dict[str, list[OrderVersion]]]:
        """resident id -> order id -> versions, for a whole facility (round lists)."""
        out: dict[str, dict[str, list[OrderVersion]]] = defaultdict(lambda: defaultdict(list))
        for v in _cached_or_load(self._conn, _V.facility_id == facility_id):
            out[v.resident_id][v.order_id].append(v)
        return {k: dict(v) for k, v in out.items()}
