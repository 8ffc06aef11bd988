"""The pre-administration check and record matching: the reconcile rules, before the fact."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import TimeKind
from medservice.domain.orders import OrderVersion, Pause
from medservice.domain.rounds import DoseWithOrder
from medservice.reconcile import (
    CheckCode,
    CheckResult,
    Code,
    MatchKind,
    ProposedDose,
    RecordMatch,
    Verdict,
    check_dose,
    match_record,
    reconcile,
)
from tests.unit.test_reconcile_builders import (
    CALENDAR_RULES,
    DAY,
    FACILITY,
    MINUTE,
    PN_TWICE_DAILY,
    RESIDENT,
    RULES,
    at,
    changed,
    content,
    dosage,
    dose,
    doses_of,
    due,
    local,
    orders_of,
    record,
    version,
)

ORDERS = orders_of([version(content())],
                   [version(content("pn", PN_TWICE_DAILY, drug_id="drug-c"))])
DAY_START, DAY_END = local(DAY, 0), local(DAY + timedelta(days=1), 0)


def doses(orders: dict[str, list[OrderVersion]] = ORDERS) -> list[DoseWithOrder]:
    return doses_of(orders, DAY_START - timedelta(days=1), DAY_END + timedelta(days=1), at(23))


def check(when: datetime, records: list[AdministrationRecord] | None = None, *,
          orders: dict[str, list[OrderVersion]] = ORDERS, now: datetime | None = None,
          extra_doses: list[DoseWithOrder] | None = None, calendar: bool = False,
          **fields: Any) -> CheckResult:
    fields.setdefault("drug_id", "drug-a")
    fields.setdefault("order_id", "o1")
    fields.setdefault("quantity", Decimal(1))
    proposal = ProposedDose(FACILITY, RESIDENT, administered_at=when, **fields)
    return check_dose(proposal, doses=doses(orders) + (extra_doses or []),
                      records=records or [], orders=orders,
                      rules=CALENDAR_RULES if calendar else RULES,
                      now=now if now is not None else when + MINUTE)


def reason_codes(result: CheckResult) -> list[Code | CheckCode]:
    return [r.code for r in result.reasons]


MORNING = due(ORDERS, "o1", 8)
EVENING = due(ORDERS, "o1", 18)


def test_the_due_dose_on_time_is_ok_with_its_context() -> None:
    result = check(at(8, 10), dose_id=MORNING.dose_id)
    assert (result.verdict, result.reasons) == (Verdict.OK, ())
    assert result.matched_dose == MORNING and result.order_id == "o1"
    assert (result.pn_doses_left, result.last_given) == (None, None)
    # Without a dose id, the same dose is found by its window.
    assert check(at(8, 10), dose_id=None).matched_dose == MORNING


def test_a_dose_already_given_stops() -> None:
    given_ = [record("m", at(8), dose_id=MORNING.dose_id)]
    result = check(at(8, 20), given_, dose_id=MORNING.dose_id)
    assert result.verdict is Verdict.STOP
    assert reason_codes(result) == [Code.EXTRA_DOSE]
    assert result.matched_dose == MORNING and result.last_given == at(8)
    # Refused earlier: giving it now is fine.
    refused = [record("m", at(8), dose_id=MORNING.dose_id, outcome=Outcome.NOT_GIVEN,
                      quantity=None, reason=NotGivenReason.REFUSED)]
    assert check(at(8, 20), refused, dose_id=MORNING.dose_id).verdict is Verdict.OK


def test_every_dose_of_the_day_taken_stops_a_dose_without_id() -> None:
    taken = [record("m", at(8), dose_id=MORNING.dose_id),
             record("e", at(18), dose_id=EVENING.dose_id)]
    result = check(at(20), taken)
    assert (result.verdict, reason_codes(result), result.matched_dose) == (
        Verdict.STOP, [Code.EXTRA_DOSE], None)


def test_early_late_and_outside_treatment_warn() -> None:
    late = check(at(9, 30), dose_id=MORNING.dose_id)
    assert (late.verdict, reason_codes(late)) == (Verdict.WARN, [Code.LATE_DOSE])
    early = check(at(16), dose_id=EVENING.dose_id)
    assert (early.verdict, reason_codes(early)) == (Verdict.WARN, [Code.EARLY_DOSE])
    ended = orders_of([version(content(treatment_end=DAY - timedelta(days=1)))])
    outside = check(at(8), orders=ended)
    assert (outside.verdict, reason_codes(outside)) == (
        Verdict.WARN, [Code.OUTSIDE_TREATMENT_PERIOD])


def test_late_documentation_warns() -> None:
    result = check(at(8), dose_id=MORNING.dose_id, now=at(13))
    assert (result.verdict, reason_codes(result)) == (Verdict.WARN, [Code.LATE_DOCUMENTATION])


def test_high_severity_reasons_stop() -> None:
    assert reason_codes(check(at(8), route="intravenous")) == [Code.WRONG_ROUTE]
    assert reason_codes(check(at(8), quantity=Decimal(2))) == [Code.WRONG_DOSE]
    unordered = check(at(8), order_id=None, drug_id="drug-z")
    assert (unordered.verdict, reason_codes(unordered), unordered.order_id) == (
        Verdict.STOP, [Code.UNORDERED_DRUG], None)
    for result in (check(at(8), route="intravenous"), check(at(8), quantity=Decimal(2))):
        assert result.verdict is Verdict.STOP


def test_a_discontinued_or_paused_order_stops() -> None:
    history = ORDERS["o1"]
    stopped = orders_of(changed(history, at(7), discontinued_at=at(7)))
    result = check(at(8), orders=stopped)
    assert (result.verdict, reason_codes(result)) == (
        Verdict.STOP, [Code.GIVEN_AFTER_DISCONTINUATION])
    assert result.matched_dose is None  # no dose is due after the discontinuation
    paused = orders_of(changed(history, at(7), pauses=(Pause(at(7), None),)))
    assert reason_codes(check(at(8), orders=paused)) == [Code.GIVEN_DURING_PAUSE]


def test_a_dose_of_another_resident_stops() -> None:
    other = [replace(v, resident_id="r2") for v in ORDERS["o1"]]
    their_doses = doses_of({"o1": other}, DAY_START, DAY_END, at(23))
    theirs = next(d for d, _ in their_doses if d.due_time == at(8))
    result = check(at(8), dose_id=theirs.dose_id, extra_doses=their_doses)
    assert result.verdict is Verdict.STOP
    assert reason_codes(result) == [CheckCode.DOSE_OF_OTHER_RESIDENT]
    assert result.matched_dose == MORNING  # the resident's own dose at that time
    unknown = check(at(8), dose_id="00000000-0000-5000-8000-000000000000")
    assert (unknown.verdict, reason_codes(unknown)) == (Verdict.WARN, [CheckCode.DOSE_NOT_DUE])


def test_pn_allowance_left_and_its_limit() -> None:
    def pn_check(when: datetime, records: list[AdministrationRecord], calendar: bool = False
                 ) -> CheckResult:
        return check(when, records, order_id="pn", drug_id="drug-c", as_needed=True,
                     calendar=calendar)

    first = pn_check(at(8), [])
    assert (first.verdict, first.pn_doses_left, first.matched_dose) == (Verdict.OK, 2, None)
    one = [record("a", at(8), order_id="pn", drug_id="drug-c", outcome=Outcome.PN_GIVEN)]
    second = pn_check(at(12), one)
    assert (second.verdict, second.pn_doses_left, second.last_given) == (Verdict.OK, 1, at(8))
    two = [*one, record("b", at(12), order_id="pn", drug_id="drug-c", outcome=Outcome.PN_GIVEN)]
    third = pn_check(at(20), two)
    assert (third.verdict, third.pn_doses_left) == (Verdict.STOP, 0)
    assert reason_codes(third) == [Code.PN_LIMIT_EXCEEDED]
    # Past midnight: a new calendar day, but the same rolling 24 hours.
    after = local(DAY + timedelta(days=1), 1)
    assert pn_check(after, two).verdict is Verdict.STOP
    calendar = pn_check(after, two, calendar=True)
    assert (calendar.verdict, calendar.pn_doses_left) == (Verdict.OK, 2)


def test_a_check_changes_nothing() -> None:
    records = [record("m", at(8), dose_id=MORNING.dose_id)]
    before = list(records)
    first = check(at(8, 20), records, dose_id=MORNING.dose_id)
    assert check(at(8, 20), records, dose_id=MORNING.dose_id) == first
    assert records == before


# -- match_record -----------------------------------------------------------------------------


def match(r: AdministrationRecord, records: list[AdministrationRecord] | None = None,
          orders: dict[str, list[OrderVersion]] = ORDERS,
          extra_doses: list[DoseWithOrder] | None = None) -> RecordMatch:
    return match_record(r, doses=doses(orders) + (extra_doses or []), records=records or [],
                        orders=orders, rules=RULES, now=at(23))


def test_a_record_matches_the_nearest_open_dose_whose_window_holds_it() -> None:
    assert match(record("new", at(8, 30))) == RecordMatch(MatchKind.SCHEDULED, MORNING, "o1")
    taken = [record("m", at(8), dose_id=MORNING.dose_id)]
    assert match(record("new", at(8, 30)), taken).kind is MatchKind.UNMATCHED
    # The record itself among the records does not settle its own dose.
    assert match(record("m", at(8)), taken).dose == MORNING
    hourly = orders_of([version(content(dosage_=dosage(
        dose(TimeKind.CLOCK, clock_time=time(12)), dose(TimeKind.CLOCK, clock_time=time(13)))))])
    one_pm = due(hourly, "o1", 13)
    assert match(record("new", at(12, 40)), orders=hourly).dose == one_pm


def test_a_record_without_dose_of_a_pn_order_matches_as_pn() -> None:
    result = match(record("new", at(14), order_id=None, drug_id="drug-c"))
    assert (result.kind, result.order_id) == (MatchKind.PN, "pn")
    not_given = record("new", at(14), order_id="pn", outcome=Outcome.NOT_GIVEN, quantity=None,
                       reason=NotGivenReason.REFUSED)
    assert match(not_given).kind is MatchKind.UNMATCHED


def test_a_dose_id_is_checked_against_the_resident() -> None:
    taken = [record("m", at(8), dose_id=MORNING.dose_id)]
    again = match(record("new", at(8, 5), dose_id=MORNING.dose_id), taken)
    assert (again.kind, again.dose, again.settled_by) == (MatchKind.SCHEDULED, MORNING, "m")
    other = [replace(v, resident_id="r2") for v in ORDERS["o1"]]
    their_doses = doses_of({"o1": other}, DAY_START, DAY_END, at(23))
    theirs = next(d for d, _ in their_doses if d.due_time == at(8))
    assert match(record("new", at(8), dose_id=theirs.dose_id),
                 extra_doses=their_doses).kind is MatchKind.OTHER_RESIDENT
    assert match(record("new", at(8), dose_id="nope")).kind is MatchKind.NOT_DUE


# -- the check says what reconciliation will say -----------------------------------------------

WORLD = orders_of(
    [version(content())],
    changed([version(content("crit", dosage(dose(TimeKind.NOON)), drug_id="drug-b",
                             time_critical=True))], at(9), pauses=(Pause(at(15), at(16)),)),
    [version(content("pn", PN_TWICE_DAILY, drug_id="drug-c"))])
WORLD_DOSES = doses(WORLD)
WORLD_DOSE_IDS = sorted({d.dose_id for d, _ in WORLD_DOSES})


@st.composite
def world_records(draw: st.DrawFn, until: datetime) -> AdministrationRecord:
    when = DAY_START + draw(st.integers(0, int((until - DAY_START) / MINUTE) - 1)) * MINUTE
    outcome = draw(st.sampled_from(Outcome))
    return record(
        f"rec-{draw(st.integers(0, 10_000)):05d}", when,
        order_id=draw(st.sampled_from([None, "o1", "crit", "pn"])),
        dose_id=draw(st.sampled_from([None, *WORLD_DOSE_IDS])), outcome=outcome,
        drug_id=draw(st.sampled_from(["drug-a", "drug-b", "drug-c"])),
        reason=NotGivenReason.REFUSED if outcome is Outcome.NOT_GIVEN else None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(60, 23 * 60), st.randoms(use_true_random=False))
def test_the_check_raises_what_reconcile_raises_for_the_record(
        data: st.DataObject, minute: int, rnd: Random) -> None:
    when = DAY_START + minute * MINUTE
    existing = data.draw(st.lists(world_records(when), max_size=12,
                                  unique_by=lambda r: r.record_id))
    order_id = data.draw(st.sampled_from([None, "o1", "crit", "pn"]))
    proposal = ProposedDose(
        FACILITY, RESIDENT, data.draw(st.sampled_from(["drug-a", "drug-b", "drug-c"])), when,
        order_id=order_id,
        dose_id=data.draw(st.sampled_from([None, *WORLD_DOSE_IDS])),
        quantity=data.draw(st.sampled_from([None, Decimal(1), Decimal(2)])),
        route=data.draw(st.sampled_from(["", "oral", "iv"])), as_needed=data.draw(st.booleans()))
    now = when + MINUTE
    result = check_dose(proposal, doses=WORLD_DOSES, records=existing, orders=WORLD,
                        rules=RULES, now=now)
    made = record("zzz-made", when, order_id=order_id, dose_id=proposal.dose_id,
                  outcome=Outcome.PN_GIVEN if proposal.as_needed else Outcome.GIVEN,
                  quantity=None if proposal.quantity is None else str(proposal.quantity),
                  drug_id=proposal.drug_id, route=proposal.route, recorded_at=now)
    everything = [*existing, made]
    rnd.shuffle(everything)
    found = reconcile(FACILITY, DAY_START, DAY_END, doses=WORLD_DOSES, records=everything,
                      orders={RESIDENT: WORLD}, rules=RULES, now=now)
    assert sorted(c.value for c in reason_codes(result)
                  if c is not Code.NEEDS_MANUAL_SCHEDULE) == sorted(
        d.code.value for d in found if d.record_id == "zzz-made")
