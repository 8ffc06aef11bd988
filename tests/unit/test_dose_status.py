"""One truth about every dose (issue 12): the round list's dose status and PN lines come
from the ledger the check and reconciliation use, and "never missed before the mirror
knew the order" is decided per order, by the engine itself."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import Amount, TimeKind
from medservice.domain.facility import Resident
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import (
    DoseStatus,
    NoteKind,
    build_shift_schedule,
    dispensing_list,
)
from medservice.i18n import rendered
from medservice.reconcile import Code, ProposedDose, check_dose, context_range
from medservice.reconcile.status import pn_lines, resident_ledger
from tests.unit.test_reconcile_builders import (
    CLOCK,
    DAY,
    EPOCH,
    FACILITY,
    HOUR,
    MINUTE,
    MORNING,
    PN_TWICE_DAILY,
    RESIDENT,
    RULES,
    UNIT,
    at,
    content,
    dosage,
    dose,
    doses_of,
    due,
    local,
    orders_of,
    record,
    run,
    version,
)

NEXT_DAY = DAY + timedelta(days=1)


def states(orders: dict[str, list[OrderVersion]], records: list[AdministrationRecord],
           now: datetime, day: date = DAY) -> dict[str, DoseStatus]:
    """dose id -> status of every dose due on local `day`."""
    start, end = local(day, 0), local(day + timedelta(days=1), 0)
    lo, hi = context_range(start, end, orders.values())
    found, _ = resident_ledger(FACILITY, RESIDENT, orders, doses_of(orders, lo, hi, now),
                               records, RULES, now)
    return {d.dose_id: found[d.dose_id].status
            for d, _ in doses_of(orders, start, end, now)}


def test_each_dose_says_what_happened_to_it() -> None:
    orders = orders_of([version(content())])  # morning and evening
    morning, evening = due(orders, "o1", 8), due(orders, "o1", 18)
    assert states(orders, [], at(7)) == {morning.dose_id: DoseStatus.DUE,
                                         evening.dose_id: DoseStatus.DUE}
    given_ = record("a", at(8, 5), dose_id=morning.dose_id)
    assert states(orders, [given_], at(10))[morning.dose_id] is DoseStatus.GIVEN
    refused = record("b", at(8, 5), dose_id=morning.dose_id, outcome=Outcome.NOT_GIVEN,
                     quantity=None, reason=NotGivenReason.REFUSED)
    lo, hi = context_range(local(DAY, 0), local(NEXT_DAY, 0), orders.values())
    found, _ = resident_ledger(FACILITY, RESIDENT, orders, doses_of(orders, lo, hi, at(10)),
                               [refused], RULES, at(10))
    assert found[morning.dose_id].status is DoseStatus.NOT_GIVEN
    assert found[morning.dose_id].record is refused
    # Nothing recorded when the window (±60 min) closes: missed, exactly as the engine says.
    assert states(orders, [], at(9))[morning.dose_id] is DoseStatus.MISSED
    assert states(orders, [], at(8, 59))[morning.dose_id] is DoseStatus.DUE


def test_a_corrected_record_opens_its_dose_again_and_names_the_record() -> None:
    orders = orders_of([version(content())])
    morning = due(orders, "o1", 8)
    wrong = record("a", at(8, 5), dose_id=morning.dose_id, entered_in_error=True)
    lo, hi = context_range(local(DAY, 0), local(NEXT_DAY, 0), orders.values())
    found, _ = resident_ledger(FACILITY, RESIDENT, orders, doses_of(orders, lo, hi, at(8, 30)),
                               [wrong], RULES, at(8, 30))
    assert found[morning.dose_id].status is DoseStatus.DUE
    assert found[morning.dose_id].record is None and found[morning.dose_id].corrected is wrong
    assert states(orders, [wrong], at(9, 30))[morning.dose_id] is DoseStatus.MISSED


def test_doses_due_before_the_mirror_knew_the_order_are_not_documented_not_missed() -> None:
    # Synced at 12:00 with a valid time long before: the morning dose was never ours.
    orders = orders_of([version(content(), valid_from=EPOCH, recorded_at=at(12))])
    morning, evening = due(orders, "o1", 8), due(orders, "o1", 18)
    found = states(orders, [], at(21))
    assert found == {morning.dose_id: DoseStatus.NOT_DOCUMENTED,
                     evening.dose_id: DoseStatus.MISSED}
    assert [(d.code, d.dose_id) for d in run(orders, [], now=at(21))] == [
        (Code.MISSED_DOSE, evening.dose_id)]


def test_first_known_is_per_order_not_per_resident() -> None:
    """An order synced today with a valid time five days back raises no missed dose for
    those five days, even when the resident's other order was mirrored long ago."""
    old = version(content("o1", MORNING), valid_from=EPOCH)
    new = version(content("o2", MORNING, drug_id="drug-b"),
                  valid_from=at(0) - timedelta(days=5), recorded_at=at(12))
    orders = orders_of([old], [new])
    found = run(orders, [], now=at(21), start=at(0) - timedelta(days=5), end=at(21))
    missed = {(d.order_id, d.occurred_at.date()) for d in found if d.code is Code.MISSED_DOSE}
    assert {o for o, _ in missed} == {"o1"}
    assert len(missed) == 6  # o1's morning dose of each of the six days


