"""What has happened to each of a resident's scheduled doses, as of now: the round list's
dose status and PN lines, answered from the same placement of records (`ledger`) that the
check and reconciliation use, so the three never disagree.

- GIVEN: a given record is on the dose (also after one documenting it as not given);
- NOT_GIVEN: the active record that settles the dose documents it as not given (never
  an open-ended dose's: only a given record settles that, `administration.settles_dose`);
- MISSED: `ledger.missed_at` says so (window closed, nothing on it, due once the mirror
  knew its order): exactly the doses reconciliation raises MISSED_DOSE for;
- NOT_DOCUMENTED: window closed with nothing on it, but due before the mirror first knew
  its order (never missed);
- DUE: anything else (an open-ended dose until given, refused or not); with the
  entered-in-error record that reopened it, if any.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from medservice.domain.administration import AdministrationRecord, corrected_by_dose
from medservice.domain.clock import FacilityClock
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DUE, DoseState, DoseStatus, DoseWithOrder, PnLine
from medservice.reconcile.engine import place_all
from medservice.reconcile.ledger import (
    Due,
    FacilityRules,
    Ledger,
    OrderView,
    Placement,
    active_records,
    before_mirroring,
    matching_window,
    period_msg,
    pn_use,
)


def resident_ledger(facility_id: str, resident_id: str,
                    orders: Mapping[str, Sequence[OrderVersion]],
                    doses: Iterable[DoseWithOrder], records: Iterable[AdministrationRecord],
                    rules: FacilityRules, now: datetime
                    ) -> tuple[dict[str, DoseState], list[Placement]]:
    """Every due dose's state (dose id -> state) and the placements of the resident's
    active records. `doses` and `records` as for `reconcile` over the range of interest
    (`context_range` of it); `records` may include entered-in-error ones."""
    records = list(records)
    ledger = Ledger(facility_id, resident_id, orders, doses, rules, now)
    placements = place_all(ledger, active_records(records))
    corrected = corrected_by_dose(records)  # the latest correction on each dose
    states: dict[str, DoseState] = {}
    for dose_id, due in ledger.dues.items():
        state = dose_state(due, ledger.views.get(due.dose.order_id), rules.clock, now)
        if state.record is None and dose_id in corrected:
            state = dataclasses.replace(state, corrected=corrected[dose_id])
        states[dose_id] = state
    return states, placements


def dose_state(due: Due, view: OrderView | None, clock: FacilityClock, now: datetime, *,
               ignoring: AdministrationRecord | None = None) -> DoseState:
    """One placed dose's state (the module's rules); `ignoring` a record placed on it (a
    proposed one, for the check), which then does not count as settling it."""
    given = next((r for r in due.given if r is not ignoring), None)
    if given is not None:  # given, even after it was first documented as not given
        return DoseState(DoseStatus.GIVEN, given)
    record = due.settled_by
    if record is not None and record is not ignoring:
        return DoseState(DoseStatus.NOT_GIVEN, record)
    closes = matching_window(due, clock)[1]
    if due.dose.open_ended or closes is None or closes > now:  # open-ended: never missed
        return DUE
    if before_mirroring(due, view):
        return DoseState(DoseStatus.NOT_DOCUMENTED)
    return DoseState(DoseStatus.MISSED)


def pn_lines(lines: Sequence[PnLine], placements: Sequence[Placement], at: datetime,
             rules: FacilityRules) -> list[PnLine]:
    """The round list's PN lines with what is used and left at `at` (`ledger.pn_use`)."""
    out = []
    for line in lines:
        use = pn_use(placements, line.order_id, line.content, at, rules)
        period = period_msg(line.terms.count_period, rules)
        if use is None:
            out.append(dataclasses.replace(line, period=period))
            continue
        out.append(dataclasses.replace(line, given=use.given, doses_left=use.left,
                                       last_given=use.last_given, period=period,
                                       last_record=use.last_record))
    return out
