"""The fast paths of CheckDose and RecordDose (issue 4 target a) against the reads they
replaced, on SQLite and PostgreSQL: the facility and dose caches, the one read of a
RecordDose, the check's matched dose content. What a call answers must not change, and a
cache must never outlive a change to the facility or an order."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event

from medservice.demo import demo_cards
from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import StructuredDosage
from medservice.domain.facility import Facility, MedicationTimes, Resident
from medservice.domain.orders import Dosage, OrderContent
from medservice.domain.rounds import DoseWithOrder, doses_between
from medservice.domain.schedule import ScheduledDose
from medservice.reconcile import (
    CheckResult,
    FacilityRules,
    ProposedDose,
    check_dose,
    context_range,
)
from medservice.service import administration as admin
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.service import reconciliation, round_context
from medservice.service.facilities import get_facility, get_resident
from medservice.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

F = "f"
RESIDENTS = ("r0", "r1", "r2")
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
MIRRORED = NOW - timedelta(days=10)  # long enough ago for records to be reconciled


def _seed(uow: UnitOfWorkFactory) -> None:
    shapes = [o for orders in demo_cards(NOW.date()).values() for o in orders]
    unique = list({o.order_id: o for o in shapes}.values())
    with uow() as u:
        facilities_uc.create_facility(u, Facility(F, "Home"), MIRRORED)
        for i, rid in enumerate(RESIDENTS):
            facilities_uc.create_resident(
                u, Resident(rid, F, f"0101{50 + i:02d}-{1000 + i}", rid, str(i)), MIRRORED)
            orders = list({o.order_id: o for o in
                           (unique[(i + k) % len(unique)] for k in range(5))}.values())
            cards_uc.sync_card(u, F, rid, 1, orders, MIRRORED - timedelta(days=30), MIRRORED)
        u.commit()


def _uncached_check(u: UnitOfWork, p: ProposedDose, now: datetime
                    ) -> tuple[CheckResult, OrderContent | None]:
    """CheckDose as it read before the fast paths: every read again, doses expanded anew,
    the matched dose's content read again from its order's versions."""
    facility = get_facility(u, p.facility_id)
    get_resident(u, p.facility_id, p.resident_id)
    rules = FacilityRules.from_facility(facility)
    orders = u.cards.resident_versions(p.facility_id, p.resident_id)
    lo, hi = context_range(p.administered_at, p.administered_at, orders.values())
    doses = [pair for h in orders.values()
             for pair in doses_between(h, rules.clock, lo, hi, now)]
    if p.dose_id and all(d.dose_id != p.dose_id for d, _ in doses):
        doses += [pair for rid, r in u.cards.facility_versions(p.facility_id).items()
                  if rid != p.resident_id for h in r.values()
                  for pair in doses_between(h, rules.clock, lo, hi, now)]
    records = u.records.between(p.facility_id, p.resident_id, lo, hi)
    unapproved = {c.order_id: c for c in u.card_changes.pending(p.facility_id, p.resident_id)}
    result = check_dose(p, doses=doses, records=records, orders=orders, rules=rules, now=now,
                        unapproved=unapproved)
    content = None
    if result.matched_dose is not None:
        d = result.matched_dose
        history = u.cards.order_versions(p.facility_id, p.resident_id, d.order_id)
        content = next((c for x, c in doses_between(history, rules.clock, d.due_time,
                                                    d.due_time + timedelta(seconds=1), now)
                        if x.dose_id == d.dose_id), None)
    return result, content


def _doses(u: UnitOfWork, resident_id: str, start: datetime, end: datetime
           ) -> list[DoseWithOrder]:
    facility = get_facility(u, F)
    clock = FacilityRules.from_facility(facility).clock
    return sorted((pair for h in u.cards.resident_versions(F, resident_id).values()
                   for pair in doses_between(h, clock, start, end, NOW)),
                  key=lambda pair: (pair[0].due_time, pair[0].dose_id))


def _proposal(resident_id: str, d: ScheduledDose, *, late: timedelta = timedelta(0),
              quantity: Decimal | None = None, dose_id: str | None = "") -> ProposedDose:
    return ProposedDose(F, resident_id, "", d.due_time + late, None,
                        d.dose_id if dose_id == "" else dose_id,
                        quantity if quantity is not None else d.amount.high, "oral")


def _assert_same_check(u: UnitOfWork, p: ProposedDose,
                       now: datetime = NOW + timedelta(hours=4)) -> CheckResult:
    done = admin.checked(u, p, now)
    assert (done.result, done.content) == _uncached_check(u, p, now)
    return done.result


def test_checks_answer_as_the_uncached_reads(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    with uow(write=False) as u:
        cases = 0
        for rid in RESIDENTS:
            for d, _ in _doses(u, rid, NOW - timedelta(days=2), NOW):
                for p in (_proposal(rid, d), _proposal(rid, d, late=timedelta(hours=3)),
                          _proposal(rid, d, quantity=Decimal(7)),
                          _proposal(rid, d, dose_id=None),
                          _proposal("r0" if rid != "r0" else "r1", d)):  # another's dose
                    _assert_same_check(u, p)
                    cases += 1
        assert cases > 50
        # Twice: the second time from the caches.
        for rid in RESIDENTS:
            for d, _ in _doses(u, rid, NOW - timedelta(days=1), NOW):
                _assert_same_check(u, _proposal(rid, d))


def test_a_facility_change_is_seen_by_the_next_check(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    with uow(write=False) as u:
        morning = next(d for d, _ in _doses(u, "r0", NOW - timedelta(days=1), NOW)
                       if d.local_time == time(8, 0))
        before = _assert_same_check(u, _proposal("r0", morning))
    with uow() as u:
        facility = get_facility(u, F)
        facilities_uc.update_facility(
            u, F, {"medication_times": MedicationTimes(morning=time(10, 30))}, facility.etag,
            NOW)
        u.commit()
    with uow(write=False) as u:
        after = _assert_same_check(u, _proposal("r0", morning))
        # The morning dose moved to 10:30, so 08:00 is now early: the cache did not answer.
        assert after != before
        assert after.matched_dose is not None and before.matched_dose is not None
        assert after.matched_dose.due_time - before.matched_dose.due_time == \
            timedelta(hours=2, minutes=30)


def test_an_order_change_is_seen_by_the_next_check(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    with uow(write=False) as u:
        d, content = next(pair for pair in _doses(u, "r0", NOW - timedelta(days=1), NOW)
                          if pair[0].amount.quantity is not None)
        p = _proposal("r0", d)
        before = _assert_same_check(u, p)
        orders = [v[-1].content for v in u.cards.resident_versions(F, "r0").values()]
    # A new version doubles the dose from two days ago: the same proposal is now a wrong
    # dose, whatever was expanded and cached for the old version.
    changed = [dataclasses.replace(o, dosage=_doubled(o)) if o.order_id == content.order_id
               else o for o in orders]
    with uow() as u:
        cards_uc.sync_card(u, F, "r0", 2, changed, NOW - timedelta(days=2), NOW)
        u.commit()
    with uow(write=False) as u:
        after = _assert_same_check(u, p)
    assert after != before
    assert "WRONG_DOSE" in {r.code.value for r in after.reasons}
    assert "WRONG_DOSE" not in {r.code.value for r in before.reasons}


def test_order_versions_read_in_a_rolled_back_change_are_not_kept(
        uow: UnitOfWorkFactory) -> None:
    """The orders kept by the resident's order_changes: a sync that reads its own new
    versions (reconciling) and then rolls back must not leave them under a count that
    another change then commits."""
    _seed(uow)
    with uow(write=False) as u:
        pairs = [pair for pair in _doses(u, "r0", NOW - timedelta(days=1), NOW)
                 if pair[0].amount.quantity is not None]
        d, content = pairs[0]
        p = _proposal("r0", d)
        assert "WRONG_DOSE" not in {r.code.value for r in _assert_same_check(u, p).reasons}
        orders = [v[-1].content for v in u.cards.resident_versions(F, "r0").values()]
    other = next(o for o in orders if o.order_id != content.order_id
                 and hasattr(o.dosage, "periods") and _doubled(o) != o.dosage)

    def changed(order_id: str) -> list[OrderContent]:
        return [dataclasses.replace(o, dosage=_doubled(o)) if o.order_id == order_id
                else o for o in orders]

    with uow() as u:  # doubles the checked dose, reconciles, and rolls back
        cards_uc.sync_card(u, F, "r0", 2, changed(content.order_id), NOW - timedelta(days=2),
                           NOW)
        assert "WRONG_DOSE" in {r.code.value for r in
                                admin.checked(u, p, NOW + timedelta(hours=4)).result.reasons}
    with uow() as u:  # the same number of new versions, for another order
        cards_uc.sync_card(u, F, "r0", 2, changed(other.order_id), NOW - timedelta(days=2),
                           NOW)
        u.commit()
    with uow(write=False) as u:
        after = _assert_same_check(u, p)
    assert "WRONG_DOSE" not in {r.code.value for r in after.reasons}


def _doubled(o: OrderContent) -> Dosage:
    dosage = o.dosage
    assert isinstance(dosage, StructuredDosage), "only a structured dosage has doses to double"
    periods = tuple(dataclasses.replace(period, days=tuple(
        dataclasses.replace(day, doses=tuple(
            dataclasses.replace(x, amount=dataclasses.replace(
                x.amount, quantity=x.amount.quantity * 2)) if x.amount.quantity else x
            for x in day.doses)) for day in period.days))
        for period in dosage.periods)
    return dataclasses.replace(dosage, periods=periods)


def test_cached_doses_are_the_expanded_ones(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    with uow(write=False) as u:
        facility = get_facility(u, F)
        rules = FacilityRules.from_facility(facility)
        for h in u.cards.resident_versions(F, "r1").values():
            for hours in range(0, 72, 7):
                start = NOW - timedelta(days=3) + timedelta(hours=hours, minutes=13)
                for length in (timedelta(seconds=1), timedelta(hours=5), timedelta(days=2)):
                    for now in (NOW, MIRRORED - timedelta(days=1)):  # known / not yet known
                        assert round_context.kept_order_doses(
                            u.caches, facility, rules, h, start, start + length, now) == \
                            doses_between(h, rules.clock, start, start + length, now)


def _record(resident_id: str, d: ScheduledDose, outcome: Outcome, *,
            quantity: Decimal | None = None, late: timedelta = timedelta(0),
            route: str = "oral") -> AdministrationRecord:
    return AdministrationRecord(
        record_id=str(uuid.uuid4()), facility_id=F, resident_id=resident_id, order_id=None,
        drug_id="", outcome=outcome, administered_at=d.due_time + late, recorded_at=NOW,
        performer="nurse", dose_id=d.dose_id, quantity=quantity, route=route,
        not_given_reason=NotGivenReason.REFUSED if outcome is Outcome.NOT_GIVEN else None)


@pytest.mark.parametrize("mirrored_days_ago", [10, 0])
def test_record_dose_reconciles_as_reconcile_resident_would(
        uow: UnitOfWorkFactory, mirrored_days_ago: int) -> None:
    """RecordDose reads the resident once and reconciles from that read: what it finds
    (and returns) is what reconcile_resident finds reading everything again."""
    _seed(uow)
    now = NOW + timedelta(days=10 - mirrored_days_ago)
    with uow(write=False) as u:
        doses = _doses(u, "r2", now - timedelta(days=3), now - timedelta(hours=2))
    given = [(d, c) for d, c in doses if d.amount.quantity is not None][:6]
    assert len(given) >= 4
    for i, (d, content) in enumerate(given):
        record = _record("r2", d, Outcome.GIVEN if i % 2 else Outcome.NOT_GIVEN,
                         quantity=d.amount.high * (3 if i == 1 else 1),
                         late=timedelta(hours=4 if i == 3 else 0), route=content.route)
        with uow() as u:
            done = admin.record_dose(u, record, {"WRONG_DOSE"}, now)
            u.commit()
        with uow() as u:
            again = reconciliation.reconcile_resident(u, F, "r2", record.administered_at,
                                             record.administered_at, now)
            assert sorted(done.discrepancy_ids) == sorted(
                admin.discrepancy_id(f.key) for f in again if f.record_id == record.record_id)
            if mirrored_days_ago == 10 and i == 1:
                assert done.discrepancy_ids  # the wrong dose was found by the record itself


def test_a_second_record_of_a_dose_is_refused_and_leaves_the_first(
        uow: UnitOfWorkFactory) -> None:
    """The settling insert that loses (ON CONFLICT DO NOTHING) says so and inserts nothing."""
    _seed(uow)
    with uow(write=False) as u:
        d = _doses(u, "r0", NOW - timedelta(days=1), NOW)[0][0]
    first = dataclasses.replace(_record("r0", d, Outcome.NOT_GIVEN), etag="e-first")
    second = dataclasses.replace(_record("r0", d, Outcome.NOT_GIVEN), record_id="second")
    with uow() as u:
        assert u.records.add(first, settles=True)
        assert not u.records.add(second, settles=True)
        assert u.records.settling(d.dose_id) == dataclasses.replace(first)
        assert u.records.get(F, "r0", "second") is None
        u.commit()
    with uow() as u, pytest.raises(Exception, match="already recorded"):
        admin.record_dose(u, dataclasses.replace(second, record_id="third"), set(), NOW)


def test_missing_facility_and_resident_are_told_apart(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    with uow(write=False) as u:
        d = _doses(u, "r0", NOW - timedelta(days=1), NOW)[0][0]
        for facility_id, resident_id, reason in (("nowhere", "r0", "FACILITY_NOT_FOUND"),
                                                 (F, "nobody", "RESIDENT_NOT_FOUND")):
            p = dataclasses.replace(_proposal("r0", d), facility_id=facility_id,
                                    resident_id=resident_id)
            with pytest.raises(Exception) as raised:
                admin.checked(u, p, NOW)
            assert getattr(raised.value, "reason", None) == reason


def test_records_read_with_the_head_are_the_ones_between_gives(
        uow: UnitOfWorkFactory, engine: Engine) -> None:
    """orders_and_records reads the records with the head over the range the orders last
    seen give: one statement while they hold; the records of the range the current orders
    give, whether that range grew (read again) or shrank (kept to it)."""
    _seed(uow)
    with uow(write=False) as u:
        doses = _doses(u, "r1", NOW - timedelta(days=6), NOW - timedelta(hours=2))
        orders = [v[-1].content for v in u.cards.resident_versions(F, "r1").values()]
    with uow() as u:  # a record a day for six days
        for d, _ in doses[::max(1, len(doses) // 6)]:
            u.records.add(_record("r1", d, Outcome.NOT_GIVEN), settles=True)
        u.commit()

    def versions(orders: Any) -> int:
        return sum(len(h) for h in orders)

    def read(span: Any) -> tuple[list[str], tuple[datetime, datetime], list[str]]:
        with _selects(engine) as selects, uow(write=False) as u:
            _, got, records = round_context.orders_and_records(u, F, "r1", span)
        with uow(write=False) as u:
            assert got == span(u.cards.resident_versions(F, "r1").values())
            assert records == u.records.between(F, "r1", *got)
        return [r.record_id for r in records], got, selects

    # A range that moves with the card: wider, then narrower, with each version added.
    spans = [lambda o: (NOW - timedelta(days=versions(o)), NOW),
             lambda o: (NOW - timedelta(days=max(1, 12 - versions(o))), NOW)]
    for n, span in enumerate(spans):
        first, before, _ = read(span)
        again, _, selects = read(span)
        assert again == first and len(selects) == 1, selects  # the head and records at once
        with uow() as u:  # another version of one order
            changed = [dataclasses.replace(orders[0], dosage=_doubled(orders[0])), *orders[1:]]
            cards_uc.sync_card(u, F, "r1", 2 + n, changed if n == 0 else orders, NOW, NOW)
            u.commit()
        ids, after, _ = read(span)
        assert after != before and (len(ids) > len(first)) == (n == 0)


@contextmanager
def _selects(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
