"""`orders.not_to_give` is the one rule for "not to give" (discontinued, paused, outside
the treatment period). The scheduler's fast form (excluded intervals and the treatment
clamp, `schedule.treatment_days`) and the materialised plain part of a dose's window
(`materialise._plain_part`, which the batch's SQL triage trusts) must say exactly what it
says: proven here on generated orders, DST nights included."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from medservice.domain.dosage import TimeKind
from medservice.domain.orders import OrderContent, OrderState, Pause, not_to_give, order_state
from medservice.domain.rounds import doses_between
from medservice.domain.schedule import OrderTerms, schedule_order
from medservice.reconcile.ledger import OrderView
from medservice.service.materialise import _plain_part
from tests.unit.test_reconcile_builders import (
    CLOCK,
    EPOCH,
    MORNING_EVENING,
    content,
    dosage,
    dose,
    version,
)

SPRING = date(2026, 3, 29)  # the spring-forward night in Copenhagen
FIRST, LAST = SPRING - timedelta(days=2), SPRING + timedelta(days=3)
GRID = dosage(dose(TimeKind.MORNING), dose(TimeKind.CLOCK, clock_time=time(2, 30)),
              dose(TimeKind.EVENING))
TICK = timedelta(microseconds=1)

hours = st.integers(-60, 130).map(lambda h: CLOCK.instant(FIRST, time(0)) + timedelta(
    minutes=30 * h))
days = st.integers(-1, 6).map(lambda d: FIRST + timedelta(days=d))


@st.composite
def contents(draw: st.DrawFn) -> OrderContent:
    pauses = tuple(sorted((Pause(draw(st.none() | hours), draw(st.none() | hours))
                           for _ in range(draw(st.integers(0, 2)))),
                          key=lambda p: (p.start or EPOCH, p.end or EPOCH)))
    pauses = tuple(p for p in pauses if p.start is None or p.end is None or p.start < p.end)
    start, end = draw(st.none() | days), draw(st.none() | days)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return content(dosage_=GRID, treatment_start=start, treatment_end=end,
                   treatment_started_previously=draw(st.booleans()), pauses=pauses,
                   discontinued_at=draw(st.none() | hours))


def _boundaries(c: OrderContent) -> list[datetime]:
    """Every instant at which not_to_give may change its answer."""
    found = [b for p in c.pauses for b in (p.start, p.end) if b is not None]
    if c.discontinued_at is not None:
        found.append(c.discontinued_at)
    found += [CLOCK.instant(d, time(0)) for d in (c.treatment_start, c.treatment_end)
              if d is not None]
    if c.treatment_end is not None:
        found.append(CLOCK.instant(c.treatment_end + timedelta(days=1), time(0)))
    return found


@settings(max_examples=300, deadline=None)
@given(contents())
def test_the_scheduler_makes_due_exactly_what_the_order_says_to_give(c: OrderContent) -> None:
    grid = schedule_order(OrderTerms("home/r1", "o1", GRID), CLOCK, FIRST, LAST)
    start, end = CLOCK.instant(FIRST, time(0)), CLOCK.instant(LAST + timedelta(days=1), time(0))
    scheduled = {d.due_time for d, _ in doses_between([version(c)], CLOCK, start, end, None)}
    assert scheduled == {d.due_time for d in grid if not not_to_give(c, d.due_time, CLOCK)}


@settings(max_examples=300, deadline=None)
@given(contents())
def test_a_dose_s_plain_part_is_where_the_order_says_to_give(c: OrderContent) -> None:
    history = [version(c)]
    view = OrderView("o1", history, EPOCH + timedelta(days=10_000))
    start, end = CLOCK.instant(FIRST, time(0)), CLOCK.instant(LAST + timedelta(days=1), time(0))
    for d, _ in doses_between(history, CLOCK, start, end, None):
        assert d.window_start is not None and d.window_end is not None
        plain = _plain_part(view, d, CLOCK)
        assert plain is not None  # a scheduled dose is to be given at its due time
        lo, hi, route = plain
        assert d.window_start <= lo <= d.due_time <= hi <= d.window_end
        assert route == c.route
        inside = [lo, hi, *(b for b in _boundaries(c) if lo <= b <= hi),
                  *(b - TICK for b in _boundaries(c) if lo < b <= hi)]
        assert not any(not_to_give(c, t, CLOCK) for t in inside)
        # Just outside: the window ends, or the order says not to give.
        assert lo == d.window_start or not_to_give(c, lo - TICK, CLOCK)
        assert hi == d.window_end or not_to_give(c, hi + TICK, CLOCK)


def test_the_states_of_an_order_in_time() -> None:
    c = content(dosage_=MORNING_EVENING, treatment_start=SPRING, treatment_end=SPRING,
                pauses=(Pause(CLOCK.instant(SPRING, time(10)), CLOCK.instant(SPRING, time(12))),),
                discontinued_at=CLOCK.instant(SPRING, time(20)))
    at = {h: CLOCK.instant(SPRING, time(h)) for h in (9, 11, 21)}
    assert order_state(c, at[9] - timedelta(days=1), CLOCK) is OrderState.NOT_STARTED
    assert order_state(c, at[9], CLOCK) is OrderState.ACTIVE
    assert order_state(c, at[11], CLOCK) is OrderState.PAUSED
    assert order_state(c, at[21], CLOCK) is OrderState.DISCONTINUED
    ended = content(dosage_=MORNING_EVENING, treatment_end=SPRING)
    assert order_state(ended, at[9] + timedelta(days=1), CLOCK) is OrderState.ENDED
    # "Started previously" has no start date to be before.
    previously = content(dosage_=MORNING_EVENING, treatment_start=SPRING,
                         treatment_started_previously=True)
    assert order_state(previously, at[9] - timedelta(days=1), CLOCK) is OrderState.ACTIVE
