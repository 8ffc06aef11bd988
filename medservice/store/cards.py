"""Repository of the medicine card mirror: card versions and order versions (append-only)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, tuple_, update

from medservice.domain.administration import AdministrationRecord
from medservice.domain.card_changes import ChangeStatus
from medservice.domain.card_checks import DoseCardLine, DoseDispensingCard
from medservice.domain.order_codec import content_from_dict, content_to_dict, drug_from_dict
from medservice.domain.orders import Drug, OrderVersion
from medservice.store import tables as t
from medservice.store.bulk import KEYS_PER_STATEMENT, keys_in
from medservice.store.caches import Lru, VersionKey
from medservice.store.records import stored_record
from medservice.store.repositories import _utc

_V = t.order_versions.c
_KEY = (_V.facility_id, _V.resident_id, _V.order_id, _V.version)
_HEAD = (*_KEY, _V.recorded_at)

def _version(row: Any, cache: Lru[VersionKey, OrderVersion]) -> OrderVersion:
    version = OrderVersion(
        facility_id=row.facility_id, resident_id=row.resident_id,
        content=content_from_dict(row.content, "stored", stored=True), version=row.version,
        valid_from=_utc(row.valid_from), recorded_at=_utc(row.recorded_at),
        removed=row.removed)
    cache.put(_key(version), version)
    return version


def _key(v: OrderVersion) -> VersionKey:
    return v.facility_id, v.resident_id, v.order_id, v.version, v.recorded_at


def _cached_or_load(conn: Connection, cache: Lru[VersionKey, OrderVersion], heads: Any,
                    rows: Any, params: dict[str, Any] | None = None) -> list[OrderVersion]:
    """The versions whose keys `heads` selects (ordered by key), parsed from the cache
    where it can; the rows it has not seen are read by `rows`, with their content."""
    keys: list[VersionKey] = [(r[0], r[1], r[2], r[3], _utc(r[4]))
                              for r in conn.execute(heads, params)]
    found = {k: cache.get(k) for k in keys}
    if any(v is None for v in found.values()):
        for row in conn.execute(rows, params):
            key = (row.facility_id, row.resident_id, row.order_id, row.version,
                   _utc(row.recorded_at))
            if found.get(key) is None:
                found[key] = _version(row, cache)
    return [v for k in keys if (v := found[k]) is not None]


def _where(condition: Any) -> tuple[Any, Any]:
    return (select(*_HEAD).where(condition).order_by(*_KEY),
            select(t.order_versions).where(condition))


# What every dose check and record reads, as prepared statements: built once, so that a
# call pays for executing them and not for building and compiling them again (in
# SQLAlchemy that cost more than the queries themselves).
_OF_RESIDENT = _where(and_(_V.facility_id == bindparam("facility_id"),
                           _V.resident_id == bindparam("resident_id")))
_F, _RS = t.facilities.c, t.residents.c
_CC = t.card_changes.c
# How many clinical card changes of the resident wait for approval (issue 16): read with
# the head, so a check reads them only when there are some.
_PENDING = (select(func.count()).select_from(t.card_changes)
            .where(_CC.facility_id == bindparam("facility_id"),
                   _CC.status == ChangeStatus.PENDING.value,
                   _CC.resident_id == bindparam("resident_id"))
            .scalar_subquery())
# The facility's etag, and the resident's etag and order_changes (bumped with every new
# order version): what tells a call whether what it kept from before still holds.
_ROUND_HEAD = (
    select(_F.etag, _RS.etag, _RS.order_changes, _PENDING.label("head_pending"))
    .select_from(t.facilities.outerjoin(t.residents, and_(
        _RS.facility_id == _F.facility_id, _RS.resident_id == bindparam("resident_id"))))
    .where(_F.facility_id == bindparam("facility_id")))


_R = t.administration_records.c
# The head, and with it the resident's records administered in [start, end) (ordered as
# RecordRepository.between orders them): a dose check's one read when the range is known.
_ROUND_HEAD_RECORDS = (
    select(_F.etag.label("head_facility_etag"), _RS.etag.label("head_resident_etag"),
           _RS.order_changes.label("head_order_changes"), _PENDING.label("head_pending"),
           *t.administration_records.c)
    .select_from(t.facilities.outerjoin(t.residents, and_(
        _RS.facility_id == _F.facility_id, _RS.resident_id == bindparam("resident_id")))
        .outerjoin(t.administration_records, and_(
            _R.facility_id == _F.facility_id, _R.resident_id == _RS.resident_id,
            _R.administered_at >= bindparam("start"), _R.administered_at < bindparam("end"))))
    .where(_F.facility_id == bindparam("facility_id"))
    .order_by(_R.administered_at, _R.recorded_at, _R.record_id))


@dataclass(frozen=True)
class RoundHead:
    facility_etag: str
    resident: tuple[str, int] | None  # (etag, order_changes); None: no such resident
    # The resident's records in the range asked for, read with the head (None: not asked).
    records: list[AdministrationRecord] | None = None
    # How many of the resident's clinical card changes wait for approval.
    pending_changes: int = 0


class CardRepository:
    def __init__(self, conn: Connection, versions: Lru[VersionKey, OrderVersion]) -> None:
        self._conn = conn
        self._versions = versions

    def round_head(self, facility_id: str, resident_id: str,
                   records: tuple[datetime, datetime] | None = None) -> RoundHead | None:
        """The facility's etag and the resident's stamps; None: no such facility. With
        `records` [start, end), the resident's records administered then too, in the same
        statement (as RecordRepository.between gives them)."""
        params = {"facility_id": facility_id, "resident_id": resident_id}
        if records is None:
            row = self._conn.execute(_ROUND_HEAD, params).first()
            if row is None:
                return None
            return RoundHead(row[0], None if row[1] is None else (row[1], int(row[2])),
                             pending_changes=int(row[3] or 0))
        rows = self._conn.execute(_ROUND_HEAD_RECORDS, {
            **params, "start": records[0], "end": records[1]}).all()
        if not rows:
            return None
        head = rows[0]
        return RoundHead(head.head_facility_etag, None if head.head_resident_etag is None
                         else (head.head_resident_etag, int(head.head_order_changes)),
                         [stored_record(r) for r in rows if r.record_id is not None],
                         int(head.head_pending or 0))

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

    def card_complete(self, facility_id: str, resident_id: str) -> bool:
        """Whether the stored card version was applied whole (True when none is stored).
        Read after card_version(lock=True), under its lock."""
        c = t.medicine_cards.c
        row = self._conn.execute(select(c.complete).where(
            c.facility_id == facility_id, c.resident_id == resident_id)).first()
        return True if row is None else bool(row.complete)

    def set_card_version(self, facility_id: str, resident_id: str, card_version: int,
                         now: datetime, *, complete: bool = True) -> None:
        c = t.medicine_cards.c
        done = self._conn.execute(
            update(t.medicine_cards).where(c.facility_id == facility_id,
                                           c.resident_id == resident_id)
            .values(card_version=card_version, recorded_at=now, complete=complete))
        if done.rowcount == 0:
            self._conn.execute(insert(t.medicine_cards).values(
                facility_id=facility_id, resident_id=resident_id, card_version=card_version,
                recorded_at=now, complete=complete))

    def add_version(self, v: OrderVersion) -> None:
        self._conn.execute(insert(t.order_versions).values(
            facility_id=v.facility_id, resident_id=v.resident_id, order_id=v.order_id,
            version=v.version, valid_from=v.valid_from, recorded_at=v.recorded_at,
            removed=v.removed, content=content_to_dict(v.content)))
        r = t.residents.c  # invalidates the resident's schedule stamp (see store.schedule)
        self._conn.execute(update(t.residents).where(
            r.facility_id == v.facility_id, r.resident_id == v.resident_id
        ).values(order_changes=r.order_changes + 1))

    def order_versions(self, facility_id: str, resident_id: str, order_id: str
                       ) -> list[OrderVersion]:
        rows = self._conn.execute(select(t.order_versions).where(
            _V.facility_id == facility_id, _V.resident_id == resident_id,
            _V.order_id == order_id).order_by(_V.version))
        return [_version(r, self._versions) for r in rows]

    def orders_drugs(self, orders: Sequence[tuple[str, str, str]]
                     ) -> dict[tuple[str, str, str], list[tuple[datetime, Drug]]]:
        """(facility id, resident id, order id) -> (valid from, drug) of each version by
        number, for those of these orders that exist; one read per 5,000 orders. Only the
        drug is read of each content: an alert names the drug, and making whole orders of
        versions not kept was 40% of raising a national batch's 20,000 alerts."""
        out: dict[tuple[str, str, str], list[tuple[datetime, Drug]]] = defaultdict(list)
        for i in range(0, len(orders), KEYS_PER_STATEMENT):
            rows = self._conn.execute(
                select(_V.facility_id, _V.resident_id, _V.order_id, _V.valid_from,
                       _V.content["drug"].label("drug"))
                .where(keys_in(self._conn, (_V.facility_id, _V.resident_id, _V.order_id),
                               orders[i:i + KEYS_PER_STATEMENT]))
                .order_by(*_KEY))
            for row in rows:
                out[(row.facility_id, row.resident_id, row.order_id)].append(
                    (_utc(row.valid_from), drug_from_dict(row.drug or {})))
        return dict(out)

    def resident_versions(self, facility_id: str, resident_id: str
                          ) -> dict[str, list[OrderVersion]]:
        """Every version of every order of one resident, by order id."""
        out: dict[str, list[OrderVersion]] = defaultdict(list)
        for v in _cached_or_load(self._conn, self._versions, *_OF_RESIDENT,
                                 {"facility_id": facility_id, "resident_id": resident_id}):
            out[v.order_id].append(v)
        return dict(out)

    def residents_versions(self, residents: Sequence[tuple[str, str]]
                           ) -> dict[tuple[str, str], dict[str, list[OrderVersion]]]:
        """(facility id, resident id) -> order id -> versions, for these residents."""
        out: dict[tuple[str, str], dict[str, list[OrderVersion]]] = defaultdict(
            lambda: defaultdict(list))
        for i in range(0, len(residents), 500):
            chunk = list(residents[i:i + 500])
            for v in _cached_or_load(self._conn, self._versions, *_where(
                    tuple_(_V.facility_id, _V.resident_id).in_(chunk))):
                out[(v.facility_id, v.resident_id)][v.order_id].append(v)
        return {k: dict(v) for k, v in out.items()}

    def facility_versions(self, facility_id: str
                          ) -> dict[str, dict[str, list[OrderVersion]]]:
        """resident id -> order id -> versions, for a whole facility (round lists)."""
        out: dict[str, dict[str, list[OrderVersion]]] = defaultdict(lambda: defaultdict(list))
        for v in _cached_or_load(self._conn, self._versions,
                                 *_where(_V.facility_id == facility_id)):
            out[v.resident_id][v.order_id].append(v)
        return {k: dict(v) for k, v in out.items()}

    # -- dose-dispensing cards (the inspection checks) ------------------------------------

    def add_dose_card(self, facility_id: str, resident_id: str, card: DoseDispensingCard,
                      now: datetime) -> None:
        self._conn.execute(insert(t.dose_dispensing_cards).values(
            facility_id=facility_id, resident_id=resident_id, recorded_at=now,
            card_id=card.card_id[:64], period_start=card.period_start,
            period_end=card.period_end,
            lines=[{"order_id": li.order_id, "source_version": li.source_version,
                    "drug_name": li.drug_name, "hidden": li.hidden} for li in card.lines]))

    def latest_dose_cards(self, facility_id: str, resident_id: str | None = None
                          ) -> dict[str, DoseDispensingCard]:
        """resident id -> the latest dose-dispensing card read, for a facility (or one
        resident of it); residents without one are absent."""
        d = t.dose_dispensing_cards.c
        where = [d.facility_id == facility_id]
        if resident_id is not None:
            where.append(d.resident_id == resident_id)
        latest = (select(d.resident_id, func.max(d.recorded_at).label("at"))
                  .where(*where).group_by(d.resident_id).subquery())
        rows = self._conn.execute(select(t.dose_dispensing_cards).join(latest, and_(
            d.resident_id == latest.c.resident_id, d.recorded_at == latest.c.at)).where(*where))
        return {row.resident_id: DoseDispensingCard(
            card_id=row.card_id,
            lines=tuple(DoseCardLine(li["order_id"], li.get("source_version", ""),
                                     li.get("drug_name", ""), bool(li.get("hidden")))
                        for li in row.lines),
            period_start=row.period_start, period_end=row.period_end,
            recorded_at=_utc(row.recorded_at)) for row in rows}
