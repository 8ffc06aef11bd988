"""The demo shows the sweep at work in its first ten minutes: seeded at any time of day,
r07's Madopar falls due a few minutes later, its window closes within ten minutes of the
seed, and one sweep after that raises one missed-dose alert for the shift lead (and none
before). On SQLite and PostgreSQL; instants derive from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from medservice.demo import seed_demo, soon_order
from medservice.domain.access import Role
from medservice.domain.alerts import AlertKind
from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import doses_between
from medservice.service.sweep import sweep
from medservice.service.unit_of_work import UnitOfWorkFactory

ZONE = ZoneInfo("Europe/Copenhagen")


def _missed_alerts(uow: UnitOfWorkFactory) -> list[str | None]:
    with uow(write=False) as u:
        alerts = u.alerts.page("demo", Role.SHIFT_LEAD, False, limit=100, before=None)
    return [a.resident_id for a in alerts if a.kind is AlertKind.MISSED_DOSE]


def test_the_demo_misses_a_dose_within_ten_minutes(uow: UnitOfWorkFactory) -> None:
    now = datetime.now(UTC)
    assert seed_demo(uow, now)
    assert sweep(uow, now + timedelta(minutes=2)).failed == 0
    assert _missed_alerts(uow) == []  # the rest of the demo: due before it was seeded
    assert sweep(uow, now + timedelta(minutes=9)).failed == 0
    assert _missed_alerts(uow) == ["r07"]
    sweep(uow, now + timedelta(minutes=10))
    assert _missed_alerts(uow) == ["r07"]  # once


@pytest.mark.parametrize("local", ["00:00:00", "10:41:30", "23:57:10", "23:59:59"])
def test_the_soon_dose_is_due_three_to_four_minutes_after_the_seed(local: str) -> None:
    today = datetime.now(ZONE).date()
    now = datetime.fromisoformat(f"{today.isoformat()}T{local}").replace(
        tzinfo=ZONE).astimezone(UTC)
    order = soon_order(now, ZONE)
    clock = FacilityClock.from_facility(Facility("demo", "x"))
    version = OrderVersion("demo", "r07", order, 1, now - timedelta(days=30), now)
    [pair] = doses_between([version], clock, now, now + timedelta(hours=1), now)
    assert timedelta(minutes=3) <= pair.dose.due_time - now <= timedelta(minutes=4)
    assert pair.dose.window_end is not None
    assert pair.dose.window_end - now <= timedelta(minutes=7)