def test_a_wrong_dose_before_the_order_was_mirrored_is_still_a_wrong_dose() -> None:
    """DOMAIN.md §2: every dose is reconciled against the order as it was valid then; the
    exemption is for missed doses only."""
    orders = orders_of([version(content(dosage_=MORNING), valid_from=EPOCH,
                                recorded_at=at(12) + timedelta(days=1))])
    morning = due(orders, "o1", 8)
    wrong = record("w", at(8), dose_id=morning.dose_id, quantity="3",
                   recorded_at=at(12) + timedelta(days=1))
    found = run(orders, [wrong], now=at(13) + timedelta(days=1))
    assert Code.WRONG_DOSE in {d.code for d in found}
    assert Code.MISSED_DOSE not in {d.code for d in found}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 47), st.sampled_from(["dose", "time", "not", "eie"])),
                max_size=6),
       st.integers(0, 48), st.integers(0, 47))
def test_missed_on_the_round_list_is_exactly_the_engine_s_missed_dose(
        marks: list[tuple[int, str]], known_hour: int, now_hour: int) -> None:
    """Whatever is recorded, whenever the order became known and whenever one asks."""
    known = local(DAY, 0) + known_hour * HOUR
    orders = orders_of([version(content(), valid_from=EPOCH, recorded_at=known)])
    now = max(known, local(DAY, 0) + now_hour * HOUR) + 30 * MINUTE
    doses = [d for d, _ in doses_of(orders, local(DAY, 0), local(NEXT_DAY, 0), now)]
    records = []
    for i, (offset, kind) in enumerate(marks):
        when = min(local(DAY, 0) + offset * 30 * MINUTE, now)
        target = doses[i % len(doses)]
        records.append(record(
            f"r{i}", when, dose_id=target.dose_id if kind != "time" else None,
            outcome=Outcome.NOT_GIVEN if kind == "not" else Outcome.GIVEN,
            quantity=None if kind == "not" else "1",
            reason=NotGivenReason.REFUSED if kind == "not" else None,
            entered_in_error=kind == "eie"))
    found = states(orders, records, now)
    engine = {d.dose_id for d in run(orders, records, now=now) if d.code is Code.MISSED_DOSE}
    assert {i for i, s in found.items() if s is DoseStatus.MISSED} == engine
    settled = {r.dose_id for r in records if r.dose_id and not r.entered_in_error}
    assert settled <= {i for i, s in found.items()
                       if s in (DoseStatus.GIVEN, DoseStatus.NOT_GIVEN)}


def _check_left(orders: dict[str, list[OrderVersion]], records: list[AdministrationRecord],
                when: datetime) -> int | None:
    lo, hi = context_range(when, when, orders.values())
    return check_dose(ProposedDose(FACILITY, RESIDENT, "drug-a", when, "o1", as_needed=True),
                      doses=doses_of(orders, lo, hi, when), records=records,
                      orders={k: list(v) for k, v in orders.items()}, rules=RULES,
                      now=when).pn_doses_left


