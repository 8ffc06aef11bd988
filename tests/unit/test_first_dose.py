"""The first dose of a course with no start (issue 20): due from the order's valid time
until given, never missed by time alone, on the current shift's round list until then,
and the same answer from the engine, the round list, the check and the materialised
schedule the sweep and the batch's SQL work from. Once given, later doses follow from it
and are missed by their ordinary window."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from medservice.domain.administration import (
    AdministrationRecord,
    NotGivenReason,
    Outcome,
    anchors_course,
    settles_dose,
)
from medservice.domain.dosage import Amount
from medservice.domain.errors import AlreadyExists, NotFound
from medservice.domain.facility import Facility, Resident
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DoseStatus, build_shift_schedule, dispensing_list
from medservice.reconcile import Code, ProposedDose, Verdict, check_dose, context_range
from medservice.reconcile.check import MatchKind, match_record
from medservice.reconcile.status import resident_ledger
from medservice.service import administration as admin
from medservice.service import cards, facilities, rounds
from medservice.service.materialise import due_doses
from tests.fakes import FakeDatabase
from tests.unit.test_reconcile_builders import (
    CLOCK,
    DAY,
    FACILITY,
    HOUR,
    MINUTE,
    MORNING_EVENING,
    RESIDENT,
    RULES,
    UNIT,
    changed,
    content,
    doses_of,
    local,
    orders_of,
    record,
    run,
    version,
)

Q6H = TimingDosage(UNIT, Amount.exact("1"), frequency=1, period=Decimal(6), period_unit="h")
V = local(DAY, 9, 17)  # the order's valid time: imported then
DAY_SPAN = 24 * HOUR
HOME = Facility(FACILITY, "Home")


def imported(at: datetime = V) -> list[OrderVersion]:
    """An every-6-hours order with no start, imported (valid and recorded) at `at`."""
    return [version(content(dosage_=Q6H, treatment_start=None), valid_from=at)]


def statuses(orders: dict[str, list[OrderVersion]], records: list, now: datetime
             ) -> dict[datetime, DoseStatus]:
    """due time -> status of every dose of the order from V to `now` + a day, as the
    round list's ledger sees them."""
    lo, hi = context_range(now, now, orders.values())
    states, _ = resident_ledger(FACILITY, RESIDENT, orders, doses_of(orders, lo, hi, now),
                                records, RULES, now)
    return {d.due_time: states[d.dose_id].status
            for d, _ in doses_of(orders, lo, hi, now)}


def first_dose(orders: dict[str, list[OrderVersion]], now: datetime) -> str:
    [(dose, _)] = [p for p in doses_of(orders, V - HOUR, V + HOUR, now)
                   if p.dose.slot == "first"]
    assert dose.open_ended and dose.window_end is None
    return dose.dose_id


def round_list_ids(orders: dict[str, list[OrderVersion]], at: datetime, now: datetime
                   ) -> list[str]:
    """Dose ids on the round list of the shift holding `at`, seen at `now`."""
    found = CLOCK.shift_of(at)
    assert found is not None
    shift_id, shift_date = found
    schedule = build_shift_schedule(FACILITY, CLOCK, shift_date, shift_id,
                                    [Resident(RESIDENT, FACILITY, "p", "R")],
                                    {RESIDENT: orders}, now)
    return [d.dose_id for d, _ in schedule.residents[0].doses]


def test_until_given_the_first_dose_is_due_and_never_missed() -> None:
    orders = orders_of(imported())
    first = first_dose(orders, V)
    for later in (3 * HOUR, 10 * HOUR, 30 * HOUR, timedelta(days=9)):
        now = V + later
        # Reconciliation (the incremental path, the sweep's and the batch's engine).
        assert run(orders, [], start=V - HOUR, end=now, now=now) == []
        # The round list: open, on the current shift's list (every shift), not on V's own.
        assert statuses(orders, [], now) == {V: DoseStatus.DUE}
        assert round_list_ids(orders, now, now) == [first]
        if CLOCK.shift_of(now) != CLOCK.shift_of(V):
            assert round_list_ids(orders, V, now) == []
        # The materialised schedule the sweep claims and the batch's SQL calls missed
        # from holds no row for it: nothing to claim, ever.
        assert due_doses(HOME, list(orders.values()), V - HOUR, now + HOUR, now) == []


