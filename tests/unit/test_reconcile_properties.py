"""Properties of reconciliation over generated records (hypothesis): idempotent, blind to
the order records arrived in, one discrepancy per key, entered-in-error means absent."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.dosage import FreeTextDosage, TimeKind
from medservice.domain.orders import Pause
from medservice.reconcile import Code, Discrepancy, reconcile
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
    local,
    orders_of,
    record,
    version,
)

START, END = local(DAY, 0), local(DAY + timedelta(days=1), 0)
NOW = at(20)
ORDERS = orders_of(
    [version(content())],
    changed([version(content("crit", dosage(dose(TimeKind.NOON)), drug_id="drug-b",
                             time_critical=True))],
            at(9), pauses=(Pause(at(15), at(16)),), discontinued_at=at(19)),
    [version(content("pn", PN_TWICE_DAILY, drug_id="drug-c"))],
    [version(content("ft", FreeTextDosage("as agreed"), drug_id="drug-d",
                     treatment_end=date(2026, 12, 31)))],
)
DOSES = doses_of(ORDERS, START - timedelta(days=2), END + timedelta(days=1), NOW)
DOSE_IDS = sorted({d.dose_id for d, _ in DOSES})


@st.composite
def records(draw: st.DrawFn) -> AdministrationRecord:
    when = START + draw(st.integers(-26 * 60, 26 * 60)) * MINUTE
    outcome = draw(st.sampled_from(Outcome))
    return record(
        f"rec-{draw(st.integers(0, 10_000)):05d}",
        when,
        order_id=draw(st.sampled_from([None, "o1", "crit", "pn", "ft", "nope"])),
        dose_id=draw(st.sampled_from([None, None, "not-a-dose", *DOSE_IDS])),
        outcome=outcome,
        quantity=draw(st.sampled_from([None, "1", "2", "0.5"])),
        recorded_at=when + draw(st.integers(0, 400)) * MINUTE,
        drug_id=draw(st.sampled_from(["drug-a", "drug-b", "drug-c", "drug-z"])),
        route=draw(st.sampled_from(["", "oral", "iv"])),
        reason=draw(st.sampled_from(NotGivenReason)) if outcome is Outcome.NOT_GIVEN else None,
        entered_in_error=draw(st.booleans()) and draw(st.booleans()),
    )


record_lists = st.lists(records(), max_size=25, unique_by=lambda r: r.record_id)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# The default PN follow-up deadline (2 hours), so that the properties cover PN_NOT_EVALUATED.
FOLLOWED_UP = {False: replace(RULES, pn_evaluation_minutes=120),
               True: replace(CALENDAR_RULES, pn_evaluation_minutes=120)}


def reconciled(recs: list[AdministrationRecord], calendar: bool = False) -> list[Discrepancy]:
    return reconcile(FACILITY, START, END, doses=DOSES, records=recs,
                     orders={RESIDENT: ORDERS}, rules=FOLLOWED_UP[calendar], now=NOW)


@SETTINGS
@given(record_lists, st.booleans())
def test_reconcile_is_idempotent_and_keys_are_unique(recs: list[AdministrationRecord],
                                                      calendar: bool) -> None:
    first = reconciled(recs, calendar)
    assert reconciled(recs, calendar) == first
    keys = [d.key for d in first]
    assert len(keys) == len(set(keys))
    for d in first:
        assert d.key.startswith(f"{d.code.value}|home/r1|")
        if d.code is not Code.NEEDS_MANUAL_SCHEDULE:
            assert START <= d.occurred_at < END


@SETTINGS
@given(record_lists, st.randoms(use_true_random=False), st.booleans())
def test_reconcile_does_not_depend_on_arrival_order(recs: list[AdministrationRecord],
                                                    rnd: Random, calendar: bool) -> None:
    shuffled = list(recs)
    rnd.shuffle(shuffled)
    assert reconciled(shuffled, calendar) == reconciled(recs, calendar)


@SETTINGS
@given(record_lists, st.data())
def test_an_entered_in_error_record_is_as_if_it_never_was(recs: list[AdministrationRecord],
                                                          data: st.DataObject) -> None:
    active = [r for r in recs if r.active]
    if not active:
        return
    withdrawn = data.draw(st.sampled_from(active))
    corrected = [replace(r, entered_in_error=True) if r is withdrawn else r for r in recs]
    without = [r for r in recs if r is not withdrawn]
    assert reconciled(corrected) == reconciled(without)
    assert all(d.record_id != withdrawn.record_id for d in reconciled(corrected))


def test_the_scenario_can_raise_every_code_but_one() -> None:
    """A guard on the world the properties run in: it is varied enough to raise every
    code (outside the treatment period aside), so they are not about an empty result."""
    morning = next(d.dose_id for d, _ in DOSES if d.order_id == "o1" and d.due_time == at(8))
    example = [
        record("a", at(9, 30), dose_id=morning), record("b", at(9, 40), dose_id=morning),
        record("c", at(11), order_id="crit", drug_id="drug-b", route="iv", quantity="2"),
        record("d", at(15, 30), order_id="crit", drug_id="drug-b"),
        record("e", at(19, 30), order_id="crit", drug_id="drug-b"),
        record("f", at(1), order_id="nope"),
        *[record(f"p{h}", at(h), order_id="pn", outcome=Outcome.PN_GIVEN) for h in (2, 3, 4)],
        record("n", at(18), order_id="crit", outcome=Outcome.NOT_GIVEN,
               reason=NotGivenReason.REFUSED, recorded_at=at(23)),
    ]
    seen = {d.code for d in reconciled(example)}
    assert seen == set(Code) - {Code.OUTSIDE_TREATMENT_PERIOD}
