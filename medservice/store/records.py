"""Repository of administration records. Records are inserted, and only ever updated to
mark them entered-in-error, to evaluate a PN dose, or for the sweep's follow-up mark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medservice.domain.administration import (
    AdministrationRecord,
    DoseSource,
    NotGivenReason,
    Outcome,
    PnEffect,
    PnEvaluation,
)
from medservice.domain.names import new_etag
from medservice.store import tables as t
from medservice.store.repositories import _utc

_R = t.administration_records.c

# Prepared once (see store/cards.py): what every dose check and record runs.
_BETWEEN = select(t.administration_records).where(
    _R.facility_id == bindparam("facility_id"), _R.administered_at >= bindparam("start"),
    _R.administered_at < bindparam("end"))
_ORDERED = (_R.administered_at, _R.recorded_at, _R.record_id)
_BETWEEN_ALL = _BETWEEN.order_by(*_ORDERED)
_BETWEEN_ONE = _BETWEEN.where(_R.resident_id == bindparam("resident_id")).order_by(*_ORDERED)
# RETURNING the row: the record as stored (as a read would give it) in the insert itself.
_INSERT = insert(t.administration_records).returning(*t.administration_records.c)
_GET = select(t.administration_records).where(
    _R.facility_id == bindparam("facility_id"), _R.resident_id == bindparam("resident_id"),
    _R.record_id == bindparam("record_id"))
_SETTLING = select(t.administration_records).where(
    _R.dose_id == bindparam("dose_id"), _R.settles, ~_R.entered_in_error)
# A settling record that loses to another settling the same dose (the unique index) is not
# inserted: no error, so the transaction goes on without a savepoint round trip. RETURNING
# tells whether it was (the driver's rowcount does not, through SQLAlchemy on psycopg).
_INSERT_SETTLING = {
    "sqlite": sqlite_insert(t.administration_records).on_conflict_do_nothing()
    .returning(*t.administration_records.c),
    "postgresql": pg_insert(t.administration_records).on_conflict_do_nothing()
    .returning(*t.administration_records.c),
}


def stored_record(row: Any) -> AdministrationRecord:
    """A record from its row (of administration_records' columns)."""
    return AdministrationRecord(
        record_id=row.record_id, facility_id=row.facility_id, resident_id=row.resident_id,
        order_id=row.order_id, drug_id=row.drug_id, outcome=Outcome(row.outcome),
        administered_at=_utc(row.administered_at), recorded_at=_utc(row.recorded_at),
        performer=row.performer, dose_id=row.dose_id,
        quantity=Decimal(row.quantity) if row.quantity is not None else None,
        route=row.route, source=DoseSource(row.source) if row.source else None,
        not_given_reason=NotGivenReason(row.not_given_reason) if row.not_given_reason
        else None,
        reason_text=row.reason_text, pn_reason=row.pn_reason,
        entered_in_error=row.entered_in_error, correction_reason=row.correction_reason,
        corrected_by=row.corrected_by,
        corrected_at=_utc(row.corrected_at) if row.corrected_at else None,
        evaluation=PnEvaluation(PnEffect(row.pn_effect), row.pn_effect_note, row.evaluated_by,
                                _utc(row.evaluated_at), _utc(row.first_evaluated_at))
        if row.pn_effect else None, etag=row.etag, replaces_record_id=row.replaces_record_id)


def _row(r: AdministrationRecord, settles: bool, followup_due: datetime | None = None
         ) -> dict[str, Any]:
    return dict(
        record_id=r.record_id, facility_id=r.facility_id, resident_id=r.resident_id,
        order_id=r.order_id, drug_id=r.drug_id, dose_id=r.dose_id, settles=settles,
        outcome=r.outcome.value,
        quantity=str(r.quantity) if r.quantity is not None else None, route=r.route,
        source=r.source.value if r.source else None,
        not_given_reason=r.not_given_reason.value if r.not_given_reason else None,
        reason_text=r.reason_text, pn_reason=r.pn_reason,
        administered_at=r.administered_at, recorded_at=r.recorded_at,
        performer=r.performer, entered_in_error=False, correction_reason="",
        corrected_by="", corrected_at=None, pn_effect=None, pn_effect_note="",
        evaluated_by="", evaluated_at=None, first_evaluated_at=None, etag=r.etag or new_etag(),
        followup_due_at=followup_due, replaces_record_id=r.replaces_record_id)


class RecordRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, r: AdministrationRecord, *, settles: bool,
            followup_due: datetime | None = None) -> AdministrationRecord | None:
        """Insert; the record as stored (what `get` would give now), or None when another
        active record already settles the dose. The unique index decides, so of two staff
        recording one dose at the same moment exactly one wins; the loser's record is not
        inserted (ON CONFLICT DO NOTHING), and its transaction stays usable to read the
        winner. `followup_due`: the PN evaluation deadline the sweep is to look at."""
        row = _row(r, settles, followup_due)
        insert_ = _INSERT_SETTLING[self._conn.dialect.name] if settles else _INSERT
        stored = self._conn.execute(insert_, row).first()
        return stored_record(stored) if stored is not None else None

    def get(self, facility_id: str, resident_id: str, record_id: str
            ) -> AdministrationRecord | None:
        row = self._conn.execute(_GET, {"facility_id": facility_id, "resident_id": resident_id,
                                        "record_id": record_id}).first()
        return stored_record(row) if row else None

    def settling(self, dose_id: str) -> AdministrationRecord | None:
        """The active record that settles a scheduled dose, if any."""
        row = self._conn.execute(_SETTLING, {"dose_id": dose_id}).first()
        return stored_record(row) if row else None

    def between(self, facility_id: str, resident_id: str | None, start: datetime,
                end: datetime) -> list[AdministrationRecord]:
        """Records (active and entered-in-error) administered in [start, end)."""
        params = {"facility_id": facility_id, "start": start, "end": end}
        if resident_id is None:
            return [stored_record(r) for r in self._conn.execute(_BETWEEN_ALL, params)]
        params["resident_id"] = resident_id
        return [stored_record(r) for r in self._conn.execute(_BETWEEN_ONE, params)]

    def of_residents(self, residents: Sequence[tuple[str, str]], start: datetime,
                     end: datetime) -> list[AdministrationRecord]:
        """Records (active and entered-in-error) of these (facility id, resident id)
        administered in [start, end) (a batch's examined residents)."""
        out: list[AdministrationRecord] = []
        for i in range(0, len(residents), 500):
            q = select(t.administration_records).where(
                tuple_(_R.facility_id, _R.resident_id).in_(list(residents[i:i + 500])),
                _R.administered_at >= start, _R.administered_at < end)
            out += [stored_record(r) for r in self._conn.execute(q)]
        return out

    def page(self, facility_id: str, resident_id: str, start: datetime | None,
             end: datetime | None, *, limit: int, after: tuple[str, str] | None
             ) -> list[AdministrationRecord]:
        """Newest first, after (administered_at ISO, record_id) of the previous page."""
        q = select(t.administration_records).where(_R.facility_id == facility_id,
                                                   _R.resident_id == resident_id)
        if start is not None:
            q = q.where(_R.administered_at >= start)
        if end is not None:
            q = q.where(_R.administered_at < end)
        if after is not None:
            at = datetime.fromisoformat(after[0])
            q = q.where(or_(_R.administered_at < at,
                            and_(_R.administered_at == at, _R.record_id < after[1])))
        q = q.order_by(_R.administered_at.desc(), _R.record_id.desc()).limit(limit)
        return [stored_record(r) for r in self._conn.execute(q)]

    def mark_entered_in_error(self, record_id: str, reason: str, by: str, at: datetime
                              ) -> bool:
        """False when the record was already marked (or does not exist)."""
        done = self._conn.execute(update(t.administration_records).where(
            _R.record_id == record_id, ~_R.entered_in_error).values(
            entered_in_error=True, correction_reason=reason, corrected_by=by,
            corrected_at=at, etag=new_etag(), followup_due_at=None))
        return done.rowcount == 1

    def evaluate(self, facility_id: str, resident_id: str, record_id: str, etag: str,
                 evaluation: PnEvaluation) -> bool:
        """Store a PN dose's evaluation if the active record still has `etag`: a
        compare-and-set, so of two evaluations made on the same read one wins. The first
        evaluation's time is kept. False when the etag changed (or the record was
        corrected)."""
        done = self._conn.execute(update(t.administration_records).where(
            _R.facility_id == facility_id, _R.resident_id == resident_id,
            _R.record_id == record_id, _R.etag == etag, ~_R.entered_in_error).values(
            pn_effect=evaluation.effect.value, pn_effect_note=evaluation.note,
            evaluated_by=evaluation.evaluated_by, evaluated_at=evaluation.evaluated_at,
            first_evaluated_at=func.coalesce(_R.first_evaluated_at,
                                             evaluation.first_evaluated_at),
            etag=new_etag()))
        return done.rowcount == 1

    def claim_followups(self, now: datetime, limit: int, *, facility_id: str | None = None,
                        resident_id: str | None = None
                        ) -> list[tuple[str, str, str, datetime]]:
        """(facility id, resident id, record id, administered at) of records whose PN
        evaluation deadline passed by `now` unswept, oldest first, claimed for this
        transaction (SKIP LOCKED, as the missed-dose sweep's claims)."""
        q = (select(_R.facility_id, _R.resident_id, _R.record_id, _R.administered_at)
             .where(_R.followup_due_at.is_not(None), _R.followup_due_at <= now))
        if facility_id is not None:
            q = q.where(_R.facility_id == facility_id, _R.resident_id == resident_id)
        rows = self._conn.execute(
            q.order_by(_R.followup_due_at).limit(limit).with_for_update(skip_locked=True))
        return [(r[0], r[1], r[2], _utc(r[3])) for r in rows]

    def mark_followups_swept(self, record_ids: Sequence[str]) -> None:
        for i in range(0, len(record_ids), 1000):
            self._conn.execute(update(t.administration_records).where(
                _R.record_id.in_(list(record_ids[i:i + 1000]))).values(followup_due_at=None))

    def move_followups(self, facility_id: str,
                       due: Callable[[datetime, datetime], datetime]) -> int:
        """Give the facility's unswept follow-ups the deadline `due(administered_at,
        recorded_at)` (its PN evaluation setting changed). Returns how many moved."""
        rows = self._conn.execute(
            select(_R.record_id, _R.administered_at, _R.recorded_at).where(
                _R.facility_id == facility_id, _R.followup_due_at.is_not(None))).all()
        for record_id, at, recorded in rows:
            self._conn.execute(update(t.administration_records).where(
                _R.record_id == record_id).values(followup_due_at=due(_utc(at),
                                                                      _utc(recorded))))
        return len(rows)
