"""Repositories: the only code that knows SQL. They take and return domain objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from medservice.domain.facility import (
    DEFAULT_VAGUE_INDICATIONS,
    Facility,
    MedicationTimes,
    PnDayMode,
    Resident,
    Shift,
    TimingWindows,
)
from medservice.i18n import DEFAULT_LANGUAGE
from medservice.store import tables as t
from medservice.store.bulk import KEYS_PER_STATEMENT, any_of, keys_in


def newest_first(q: Any, at: Any, key: Any, start: datetime | None, end: datetime | None,
                 after: tuple[str, str] | None, limit: int) -> Any:
    """`q` within [start, end) of column `at`, newest first, keyset-paged after
    (`at` ISO, `key`) of the previous page's last row."""
    if start is not None:
        q = q.where(at >= start)
    if end is not None:
        q = q.where(at < end)
    if after is not None:
        last = datetime.fromisoformat(after[0])
        q = q.where(or_(at < last, and_(at == last, key < after[1])))
    return q.order_by(at.desc(), key.desc()).limit(limit)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every instant here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _time(value: str) -> time:
    return time.fromisoformat(value)


def facility_settings(f: Facility) -> dict[str, Any]:
    m = f.medication_times
    w = f.timing_windows
    return {
        "medication_times": {
            "morning": _hhmm(m.morning), "noon": _hhmm(m.noon),
            "evening": _hhmm(m.evening), "night": _hhmm(m.night),
        },
        "shifts": [
            {"shift_id": s.shift_id, "display_name": s.display_name,
             "start": _hhmm(s.start), "end": _hhmm(s.end)}
            for s in f.shifts
        ],
        "timing_windows": {
            "time_critical_minutes": w.time_critical_minutes,
            "more_than_daily_minutes": w.more_than_daily_minutes,
            "daily_or_less_minutes": w.daily_or_less_minutes,
            "late_documentation_minutes": w.late_documentation_minutes,
        },
        "pn_day_mode": f.pn_day_mode.value,
        "alert_escalation_minutes": f.alert_escalation_minutes,
        "pn_evaluation_minutes": f.pn_evaluation_minutes,
        "vague_indication_terms": list(f.vague_indication_terms),
        "approval_overdue_minutes": f.approval_overdue_minutes,
        "language": f.language,
    }


def _facility(row: Any) -> Facility:
    s = row.settings
    m = s["medication_times"]
    return Facility(
        facility_id=row.facility_id,
        display_name=row.display_name,
        time_zone=row.time_zone,
        medication_times=MedicationTimes(
            _time(m["morning"]), _time(m["noon"]), _time(m["evening"]), _time(m["night"])
        ),
        shifts=tuple(
            Shift(x["shift_id"], x["display_name"], _time(x["start"]), _time(x["end"]))
            for x in s["shifts"]
        ),
        timing_windows=TimingWindows(**s["timing_windows"]),
        pn_day_mode=PnDayMode(s["pn_day_mode"]),
        alert_escalation_minutes=s["alert_escalation_minutes"],
        # Facilities stored before issue 16 have the default.
        pn_evaluation_minutes=s.get("pn_evaluation_minutes", 120),
        vague_indication_terms=tuple(s.get("vague_indication_terms",
                                           DEFAULT_VAGUE_INDICATIONS)),
        approval_overdue_minutes=s.get("approval_overdue_minutes", 1440),
        # Migration 0016 writes Danish into facilities stored before issue 15.
        language=s.get("language", DEFAULT_LANGUAGE),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        etag=row.etag,
    )


class FacilityRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, f: Facility) -> None:
        assert f.create_time and f.update_time
        self._conn.execute(insert(t.facilities).values(
            facility_id=f.facility_id, display_name=f.display_name, time_zone=f.time_zone,
            settings=facility_settings(f), create_time=f.create_time,
            update_time=f.update_time, etag=f.etag,
        ))

    def get(self, facility_id: str) -> Facility | None:
        row = self._conn.execute(
            select(t.facilities).where(t.facilities.c.facility_id == facility_id)
        ).first()
        return _facility(row) if row else None

    def exists(self, facility_id: str) -> bool:
        return self._conn.execute(
            select(t.facilities.c.facility_id).where(t.facilities.c.facility_id == facility_id)
        ).first() is not None

    def ids_without_horizon(self) -> list[str]:
        """Facilities whose due doses the sweep has not begun to materialise."""
        h = t.schedule_horizons.c
        return list(self._conn.scalars(select(t.facilities.c.facility_id).where(
            ~select(h.facility_id).where(h.facility_id == t.facilities.c.facility_id)
            .exists())))

    def list(
        self, *, limit: int, after: str | None, only: frozenset[str] | None
    ) -> list[Facility]:
        """Facilities ordered by id, after the given id; `only` limits to these ids."""
        q = select(t.facilities).order_by(t.facilities.c.facility_id).limit(limit)
        if after is not None:
            q = q.where(t.facilities.c.facility_id > after)
        if only is not None:
            q = q.where(any_of(self._conn, t.facilities.c.facility_id, sorted(only)))
        return [_facility(r) for r in self._conn.execute(q)]

    def replace(self, f: Facility, *, expected_etag: str) -> bool:
        """Write f if the stored etag is still expected_etag; False if someone else won."""
        assert f.update_time
        result = self._conn.execute(
            update(t.facilities)
            .where(and_(t.facilities.c.facility_id == f.facility_id,
                        t.facilities.c.etag == expected_etag))
            .values(display_name=f.display_name, time_zone=f.time_zone,
                    settings=facility_settings(f), update_time=f.update_time, etag=f.etag)
        )
        return result.rowcount == 1