def test_the_current_shift_prepares_the_open_first_dose() -> None:
    orders = orders_of(imported())
    now = V + 30 * HOUR
    found = CLOCK.shift_of(now)
    assert found is not None
    schedule = build_shift_schedule(FACILITY, CLOCK, found[1], found[0],
                                    [Resident(RESIDENT, FACILITY, "p", "R")],
                                    {RESIDENT: orders}, now)
    [prepared] = dispensing_list(schedule)[0].staff_poured
    assert (prepared.order_id, prepared.dose_count) == ("o1", 1)


def test_checking_and_giving_the_first_dose_days_later_is_ok_not_late() -> None:
    orders = orders_of(imported())
    first = first_dose(orders, V)
    at = V + 30 * HOUR
    lo, hi = context_range(at, at, orders.values())
    result = check_dose(ProposedDose(FACILITY, RESIDENT, "drug-a", at, "o1", first,
                                     Decimal(1)),
                        doses=doses_of(orders, lo, hi, at), records=[], orders=orders,
                        rules=RULES, now=at)
    assert (result.verdict, result.reasons) == (Verdict.OK, ())
    assert result.matched_dose is not None and result.matched_dose.dose_id == first
    # Without a dose id the record finds it too (its matching window stays open).
    bare = check_dose(ProposedDose(FACILITY, RESIDENT, "drug-a", at, "o1"),
                      doses=doses_of(orders, lo, hi, at), records=[], orders=orders,
                      rules=RULES, now=at)
    assert bare.verdict is Verdict.OK and bare.matched_dose is not None
    assert bare.matched_dose.dose_id == first
    given = record("g1", at, dose_id=first)
    assert run(orders, [given], start=V - HOUR, end=at + HOUR, now=at + HOUR) == []


def test_once_given_the_next_dose_follows_and_is_missed_by_its_window() -> None:
    given_at = V + 10 * HOUR
    history = imported()
    first = first_dose(orders_of(history), V)
    # RecordDose anchors the course: a version valid from then records the instant.
    orders = orders_of(changed(history, given_at + MINUTE, first_given_at=given_at))
    given = record("g1", given_at, dose_id=first)
    now = given_at + MINUTE
    doses = sorted(p.dose.due_time for p in doses_of(orders, V - HOUR, V + 2 * 24 * HOUR, now))
    assert doses[:3] == [V, given_at + 6 * HOUR, given_at + 12 * HOUR]
    assert statuses(orders, [given], now)[V] is DoseStatus.GIVEN
    # The first dose is on the list of the shift it was given in, not on today's others.
    assert first in round_list_ids(orders, given_at, now)
    assert first not in round_list_ids(orders, given_at + 12 * HOUR, now)
    # The next one (V+16h) has the ordinary window: ±60 minutes for doses more often than
    # daily. Inside it nothing; once it closed unrecorded, MISSED_DOSE.
    nxt = given_at + 6 * HOUR
    assert run(orders, [given], start=V - HOUR, end=nxt, now=nxt + HOUR - MINUTE) == []
    later = nxt + HOUR + MINUTE
    found = run(orders, [given], start=V - HOUR, end=later, now=later)
    assert [(d.code, d.occurred_at) for d in found] == [(Code.MISSED_DOSE, nxt)]
    assert statuses(orders, [given], later)[nxt] is DoseStatus.MISSED
    assert [(d.due_at, d.closes_at) for d in due_doses(
        HOME, list(orders.values()), V - HOUR, nxt + HOUR, later)] == [(nxt, nxt + HOUR)]


