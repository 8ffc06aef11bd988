"""Builders shared by the reconcile and check tests (this module holds no tests).

One facility "home" in Europe/Copenhagen with the default clock (morning 08:00, noon
12:00, evening 18:00, night 22:00; windows ±30/±60/±120 min; late documentation 240 min)
and one resident "r1". Local day DAY is 2026-05-04 (CEST, UTC+2): 08:00 local = 06:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import Facility, PnDayMode
from medservice.domain.orders import Drug, OrderContent, OrderVersion
from medservice.domain.rounds import DoseWithOrder, doses_between
from medservice.domain.schedule import ScheduledDose
from medservice.reconcile import (
    Code,
    Discrepancy,
    FacilityRules,
    context_range,
    reconcile,
)

FACILITY, RESIDENT = "home", "r1"
CLOCK = FacilityClock.from_facility(Facility(FACILITY, "Home"))
# The longest PN follow-up deadline (a day): these builders serve tests of other rules, whose
# PN doses are not evaluated. PN follow-up is tested with the default 2 hours
# (tests/unit/test_pn_followup.py).
RULES = FacilityRules(CLOCK, pn_evaluation_minutes=24 * 60)
CALENDAR_RULES = FacilityRules(CLOCK, PnDayMode.CALENDAR_DAY, pn_evaluation_minutes=24 * 60)
UNIT = DoseUnit("tablet", "tabletter")
DAY = date(2026, 5, 4)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time on the facility clock, as a UTC instant."""
    return CLOCK.instant(day, time(hour, minute))


def at(hour: int, minute: int = 0) -> datetime:
    return local(DAY, hour, minute)


def dose(kind: TimeKind = TimeKind.ANY, quantity: str = "1", clock_time: time | None = None,
         *, pn: bool = False, amount: Amount | None = None) -> DosageDose:
    return DosageDose(kind, clock_time, amount or Amount.exact(quantity), pn)


def dosage(*doses: DosageDose, interval: int = 1, start: date = date(2026, 1, 1),
           end: date | None = None) -> StructuredDosage:
    return StructuredDosage(UNIT, (DosagePeriod(start, end, interval, "",
                                                (DosageDay(1, doses),)),))


MORNING_EVENING = dosage(dose(TimeKind.MORNING), dose(TimeKind.EVENING))
MORNING = dosage(dose(TimeKind.MORNING))
NOON_EVENING = dosage(dose(TimeKind.NOON), dose(TimeKind.EVENING))
PN_TWICE_DAILY = dosage(dose(pn=True), dose(pn=True))  # iterated: at most 2 a day


def content(order_id: str = "o1", dosage_: Any = MORNING_EVENING, *, drug_id: str = "drug-a",
            route: str = "oral", **fields: Any) -> OrderContent:
    fields.setdefault("treatment_start", date(2026, 1, 1))
    return OrderContent(order_id, Drug(f"Drug {drug_id}", drug_id), dosage_, route=route,
                        **fields)


def version(c: OrderContent, number: int = 1, *, valid_from: datetime = EPOCH,
            recorded_at: datetime | None = None, removed: bool = False) -> OrderVersion:
    return OrderVersion(FACILITY, RESIDENT, c, number, valid_from,
                        recorded_at if recorded_at is not None else valid_from, removed)


def changed(history: list[OrderVersion], when: datetime, **fields: Any) -> list[OrderVersion]:
    """The history with a new version, valid from and recorded at `when` (as
    cards.discontinue_order and pause_order make them)."""
    latest = history[-1]
    return [*history, replace(latest, content=replace(latest.content, **fields),
                              version=latest.version + 1, valid_from=when, recorded_at=when)]


def orders_of(*histories: list[OrderVersion]) -> dict[str, list[OrderVersion]]:
    return {h[0].order_id: h for h in histories}


def doses_of(orders: dict[str, list[OrderVersion]], start: datetime, end: datetime,
             now: datetime) -> list[DoseWithOrder]:
    found: list[DoseWithOrder] = []
    for history in orders.values():
        found += doses_between(history, CLOCK, start, end, now)
    return found


def due(orders: dict[str, list[OrderVersion]], order_id: str, hour: int,
        day: date = DAY, now: datetime | None = None) -> ScheduledDose:
    """The order's dose due at local hour:00 on `day`."""
    instant = local(day, hour)
    for d, _ in doses_of(orders, instant - HOUR, instant + HOUR, now or EPOCH + 1000 * HOUR * 24):
        if d.order_id == order_id and d.due_time == instant:
            return d
    raise AssertionError(f"no dose of {order_id} due at {hour}:00")


def record(record_id: str, when: datetime, *, order_id: str | None = "o1",
           dose_id: str | None = None, outcome: Outcome = Outcome.GIVEN,
           quantity: str | None = "1", recorded_at: datetime | None = None,
           drug_id: str = "drug-a", route: str = "", reason: NotGivenReason | None = None,
           entered_in_error: bool = False, resident_id: str = RESIDENT) -> AdministrationRecord:
    return AdministrationRecord(
        record_id=record_id, facility_id=FACILITY, resident_id=resident_id, order_id=order_id,
        drug_id=drug_id, outcome=outcome, administered_at=when,
        recorded_at=recorded_at if recorded_at is not None else when, performer="nurse-1",
        dose_id=dose_id, quantity=Decimal(quantity) if quantity is not None else None,
        route=route, not_given_reason=reason, entered_in_error=entered_in_error)


def run(orders: dict[str, list[OrderVersion]], records: Iterable[AdministrationRecord], *,
        now: datetime, start: datetime | None = None, end: datetime | None = None,
        rules: FacilityRules = RULES) -> list[Discrepancy]:
    """Reconcile resident r1 over [start, end) (default: the local day DAY) with the
    context `context_range` asks for."""
    start = start if start is not None else local(DAY, 0)
    end = end if end is not None else local(DAY + timedelta(days=1), 0)
    lo, hi = context_range(start, end, orders.values())
    return reconcile(FACILITY, start, end, doses=doses_of(orders, lo, hi, now),
                     records=list(records), orders={RESIDENT: orders}, rules=rules, now=now)


def codes(found: Sequence[Discrepancy]) -> list[tuple[Code, str | None]]:
    """(code, record id or dose id) of each discrepancy, in result order."""
    return [(d.code, d.record_id or d.dose_id) for d in found]


def only(found: Sequence[Discrepancy], code: Code) -> Discrepancy:
    matching = [d for d in found if d.code is code]
    assert len(matching) == 1, [d.key for d in found]
    return matching[0]