def _resident(row: Any) -> Resident:
    return Resident(
        resident_id=row.resident_id,
        facility_id=row.facility_id,
        person_id=row.person_id,
        display_name=row.display_name,
        room=row.room,
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        etag=row.etag,
    )


class ResidentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, r: Resident) -> None:
        self._conn.execute(insert(t.residents).values(
            facility_id=r.facility_id, resident_id=r.resident_id, person_id=r.person_id,
            display_name=r.display_name, room=r.room, create_time=r.create_time,
            update_time=r.update_time, etag=r.etag,
        ))

    def get(self, facility_id: str, resident_id: str) -> Resident | None:
        row = self._conn.execute(select(t.residents).where(
            t.residents.c.facility_id == facility_id, t.residents.c.resident_id == resident_id
        )).first()
        return _resident(row) if row else None

    def rooms(self, residents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(facility id, resident id) -> room, for those of these residents that exist: one
        statement per 5,000 (a batch's alerts name thousands of residents)."""
        c = t.residents.c
        out: dict[tuple[str, str], str] = {}
        for i in range(0, len(residents), KEYS_PER_STATEMENT):
            chunk = residents[i:i + KEYS_PER_STATEMENT]
            out.update(((r.facility_id, r.resident_id), r.room) for r in self._conn.execute(
                select(c.facility_id, c.resident_id, c.room).where(
                    keys_in(self._conn, (c.facility_id, c.resident_id), chunk))))
        return out

    def person_id_taken(self, facility_id: str, person_id: str) -> bool:
        """Within one facility only: what other facilities hold is not this caller's."""
        c = t.residents.c
        return self._conn.execute(
            select(c.resident_id).where(c.facility_id == facility_id, c.person_id == person_id)
        ).first() is not None

    def list(
        self, facility_id: str, *, limit: int, after: tuple[str, str] | None
    ) -> list[Resident]:
        """Residents in room order (then id), after the given (room, resident_id)."""
        c = t.residents.c
        q = (select(t.residents).where(c.facility_id == facility_id)
             .order_by(c.room, c.resident_id).limit(limit))
        if after is not None:
            room, rid = after
            q = q.where(or_(c.room > room, and_(c.room == room, c.resident_id > rid)))
        return [_resident(r) for r in self._conn.execute(q)]

    def replace(self, r: Resident, *, expected_etag: str) -> bool:
        c = t.residents.c
        result = self._conn.execute(
            update(t.residents)
            .where(c.facility_id == r.facility_id, c.resident_id == r.resident_id,
                   c.etag == expected_etag)
            .values(display_name=r.display_name, room=r.room, update_time=r.update_time,
                    etag=r.etag)
        )
        return result.rowcount == 1


_Q = t.request_log.c
# Prepared once: every idempotent write runs both (building a statement per call cost more
# than running it).
_REQUEST = select(_Q.request_hash, _Q.response).where(
    _Q.subject == bindparam("subject"), _Q.method == bindparam("method"),
    _Q.request_id == bindparam("request_id"))
_ADD_REQUEST = insert(t.request_log)


class RequestLog:
    """Responses of completed write requests, keyed by (subject, method, request_id)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, subject: str, method: str, request_id: str) -> tuple[str, bytes] | None:
        row = self._conn.execute(_REQUEST, {"subject": subject, "method": method,
                                            "request_id": request_id}).first()
        return (row[0], bytes(row[1])) if row else None

    def add(self, subject: str, method: str, request_id: str, request_hash: str,
            response: bytes, now: datetime) -> None:
        self._conn.execute(_ADD_REQUEST, {
            "subject": subject, "method": method, "request_id": request_id,
            "request_hash": request_hash, "response": response, "create_time": now})
