"""Materialising residents' due doses into `scheduled_doses`, with the stamp that says for
which due times the rows are exactly the schedule (see `store.schedule.Stamp`).

The missed-dose sweep works from these rows; batch reconciliation trusts them in SQL
where the stamp covers its range under the resident's current order history and the
facility's current settings, and materialises what it cannot trust first. The residents'
order-change counts are read, and held, before their order versions: no order change of
theirs commits until the rows and the stamp naming that count are written (and a stamp
naming an older count than the resident's certifies nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta

from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion, first_known, outside_treatment
from medservice.domain.rounds import doses_between
from medservice.domain.schedule import ScheduledDose
from medservice.reconcile import FacilityRules
from medservice.reconcile.ledger import (
    DAY,
    Due,
    OrderView,
    matching_window,
    number,
)
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.repositories import facility_settings
from medservice.store.schedule import DueDose, Stamp, merged

Histories = Sequence[Sequence[OrderVersion]]


def settings_key(facility: Facility) -> str:
    """Changes whenever a setting the schedule depends on may have changed."""
    settings = facility_settings(facility)
    settings.pop("pn_evaluation_minutes")  # when a PN dose is followed up: no schedule
    settings.pop("approval_overdue_minutes")  # when a card change is overdue: no schedule
    settings.pop("language")  # the words staff read: no schedule
    text = json.dumps([facility.time_zone, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def due_doses(facility: Facility, histories: Histories, start: datetime, end: datetime,
              now: datetime) -> list[DueDose]:
    """The facility's due doses in [start, end) of these order histories (as known at
    `now`), each with the instant its window closes (what the engine uses to call a dose
    missed) and what a record on it is checked against; open-ended doses, which no
    window closes, are left out."""
    clock = FacilityRules.from_facility(facility).clock
    out = []
    for history in histories:
        if not history:
            continue
        view = OrderView(history[0].order_id, history, now)
        since = first_known(history)
        for dose, content in doses_between(list(history), clock, start, end, now):
            closes = matching_window(Due(dose, content, ""), clock)[1]
            if dose.open_ended or closes is None:
                # Open-ended (due until given): no window closes, nothing for the sweep to
                # claim or for the batch's SQL to call missed. A record on it is never
                # plainly right there, so the batch examines its resident in Python.
                continue
            facility_id, resident_id = dose.resident_id.split("/", 1)
            plain = _plain_part(view, dose, clock)
            out.append(DueDose(
                dose.dose_id, facility_id, resident_id, dose.order_id, dose.due_time, closes,
                plain[0] if plain else None, plain[1] if plain else None,
                None if dose.amount.is_range else number(dose.amount.low),
                plain[2] if plain else "", since))
    return out


_INSTANT = timedelta(microseconds=1)  # the last instant before a boundary


def _plain_part(view: OrderView, dose: ScheduledDose, clock: FacilityClock
                ) -> tuple[datetime, datetime, str] | None:
    """[from, until] (inclusive) around the due time inside the dose's window in which one
    version of the order is in force and says to give, with that version's route: there
    a record on the dose is judged against exactly this. None for a one-time dose (no
    window) or when the due time itself is not so."""
    lo, hi, due = dose.window_start, dose.window_end, dose.due_time
    if lo is None or hi is None:
        return None
    piece = next(((c, p_lo, p_hi) for _, c, p_lo, p_hi
                  in view.versions_between(lo, hi + _INSTANT) if p_lo <= due < p_hi), None)
    if piece is None:
        return None
    content, p_lo, p_hi = piece
    lo, hi = max(lo, p_lo), min(hi, p_hi - _INSTANT)
    if content.discontinued_at is not None:
        if content.discontinued_at <= due:
            return None
        hi = min(hi, content.discontinued_at - _INSTANT)
    for pause in content.pauses:
        if pause.covers(due):
            return None
        if pause.start is not None and pause.start > due:
            hi = min(hi, pause.start - _INSTANT)
        if pause.end is not None and pause.end <= due:
            lo = max(lo, pause.end)
    if outside_treatment(content, due, clock):
        return None
    if content.treatment_end is not None:
        hi = min(hi, clock.instant(content.treatment_end + DAY, time(0)) - _INSTANT)
    if content.treatment_start is not None and not content.treatment_started_previously:
        lo = max(lo, clock.instant(content.treatment_start, time(0)))
    return lo, hi, content.route


def simple(histories: Histories) -> bool:
    """No order needs a manual schedule or cannot be checked (NEEDS_MANUAL_SCHEDULE, whose
    finding the SQL triage cannot make)."""
    return all(v.content.needs_attention is None for h in histories for v in h)


def materialise(uow: UnitOfWork, facility: Facility, histories_of: Mapping[str, Histories],
                changes: Mapping[str, int], start: datetime, end: datetime, now: datetime,
                *, swept_if_closed_by: datetime | None = None) -> None:
    """Make the rows of the residents in `changes` (resident id -> order-change count, read
    before `histories_of`, resident id -> their order histories) due in [start, end)
    exactly their schedule, and stamp them so."""
    facility_id = facility.facility_id
    residents = list(changes)
    doses = due_doses(facility, [h for r in residents for h in histories_of.get(r, ())],
                      start, end, now)
    uow.schedule.replace(facility_id, residents, start, end, doses,
                         swept_if_closed_by=swept_if_closed_by)
    key = settings_key(facility)
    old = uow.schedule.stamps([facility_id])
    uow.schedule.save_stamps(
        merged(old.get((facility_id, r)),
               Stamp(facility_id, r, changes[r], key, start, end,
                     simple(histories_of.get(r, ()))))
        for r in residents)


def materialise_facility(uow: UnitOfWork, facility: Facility, start: datetime,
                         end: datetime, now: datetime, *, residents: set[str] | None = None,
                         swept_if_closed_by: datetime | None = None) -> None:
    """`materialise` for the facility's residents (or those of `residents`), reading their
    change counts before their order versions, and holding them."""
    facility_id = facility.facility_id
    changes = uow.schedule.hold_order_changes(facility_id, residents)
    versions = uow.cards.facility_versions(facility_id)
    histories = {r: list(versions.get(r, {}).values()) for r in changes}
    materialise(uow, facility, histories, changes, start, end, now,
                swept_if_closed_by=swept_if_closed_by)
