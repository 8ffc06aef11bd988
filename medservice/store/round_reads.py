"""The reads every dose check and record starts with, as prepared statements: built once,
so that a call pays for executing them and not for building and compiling them again (in
SQLAlchemy that cost more than the queries themselves)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, select

from medservice.domain.orders import OrderVersion
from medservice.store import tables as t
from medservice.store.cards import VERSIONS, VersionKey, _version
from medservice.store.repositories import _utc

_F = t.facilities.c
_RS = t.residents.c
_V = t.order_versions.c

# The facility's etag, and the resident's etag and order_changes (bumped with every new
# order version): what tells a call whether what it kept from before still holds.
_ROUND_HEAD = (
    select(_F.etag, _RS.etag, _RS.order_changes)
    .select_from(t.facilities.outerjoin(t.residents, and_(
        _RS.facility_id == _F.facility_id, _RS.resident_id == bindparam("resident_id"))))
    .where(_F.facility_id == bindparam("facility_id")))

_OF_RESIDENT = and_(_V.facility_id == bindparam("facility_id"),
                    _V.resident_id == bindparam("resident_id"))
_VERSION_HEADS = (select(_V.facility_id, _V.resident_id, _V.order_id, _V.version,
                         _V.recorded_at)
                  .where(_OF_RESIDENT)
                  .order_by(_V.facility_id, _V.resident_id, _V.order_id, _V.version))
_VERSION_ROWS = select(t.order_versions).where(_OF_RESIDENT)


@dataclass(frozen=True)
class RoundHead:
    facility_etag: str
    resident: tuple[str, int] | None  # (etag, order_changes); None: no such resident


def round_head(conn: Connection, facility_id: str, resident_id: str) -> RoundHead | None:
    """The facility's etag and the resident's stamps; None: no such facility."""
    row = conn.execute(_ROUND_HEAD, {"facility_id": facility_id,
                                     "resident_id": resident_id}).first()
    if row is None:
        return None
    return RoundHead(row[0], None if row[1] is None else (row[1], int(row[2])))


def resident_versions(conn: Connection, facility_id: str, resident_id: str
                      ) -> dict[str, list[OrderVersion]]:
    """What CardRepository.resident_versions returns (order id -> versions by number),
    parsed from the version cache where it can: versions never change once written."""
    params = {"facility_id": facility_id, "resident_id": resident_id}
    keys: list[VersionKey] = [(r[0], r[1], r[2], r[3], _utc(r[4]))
                              for r in conn.execute(_VERSION_HEADS, params)]
    found: dict[VersionKey, OrderVersion | None] = {k: VERSIONS.get(k) for k in keys}
    if any(v is None for v in found.values()):
        for row in conn.execute(_VERSION_ROWS, params):
            key = (row.facility_id, row.resident_id, row.order_id, row.version,
                   _utc(row.recorded_at))
            if found.get(key) is None:
                found[key] = _version(row)
    out: dict[str, list[OrderVersion]] = defaultdict(list)
    for k in keys:
        v = found[k]
        if v is not None:
            out[v.order_id].append(v)
    return dict(out)
