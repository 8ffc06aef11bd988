"""Batch reconciliation of facilities over a time range, at the scale of a national day.

The Python engine (`reconcile.reconcile`) decides everything, but running it on every
resident costs about a third of a millisecond per dose. Almost every record in a home is
a dose given as ordered, inside its window, documented in time, and then the only thing
the engine can find for that resident is a missed dose: the SQL anti-join over the
materialised schedule finds exactly those. So a batch:

1. makes sure each resident's materialised doses are their schedule over the range and a
   margin (`materialise`; in steady state the sweep's horizon and every order change
   have done so already, and one SQL statement finds no stamp wanting);
2. asks SQL for the residents with any record that is not plainly right, or an order
   needing a manual schedule: those go through the engine, with the whole context;
3. takes every other resident's missed doses from the anti-join;
4. saves by stable key, withdraws what is no longer found and raises alerts, in a fixed
   number of statements however many facilities (`store.bulk`).

`tests/integration/test_batch_reconcile.py` checks that this gives exactly what the
engine gives on every resident.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from medservice.domain.administration import AdministrationRecord
from medservice.domain.errors import FieldViolation, InvalidArgument, NotFound
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import doses_between
from medservice.reconcile import Discrepancy, FacilityRules, context_range, reconcile
from medservice.reconcile.engine import manual_schedules, missed_dose
from medservice.reconcile.ledger import DAY, OrderView
from medservice.service.alerts import raise_alerts
from medservice.service.materialise import materialise_facility, settings_key
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.schedule import ResidentId

# Records this far around the range are triaged, and the materialised schedule must be
# exact over the same span: only a record within a day of a dose can settle it (windows
# are at most a day wide on either side), and a local day lasts up to 25 hours. The open
# first dose of a course with no start (due until given, so settled by a record any time
# later) is the exception this margin does not cover; it holds because that dose has no
# materialised row (`materialise.due_doses`): never called missed by the SQL, and a record
# on it is never plainly right, so its resident goes through the engine.
MARGIN = DAY + timedelta(hours=2)
MAX_RANGE = timedelta(days=31)


@dataclass(frozen=True)
class BatchResult:
    doses: int  # due in the range
    records: int  # administered in the range
    found: list[Discrepancy]
    new: int  # of `found`, new or reopened
    examined_residents: int  # went through the Python engine


def reconcile_facilities(uow: UnitOfWork, facility_ids: Sequence[str], start: datetime,
                         end: datetime, now: datetime) -> BatchResult:
    """Reconcile these facilities over [start, end) as the mirror knows the orders at
    `now`: save what is found by key, withdraw what is no longer found, raise alerts."""
    if end <= start:
        raise InvalidArgument([FieldViolation("end_time", "must be after start_time")])
    if end - start > MAX_RANGE:
        raise InvalidArgument([FieldViolation("end_time", "the range may span at most 31 days")])
    facilities = {f.facility_id: f for f in uow.facilities.list(
        limit=len(facility_ids) + 1, after=None, only=frozenset(facility_ids))}
    unknown = sorted(set(facility_ids) - set(facilities))
    if unknown:
        raise NotFound("no such facility", reason="FACILITY_NOT_FOUND")
    lo, hi = start - MARGIN, end + MARGIN
    uow.schedule.use_batch_memory()
    uow.schedule.hold_schedule()
    manual = _materialise_stale(uow, facilities, lo, hi, now)
    late_after = min(FacilityRules.from_facility(f).late_documentation_after
                     for f in facilities.values())
    examined = uow.schedule.examined_residents(facilities, lo, hi, late_after)
    manual -= examined

    found: list[Discrepancy] = []
    rules = {f_id: FacilityRules.from_facility(f) for f_id, f in facilities.items()}
    for d in uow.schedule.unsettled(facilities, start, end, now):
        if (d.facility_id, d.resident_id) not in examined:
            found.append(missed_dose(d.facility_id, d.resident_id, d.order_id, d.dose_id,
                                     d.due_at, d.closes_at, rules[d.facility_id]))
    versions = uow.cards.residents_versions(sorted(examined | manual))
    for f_id, r_id in sorted(manual):
        views = [OrderView(o_id, h, now) for o_id, h in versions.get((f_id, r_id), {}).items()]
        found += manual_schedules(f_id, r_id, views, start, end, rules[f_id])
    found += _engine(uow, rules, versions, sorted(examined), start, end, now)
    found.sort(key=lambda d: (d.occurred_at, d.key))

    new = uow.discrepancies.save(found, now)
    uow.discrepancies.withdraw_absent_in(facilities, None, start, end,
                                         {d.key for d in found}, now)
    raise_alerts(uow, facilities, found, new, now)
    doses, records = uow.schedule.counts(facilities, start, end)
    return BatchResult(doses, records, found, len(new), len(examined))


def _materialise_stale(uow: UnitOfWork, facilities: dict[str, Facility], lo: datetime,
                       hi: datetime, now: datetime) -> set[ResidentId]:
    """Materialise over [lo, hi) the residents whose stamp does not vouch for it. Returns
    the residents with an order that needs a manual schedule."""
    check = uow.schedule.check_stamps({f_id: settings_key(f) for f_id, f in facilities.items()},
                                      lo, hi)
    for facility_id, residents in sorted(check.stale.items()):
        # Doses this batch reconciles need no sweep; later ones still get one.
        materialise_facility(uow, facilities[facility_id], lo, hi, now, residents=residents,
                             swept_if_closed_by=now)
    manual = set(check.manual)
    if check.stale:  # their stamps as materialising rewrote them
        manual |= {key for key, stamp in uow.schedule.stamps(check.stale).items()
                   if key[1] in check.stale[key[0]] and not stamp.simple}
    return manual


def _engine(uow: UnitOfWork, rules: dict[str, FacilityRules],
            versions: dict[tuple[str, str], dict[str, list[OrderVersion]]],
            residents: list[tuple[str, str]], start: datetime, end: datetime,
            now: datetime) -> list[Discrepancy]:
    """What the engine finds for these residents, each facility's from their whole
    context (records read in one go)."""
    if not residents:
        return []
    histories = [h for key in residents for h in versions.get(key, {}).values()]
    c_lo, c_hi = context_range(start, end, histories)
    records: dict[str, list[AdministrationRecord]] = defaultdict(list)
    for r in uow.records.of_residents(residents, c_lo, c_hi):
        records[r.facility_id].append(r)
    by_facility: dict[str, list[str]] = defaultdict(list)
    for facility_id, resident_id in residents:
        by_facility[facility_id].append(resident_id)
    found: list[Discrepancy] = []
    for facility_id, ids in by_facility.items():
        clock = rules[facility_id].clock
        orders = {r: versions.get((facility_id, r), {}) for r in ids}
        mine = [h for o in orders.values() for h in o.values()]
        doses = [pair for h in mine for pair in doses_between(h, clock, c_lo, c_hi, now)]
        found += reconcile(facility_id, start, end, doses=doses, records=records[facility_id],
                           orders=orders, rules=rules[facility_id], now=now)
    return found
