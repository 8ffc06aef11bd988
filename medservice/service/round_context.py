"""What a dose check or record loads before the rules run, kept between calls where it
cannot go stale:

- a facility's settings and the clock built from them, by the facility's etag (every
  change to a facility gives it a new etag; the etag is read in each call, with the
  resident's stamps, in one query);
- a resident's order versions, by the resident's etag (new and random at creation, so
  never the same in another database) and its order_changes (bumped in the transaction
  that adds an order version): the count is read before the versions, so an entry holds
  at least the versions of its count, and versions never change once written. Only
  transactions that have not added versions themselves keep what they read: one that did
  might still roll back;
- an order's doses on a run of local dates, by the order versions known and the
  facility's etag (order versions are never changed once written, so the versions known
  at a time name the schedule exactly); and all of a resident's, by the facility's etag
  and the resident's stamp that names its versions, when every version is known.

All live in `uow.caches` (store.caches): one set per database, built with its unit-of-work
factory; bounded, and a miss costs what every call cost before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from medservice.domain.administration import AdministrationRecord
from medservice.domain.errors import NotFound
from medservice.domain.facility import Facility
from medservice.domain.orders import OrderVersion
from medservice.domain.rounds import DoseWithOrder, doses_on_dates, due_in
from medservice.domain.schedule import KeptDose
from medservice.reconcile import FacilityRules
from medservice.service.facilities import get_facility
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.caches import Caches


@dataclass(frozen=True)
class ResidentOrders:
    """What every dose check and record starts from: the facility, its rules and the
    resident's order versions."""

    facility: Facility
    rules: FacilityRules
    orders: dict[str, list[OrderVersion]]  # order id -> versions by number
    # The resident's (etag, order_changes) naming `orders` as committed; None when they
    # were read in a transaction that may have added versions of its own.
    stamp: tuple[str, int] | None = None
    # How many of the resident's clinical card changes wait for approval (read with the
    # head: 0 spares the check reading them).
    pending_changes: int = 0


Span = Callable[[Iterable[Sequence[OrderVersion]]], tuple[datetime, datetime]]


def orders_and_records(uow: UnitOfWork, facility_id: str, resident_id: str, span: Span, *,
                       orders_unchanged: bool = False
                       ) -> tuple[ResidentOrders, tuple[datetime, datetime],
                                  list[AdministrationRecord]]:
    """resident_orders, the range `span` gives for the orders, and the resident's records
    administered in it (as Records.between gives them). One statement when the range the
    orders last seen for the resident give covers it (the common case: the orders have not
    changed): the records are read with the head, over that range, and kept to this one."""
    caches = uow.caches
    seen = caches.latest_orders.get((facility_id, resident_id))
    known = caches.orders.get(seen) if seen is not None else None
    guess = span(known.values()) if known is not None else None
    base, read = _resident_orders(uow, facility_id, resident_id, orders_unchanged, guess)
    lo, hi = span(base.orders.values())
    if guess is not None and read is not None and guess[0] <= lo and hi <= guess[1]:
        return base, (lo, hi), [r for r in read if lo <= r.administered_at < hi]
    return base, (lo, hi), uow.records.between(facility_id, resident_id, lo, hi)


def resident_orders(uow: UnitOfWork, facility_id: str, resident_id: str, *,
                    orders_unchanged: bool = False) -> ResidentOrders:
    """The facility, its rules and the resident's order versions, after checking that the
    facility and the resident exist (the errors get_facility and get_resident give, in
    that order). `orders_unchanged`: the caller's write transaction added no order
    version, so what it reads may be kept."""
    return _resident_orders(uow, facility_id, resident_id, orders_unchanged, None)[0]


