"""Batch reconciliation (`service.batch`) against the engine, on SQLite and PostgreSQL.

The batch sends only residents with a record that is not plainly right through the
engine and takes everyone else's missed doses from SQL over the materialised schedule.
Whatever mix of records and order changes a home produces, the result must be exactly
what the engine finds when it looks at every resident."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import Facility, Resident, TimingWindows
from medservice.domain.orders import Drug, OrderContent
from medservice.domain.rounds import doses_between
from medservice.reconcile import Discrepancy, FacilityRules
from medservice.service import batch
from medservice.service.cards import discontinue_order, pause_order, sync_card
from medservice.service.facilities import (
    create_facility,
    create_resident,
    get_facility,
    update_facility,
)
from medservice.service.unit_of_work import UnitOfWorkFactory

DAY = date(2026, 3, 29)  # spring DST night in Copenhagen
MIRRORED = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 2, 12, tzinfo=UTC)  # every window of the day has closed
UNIT = DoseUnit("tablet", "tabletter")
HOMES = {"home-a": 60, "home-b": 30}  # late documentation allowed, minutes


def _dosage(*doses: DosageDose) -> StructuredDosage:
    return StructuredDosage(UNIT, (DosagePeriod(date(2026, 1, 1), None, 1,
                                                days=(DosageDay(1, doses),)),))


def _dose(kind: TimeKind, quantity: str = "1", *, pn: bool = False,
          amount: Amount | None = None) -> DosageDose:
    return DosageDose(kind, None, amount or Amount.exact(Decimal(quantity)), pn)


def _orders(rng: random.Random) -> list[OrderContent]:
    def order(order_id: str, drug: str, dosage: Any, **fields: Any
              ) -> OrderContent:
        return OrderContent(order_id, Drug(f"Drug {drug}", drug), dosage, route="oral",
                            treatment_start=date(2026, 1, 1), **fields)

    orders = [
        order("o1", "drug-a", _dosage(_dose(TimeKind.MORNING), _dose(TimeKind.EVENING))),
        order("o2", "drug-b", _dosage(_dose(TimeKind.NOON, "2"))),
        order("o3", "drug-c", _dosage(_dose(TimeKind.ANY, pn=True),
                                      _dose(TimeKind.ANY, pn=True))),
    ]
    if rng.random() < 0.3:
        orders.append(order("o4", "drug-d", _dosage(_dose(
            TimeKind.NIGHT, amount=Amount.between(Decimal(1), Decimal(2))))))
    if rng.random() < 0.2:
        orders.append(order("o5", "drug-e", _dosage(_dose(TimeKind.MORNING)),
                            time_critical=True, treatment_end=DAY))
    if rng.random() < 0.25:  # no schedule: NEEDS_MANUAL_SCHEDULE, from Python
        orders.append(order("o6", "drug-f", FreeTextDosage("1 tablet after need")))
    return orders


def _records(rng: random.Random, facility_id: str, resident_id: str, uow: UnitOfWorkFactory,
             rules: FacilityRules, start: datetime, end: datetime) -> list[AdministrationRecord]:
    """About 85% of the doses given plainly right, the rest a mix of what goes wrong."""
    with uow(write=False) as u:
        versions = u.cards.resident_versions(facility_id, resident_id)
    out: list[AdministrationRecord] = []

    def add(when: datetime, **fields: Any) -> None:
        fields.setdefault("outcome", Outcome.GIVEN)
        out.append(AdministrationRecord(
            record_id=str(uuid.UUID(int=rng.getrandbits(128))), facility_id=facility_id,
            resident_id=resident_id, drug_id=fields.pop("drug_id", "drug-a"),
            administered_at=when, recorded_at=fields.pop("recorded_at", when + timedelta(
                minutes=rng.randint(0, 20))), performer="nurse", **fields))

    for history in versions.values():
        for d, content in doses_between(history, rules.clock, start, end, NOW):
            drug = content.drug.drug_id
            on = dict(dose_id=d.dose_id, order_id=d.order_id, drug_id=drug,
                      quantity=d.amount.low, route="oral")
            kind = rng.choices(range(12), weights=[80, 3, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1])[0]
            if kind == 0:
                add(d.due_time + timedelta(minutes=rng.randint(-30, 30)), **on)
            elif kind == 1:
                pass  # missed
            elif kind == 2:
                add(d.due_time + timedelta(hours=5), **on)  # late
            elif kind == 3:
                add(d.due_time, **{**on, "quantity": d.amount.low + 1})
            elif kind == 4:
                add(d.due_time, **{**on, "route": "rectal"})
            elif kind == 5:
                add(d.due_time, **{**on, "dose_id": None})  # matched by the engine
            elif kind == 6:
                add(d.due_time, **{**on, "outcome": Outcome.NOT_GIVEN, "quantity": None,
                                   "not_given_reason": NotGivenReason.REFUSED})
            elif kind == 7:
                add(d.due_time, **on, recorded_at=d.due_time + timedelta(minutes=45))
            elif kind == 8:
                add(d.due_time, **on)
                add(d.due_time + timedelta(minutes=5), **on)  # given twice
            elif kind == 9:
                add(d.due_time, **{**on, "entered_in_error": True})
            elif kind == 10:
                add(d.due_time, **{**on, "quantity": Decimal("1.0")})  # written otherwise
            else:
                add(d.due_time + timedelta(minutes=10), **{**on, "route": " ORAL "})
    if rng.random() < 0.3:
        add(start + timedelta(hours=15), order_id="o3", drug_id="drug-c",
            quantity=Decimal(1), outcome=Outcome.PN_GIVEN)
    if rng.random() < 0.1:
        add(start + timedelta(hours=16), order_id=None, drug_id="drug-z", quantity=Decimal(1))
    return out


def _seed(uow: UnitOfWorkFactory, seed: int) -> tuple[dict[str, FacilityRules], datetime,
                                                       datetime]:
    rng = random.Random(seed)
    rules: dict[str, FacilityRules] = {}
    for facility_id, late in HOMES.items():
        with uow() as u:
            f = create_facility(u, Facility(facility_id, facility_id, timing_windows=
                                            TimingWindows(late_documentation_minutes=late)),
                                MIRRORED - timedelta(days=1))
            u.commit()
        rules[facility_id] = FacilityRules.from_facility(f)
        for i in range(8):
            resident_id = f"r{i}"
            with uow() as u:
                create_resident(u, Resident(resident_id, facility_id,
                                            f"{i + 10}0150-{seed:02d}{len(rules):02d}",
                                            f"Resident {i}"), MIRRORED)
                sync_card(u, facility_id, resident_id, 1, _orders(rng), MIRRORED, MIRRORED)
                u.commit()
    clock = rules["home-a"].clock
    start = clock.instant(DAY, time(0))
    end = clock.instant(DAY + timedelta(days=1), time(0))
    for facility_id in HOMES:
        for i in range(8):
            records = _records(rng, facility_id, f"r{i}", uow, rules[facility_id],
                               start - timedelta(hours=6), end + timedelta(hours=6))
            with uow() as u:
                settled: set[str] = set()
                for r in records:
                    settles = (r.dose_id is not None and not r.entered_in_error
                               and r.dose_id not in settled)
                    if settles:
                        settled.add(r.dose_id or "")
                    u.records.add(r, settles=settles)
                u.commit()
    return rules, start, end


def _as_engine_finds(uow: UnitOfWorkFactory, start: datetime, end: datetime
                     ) -> list[Discrepancy]:
    with uow(write=False) as u:
        rules = {f: FacilityRules.from_facility(get_facility(u, f)) for f in HOMES}
        residents = sorted((f, r) for f in HOMES for r in u.cards.facility_versions(f))
        versions = u.cards.residents_versions(residents)
        found = batch._engine(u, rules, versions, residents, start, end, NOW)
    return sorted(found, key=lambda d: d.key)


def _batch(uow: UnitOfWorkFactory, start: datetime, end: datetime) -> batch.BatchResult:
    with uow() as u:
        done = batch.reconcile_facilities(u, list(HOMES), start, end, NOW)
        u.commit()
    return done


def _same(found: list[Discrepancy], expected: list[Discrepancy]) -> None:
    assert sorted(found, key=lambda d: d.key) == expected
    assert len({d.key for d in found}) == len(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_finds_what_the_engine_finds(uow: UnitOfWorkFactory, seed: int) -> None:
    _, start, end = _seed(uow, seed)
    expected = _as_engine_finds(uow, start, end)
    assert {d.code.value for d in expected} >= {"MISSED_DOSE", "LATE_DOSE",
                                                "NEEDS_MANUAL_SCHEDULE"}

    first = _batch(uow, start, end)  # materialises every resident first
    _same(first.found, expected)
    assert 0 < first.examined_residents < 16  # the plain residents took the SQL path
    # NEEDS_MANUAL_SCHEDULE was found already when the card was mirrored.
    assert first.new == sum(d.code.value != "NEEDS_MANUAL_SCHEDULE" for d in expected)

    again = _batch(uow, start, end)  # from the stamps now
    _same(again.found, expected)
    assert again.new == 0


def test_a_late_discontinuation_and_a_pause_reach_the_batch(uow: UnitOfWorkFactory) -> None:
    rules, start, end = _seed(uow, 4)
    _batch(uow, start, end)  # every resident stamped
    clock = rules["home-a"].clock
    with uow() as u:  # learned days later, back-dated into the day's windows
        discontinue_order(u, "home-a", "r0", "o1", clock.instant(DAY, time(8, 30)), NOW)
        pause_order(u, "home-a", "r1", "o2", clock.instant(DAY, time(11, 45)),
                    clock.instant(DAY, time(14)), NOW)
        u.commit()
    expected = _as_engine_finds(uow, start, end)
    assert any(d.resident_id == "r0" and d.code.value == "GIVEN_AFTER_DISCONTINUATION"
               for d in expected)
    _same(_batch(uow, start, end).found, expected)


def test_new_facility_settings_are_not_trusted_from_old_rows(uow: UnitOfWorkFactory) -> None:
    _, start, end = _seed(uow, 5)
    _batch(uow, start, end)
    with uow() as u:
        f = u.facilities.get("home-b")
        assert f is not None
        windows = replace(f.timing_windows, daily_or_less_minutes=15,
                          more_than_daily_minutes=15)
        update_facility(u, "home-b", {"timing_windows": windows}, f.etag, NOW)
        u.commit()
    expected = _as_engine_finds(uow, start, end)
    _same(_batch(uow, start, end).found, expected)


def test_a_pruned_range_is_materialised_again(uow: UnitOfWorkFactory) -> None:
    _, start, end = _seed(uow, 6)
    expected = _as_engine_finds(uow, start, end)
    _batch(uow, start, end)  # materialised, swept for the batch's range, stamped
    with uow() as u:
        assert u.schedule.prune(end + batch.MARGIN) > 0
        u.commit()
    with uow(write=False) as u:
        stamps = u.schedule.stamps(HOMES)
        assert stamps and all(s.covers_from >= end + batch.MARGIN for s in stamps.values())
    # Trusting the stamps now would find no missed dose at all: the rows are gone.
    _same(_batch(uow, start, end).found, expected)


def test_an_open_first_dose_is_missed_neither_by_sql_nor_by_the_engine(
        uow: UnitOfWorkFactory) -> None:
    """A course with no start (every 6 hours) mirrored during the day: its first dose is
    due until given (issue 20). The batch's SQL over the materialised schedule and the
    engine agree that it is not missed, and a record on it hours later is not late."""
    from medservice.domain.fhir_timing import TimingDosage

    rules, start, end = _seed(uow, 7)
    clock = rules["home-a"].clock
    valid = clock.instant(DAY, time(9, 17))
    q6h = OrderContent("o7", Drug("Drug g", "drug-g"),
                       TimingDosage(UNIT, Amount.exact(Decimal(1)), frequency=1,
                                    period=Decimal(6), period_unit="h"), route="oral")
    for resident_id in ("r0", "r1"):
        with uow() as u:
            sync_card(u, "home-a", resident_id, None, [q6h], valid, valid, whole_card=False)
            u.commit()
    with uow(write=False) as u:
        history = u.cards.resident_versions("home-a", "r1")["o7"]
    [(first, _)] = doses_between(history, clock, valid, valid + timedelta(minutes=1), NOW)
    assert first.open_ended
    with uow() as u:  # r1's is given ten hours on; r0's is still open
        u.records.add(AdministrationRecord(
            record_id=str(uuid.uuid4()), facility_id="home-a", resident_id="r1",
            drug_id="drug-g", administered_at=valid + timedelta(hours=10),
            recorded_at=valid + timedelta(hours=10), performer="nurse", order_id="o7",
            dose_id=first.dose_id, quantity=Decimal(1), route="oral",
            outcome=Outcome.GIVEN), settles=True)
        u.commit()
    expected = _as_engine_finds(uow, start, end)
    assert not [d for d in expected if d.order_id == "o7"]
    _same(_batch(uow, start, end).found, expected)
    with uow(write=False) as u:  # nothing of it materialised for the sweep to claim
        assert not [d for d in u.schedule.claim_closed(NOW, 10_000, facility_id="home-a",
                                                       resident_id="r0")
                    if d.order_id == "o7"]
