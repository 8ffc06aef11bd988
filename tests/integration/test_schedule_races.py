"""Materialising the schedule while orders change, on SQLite and PostgreSQL: the sweep's
horizon extension must never undo the rows a concurrent card sync wrote (the sweep would
then never see those doses, and no shift lead would hear that they were missed)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from medservice.demo import demo_cards
from medservice.domain.facility import Facility, Resident
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.service import materialise as materialise_module
from medservice.service.horizon import HORIZON, extend_horizon_once
from medservice.service.materialise import Histories
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory
from medservice.store import tables as t
from medservice.store.schedule import DueDose
from medservice.store.uow import SqlUnitOfWork

F, R = "f", "r"
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
WAIT = 1.5  # seconds the extension gives the sync to commit in its midst


def test_a_horizon_extension_keeps_the_doses_of_a_card_synced_meanwhile(
        uow: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    orders = [o for o in next(iter(demo_cards(NOW.date()).values()))
              if o.dosage is not None][:2]
    with uow() as u:
        facilities_uc.create_facility(u, Facility(F, "Home"), NOW)
        facilities_uc.create_resident(u, Resident(R, F, "010150-1000", R, "1"), NOW)
        u.commit()

    synced = threading.Event()

    def sync_card() -> None:
        with uow() as u:
            cards_uc.sync_card(u, F, R, 1, orders, NOW - timedelta(days=30), NOW)
            u.commit()
        synced.set()

    sync = threading.Thread(target=sync_card)
    real = materialise_module.due_doses

    def due_doses_with_a_sync_meanwhile(facility: Facility, histories: Histories,
                                        start: datetime, end: datetime, now: datetime
                                        ) -> list[DueDose]:
        # Between reading the order versions (none yet) and writing the rows: the card
        # sync commits here unless the extension holds the resident.
        if threading.current_thread() is threading.main_thread() and not sync.is_alive() \
                and not synced.is_set():
            sync.start()
            synced.wait(WAIT)
        return real(facility, histories, start, end, now)

    monkeypatch.setattr(materialise_module, "due_doses", due_doses_with_a_sync_meanwhile)
    with uow() as u:
        assert extend_horizon_once(u, NOW) == F
        u.commit()
    sync.join(30)
    assert synced.is_set()

    s = t.scheduled_doses.c
    with uow(write=False) as u:
        stored = set(sql(u).conn.scalars(select(s.dose_id).where(
            s.resident_id == R, s.due_at >= NOW, s.due_at < NOW + HORIZON)))
        facility = facilities_uc.get_facility(u, F)
        histories = list(u.cards.resident_versions(F, R).values())
    expected = {d.dose_id for d in real(facility, histories, NOW, NOW + HORIZON, NOW)}
    assert expected and stored == expected


def sql(u: UnitOfWork) -> SqlUnitOfWork:
    """The SQL unit of work behind the fixture, for a test that reads a table directly."""
    assert isinstance(u, SqlUnitOfWork)
    return u
