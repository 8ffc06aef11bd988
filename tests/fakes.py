"""An in-memory unit of work (service.unit_of_work.UnitOfWork) for testing the use cases
without a database: what the round use cases, card syncs and reconciliation need, kept
in plain dicts and lists. A method the use cases under test never call raises, so a test
that reaches one says so instead of passing on a made-up answer."""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, NoReturn

from medservice.domain.administration import AdministrationRecord, PnEvaluation
from medservice.domain.alerts import Alert, NewAlert
from medservice.domain.card_changes import ChangeStatus, PendingChange
from medservice.domain.card_checks import DoseDispensingCard
from medservice.domain.discrepancy import Decision
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import Drug, OrderVersion
from medservice.domain.webhooks import DeliveryState, WebhookSubscription
from medservice.reconcile import Discrepancy
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.audit import AuditDraft, AuditEvent
from medservice.store.caches import Caches
from medservice.store.cards import RoundHead
from medservice.store.discrepancies import (
    DiscrepancyEntry,
    DiscrepancyFilter,
    Status,
    discrepancy_id,
)
from medservice.store.webhooks import Claim


def _not_faked(*_: Any, **__: Any) -> NoReturn:
    raise NotImplementedError("not faked: use the real store (tests/integration)")


@dataclass
class Stored:
    """What the fake database holds; shared by every unit of work of one FakeDatabase."""

    facilities: dict[str, Facility] = field(default_factory=dict)
    residents: dict[tuple[str, str], Resident] = field(default_factory=dict)
    order_changes: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    card_versions: dict[tuple[str, str], int] = field(default_factory=dict)
    incomplete_cards: set[tuple[str, str]] = field(default_factory=set)
    # (facility, resident) -> dose-dispensing cards read, oldest first
    dose_cards: dict[tuple[str, str], list[DoseDispensingCard]] = field(
        default_factory=lambda: defaultdict(list))
    versions: list[OrderVersion] = field(default_factory=list)
    records: dict[str, tuple[AdministrationRecord, bool]] = field(default_factory=dict)
    followups: dict[str, datetime] = field(default_factory=dict)  # record id -> deadline
    discrepancies: dict[str, tuple[Discrepancy, Status]] = field(default_factory=dict)
    decisions: dict[str, tuple[Decision, str]] = field(default_factory=dict)  # and note
    alerts: list[NewAlert] = field(default_factory=list)
    # alert id -> (who, when) of its first acknowledgement
    acknowledged: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    # Subscription id -> (subscription, secret, state, lease holder, lease until).
    webhooks: dict[str, tuple[WebhookSubscription, str, DeliveryState, str | None,
                              datetime | None]] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    requests: dict[tuple[str, str, str], tuple[str, bytes]] = field(default_factory=dict)
    card_changes: dict[tuple[str, str, str, int], PendingChange] = field(default_factory=dict)


class FakeFacilities:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add(self, f: Facility) -> None:
        self._db.facilities[f.facility_id] = f

    def exists(self, facility_id: str) -> bool:
        return facility_id in self._db.facilities

    def get(self, facility_id: str) -> Facility | None:
        return self._db.facilities.get(facility_id)

    def ids_without_horizon(self) -> list[str]:
        return []

    def list(self, *, limit: int, after: str | None, only: frozenset[str] | None
             ) -> list[Facility]:
        found = [f for i, f in sorted(self._db.facilities.items())
                 if (after is None or i > after) and (only is None or i in only)]
        return found[:limit]

    def replace(self, f: Facility, *, expected_etag: str) -> bool:
        current = self._db.facilities.get(f.facility_id)
        if current is None or current.etag != expected_etag:
            return False
        self._db.facilities[f.facility_id] = f
        return True