def test_a_dst_night_first_dose_stays_open_and_the_next_follows_in_real_time() -> None:
    # Autumn night in Europe/Copenhagen: 03:00 CEST becomes 02:00 CET on 25 October.
    night = date(2026, 10, 24)
    valid = local(night, 23, 30)
    history = imported(valid)
    orders = orders_of(history)
    [(first, _)] = doses_of(orders, valid - HOUR, valid + HOUR, valid)
    for hours in (3 * HOUR, 10 * HOUR):  # across the repeated hour
        now = valid + hours
        assert run(orders, [], start=valid - HOUR, end=now, now=now) == []
        lo, hi = context_range(now, now, orders.values())
        states, _ = resident_ledger(FACILITY, RESIDENT, orders, doses_of(orders, lo, hi, now),
                                    [], RULES, now)
        assert states[first.dose_id].status is DoseStatus.DUE
    # Given at 02:30 CEST (the first 02:30): the next is six real hours later, 07:30 CET.
    given_at = datetime.fromisoformat("2026-10-25T00:30:00+00:00")
    assert CLOCK.local(given_at).strftime("%H:%M %Z") == "02:30 CEST"
    anchored = orders_of(changed(history, given_at + MINUTE, first_given_at=given_at))
    nxt = [p.dose for p in doses_of(anchored, given_at, given_at + 7 * HOUR, given_at + MINUTE)
           if p.dose.slot != "first"]
    assert [(d.due_time - given_at, CLOCK.local(d.due_time).strftime("%H:%M %Z"))
            for d in nxt] == [(6 * HOUR, "07:30 CET")]
    closed = given_at + 7 * HOUR + MINUTE  # its ±60 minute window closed
    given = record("g1", given_at, dose_id=first.dose_id)
    found = run(anchored, [given], start=valid - HOUR, end=closed, now=closed)
    assert [(d.code, d.dose_id) for d in found] == [(Code.MISSED_DOSE, nxt[0].dose_id)]


def test_a_discontinuation_before_the_first_dose_leaves_nothing_missed_or_due() -> None:
    history = imported()
    first = first_dose(orders_of(history), V)
    stopped = V + 5 * HOUR
    orders = orders_of(changed(history, stopped, discontinued_at=stopped))
    for now in (V + 3 * HOUR, V + 30 * HOUR):
        assert run(orders, [], start=V - HOUR, end=now, now=now) == []
        assert due_doses(HOME, list(orders.values()), V - HOUR, now + HOUR, now) == []
    assert round_list_ids(orders, V + 3 * HOUR, V + 3 * HOUR) == [first]  # before it
    assert round_list_ids(orders, V + 30 * HOUR, V + 30 * HOUR) == []  # after it: gone
    # Given after the discontinuation it is what any dose then is: a STOP.
    at = V + 30 * HOUR
    lo, hi = context_range(at, at, orders.values())
    result = check_dose(ProposedDose(FACILITY, RESIDENT, "drug-a", at, "o1", first),
                        doses=doses_of(orders, lo, hi, at), records=[], orders=orders,
                        rules=RULES, now=at)
    assert result.verdict is Verdict.STOP
    assert Code.GIVEN_AFTER_DISCONTINUATION in {r.code for r in result.reasons}


def test_during_a_pause_the_first_dose_is_off_the_list_and_back_after_it() -> None:
    history = imported()
    first = first_dose(orders_of(history), V)
    pause_from, pause_to = V + 2 * HOUR, V + 20 * HOUR
    from medservice.domain.orders import Pause

    orders = orders_of(changed(history, pause_from,
                               pauses=(Pause(pause_from, pause_to),)))
    assert round_list_ids(orders, V + 10 * HOUR, V + 10 * HOUR) == []
    assert round_list_ids(orders, V + 30 * HOUR, V + 30 * HOUR) == [first]
    assert run(orders, [], start=V - HOUR, end=V + 30 * HOUR, now=V + 30 * HOUR) == []


# -- review of issue 20: refusals, pauses and version changes (the open first dose) --------


def _q6h_home(valid: datetime = V) -> FakeDatabase:
    """A home whose resident's card holds the every-6-hours order, mirrored at `valid`."""
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, HOME, valid)
        facilities.create_resident(u, Resident(RESIDENT, FACILITY, "010145-1234", "A", "1"),
                                   valid)
        cards.sync_card(u, FACILITY, RESIDENT, 1, [content(dosage_=Q6H, treatment_start=None)],
                        valid, valid)
        u.commit()
    return db


