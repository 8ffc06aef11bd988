"""A facility's settings change re-plans its materialised doses in the same transaction
(issue 12, on SQLite and PostgreSQL): move the medication time a few minutes ahead, and
every resident's dose is alerted once when its new window closes, never for the old plan.

The bug this guards: dose ids are kept when a time moves (resident/order/date/slot), and a
dose of the old plan that had been swept kept its sweep, so its miss under the new plan was
never alerted (1 of 4 residents on SQLite, none on PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from medservice.domain.access import Role
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, K, dose, order, structured, ts
from tests.conftest import ServerFixture, TestClock

ZONE = ZoneInfo("Europe/Copenhagen")
RESIDENTS = [f"facilities/f/residents/r{i}" for i in range(4)]


def _tomorrow_at(clock: TestClock, hour: int, minute: int = 0) -> datetime:
    """A local time on the day after the real today, however far the clock has moved."""
    day = (clock() - clock.offset).astimezone(ZONE).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def _set_now(clock: TestClock, at: datetime) -> None:
    clock.advance(at - clock())


def test_moving_the_medication_time_alerts_each_dose_once_under_its_new_window(
        server: ServerFixture, server_clock: TestClock) -> None:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    for i, name in enumerate(RESIDENTS):
        admin.create_resident("f", fpb.Resident(person_id=f"01014{i}-111{i}",
                                                display_name=f"R{i}", room=str(i)),
                              name.rsplit("/", 1)[1])
    # The home starts using medservice at noon: the 08:00 dose was documented elsewhere.
    _set_now(server_clock, _tomorrow_at(server_clock, 12))
    integration = server.client(Role.INTEGRATION, "f")
    for name in RESIDENTS:
        integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{name}/medicineCard", card_version=1, orders=[
                order(name, "para", "Paracetamol",
                      structured([dose(K.DOSE_TIME_KIND_MORNING, "1")]))]),
            valid_time=ts(CARD_VALID_FROM)))
    lead = server.client(Role.SHIFT_LEAD, "f")

    def missed_alerts() -> list[apb.Alert]:
        return [a for a in lead.list_alerts("f") if a.kind == apb.ALERT_KIND_MISSED_DOSE]

    server.running.sweeper.run_once()  # sweeps the 08:00 doses: before mirroring, no alert
    assert missed_alerts() == []
    facility = admin.get_facility("f")
    facility.medication_times.morning = "12:05"
    facility.timing_windows.daily_or_less_minutes = 1
    admin.update_facility(facility, ["medication_times", "timing_windows"])

    carer = server.client(Role.CARER, "f")
    start = _tomorrow_at(server_clock, 0)
    [moved] = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENTS[0], start_time=ts(start),
        end_time=ts(start + timedelta(days=1)))).doses
    assert (moved.local_time, moved.status) == ("12:05", rpb.DOSE_STATUS_DUE)

    _set_now(server_clock, _tomorrow_at(server_clock, 12, 5) + timedelta(seconds=30))
    server.running.sweeper.run_once()  # the new window (12:04-12:06) is still open
    assert missed_alerts() == []
    _set_now(server_clock, _tomorrow_at(server_clock, 12, 7))
    for _ in range(2):  # a second sweep finds nothing more
        server.running.sweeper.run_once()
        alerts = missed_alerts()
        assert sorted(a.resident for a in alerts) == RESIDENTS, alerts
        assert all("12:05" in a.summary for a in alerts), [a.summary for a in alerts]
    [shown] = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=RESIDENTS[0], start_time=ts(start),
        end_time=ts(start + timedelta(days=1)))).doses
    assert shown.status == rpb.DOSE_STATUS_MISSED
