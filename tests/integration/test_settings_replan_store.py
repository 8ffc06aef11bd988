"""The mechanism under a settings change's re-plan and an order change's refresh, on SQLite
and PostgreSQL (issue 12): `ScheduleRepository.replace` sweeps a dose again when its window
now closes at another time. Dose ids are kept when a time or window moves
(resident/order/local date/slot), so a row that kept its old sweep would never be claimed
under its new window, and its miss never alerted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from medservice.domain.alerts import AlertKind
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import Drug, OrderContent
from medservice.service import facilities as facilities_uc
from medservice.service.cards import sync_card
from medservice.service.sweep import sweep
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store import tables as t
from medservice.store.schedule import DueDose
from medservice.store.uow import SqlUnitOfWork

F, R = "f", "r"
ZONE = ZoneInfo("Europe/Copenhagen")
DAY = date(2026, 3, 10)  # a fixed day (no DST near it): the test injects every instant
_S = t.scheduled_doses.c


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def _rows(u: UnitOfWork) -> dict[str, tuple[datetime, datetime | None]]:
    """dose id -> (closes_at, swept_at) of the stored rows."""
    assert isinstance(u, SqlUnitOfWork)
    return {r[0]: (r[1].replace(tzinfo=UTC),
                   r[2].replace(tzinfo=UTC) if r[2] is not None else None)
            for r in u.conn.execute(select(_S.dose_id, _S.closes_at, _S.swept_at))}


def _due(dose_id: str, due: datetime, half: timedelta, amount: str = "1") -> DueDose:
    return DueDose(dose_id, F, R, "o", due, due + half, due - half, due + half, amount,
                   "oral", None)


def test_replace_sweeps_a_dose_again_only_when_its_window_closes_at_another_time(
        uow: UnitOfWorkFactory) -> None:
    start, end, swept = _at(0), _at(0) + timedelta(days=1), _at(10, 1)
    two_hours = timedelta(hours=2)
    old = [_due("moved", _at(8), two_hours), _due("changed", _at(8), two_hours),
           _due("same", _at(8), two_hours), _due("gone", _at(8), two_hours)]
    with uow() as u:
        u.schedule.replace(F, [R], start, end, old)
        u.schedule.mark_swept([d.dose_id for d in old], swept)
        u.commit()
    moved = _due("moved", _at(12, 5), timedelta(minutes=1))  # new time and window
    new = [moved, _due("changed", _at(8), two_hours, amount="2"), old[2],
           _due("new", _at(8), two_hours)]
    with uow() as u:
        u.schedule.replace(F, [R], start, end, new)
        u.commit()
    with uow() as u:
        assert _rows(u) == {
            "moved": (_at(12, 6), None),  # swept again under its new window
            "changed": (_at(10), swept),  # same window: keeps its sweep
            "same": (_at(10), swept),
            "new": (_at(10), None),
        }  # "gone" is not in the new plan: no sweep can claim it
        assert [d.dose_id for d in u.schedule.claim_closed(_at(12, 7), 10)] == ["new", "moved"]
    # A caller that reconciles the range itself (a batch) counts a moved dose whose new
    # window has closed as swept.
    with uow() as u:
        u.schedule.replace(F, [R], start, end, [replace(moved, due_at=_at(9),
                                                        closes_at=_at(9, 1))],
                           swept_if_closed_by=_at(12, 7))
        assert _rows(u) == {"moved": (_at(9, 1), _at(12, 7))}


def _order(window_minutes: int | None) -> OrderContent:
    dosage = StructuredDosage(DoseUnit("tablet", "tabletter"), (DosagePeriod(
        date(2026, 1, 1), None, 1, days=(DosageDay(1, (DosageDose(
            TimeKind.MORNING, None, Amount.exact(Decimal(1)), False),)),)),))
    return OrderContent("o", Drug("Paracetamol", "para"), dosage, route="oral",
                        treatment_start=date(2026, 1, 1), window_minutes=window_minutes)


def test_an_order_window_change_sweeps_the_moved_dose_again_and_alerts_it_once(
        uow: UnitOfWorkFactory) -> None:
    with uow() as u:
        facilities_uc.create_facility(u, Facility(F, "Home"), _at(5))
        facilities_uc.create_resident(u, Resident(R, F, "010150-1000", R, "1"), _at(5))
        sync_card(u, F, R, 1, [_order(None)], datetime(2026, 1, 1, tzinfo=UTC), _at(5))
        u.commit()

    def missed() -> list[str | None]:
        with uow(write=False) as u:
            return [a.resident_id for a in u.alerts.page(F, None, False, limit=100, before=None)
                    if a.kind is AlertKind.MISSED_DOSE]

    sweep(uow, _at(10, 1))  # the 08:00 dose's window (±120 min) closed: missed
    assert missed() == [R]
    with uow() as u:  # the order's window widens to ±180 min from 06:00
        sync_card(u, F, R, 2, [_order(180)], _at(6), _at(10, 30))
        u.commit()
    with uow() as u:
        [(dose_id, (closes, swept_at))] = [(i, row) for i, row in _rows(u).items()
                                           if row[0] < _at(12)]
        assert (closes, swept_at) == (_at(11), None), dose_id
    sweep(uow, _at(11, 1))  # swept again under its new window: still one alert
    sweep(uow, _at(11, 2))
    assert missed() == [R]
    with uow() as u:
        assert _rows(u)[dose_id][1] is not None