def _doses(db: FakeDatabase, start: datetime, end: datetime, now: datetime
           ) -> list[tuple[str, datetime, DoseStatus]]:
    with db(write=False) as u:
        doses, states, _ = rounds.resident_doses(u, FACILITY, RESIDENT, start, end, now)
    return [(d.dose_id, d.due_time, states[d.dose_id].status) for d, _ in doses]


def _record_dose(db: FakeDatabase, r: AdministrationRecord, now: datetime, *,
                 dated: bool = True) -> admin.Recorded:
    with db() as u:
        done = admin.record_dose(u, r, set(), now, dated=dated)
        u.commit()
    return done


def test_only_a_given_record_settles_an_open_ended_dose() -> None:
    first = next(d for d, _ in doses_of(orders_of(imported()), V - HOUR, V + HOUR, V))
    fixed = next(d for d, _ in doses_of(orders_of([version(content())]), local(DAY, 7),
                                        local(DAY, 10), V))
    refused = record("n1", V + HOUR, dose_id=first.dose_id, outcome=Outcome.NOT_GIVEN,
                     quantity=None, reason=NotGivenReason.REFUSED)
    assert not settles_dose(refused, first)
    assert settles_dose(record("g1", V + HOUR, dose_id=first.dose_id), first)
    assert settles_dose(refused, fixed)  # a dose with a window: any outcome settles it
    # Only a given record on the open dose begins the course.
    assert anchors_course(record("g1", V + HOUR, dose_id=first.dose_id), first)
    assert not anchors_course(refused, first)
    assert not anchors_course(record("g2", V, dose_id=fixed.dose_id), fixed)
    assert not anchors_course(record("g3", V), None)


def test_a_refused_first_dose_stays_due_each_refusal_counts_and_giving_it_settles_it() -> None:
    orders = orders_of(imported())
    first = first_dose(orders, V)
    refusals = [record(f"n{i}", V + hours, dose_id=first, outcome=Outcome.NOT_GIVEN,
                       quantity=None, reason=NotGivenReason.REFUSED)
                for i, hours in enumerate((HOUR, 10 * HOUR))]
    now = V + 11 * HOUR
    assert statuses(orders, refusals, now) == {V: DoseStatus.DUE}
    assert round_list_ids(orders, now, now) == [first]
    found = run(orders, refusals, start=V - HOUR, end=now, now=now)
    assert sorted((d.code, d.record_id) for d in found) == [
        (Code.NOT_GIVEN, "n0"), (Code.NOT_GIVEN, "n1")]
    # Given two days later, it is still the open dose: nothing settles it before.
    at = V + 48 * HOUR
    lo, hi = context_range(V, at, orders.values())
    match = match_record(record("g1", at, dose_id=first), doses=doses_of(orders, lo, hi, at),
                         records=refusals, orders=orders, rules=RULES, now=at)
    assert (match.kind, match.settled_by) == (MatchKind.SCHEDULED, None)
    anchored = orders_of(changed(imported(), at + MINUTE, first_given_at=at))
    given = [*refusals, record("g1", at, dose_id=first)]
    assert statuses(anchored, given, at + MINUTE)[V] is DoseStatus.GIVEN


def test_refused_then_given_two_days_later_is_recorded_and_anchors_the_course() -> None:
    """The refusal is long out of the records the use case reads when the dose is given:
    it must not hold the store's settling index (DOSE_ALREADY_RECORDED, nothing anchored)."""
    db = _q6h_home()
    [(first, due, _)] = _doses(db, V - HOUR, V + HOUR, V + HOUR)
    assert due == V
    refused_at = V + HOUR
    done = _record_dose(db, record("n1", refused_at, dose_id=first, outcome=Outcome.NOT_GIVEN,
                                   quantity=None, reason=NotGivenReason.REFUSED), refused_at)
    assert done.record.dose_id == first and done.discrepancy_ids
    assert [c.code for c in db.open_discrepancies()] == [Code.NOT_GIVEN]
    assert _doses(db, V + 30 * HOUR, V + 31 * HOUR, V + 30 * HOUR) == [
        (first, V, DoseStatus.DUE)]
    given_at = V + 48 * HOUR
    done = _record_dose(db, record("g1", given_at, dose_id=first), given_at)
    assert done.record.dose_id == first
    now = given_at + MINUTE
    later = _doses(db, given_at, given_at + 7 * HOUR, now)
    assert later[0] == (first, V, DoseStatus.GIVEN)
    assert [(due, status) for _, due, status in later[1:]] == [
        (given_at + 6 * HOUR, DoseStatus.DUE)]
    # Given once, it is settled: a second given record is refused naming the first.
    with pytest.raises(AlreadyExists):
        _record_dose(db, record("g2", now, dose_id=first), now)