def _resident_orders(uow: UnitOfWork, facility_id: str, resident_id: str,
                     orders_unchanged: bool, records: tuple[datetime, datetime] | None
                     ) -> tuple[ResidentOrders, list[AdministrationRecord] | None]:
    """resident_orders, and the records of [records) read with the head (if asked)."""
    caches = uow.caches
    head = uow.cards.round_head(facility_id, resident_id, records)
    if head is None:
        raise NotFound("no such facility", reason="FACILITY_NOT_FOUND")
    cached = caches.facilities.get((facility_id, head.facility_etag))
    if cached is None:
        facility = get_facility(uow, facility_id)
        cached = (facility, FacilityRules.from_facility(facility).clock)
        caches.facilities.put((facility_id, facility.etag), cached)
    facility, clock = cached
    if head.resident is None:
        raise NotFound("no such resident", reason="RESIDENT_NOT_FOUND")
    key = (facility_id, resident_id, *head.resident)
    stamp: tuple[str, int] | None = head.resident
    orders = caches.orders.get(key)
    if orders is None:
        orders = uow.cards.resident_versions(facility_id, resident_id)
        if orders_unchanged or not uow.writes:
            caches.orders.put(key, orders)
        else:
            stamp = None
    if stamp is not None:
        caches.latest_orders.put((facility_id, resident_id), key)
    # Copies: the kept lists are shared between calls.
    return ResidentOrders(facility, FacilityRules(clock, facility.pn_day_mode,
                                                  facility.pn_evaluation_minutes,
                                                  facility.language),
                          {k: list(v) for k, v in orders.items()}, stamp,
                          head.pending_changes), head.records


def kept_resident_doses(caches: Caches, base: ResidentOrders, resident_id: str,
                        start: datetime, end: datetime, now: datetime) -> list[DoseWithOrder]:
    """The resident's doses due in [start, end): kept_order_doses of each order in turn.
    Kept for the resident as a whole, by its stamp, when every version is known at `now`
    (one look-up instead of one per order)."""
    f, rules = base.facility, base.rules
    if base.stamp is None or any(v.recorded_at > now for h in base.orders.values()
                                 for v in h):
        return [pair for h in base.orders.values()
                for pair in kept_order_doses(caches, f, rules, h, start, end, now)]
    first, last = _dates(rules, start, end)
    key = (f.facility_id, f.etag, resident_id, *base.stamp, first, last)
    doses = caches.resident_doses.get(key)
    if doses is None:
        doses = [pair for h in base.orders.values()
                 for pair in _dated_doses(caches, f, rules, h, first, last, now)]
        caches.resident_doses.put(key, doses)
    return [pair for pair in doses if due_in(pair, start, end)]


def _dates(rules: FacilityRules, start: datetime, end: datetime) -> tuple[date, date]:
    """The local dates of [start, end)."""
    clock = rules.clock
    return clock.local_date_of(start), clock.local_date_of(end - timedelta(microseconds=1))


def kept_order_doses(caches: Caches, facility: Facility, rules: FacilityRules,
                     versions: Sequence[OrderVersion], start: datetime, end: datetime,
                     now: datetime) -> list[DoseWithOrder]:
    """rounds.doses_between(versions, rules.clock, start, end, now), from the cache when
    the same versions were expanded over the same local dates before."""
    doses = _dated_doses(caches, facility, rules, versions, *_dates(rules, start, end), now)
    return [pair for pair in doses if due_in(pair, start, end)]


def _dated_doses(caches: Caches, facility: Facility, rules: FacilityRules,
                 versions: Sequence[OrderVersion], first: date, last: date, now: datetime
                 ) -> list[DoseWithOrder]:
    """The order's doses on local dates first..last as known at `now` (doses_on_dates),
    from the cache."""
    known = tuple((v.version, v.recorded_at) for v in versions if v.recorded_at <= now)
    if not known:
        return []  # no version known yet: no piece to schedule
    head = versions[0]
    key = (facility.facility_id, facility.etag, head.resident_id, head.order_id, known,
           first, last)
    doses = caches.doses.get(key)
    if doses is None:
        doses = [DoseWithOrder(KeptDose.of(d), c) for d, c in
                 doses_on_dates(list(versions), rules.clock, first, last, now)]
        caches.doses.put(key, doses)
    return doses


def doses_around(uow: UnitOfWork, base: ResidentOrders, resident_id: str, lo: datetime,
                 hi: datetime, now: datetime, dose_id: str | None) -> list[DoseWithOrder]:
    """The resident's doses due in [lo, hi). With a dose id that is not one of them, the
    facility's doses too, to tell another resident's dose from an unknown one."""
    f, rules = base.facility, base.rules
    doses = kept_resident_doses(uow.caches, base, resident_id, lo, hi, now)
    if dose_id and all(d.dose_id != dose_id for d, _ in doses):
        doses += [pair for rid, r in uow.cards.facility_versions(f.facility_id).items()
                  if rid != resident_id for h in r.values()
                  for pair in kept_order_doses(uow.caches, f, rules, h, lo, hi, now)]
    return doses
