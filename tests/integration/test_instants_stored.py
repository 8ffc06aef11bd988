"""An instant given with any UTC offset is stored and read back as the same instant on
both stores (SQLite keeps only a datetime's wall-clock text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from medservice.domain.facility import Facility, Resident
from medservice.service import facilities as facilities_uc
from medservice.service.unit_of_work import UnitOfWorkFactory
from tests.unit.test_reconcile_builders import record

CEST = timezone(timedelta(hours=2))


def test_an_instant_with_an_offset_is_the_same_instant_read_back(uow: UnitOfWorkFactory
                                                                  ) -> None:
    created = datetime.now(UTC).replace(microsecond=0)
    given = (created - timedelta(days=1)).astimezone(CEST)  # e.g. 10:00+02:00 = 08:00Z
    with uow() as u:
        facilities_uc.create_facility(u, Facility("home", "Home"), created)
        facilities_uc.create_resident(u, Resident("r1", "home", "010150-1000", "A", "1"),
                                      created)
        u.records.add(record("rec-1", given, recorded_at=given), settles=False)
        u.commit()
    hour = timedelta(hours=1)
    with uow(write=False) as u:
        [found] = u.records.between("home", "r1", given - hour, given + hour)
        assert found.administered_at == given and found.recorded_at == given
        assert found.administered_at.utcoffset() == timedelta(0)
        # Not where the wall-clock time read as UTC would put it.
        wall = given.replace(tzinfo=UTC)
        assert u.records.between("home", "r1", wall - timedelta(minutes=30),
                                 wall + timedelta(minutes=30)) == []