def _round_pn(orders: dict[str, list[OrderVersion]], records: list[AdministrationRecord],
              when: datetime) -> tuple[int, int | None]:
    resident = Resident(RESIDENT, FACILITY, "", "R1", "1")
    schedule = build_shift_schedule(FACILITY, CLOCK, DAY, "day", [resident],
                                    {RESIDENT: orders}, when)
    entry = schedule.residents[0]
    lo, hi = context_range(schedule.start, schedule.end, orders.values())
    _, placements = resident_ledger(FACILITY, RESIDENT, orders,
                                    doses_of(orders, lo, hi, when), records, RULES, when)
    [line] = pn_lines(entry.pn, placements, when, RULES)
    return line.given, line.doses_left


def test_the_round_list_and_the_check_count_the_same_pn_doses() -> None:
    """A given record without a dose id on a PN-only order is a PN dose for the check: the
    round list counted only PN_GIVEN records and said 2 left where the check said 1."""
    orders = orders_of([version(content(dosage_=PN_TWICE_DAILY))])
    records = [record("plain", at(9), outcome=Outcome.GIVEN)]
    assert _check_left(orders, records, at(11)) == 1
    assert _round_pn(orders, records, at(11)) == (1, 1)
    records.append(record("pn", at(10), outcome=Outcome.PN_GIVEN))
    assert _check_left(orders, records, at(11)) == 0
    assert _round_pn(orders, records, at(11)) == (2, 0)


def test_a_fhir_as_needed_order_has_a_pn_line() -> None:
    prn = TimingDosage(UNIT, Amount.exact("1"), frequency=1, period=Decimal(4),
                       period_unit="h", as_needed=True)
    orders = orders_of([version(content(dosage_=prn))])
    records = [record("pn", at(9), outcome=Outcome.PN_GIVEN)]
    given_, left = _round_pn(orders, records, at(11))
    assert (given_, left) == (1, 0)  # one per 4 hours
    assert _check_left(orders, records, at(11)) == 0
    assert _round_pn(orders, records, at(13, 1)) == (0, 1)


def test_an_order_ended_this_week_has_a_note() -> None:
    ended = content(dosage_=MORNING, treatment_end=DAY - timedelta(days=2))
    resident = Resident(RESIDENT, FACILITY, "", "R1", "1")
    schedule = build_shift_schedule(FACILITY, CLOCK, DAY, "day", [resident],
                                    {RESIDENT: orders_of([version(ended)])}, at(7))
    [note] = schedule.residents[0].notes
    ended_on = (DAY - timedelta(days=2)).isoformat()
    assert note.kind is NoteKind.ENDED
    assert rendered(note.text, "da") == f"behandlingen sluttede {ended_on}: giv ikke"
    assert rendered(note.text, "en") == f"treatment ended {ended_on}: do not give"
    assert schedule.residents[0].doses == []


def test_the_spring_night_shows_the_wall_clock_time_a_dose_really_has() -> None:
    """DOMAIN.md §5: 02:30 does not exist on the spring-forward night; the dose is due at
    03:30 CEST, and the round list and the dispensing list say 03:30 (issue 12)."""
    night = date(2026, 3, 28)  # the night shift that starts on the 28th
    at_230 = content(dosage_=dosage(dose(TimeKind.CLOCK, clock_time=time(2, 30))))
    resident = Resident(RESIDENT, FACILITY, "", "R1", "1")
    schedule = build_shift_schedule(FACILITY, CLOCK, night, "night", [resident],
                                    {RESIDENT: orders_of([version(at_230)])}, at(7))
    [(d, _)] = schedule.residents[0].doses
    assert (CLOCK.local(d.due_time).strftime("%H:%M"), d.local_time) == ("03:30", time(3, 30))
    [item] = dispensing_list(schedule)[0].staff_poured
    assert item.times == ("03:30",)
