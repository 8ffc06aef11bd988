"""Materialised due doses: what the missed-dose sweep claims once their window has closed,
and what batch reconciliation checks records against in SQL where a resident's schedule
stamp says the rows are exactly the schedule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medservice.store import tables as t
from medservice.store.bulk import any_of, insert_rows
from medservice.store.repositories import _utc

_S = t.scheduled_doses.c
_H = t.schedule_horizons.c
_T = t.schedule_stamps.c
_R = t.administration_records.c
_P = t.residents.c

ResidentId = tuple[str, str]  # (facility id, resident id)
BATCH_WORK_MEM = "128MB"  # per hash, shared by a parallel query's workers
_PRUNE_LOCK = 0x6D6564_5052  # advisory lock key: pruning the schedule vs. batches using it


@dataclass(frozen=True)
class DueDose:
    """A materialised dose. The fields after `closes_at` are what a record on it is checked
    against: [plain_from, plain_until] is the part of its window in which one version of
    its order is in force and to be given (None: no such part)."""

    dose_id: str
    facility_id: str
    resident_id: str
    order_id: str
    due_at: datetime
    closes_at: datetime
    plain_from: datetime | None = None
    plain_until: datetime | None = None
    amount: str | None = None
    route: str = ""
    order_since: datetime | None = None


# What a materialised row says about its dose (rewritten when the schedule changes it).
_ORDERED = ("order_id", "due_at", "closes_at", "plain_from", "plain_until", "amount",
            "route", "order_since")


def _ordered(d: DueDose) -> tuple[Any, ...]:
    return (d.order_id, d.due_at, d.closes_at, d.plain_from, d.plain_until, d.amount,
            d.route, d.order_since)


@dataclass(frozen=True)
class Stamp:
    """A resident's rows due in [covers_from, covers_until) are exactly their schedule as
    computed from the order history after `order_changes` changes, under the facility
    settings `settings_key`. `simple`: no order of theirs needs a manual schedule."""

    facility_id: str
    resident_id: str
    order_changes: int
    settings_key: str
    covers_from: datetime
    covers_until: datetime
    simple: bool


def merged(old: Stamp | None, new: Stamp) -> Stamp:
    """`new`, widened by `old` when both describe the same history and settings and their
    ranges meet (rows outside `new`'s range were left as they were)."""
    if (old is None or (old.order_changes, old.settings_key) != (new.order_changes,
                                                                 new.settings_key)
            or old.covers_until < new.covers_from or new.covers_until < old.covers_from):
        return new
    return replace(new, covers_from=min(old.covers_from, new.covers_from),
                   covers_until=max(old.covers_until, new.covers_until))


@dataclass(frozen=True)
class StampCheck:
    stale: dict[str, set[str]]  # facility -> residents no stamp vouches for
    manual: set[ResidentId]  # vouched for, with an order that needs a manual schedule


class ScheduleRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _insert(self) -> Any:
        return pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert

    def replace(self, facility_id: str, resident_ids: Collection[str] | None,
                start: datetime, end: datetime, doses: list[DueDose], *,
                swept_if_closed_by: datetime | None = None) -> None:
        """Make the rows of these residents (None: the facility's) due in [start, end)
        exactly `doses`: an order change may add, move or cancel doses, or change what is
        ordered. A dose already materialised keeps whether it was swept; a new one counts
        as swept when its window closed by `swept_if_closed_by` (its caller reconciles
        it). The caller holds the residents (`hold_order_changes`) since before it read
        the order versions `doses` come from."""
        q = select(_S.dose_id, *(_S[c] for c in _ORDERED)).where(
            _S.facility_id == facility_id, _S.due_at >= start, _S.due_at < end)
        if resident_ids is not None:
            q = q.where(any_of(self._conn, _S.resident_id, resident_ids))
        stored = {r[0]: tuple(_utc(v) if isinstance(v, datetime) else v for v in r[1:])
                  for r in self._conn.execute(q).all()}
        keep = {d.dose_id for d in doses}
        stale = [i for i in stored if i not in keep]
        for i in range(0, len(stale), 1000):
            self._conn.execute(delete(t.scheduled_doses).where(
                any_of(self._conn, _S.dose_id, stale[i:i + 1000])))
        # Only new and changed rows are written: after an order change most doses are
        # as they were, and a lost stamp (pruned, or new settings) often finds them all so.
        # A dose whose window now closes at another time is swept again under its new
        # window (a moved medication time keeps the dose's id: had it kept its old sweep,
        # its miss would never be alerted); one that only changed otherwise keeps it.
        changed: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for d in doses:
            ordered = _ordered(d)
            before = stored.get(d.dose_id)
            if before == ordered:
                continue
            row = dict(dose_id=d.dose_id, facility_id=d.facility_id, resident_id=d.resident_id,
                       swept_at=(swept_if_closed_by if swept_if_closed_by is not None
                                 and d.closes_at <= swept_if_closed_by else None),
                       **dict(zip(_ORDERED, ordered, strict=True)))
            closes = _ORDERED.index("closes_at")
            (changed if before is not None and before[closes] == ordered[closes]
             else moved).append(row)
        insert_rows(self._conn, t.scheduled_doses, changed, on_conflict=["dose_id"],
                    update=_ORDERED)
        insert_rows(self._conn, t.scheduled_doses, moved, on_conflict=["dose_id"],
                    update=(*_ORDERED, "swept_at"))

    # -- schedule stamps ---------------------------------------------------------------

    def hold_order_changes(self, facility_id: str, residents: Collection[str] | None
                           ) -> dict[str, int]:
        """The order change count of each of these residents (None: the facility's), their
        rows held until this transaction ends (FOR SHARE; SQLite has one writer anyway).
        Read it before the order versions a schedule is computed from: no order change
        of theirs can then commit before the rows are written. (One that did would have
        its own rows, written by its own refresh, deleted again by `replace` as not in
        the schedule: the sweep would never see those doses.) An order change holds its
        resident's row already, from the count it bumps."""
        q = (select(_P.resident_id, _P.order_changes).where(_P.facility_id == facility_id)
             .order_by(_P.resident_id).with_for_update(read=True))
        if residents is not None:
            q = q.where(any_of(self._conn, _P.resident_id, residents))
        return {r: int(n) for r, n in self._conn.execute(q).all()}

    def check_stamps(self, settings_keys: Mapping[str, str], start: datetime, end: datetime
                     ) -> StampCheck:
        """Which residents of these facilities (id -> settings key) have no stamp vouching
        for [start, end) under their order history and their facility's settings, and
        which have one that needs manual schedules. One statement: the change counts and
        the stamps come from one snapshot, and only the exceptions reach Python."""
        by_key: dict[str, list[str]] = defaultdict(list)
        for facility_id, key in settings_keys.items():
            by_key[key].append(facility_id)
        stale = or_(_T.resident_id.is_(None), _T.order_changes != _P.order_changes,
                    _T.covers_from > start, _T.covers_until < end,
                    *(and_(any_of(self._conn, _P.facility_id, ids), _T.settings_key != key)
                      for key, ids in by_key.items()))
        q = (select(_P.facility_id, _P.resident_id, case((stale, 1), else_=0), _T.simple)
             .select_from(t.residents.outerjoin(t.schedule_stamps, and_(
                 _T.facility_id == _P.facility_id, _T.resident_id == _P.resident_id)))
             .where(any_of(self._conn, _P.facility_id, settings_keys),
                    or_(stale, _T.simple.is_(False))))
        check = StampCheck(defaultdict(set), set())
        for facility_id, resident_id, is_stale, simple in self._conn.execute(q):
            if is_stale:
                check.stale[facility_id].add(resident_id)
            elif not simple:
                check.manual.add((facility_id, resident_id))
        return check

    def stamps(self, facility_ids: Collection[str]) -> dict[ResidentId, Stamp]:
        rows = self._conn.execute(select(t.schedule_stamps)
                                  .where(any_of(self._conn, _T.facility_id, facility_ids)))
        return {(r.facility_id, r.resident_id): Stamp(
            r.facility_id, r.resident_id, int(r.order_changes), r.settings_key,
            _utc(r.covers_from), _utc(r.covers_until), bool(r.simple)) for r in rows}

    def save_stamps(self, stamps: Iterable[Stamp]) -> None:
        rows = [dict(facility_id=s.facility_id, resident_id=s.resident_id,
                     order_changes=s.order_changes, settings_key=s.settings_key,
                     covers_from=s.covers_from, covers_until=s.covers_until, simple=s.simple)
                for s in stamps]
        insert_rows(self._conn, t.schedule_stamps, rows,
                    on_conflict=["facility_id", "resident_id"],
                    update=["order_changes", "settings_key", "covers_from", "covers_until",
                            "simple"])

    # -- batch reconciliation ----------------------------------------------------------

    def use_batch_memory(self) -> None:
        """Let this transaction's joins hash a national day in memory: with PostgreSQL's
        default 4 MB of work_mem the triage's hash of the schedule spilled 250 MB to disk
        in 32 batches."""
        if self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'")

    def examined_residents(self, facility_ids: Collection[str], start: datetime,
                           end: datetime, late_after: timedelta) -> set[ResidentId]:
        """The residents with an active record administered in [start, end) that is not
        plainly right: anything but a dose given, as ordered, inside the plain part of the
        window of one of their own doses due in [start, end) (the rows the caller trusts),
        documented within `late_after`, and the only record on it.
        Reconciliation looks at these residents' records in Python; for everyone else a
        missed dose is all there is to find. Erring towards examining costs only time."""
        documented_in_time = (
            func.julianday(_R.recorded_at) - func.julianday(_R.administered_at)
            <= late_after.total_seconds() / 86400
            if self._conn.dialect.name == "sqlite"
            else _R.recorded_at - _R.administered_at <= late_after)
        plainly_right: ColumnElement[bool] = and_(
            _S.facility_id == _R.facility_id, _S.resident_id == _R.resident_id,
            _R.outcome == "given", _R.settles, _S.due_at >= start, _S.due_at < end,
            or_(_R.order_id.is_(None), _R.order_id == _S.order_id),
            _R.administered_at >= _S.plain_from, _R.administered_at <= _S.plain_until,
            documented_in_time,
            or_(_R.quantity.is_(None), _R.quantity == _S.amount),
            or_(_R.route == "", _S.route == "",
                func.lower(func.trim(_R.route)) == func.lower(func.trim(_S.route))))
        # CASE, not NOT(...): a NULL anywhere (a dose with no plain part) must count
        # as not plainly right rather than drop out of the WHERE. The due range is in the
        # join's condition too, so that only the range's doses are read and hashed, not
        # the whole retained schedule (45 days of a nation: some 23 million rows).
        q = (select(_R.facility_id, _R.resident_id).distinct()
             .select_from(t.administration_records.outerjoin(t.scheduled_doses, and_(
                 _S.dose_id == _R.dose_id, _S.due_at >= start, _S.due_at < end)))
             .where(any_of(self._conn, _R.facility_id, facility_ids), _R.administered_at >= start,
                    _R.administered_at < end, _R.entered_in_error.is_(False),
                    case((plainly_right, 0), else_=1) == 1))
        return {(r[0], r[1]) for r in self._conn.execute(q)}

    def counts(self, facility_ids: Collection[str], start: datetime, end: datetime
               ) -> tuple[int, int]:
        """(doses due, records administered) in [start, end) in these facilities."""
        ids = list(facility_ids)
        doses = select(func.count()).select_from(t.scheduled_doses).where(
            any_of(self._conn, _S.facility_id, ids), _S.due_at >= start,
            _S.due_at < end).scalar_subquery()
        records = select(func.count()).select_from(t.administration_records).where(
            any_of(self._conn, _R.facility_id, ids), _R.administered_at >= start,
            _R.administered_at < end).scalar_subquery()
        row = self._conn.execute(select(doses, records)).one()
        return int(row[0]), int(row[1])

    def unsettled(self, facility_ids: Collection[str], start: datetime, end: datetime,
                  now: datetime) -> list[DueDose]:
        """Doses due in [start, end) whose window closed by `now` with no active settling
        record of their resident, leaving out doses due before the mirror knew the order."""
        settled = exists().where(_R.dose_id == _S.dose_id, _R.settles,
                                 _R.entered_in_error.is_(False),
                                 _R.facility_id == _S.facility_id,
                                 _R.resident_id == _S.resident_id)
        q = (select(_S.dose_id, _S.facility_id, _S.resident_id, _S.order_id, _S.due_at,
                    _S.closes_at)
             .where(any_of(self._conn, _S.facility_id, facility_ids), _S.due_at >= start,
                    _S.due_at < end, _S.closes_at <= now,
                    or_(_S.order_since.is_(None), _S.due_at >= _S.order_since), ~settled))
        return [DueDose(r[0], r[1], r[2], r[3], _utc(r[4]), _utc(r[5]))
                for r in self._conn.execute(q).all()]

    def hold_schedule(self) -> None:
        """Keep `prune` out until this transaction ends (PostgreSQL; SQLite has one writer
        at a time): a batch that found its stamps vouching must not lose rows to a prune
        committing between its statements."""
        if self._conn.dialect.name == "postgresql":
            self._conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"),
                               {"k": _PRUNE_LOCK})

    def prune(self, before: datetime) -> int:
        """Drop the swept doses due before `before` and narrow every stamp to what is left,
        so that a batch over an older range materialises it again instead of trusting rows
        that are gone. Returns how many doses were dropped."""
        if self._conn.dialect.name == "postgresql":
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PRUNE_LOCK})
        self._conn.execute(update(t.schedule_stamps).where(_T.covers_from < before)
                           .values(covers_from=before))
        gone = self._conn.execute(delete(t.scheduled_doses).where(
            _S.due_at < before, _S.swept_at.is_not(None))).rowcount
        return int(gone)

    def claim_closed(self, now: datetime, limit: int, *, facility_id: str | None = None,
                     resident_id: str | None = None) -> list[DueDose]:
        """Unswept doses whose window closed by `now`, oldest first, claimed for this
        transaction: another replica's sweep skips them (SKIP LOCKED; SQLite has one
        writer at a time anyway)."""
        q = (select(_S.dose_id, _S.facility_id, _S.resident_id, _S.order_id, _S.due_at,
                    _S.closes_at)
             .where(_S.swept_at.is_(None), _S.closes_at <= now))
        if facility_id is not None:
            q = q.where(_S.facility_id == facility_id, _S.resident_id == resident_id)
        rows = self._conn.execute(
            q.order_by(_S.closes_at).limit(limit).with_for_update(skip_locked=True))
        return [DueDose(r.dose_id, r.facility_id, r.resident_id, r.order_id, _utc(r.due_at),
                        _utc(r.closes_at)) for r in rows]

    def mark_swept(self, dose_ids: list[str], now: datetime) -> None:
        for i in range(0, len(dose_ids), 1000):
            self._conn.execute(update(t.scheduled_doses).where(
                _S.dose_id.in_(dose_ids[i:i + 1000])).values(swept_at=now))

    def horizon(self, facility_id: str) -> datetime | None:
        value = self._conn.scalar(select(_H.materialised_until).where(
            _H.facility_id == facility_id))
        return _utc(value) if value is not None else None

    def claim_horizon(self, before: datetime) -> tuple[str, datetime] | None:
        """A facility whose doses are materialised only until before `before`, claimed
        (SKIP LOCKED) so one replica extends it."""
        row = self._conn.execute(
            select(_H.facility_id, _H.materialised_until)
            .where(_H.materialised_until < before).order_by(_H.materialised_until)
            .limit(1).with_for_update(skip_locked=True)).first()
        return (row[0], _utc(row[1])) if row else None

    def ensure_horizon(self, facility_id: str, at: datetime) -> None:
        self._conn.execute(self._insert()(t.schedule_horizons).values(
            facility_id=facility_id, materialised_until=at
        ).on_conflict_do_nothing(index_elements=["facility_id"]))

    def set_horizon(self, facility_id: str, until: datetime) -> None:
        self._conn.execute(update(t.schedule_horizons).where(
            _H.facility_id == facility_id).values(materialised_until=until))