class FakeResidents:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add(self, r: Resident) -> None:
        self._db.residents[(r.facility_id, r.resident_id)] = r

    def get(self, facility_id: str, resident_id: str) -> Resident | None:
        return self._db.residents.get((facility_id, resident_id))

    def rooms(self, residents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {key: r.room for key in residents if (r := self._db.residents.get(key))}

    def list(self, facility_id: str, *, limit: int, after: tuple[str, str] | None
             ) -> list[Resident]:
        found = sorted((r for (f, _), r in self._db.residents.items() if f == facility_id),
                       key=lambda r: (r.room, r.resident_id))
        return [r for r in found if after is None or (r.room, r.resident_id) > after][:limit]

    def person_id_taken(self, facility_id: str, person_id: str) -> bool:
        return any(r.facility_id == facility_id and r.person_id == person_id
                   for r in self._db.residents.values())

    replace = _not_faked


class FakeCards:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add_version(self, v: OrderVersion) -> None:
        self._db.versions.append(v)
        self._db.order_changes[(v.facility_id, v.resident_id)] += 1

    def card_version(self, facility_id: str, resident_id: str, *, lock: bool = False
                     ) -> int | None:
        return self._db.card_versions.get((facility_id, resident_id))

    def card_complete(self, facility_id: str, resident_id: str) -> bool:
        return (facility_id, resident_id) not in self._db.incomplete_cards

    def set_card_version(self, facility_id: str, resident_id: str, card_version: int,
                         now: datetime, *, complete: bool = True) -> None:
        self._db.card_versions[(facility_id, resident_id)] = card_version
        if complete:
            self._db.incomplete_cards.discard((facility_id, resident_id))
        else:
            self._db.incomplete_cards.add((facility_id, resident_id))

    def add_dose_card(self, facility_id: str, resident_id: str, card: DoseDispensingCard,
                      now: datetime) -> None:
        self._db.dose_cards[(facility_id, resident_id)].append(
            dataclasses.replace(card, recorded_at=now))

    def latest_dose_cards(self, facility_id: str, resident_id: str | None = None
                          ) -> dict[str, DoseDispensingCard]:
        return {r: cards[-1] for (f, r), cards in self._db.dose_cards.items()
                if f == facility_id and cards and resident_id in (None, r)}

    def _of(self, keep: Callable[[OrderVersion], bool]) -> list[OrderVersion]:
        return sorted((v for v in self._db.versions if keep(v)),
                      key=lambda v: (v.facility_id, v.resident_id, v.order_id, v.version))

    def order_versions(self, facility_id: str, resident_id: str, order_id: str
                       ) -> list[OrderVersion]:
        return self._of(lambda v: (v.facility_id, v.resident_id, v.order_id)
                        == (facility_id, resident_id, order_id))

    def resident_versions(self, facility_id: str, resident_id: str
                          ) -> dict[str, list[OrderVersion]]:
        out: dict[str, list[OrderVersion]] = defaultdict(list)
        for v in self._of(lambda v: (v.facility_id, v.resident_id) == (facility_id,
                                                                        resident_id)):
            out[v.order_id].append(v)
        return dict(out)

    def facility_versions(self, facility_id: str
                          ) -> dict[str, dict[str, list[OrderVersion]]]:
        return {r: self.resident_versions(facility_id, r)
                for f, r in {(v.facility_id, v.resident_id) for v in self._db.versions}
                if f == facility_id}

    def orders_drugs(self, orders: Sequence[tuple[str, str, str]]
                     ) -> dict[tuple[str, str, str], list[tuple[datetime, Drug]]]:
        return {key: [(v.valid_from, v.content.drug) for v in found] for key in orders
                if (found := self.order_versions(*key))}

    def residents_versions(self, residents: Sequence[tuple[str, str]]
                           ) -> dict[tuple[str, str], dict[str, list[OrderVersion]]]:
        return {key: self.resident_versions(*key) for key in residents}

    def round_head(self, facility_id: str, resident_id: str,
                   records: tuple[datetime, datetime] | None = None) -> RoundHead | None:
        facility = self._db.facilities.get(facility_id)
        if facility is None:
            return None
        resident = self._db.residents.get((facility_id, resident_id))
        stamp = None if resident is None else (
            resident.etag, self._db.order_changes[(facility_id, resident_id)])
        pending = len(FakeCardChanges(self._db).pending(facility_id, resident_id))
        if records is None:
            return RoundHead(facility.etag, stamp, pending_changes=pending)
        held = [] if resident is None else FakeRecords(self._db).between(
            facility_id, resident_id, *records)
        return RoundHead(facility.etag, stamp, held, pending)


class FakeCardChanges:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def save(self, c: PendingChange) -> None:
        self._db.card_changes[(c.facility_id, c.resident_id, c.order_id, c.first_version)] = c

    def get(self, facility_id: str, resident_id: str, order_id: str, first_version: int
            ) -> PendingChange | None:
        return self._db.card_changes.get((facility_id, resident_id, order_id, first_version))

    def pending(self, facility_id: str, resident_id: str | None = None
                ) -> list[PendingChange]:
        return sorted((c for c in self._db.card_changes.values()
                       if c.facility_id == facility_id and c.status is ChangeStatus.PENDING
                       and (resident_id is None or c.resident_id == resident_id)),
                      key=lambda c: (c.detected_at, c.resident_id, c.order_id,
                                     c.first_version))

    def approve(self, c: PendingChange, etag: str, by: str, now: datetime) -> bool:
        held = self.get(c.facility_id, c.resident_id, c.order_id, c.first_version)
        if held is None or held.status is not ChangeStatus.PENDING or held.etag != etag:
            return False
        self.save(dataclasses.replace(held, status=ChangeStatus.APPROVED, approved_at=now,
                                      approved_by=by, updated_at=now,
                                      etag=str(int(etag) + 1)))
        return True


class FakeRecords:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add(self, r: AdministrationRecord, *, settles: bool,
            followup_due: datetime | None = None) -> AdministrationRecord | None:
        """None when an active record already settles the dose (the unique index)."""
        if settles and self.settling(r.dose_id or "") is not None:
            return None
        self._db.records[r.record_id] = (r, settles)
        if followup_due is not None:
            self._db.followups[r.record_id] = followup_due
        return r

    def evaluate(self, facility_id: str, resident_id: str, record_id: str, etag: str,
                 evaluation: PnEvaluation) -> bool:
        r, settles = self._db.records[record_id]
        if r.etag != etag or r.entered_in_error:
            return False
        if r.evaluation is not None:
            evaluation = dataclasses.replace(
                evaluation, first_evaluated_at=r.evaluation.first_evaluated_at)
        self._db.records[record_id] = (dataclasses.replace(
            r, evaluation=evaluation, etag=uuid.uuid4().hex[:16]), settles)
        return True

    def claim_followups(self, now: datetime, limit: int, *, facility_id: str | None = None,
                        resident_id: str | None = None
                        ) -> list[tuple[str, str, str, datetime]]:
        due = sorted((at, record_id) for record_id, at in self._db.followups.items()
                     if at <= now)
        out = []
        for _, record_id in due:
            r = self._db.records[record_id][0]
            if facility_id is None or (r.facility_id, r.resident_id) == (facility_id,
                                                                         resident_id):
                out.append((r.facility_id, r.resident_id, r.record_id, r.administered_at))
        return out[:limit]

    def mark_followups_swept(self, record_ids: Sequence[str]) -> None:
        for record_id in record_ids:
            self._db.followups.pop(record_id, None)

    def move_followups(self, facility_id: str,
                       due: Callable[[datetime, datetime], datetime]) -> int:
        moved = [i for i in self._db.followups
                 if self._db.records[i][0].facility_id == facility_id]
        for i in moved:
            r = self._db.records[i][0]
            self._db.followups[i] = due(r.administered_at, r.recorded_at)
        return len(moved)

    def between(self, facility_id: str, resident_id: str | None, start: datetime,
                end: datetime) -> list[AdministrationRecord]:
        return sorted((r for r, _ in self._db.records.values()
                       if r.facility_id == facility_id
                       and resident_id in (None, r.resident_id)
                       and start <= r.administered_at < end),
                      key=lambda r: (r.administered_at, r.record_id))

    def get(self, facility_id: str, resident_id: str, record_id: str
            ) -> AdministrationRecord | None:
        found = self._db.records.get(record_id)
        if found is None or (found[0].facility_id, found[0].resident_id) != (facility_id,
                                                                             resident_id):
            return None
        return found[0]

    def mark_entered_in_error(self, record_id: str, reason: str, by: str, at: datetime
                              ) -> bool:
        r, settles = self._db.records[record_id]
        if r.entered_in_error:
            return False
        self._db.records[record_id] = (dataclasses.replace(
            r, entered_in_error=True, correction_reason=reason, corrected_by=by,
            corrected_at=at, etag=uuid.uuid4().hex[:16]), settles)
        self._db.followups.pop(record_id, None)
        return True

    def settling(self, dose_id: str) -> AdministrationRecord | None:
        return next((r for r, settles in self._db.records.values()
                     if settles and r.dose_id == dose_id and not r.entered_in_error), None)

    of_residents = _not_faked
    page = _not_faked


class FakeDiscrepancies:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def save(self, found: Iterable[Discrepancy], now: datetime) -> list[str]:
        """New or reopened: their ids, as the store returns them."""
        fresh = []
        for d in found:
            d_id = discrepancy_id(d.key)
            stored = self._db.discrepancies.get(d_id)
            if stored is None or stored[1] is Status.WITHDRAWN:
                fresh.append(d_id)
                self._db.discrepancies[d_id] = (d, Status.OPEN)
                self._db.decisions.pop(d_id, None)  # found again: open, undecided
            elif stored[0] != d:  # found again with other facts: they replace the stored
                self._db.discrepancies[d_id] = (d, stored[1])
        return fresh

    def withdraw_absent(self, facility_id: str, resident_id: str | None, start: datetime,
                        end: datetime, produced: set[str], now: datetime) -> int:
        stale = [i for i, (d, status) in self._db.discrepancies.items()
                 if status is not Status.WITHDRAWN and d.facility_id == facility_id
                 and resident_id in (None, d.resident_id) and start <= d.occurred_at < end
                 and d.key not in produced]
        for i in stale:
            self._db.discrepancies[i] = (self._db.discrepancies[i][0], Status.WITHDRAWN)
        return len(stale)

    def save_and_withdraw(self, found: Sequence[Discrepancy], facility_id: str,
                          resident_id: str, start: datetime, end: datetime, now: datetime
                          ) -> list[str]:
        saved = self.save(found, now)
        self.withdraw_absent(facility_id, resident_id, start, end, {d.key for d in found},
                             now)
        return saved

    def open(self) -> list[Discrepancy]:
        """Test helper: the discrepancies not withdrawn."""
        return [d for d, status in self._db.discrepancies.values()
                if status is not Status.WITHDRAWN]

    def review(self, discrepancy_id_: str, etag: str, decision: Decision, note: str,
               reviewer: str, now: datetime) -> bool:
        """No etags here: the compare-and-set is the store's (tests/e2e/test_review.py)."""
        d, status = self._db.discrepancies[discrepancy_id_]
        if status is Status.WITHDRAWN:
            return False
        self._db.discrepancies[discrepancy_id_] = (d, Status.REVIEWED)
        self._db.decisions[discrepancy_id_] = (decision, note)
        return True

    def page(self, f: DiscrepancyFilter, *, limit: int, after: tuple[str, str] | None
             ) -> list[DiscrepancyEntry]:
        """By facility and occurrence range only; newest first, one page."""
        if after is not None or (f.resident_id, f.code, f.min_severity, f.status) != (
                None, None, None, None):
            _not_faked()
        rows = [(i, d, status) for i, (d, status) in self._db.discrepancies.items()
                if (f.facility_ids is None or d.facility_id in f.facility_ids)
                and (f.start is None or f.start <= d.occurred_at)
                and (f.end is None or d.occurred_at < f.end)]
        rows.sort(key=lambda row: (row[1].occurred_at, row[0]), reverse=True)
        out = []
        for i, d, status in rows[:limit]:
            decision, note = self._db.decisions.get(i, (None, ""))
            out.append(DiscrepancyEntry(i, d, d.occurred_at, status, decision, note,
                                        reviewer="", reviewed_at=None, etag=""))
        return out

    events = get = review_queue = withdraw_absent_in = _not_faked


class FakeAlertLog:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def append(self, new: Sequence[NewAlert]) -> int:
        """Once per source key, as the log's unique key makes it."""
        keys = {a.source_key for a in self._db.alerts}
        added = [a for a in new if a.source_key not in keys]
        self._db.alerts += added
        return len(added)

    def _log(self, facility_id: str) -> list[Alert]:
        """The facility's alerts with positions in the order they were appended."""
        mine = [a for a in self._db.alerts if a.facility_id == facility_id]
        return [Alert(alert_id=a.alert_id, position=i, facility_id=a.facility_id,
                      kind=a.kind, audience=a.audience, severity=a.severity,
                      summary=a.summary, created_at=a.created_at, shift_id=a.shift_id,
                      shift_date=a.shift_date, discrepancy_id=a.discrepancy_id,
                      resident_id=a.resident_id, escalates=a.escalates,
                      acknowledged_at=self._db.acknowledged.get(a.alert_id, ("", None))[1],
                      acknowledged_by=self._db.acknowledged.get(a.alert_id, ("", None))[0])
                for i, a in enumerate(mine, start=1)]

    def acknowledge(self, facility_id: str, alert_id: str, by: str, now: datetime) -> bool:
        """Acknowledge once; False when it already was (or there is no such alert)."""
        known = any(a.alert_id == alert_id and a.facility_id == facility_id
                    for a in self._db.alerts)
        if not known or alert_id in self._db.acknowledged:
            return False
        self._db.acknowledged[alert_id] = (by, now)
        return True

    def after(self, facility_id: str, position: int, limit: int) -> list[Alert]:
        return [a for a in self._log(facility_id) if a.position > position][:limit]

    def bounds(self, facility_id: str) -> tuple[int, int]:
        return 0, len(self._log(facility_id))

    claim_escalations = facilities_with_logs = _not_faked
    get = page = prune = _not_faked


class FakeWebhooks:
    """Subscriptions and their cursors' leases, as store.webhooks keeps them."""

    def __init__(self, db: Stored, log: FakeAlertLog) -> None:
        self._db = db
        self._log = log

    def add(self, s: WebhookSubscription, secret: str, position: int) -> None:
        self._db.webhooks[s.subscription_id] = (
            s, secret, DeliveryState(position, next_attempt_at=s.created_at), None, None)

    def get(self, facility_id: str, subscription_id: str
            ) -> tuple[WebhookSubscription, DeliveryState] | None:
        found = self._db.webhooks.get(subscription_id)
        if found is None or found[0].facility_id != facility_id:
            return None
        return found[0], found[2]

    def page(self, facility_id: str, *, limit: int, after: str | None
             ) -> list[tuple[WebhookSubscription, DeliveryState]]:
        return [(s, st) for i, (s, _, st, _, _) in sorted(self._db.webhooks.items())
                if s.facility_id == facility_id and (after is None or i > after)][:limit]

    def delete(self, facility_id: str, subscription_id: str) -> bool:
        if self.get(facility_id, subscription_id) is None:
            return False
        del self._db.webhooks[subscription_id]
        return True

    def pending(self, subscription_id: str) -> int:
        s, _, st, _, _ = self._db.webhooks[subscription_id]
        return sum(1 for a in self._log.after(s.facility_id, st.position, 10**9)
                   if a.audience is s.audience)

    def any_due(self, now: datetime) -> bool:
        return any(self._due(st, s, until, now)
                   for s, _, st, _, until in self._db.webhooks.values())

    def _due(self, st: DeliveryState, s: WebhookSubscription, until: datetime | None,
             now: datetime) -> bool:
        return (self._log.bounds(s.facility_id)[1] > st.position
                and (st.next_attempt_at or now) <= now and (until is None or until <= now))

    def claim(self, holder: str, now: datetime, lease_until: datetime) -> Claim | None:
        for i, (s, secret, st, _, until) in sorted(
                self._db.webhooks.items(), key=lambda kv: kv[1][2].next_attempt_at or now):
            if self._due(st, s, until, now):
                self._db.webhooks[i] = (s, secret, st, holder, lease_until)
                return Claim(s, secret, st)
        return None

    def _held(self, subscription_id: str, holder: str) -> bool:
        found = self._db.webhooks.get(subscription_id)
        return found is not None and found[3] == holder

    def advance(self, subscription_id: str, holder: str, position: int,
                delivered: tuple[str, datetime] | None, lease_until: datetime) -> bool:
        if not self._held(subscription_id, holder):
            return False
        s, secret, st, _, _ = self._db.webhooks[subscription_id]
        st = dataclasses.replace(st, position=position)
        if delivered is not None:
            st = dataclasses.replace(st, last_delivered_alert=delivered[0],
                                     last_delivered_at=delivered[1], failing_since=None,
                                     attempts=0, next_attempt_at=delivered[1])
        self._db.webhooks[subscription_id] = (s, secret, st, holder, lease_until)
        return True

    def fail(self, subscription_id: str, holder: str, error: str, now: datetime,
             next_attempt_at: datetime) -> bool:
        if not self._held(subscription_id, holder):
            return False
        s, secret, st, _, _ = self._db.webhooks[subscription_id]
        st = dataclasses.replace(st, attempts=st.attempts + 1, last_error=error,
                                 failing_since=st.failing_since or now,
                                 next_attempt_at=next_attempt_at)
        self._db.webhooks[subscription_id] = (s, secret, st, None, None)
        return True

    def release(self, subscription_id: str, holder: str) -> None:
        if self._held(subscription_id, holder):
            s, secret, st, _, _ = self._db.webhooks[subscription_id]
            self._db.webhooks[subscription_id] = (s, secret, st, None, None)


class FakeSchedule:
    """Materialising is the store's business (tests/integration): a no-op here."""

    def horizon(self, facility_id: str) -> datetime | None:
        return None

    def hold_order_changes(self, facility_id: str, residents: Any) -> dict[str, int]:
        return {}

    def replace(self, *_: Any, **__: Any) -> None:
        return None

    def stamps(self, facility_ids: Any) -> dict[Any, Any]:
        return {}

    def save_stamps(self, stamps: Any) -> None:
        return None

    check_stamps = claim_closed = claim_horizon = counts = ensure_horizon = _not_faked
    examined_residents = hold_schedule = mark_swept = prune = _not_faked
    set_horizon = unsettled = use_batch_memory = _not_faked


class FakeAudit:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add(self, e: AuditEvent) -> None:
        self._db.audit.append(e)

    def add_all(self, events: Sequence[AuditEvent]) -> None:
        self._db.audit.extend(events)

    page = _not_faked


class FakeRequests:
    def __init__(self, db: Stored) -> None:
        self._db = db

    def add(self, subject: str, method: str, request_id: str, request_hash: str,
            response: bytes, now: datetime) -> None:
        self._db.requests[(subject, method, request_id)] = (request_hash, response)

    def get(self, subject: str, method: str, request_id: str) -> tuple[str, bytes] | None:
        return self._db.requests.get((subject, method, request_id))


class FakeUnitOfWork:
    """A transaction over `Stored`: what it changes is kept only on commit."""

    def __init__(self, database: FakeDatabase, write: bool) -> None:
        self._database = database
        self._write = write
        self.caches = database.caches
        self.on_alerts: Callable[[str, int], None] | None = None
        self.audit_draft: AuditDraft | None = None
        self.committed = False

    @property
    def writes(self) -> bool:
        return self._write

    def __enter__(self) -> FakeUnitOfWork:
        self._db = dataclasses.replace(
            self._database.stored,
            **{f.name: _copy(getattr(self._database.stored, f.name))
               for f in dataclasses.fields(Stored)})
        self.facilities = FakeFacilities(self._db)
        self.residents = FakeResidents(self._db)
        self.requests = FakeRequests(self._db)
        self.cards = FakeCards(self._db)
        self.card_changes = FakeCardChanges(self._db)
        self.records = FakeRecords(self._db)
        self.discrepancies = FakeDiscrepancies(self._db)
        self.alerts = FakeAlertLog(self._db)
        self.schedule = FakeSchedule()
        self.audit = FakeAudit(self._db)
        self.webhooks = FakeWebhooks(self._db, self.alerts)
        return self

    def commit(self) -> None:
        draft = self.audit_draft
        if self._write and draft is not None and not draft.written:
            self._db.audit.append(draft.completed("OK"))
        self._database.stored = self._db
        self.committed = True
        if draft is not None:
            draft.written = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None


def _copy(value: Any) -> Any:
    if isinstance(value, defaultdict):
        return defaultdict(value.default_factory, value)
    return type(value)(value)


class FakeDatabase:
    """A unit-of-work factory over one in-memory database, with its own caches."""

    def __init__(self) -> None:
        self.stored = Stored()
        self.caches = Caches()
        self.id = uuid.uuid4().hex

    def __call__(self, *, write: bool = True) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, write)

    def alerts(self) -> list[NewAlert]:
        return list(self.stored.alerts)

    def open_discrepancies(self) -> list[Discrepancy]:
        return FakeDiscrepancies(self.stored).open()


def alert_ids(alerts: Iterable[Alert | NewAlert]) -> list[str]:
    return sorted(a.alert_id for a in alerts)


def as_factory(db: FakeDatabase) -> UnitOfWorkFactory:
    """The fake as the use cases see it: mypy proves it keeps the Protocol."""
    return db