def test_a_refusal_of_the_first_dose_sent_without_a_time_is_dated_now() -> None:
    db = _q6h_home()
    [(first, _, _)] = _doses(db, V - HOUR, V + HOUR, V + HOUR)
    now = V + 50 * HOUR
    done = _record_dose(db, record("n1", now, dose_id=first, outcome=Outcome.NOT_GIVEN,
                                   quantity=None, reason=NotGivenReason.REFUSED),
                        now, dated=False)
    assert done.record.administered_at == now
    assert {d.code for d in db.open_discrepancies()} == {Code.NOT_GIVEN}  # not late


def test_a_pause_back_dated_over_the_valid_time_leaves_the_first_dose_due_after_it() -> None:
    history = imported()
    first = first_dose(orders_of(history), V)
    from medservice.domain.orders import Pause

    # Registered an hour after the import, from two hours before it.
    orders = orders_of(changed(history, V + HOUR, pauses=(Pause(V - 2 * HOUR, V + 20 * HOUR),)))
    assert round_list_ids(orders, V + 10 * HOUR, V + 10 * HOUR) == []
    now = V + 30 * HOUR
    assert round_list_ids(orders, now, now) == [first]
    assert statuses(orders, [], now) == {V: DoseStatus.DUE}
    assert run(orders, [], start=V - HOUR, end=now, now=now) == []
    # Given during the pause it is what any dose then is.
    at = V + 10 * HOUR
    lo, hi = context_range(at, at, orders.values())
    result = check_dose(ProposedDose(FACILITY, RESIDENT, "drug-a", at, "o1", first, Decimal(1)),
                        doses=doses_of(orders, lo, hi, at), records=[], orders=orders,
                        rules=RULES, now=at)
    assert result.matched_dose is not None and result.matched_dose.dose_id == first
    assert Code.GIVEN_DURING_PAUSE in {r.code for r in result.reasons}


def test_an_order_changed_from_fixed_times_to_every_6_hours_waits_from_the_change() -> None:
    fixed = [version(content(), valid_from=V - 3 * 24 * HOUR)]
    orders = orders_of(changed(fixed, V, dosage=Q6H, treatment_start=None))
    first = first_dose(orders, V)
    now = V + 30 * HOUR
    assert statuses(orders, [], now) == {V: DoseStatus.DUE}
    assert round_list_ids(orders, now, now) == [first]
    # The fixed-time doses before the change keep their own schedule.
    before = [p.dose.slot for p in doses_of(orders, V - 24 * HOUR, V, now)]
    assert before and "first" not in before


# -- second review of issue 20: which record anchors, where a superseded open dose ends ----


def _fixed_then_q6h(change: datetime) -> FakeDatabase:
    """A home whose resident's order, given at fixed times (08:00, 20:00) for days, becomes
    "every 6 hours" with no start at `change`."""
    since = change - 3 * 24 * HOUR
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, HOME, since)
        facilities.create_resident(u, Resident(RESIDENT, FACILITY, "010145-1234", "A", "1"),
                                   since)
        cards.sync_card(u, FACILITY, RESIDENT, 1, [content()], since, since)
        cards.sync_card(u, FACILITY, RESIDENT, 2, [content(dosage_=Q6H, treatment_start=None)],
                        change, change)
        u.commit()
    return db


def _anchor(db: FakeDatabase) -> datetime | None:
    with db(write=False) as u:
        return u.cards.order_versions(FACILITY, RESIDENT, "o1")[-1].content.first_given_at


