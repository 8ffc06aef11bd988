"""Times in texts staff read: the facility's local time with its zone, one clock a text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.reconcile import FacilityRules
from medservice.reconcile.engine import missed_dose

CLOCK = FacilityClock.from_facility(Facility("f", "Home"))


def test_an_instant_shows_on_the_facility_clock_with_its_zone() -> None:
    assert CLOCK.text(datetime(2026, 12, 5, 9, 49, tzinfo=UTC)) == "2026-12-05 10:49 CET"
    assert CLOCK.text(datetime(2026, 7, 1, 6, 0, tzinfo=UTC), "%H:%M") == "08:00 CEST"
    # The autumn night: the same wall time twice, told apart by the zone.
    first, second = (CLOCK.text(datetime(2026, 10, 25, h, 30, tzinfo=UTC), "%H:%M")
                     for h in (0, 1))
    assert (first, second) == ("02:30 CEST", "02:30 CET")


def test_a_missed_dose_says_when_in_facility_time_only() -> None:
    due = datetime(2026, 12, 5, 9, 49, tzinfo=UTC)
    d = missed_dose("f", "r1", "o", "d", due, due + timedelta(minutes=61),
                    FacilityRules(CLOCK, language="en"))
    assert d.description == "dose due 2026-12-05 10:49 CET not recorded by 11:50 CET"
    assert "UTC" not in d.description and "Z" not in d.description.replace("CET", "")
    assert d.message is not None and d.message.render("da").endswith("11:50 CET")