def test_a_dose_of_the_old_schedule_documented_late_does_not_anchor_the_new_course() -> None:
    change = local(DAY, 9)
    db = _fixed_then_q6h(change)
    [(morning, _, _)] = [d for d in _doses(db, local(DAY, 7), change, change)
                         if d[1] == local(DAY, 8)]
    [(first, _, _)] = [d for d in _doses(db, change, change + HOUR, change)
                       if d[1] == change]
    # The 08:00 dose, given at 08:00, documented at 09:30: on its own dose, not the new one.
    documented = local(DAY, 9, 30)
    done = _record_dose(db, record("g0", local(DAY, 8), dose_id=morning), documented)
    assert done.record.dose_id == morning
    assert _anchor(db) is None  # the new course has not begun: its first dose is to come
    now = local(DAY, 16)
    assert _doses(db, change, now + 7 * HOUR, now) == [(first, change, DoseStatus.DUE)]
    assert round_list_ids(db_orders(db), now, now) == [first]
    # Given at 16:00, that dose anchors the course: the next follows 6 hours later.
    _record_dose(db, record("g1", now, dose_id=first), now)
    assert _anchor(db) == now
    later = now + MINUTE
    assert [(due, status) for _, due, status in _doses(db, change, now + 7 * HOUR, later)] == [
        (change, DoseStatus.GIVEN), (now + 6 * HOUR, DoseStatus.DUE)]


def db_orders(db: FakeDatabase) -> dict[str, list[OrderVersion]]:
    with db(write=False) as u:
        return {"o1": list(u.cards.order_versions(FACILITY, RESIDENT, "o1"))}


def test_an_open_first_dose_ends_where_its_order_stops_waiting() -> None:
    """Every 6 hours imported at V, changed to fixed 08:00/20:00 at V+5h, nothing given:
    from then the open dose is due nowhere; the fixed doses are."""
    change = V + 5 * HOUR
    history = imported()
    first = first_dose(orders_of(history), V)
    orders = orders_of(changed(history, change, dosage=MORNING_EVENING,
                               treatment_start=date(2026, 1, 1)))
    # Before the change it is on the current shift's list, as before.
    assert round_list_ids(orders, V + 3 * HOUR, V + 3 * HOUR) == [first]
    for now in (change + HOUR, V + 30 * HOUR, V + 9 * 24 * HOUR):
        on_list = round_list_ids(orders, now, now)
        assert first not in on_list
        later = doses_of(orders, change, now + DAY_SPAN, now)
        assert first not in {p.dose.dose_id for p in later}
        assert later and {p.dose.slot for p in later} <= {"morning", "evening"}
        # Never missed (nothing closed it while due); never in the materialised schedule.
        missed = run(orders, [], start=V - HOUR, end=now, now=now)
        assert first not in {d.dose_id for d in missed if d.code is Code.MISSED_DOSE}
        assert first not in {d.dose_id for d in
                             due_doses(HOME, list(orders.values()), V - HOUR, now, now)}
    # A range holding the time it waited still holds it (it was due then).
    assert first in {p.dose.dose_id for p in doses_of(orders, V, change, change + HOUR)}
    # The use cases: resident doses (ListScheduledDoses) and RecordDose.
    db = _q6h_home()
    with db() as u:
        cards.sync_card(u, FACILITY, RESIDENT, 2, [content()], change, change)
        u.commit()
    now = V + 30 * HOUR
    listed = _doses(db, change, now + DAY_SPAN, now)
    assert first not in {i for i, _, _ in listed}
    assert listed and all(s in (DoseStatus.DUE, DoseStatus.MISSED) for _, _, s in listed)
    with pytest.raises(NotFound):
        _record_dose(db, record("g1", now, dose_id=first), now)
    # A record sent without a dose id lands on a fixed dose, or none: never the old one.
    evening = local(DAY, 18, 30)
    done = _record_dose(db, record("g2", evening), evening + MINUTE)
    assert done.record.dose_id == next(i for i, due, _ in _doses(
        db, change, evening + HOUR, evening + MINUTE) if due == local(DAY, 18))
    late = local(DAY, 21)
    assert _record_dose(db, record("g3", late), late + MINUTE).record.dose_id is None
