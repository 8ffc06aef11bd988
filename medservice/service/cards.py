"""Use cases of the medicine card mirror (DOMAIN.md §2). Each runs in the caller's unit of
work. Nothing is ever updated or deleted: every change is a new order version.

What cannot be read is never lost (issue 21). An order an import cannot read that is on
the card is kept as the mirror holds it and flagged: a new version of it, valid from the
import, whose content is the held one with `OrderContent.cannot_check` set to why. That
flag goes down the one NEEDS_MANUAL_SCHEDULE path (`OrderContent.needs_attention`): a note
on the round list, a reason in CheckDose, a discrepancy in the pharmacist's review queue
(keyed by the flagged version). The order's doses stay scheduled as last read, so a missed
dose is still found. The next readable version of the order clears the flag. A card with
an unreadable order is recorded as read but not applied whole (`CardView.complete`): an
older card is still refused, and the same card version is applied again instead of being
skipped, so a corrected re-import applies."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from medservice.domain.clock import FacilityClock
from medservice.domain.errors import FailedPrecondition, FieldViolation, NotFound, require
from medservice.domain.facility import Facility
from medservice.domain.fhir_timing import TimingDosage, awaits_first_dose
from medservice.domain.order_codec import content_to_dict
from medservice.domain.orders import (
    OrderContent,
    OrderState,
    OrderVersion,
    Pause,
    effective_content,
    in_force,
    latest_known,
    order_state,
    order_timeline,
)
from medservice.imports.result import (
    ImportProblem,
    ImportResult,
    OrderEvent,
    PauseEvent,
    UnpauseEvent,
)
from medservice.service.card_changes import note_changes
from medservice.service.facilities import get_facility, get_resident
from medservice.service.horizon import refresh_resident_doses
from medservice.service.reconciliation import reconcile_resident
from medservice.service.unit_of_work import UnitOfWork


class ChangeKind(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    # Could not be read and is on the card: kept as held, flagged cannot-check.
    KEPT_UNREADABLE = "kept_unreadable"
    # Could not be read and is not on the card (or the card version is held whole already):
    # nothing of it applied.
    REFUSED = "refused"


@dataclass(frozen=True)
class OrderChange:
    order_id: str  # the source's identifier; "" for a refused order without a readable one
    kind: ChangeKind
    version: int  # the order's mirror version after the change; 0 when none is held
    reason: str = ""  # KEPT_UNREADABLE, REFUSED: where in the document and why


@dataclass(frozen=True)
class CardOrder:
    """An order on the card as it applies at a valid time, as known at a recorded time."""

    version: OrderVersion  # the version in force (its content's dosage etc. apply)
    content: OrderContent  # with the pauses and discontinuation known at that time
    state: OrderState

    @property
    def order_id(self) -> str:
        return self.version.order_id


@dataclass(frozen=True)
class CardView:
    facility_id: str
    resident_id: str
    card_version: int
    orders: list[CardOrder]
    valid_at: datetime
    known_at: datetime
    complete: bool = True  # card_version was applied whole (see the module's note)


def _view(facility: Facility, versions: list[OrderVersion], valid_at: datetime,
          known_at: datetime) -> CardOrder | None:
    found = in_force(versions, valid_at, known_at)
    if found is None:
        return None
    version, content = found
    return CardOrder(version, content,
                     order_state(content, valid_at, FacilityClock.from_facility(facility)))


def get_card(uow: UnitOfWork, facility_id: str, resident_id: str, valid_at: datetime,
             known_at: datetime) -> CardView:
    facility = get_facility(uow, facility_id)
    get_resident(uow, facility_id, resident_id)
    card_version = uow.cards.card_version(facility_id, resident_id) or 0
    views = []
    for versions in uow.cards.resident_versions(facility_id, resident_id).values():
        view = _view(facility, versions, valid_at, known_at)
        if view is not None:
            views.append(view)
    views.sort(key=lambda v: (v.content.drug.name.lower(), v.order_id))
    return CardView(facility_id, resident_id, card_version, views, valid_at, known_at,
                    uow.cards.card_complete(facility_id, resident_id))


def get_order(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
              valid_at: datetime, known_at: datetime) -> CardOrder:
    facility = get_facility(uow, facility_id)
    versions = _versions(uow, facility_id, resident_id, order_id)
    view = _view(facility, versions, valid_at, known_at)
    if view is None:
        raise NotFound("the order is not on the card at that time", reason="ORDER_NOT_IN_FORCE")
    return view


def list_order_versions(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str
                        ) -> list[OrderVersion]:
    return _versions(uow, facility_id, resident_id, order_id)


def _versions(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str
              ) -> list[OrderVersion]:
    versions = uow.cards.order_versions(facility_id, resident_id, order_id)
    if not versions:
        raise NotFound("no such order", reason="ORDER_NOT_FOUND")
    return versions


def sync_card(uow: UnitOfWork, facility_id: str, resident_id: str, card_version: int | None,
              orders: list[OrderContent], valid_from: datetime, now: datetime,
              *, whole_card: bool = True, unreadable: Sequence[ImportProblem] = ()
              ) -> tuple[CardView, list[OrderChange]]:
    """Apply the source's card: differences become new order versions valid from
    `valid_from`. A whole card also removes the orders it no longer holds; a delta (an
    import of some orders) leaves the others alone. card_version None (a document that
    carries none) is applied without the staleness check and keeps the stored version.

    `unreadable`: what the importer could not read (its problems). An order named there
    is never applied from the document: on the card, it is kept as held and flagged
    cannot-check (KEPT_UNREADABLE); not on the card, it is REFUSED. A whole card with an
    order whose identifier could not be read removes nothing: each held order it does not
    list may be that one, and is kept and flagged instead. With any unreadable order the
    card version is recorded as read, not applied whole; an equal card version is skipped
    only when the mirror holds it whole."""
    _check_unique(orders)
    get_resident(uow, facility_id, resident_id)
    stored = uow.cards.card_version(facility_id, resident_id, lock=True)
    held_whole = uow.cards.card_complete(facility_id, resident_id)
    problems = [p for p in unreadable if p.about_order]
    named: dict[str, ImportProblem] = {}
    for p in problems:
        if p.source_order_id:
            named.setdefault(p.source_order_id, p)
    unidentified = [p for p in problems if not p.source_order_id]
    readable = [o for o in orders if o.order_id not in named]  # read whole or not at all
    versioned = card_version is not None
    if card_version is None:
        card_version = stored or 0
    elif stored is not None and card_version < stored:
        raise FailedPrecondition(
            f"card version {card_version} is older than the mirror's {stored}",
            reason="STALE_CARD_VERSION")
    existing = uow.cards.resident_versions(facility_id, resident_id)
    if versioned and stored is not None and card_version == stored and held_whole:
        changes = [OrderChange(o.order_id, ChangeKind.UNCHANGED,
                               existing[o.order_id][-1].version if o.order_id in existing else 0)
                   for o in readable]
        changes += [OrderChange(p.source_order_id, ChangeKind.REFUSED, 0,
                                f"{_where(p)}; the mirror holds this card version whole")
                    for p in problems]
        return get_card(uow, facility_id, resident_id, now, now), changes
    changes = []
    added: list[OrderVersion] = []  # what the source changed, to classify (issue 16)
    for content in readable:
        history = existing.get(content.order_id, [])
        change, version = _apply(uow, facility_id, resident_id, content, history,
                                 valid_from, now)
        changes.append(change)
        added += [version] if version is not None else []
    written = any(c.kind is not ChangeKind.UNCHANGED for c in changes)
    for order_id, problem in named.items():
        change, wrote = _keep(uow, order_id, existing.get(order_id, []),
                              _flag(f"the source's version could not be read "
                                    f"({problem.detail})"), _where(problem), now)
        changes.append(change)
        written = written or wrote
    changes += [OrderChange("", ChangeKind.REFUSED, 0, _where(p)) for p in unidentified]
    if whole_card:
        listed = {o.order_id for o in readable} | set(named)
        for order_id, history in sorted(existing.items()):
            latest = history[-1]
            if order_id in listed or latest.removed:
                continue
            if unidentified:  # it may be the order that could not be identified: keep it
                where = _where(unidentified[0])
                change, wrote = _keep(uow, order_id, history, _flag(
                    f"the card holds an order whose identifier could not be read ({where}), "
                    "which may be this one"), where, now)
                changes.append(change)
                written = written or wrote
                continue
            removed = dataclasses.replace(latest, version=latest.version + 1,
                                          valid_from=valid_from, recorded_at=now,
                                          removed=True)
            uow.cards.add_version(removed)
            changes.append(OrderChange(order_id, ChangeKind.REMOVED, removed.version))
            added.append(removed)
            written = True
    complete = not problems if versioned else held_whole
    uow.cards.set_card_version(facility_id, resident_id, card_version, now, complete=complete)
    if existing:  # the first orders of a card are its baseline: nothing to approve
        note_changes(uow, facility_id, resident_id, existing, added, now)
    if written:
        _reconcile_since(uow, facility_id, resident_id, valid_from, now)
    return get_card(uow, facility_id, resident_id, max(valid_from, now), now), changes


# The flag ends up in a discrepancy's description (at most 1000 characters) with more text.
_MAX_FLAG = 400


def _flag(text: str) -> str:
    return text if len(text) <= _MAX_FLAG else text[:_MAX_FLAG - 1] + "…"


def _where(problem: ImportProblem) -> str:
    return f"{problem.location}: {problem.reason}" if problem.location else problem.reason


def _keep(uow: UnitOfWork, order_id: str, history: list[OrderVersion], flag: str, where: str,
          now: datetime) -> tuple[OrderChange, bool]:
    """An order that could not be read: REFUSED when it is not on the card from `now` on;
    else KEPT_UNREADABLE, flagged cannot-check from now on, keeping what the mirror holds at
    every valid time from now (a version dated later too): a flagged copy of each version in
    force from now on, recorded now, with the latest known pauses and discontinuation.
    Nothing is added when it is flagged so already. Returns the change and whether versions
    were added."""
    pieces = [p for p in order_timeline(history) if p.end is None or p.end > now]
    if all(p.version.removed for p in pieces):  # also: no history at all
        return OrderChange(order_id, ChangeKind.REFUSED, 0, where), False
    version = history[-1].version
    if all(p.version.content.cannot_check == flag for p in pieces):
        return OrderChange(order_id, ChangeKind.KEPT_UNREADABLE, version, where), False
    latest = latest_known(history)
    assert latest is not None
    for piece in pieces:
        version += 1
        held = effective_content(piece.version, latest)
        uow.cards.add_version(dataclasses.replace(
            piece.version, content=dataclasses.replace(held, cannot_check=flag),
            version=version, valid_from=max(piece.start, now), recorded_at=now))
    return OrderChange(order_id, ChangeKind.KEPT_UNREADABLE, version, where), True


def check_document_person(person_id: str, result: ImportResult, *,
                          unidentified: bool) -> None:
    """Whether a document may be applied to the resident with this person id (patient
    identity, the first of the five rights): it must name the resident by CPR number, or,
    when it names nobody by CPR number, the caller must say so (`unidentified`, recorded in
    the audit by the API). A CPR number that differs is refused whatever the caller says.
    The messages name neither person."""
    if result.person_id and result.person_id != person_id:
        raise FailedPrecondition("subject: the document is about another person than this "
                                 "resident", reason="PERSON_MISMATCH",
                                 metadata={"field": "subject"})
    if result.person_unidentified and not unidentified:
        raise FailedPrecondition(
            "subject: the document does not identify its patient by CPR number (identifier "
            "system urn:oid:1.2.208.176.1.2, on the subject or the Patient it references): "
            "check that it is about this resident and import it again with unidentified set "
            "(medctl: --unidentified); the audit trail records who did",
            reason="SUBJECT_NOT_IDENTIFIED", metadata={"field": "subject"})


def import_card(uow: UnitOfWork, facility_id: str, resident_id: str, result: ImportResult,
                now: datetime, *, unidentified: bool = False
                ) -> tuple[CardView, list[OrderChange]]:
    """Apply what an importer read, when it is about this resident (check_document_person)."""
    resident = get_resident(uow, facility_id, resident_id)
    check_document_person(resident.person_id, result, unidentified=unidentified)
    card, changes = sync_card(uow, facility_id, resident_id, result.card_version,
                              result.orders, now, now, whole_card=result.whole_card,
                              unreadable=result.problems)
    if result.dose_card is not None:  # kept for the inspection checks (card_checks)
        uow.cards.add_dose_card(facility_id, resident_id, result.dose_card, now)
    for event in result.events:
        view = _apply_event(uow, facility_id, resident_id, event, now)
        changes.append(OrderChange(view.order_id, ChangeKind.UPDATED, view.version.version))
    if result.events:
        card = get_card(uow, facility_id, resident_id, now, now)
    return card, changes


def _apply_event(uow: UnitOfWork, facility_id: str, resident_id: str, event: OrderEvent,
                 now: datetime) -> CardOrder:
    if isinstance(event, PauseEvent):
        return pause_order(uow, facility_id, resident_id, event.order_id, event.start,
                           event.end, now)
    if isinstance(event, UnpauseEvent):
        return resume_order(uow, facility_id, resident_id, event.order_id, None, now)
    return discontinue_order(uow, facility_id, resident_id, event.order_id, event.at, now)


def _check_unique(orders: list[OrderContent]) -> None:
    seen: set[str] = set()
    problems = []
    for i, o in enumerate(orders):
        if o.order_id in seen:
            problems.append(FieldViolation(f"card.orders[{i}].name", "appears twice"))
        seen.add(o.order_id)
    require(problems)


def _apply(uow: UnitOfWork, facility_id: str, resident_id: str, content: OrderContent,
           history: list[OrderVersion], valid_from: datetime, now: datetime
           ) -> tuple[OrderChange, OrderVersion | None]:
    """The change, and the version it added (None: unchanged)."""
    latest = history[-1] if history else None
    if latest is not None and not latest.removed:  # the mirror's own: no source sends it
        content = dataclasses.replace(content, first_given_at=latest.content.first_given_at)
    if latest is not None and not latest.removed and \
            content_to_dict(latest.content) == content_to_dict(content):
        return OrderChange(content.order_id, ChangeKind.UNCHANGED, latest.version), None
    version = OrderVersion(facility_id, resident_id, content,
                           (latest.version + 1) if latest else 1, valid_from, now)
    uow.cards.add_version(version)
    kind = ChangeKind.CREATED if latest is None or latest.removed else ChangeKind.UPDATED
    return OrderChange(content.order_id, kind, version.version), version


def _change_state(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
                  content: OrderContent, now: datetime, since: datetime) -> CardOrder:
    """A new version that changes only pauses or discontinuation. It is valid from now:
    those fields are absolute times and apply where they say (see effective_content).
    Doses from `since` on are reconciled again: a back-dated discontinuation re-examines
    the doses given after its time."""
    versions = _versions(uow, facility_id, resident_id, order_id)
    latest = versions[-1]
    version = dataclasses.replace(latest, content=content, version=latest.version + 1,
                                  valid_from=now, recorded_at=now)
    uow.cards.add_version(version)
    # Takes effect at once (it is in the mirror now); still asks to be acknowledged.
    note_changes(uow, facility_id, resident_id, {order_id: versions}, [version], now)
    _reconcile_since(uow, facility_id, resident_id, since, now)
    facility = get_facility(uow, facility_id)
    view = _view(facility, [*versions, version], now, now)
    assert view is not None
    return view


def anchor_first_dose(uow: UnitOfWork, facility_id: str, resident_id: str,
                      versions: list[OrderVersion], given_at: datetime, now: datetime) -> bool:
    """A course that begins at its first administration (fhir_timing.awaits_first_dose)
    was first given at `given_at`: a new version of the order (`versions`, its history),
    valid from now, records the instant (OrderContent.first_given_at), so its later doses
    follow from it; the resident's doses are refreshed and reconciled from then. The
    caller asks `administration.anchors_course` first (only the record that settles the
    open first dose anchors). False, and nothing written, for any other order or one
    anchored already."""
    latest = versions[-1] if versions else None
    if latest is None or latest.removed or latest.content.first_given_at is not None:
        return False
    c = latest.content
    if not isinstance(c.dosage, TimingDosage) or not awaits_first_dose(
            c.dosage, order_start=c.treatment_start):
        return False
    _change_state(uow, facility_id, resident_id, latest.order_id,
                  dataclasses.replace(c, first_given_at=given_at), now, given_at)
    return True


def _current(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str
             ) -> OrderVersion:
    latest = _versions(uow, facility_id, resident_id, order_id)[-1]
    if latest.removed:
        raise FailedPrecondition("the order is no longer on the card", reason="ORDER_REMOVED")
    return latest


def pause_order(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
                start: datetime | None, end: datetime | None, now: datetime) -> CardOrder:
    latest = _current(uow, facility_id, resident_id, order_id)
    start = start or now
    if end is not None and end <= start:
        require([FieldViolation("pause_end", "must be after pause_start")])
    c = latest.content
    if c.discontinued_at is not None:
        raise FailedPrecondition("a discontinued order cannot be paused",
                                 reason="ORDER_DISCONTINUED")
    if any(_overlaps(p, start, end) for p in c.pauses):
        raise FailedPrecondition("the order is already paused then", reason="ALREADY_PAUSED")
    content = dataclasses.replace(c, pauses=(*c.pauses, Pause(start, end)))
    return _change_state(uow, facility_id, resident_id, order_id, content, now, start)


def _overlaps(p: Pause, start: datetime, end: datetime | None) -> bool:
    return (p.end is None or start < p.end) and (end is None or p.start is None
                                                 or p.start < end)


def resume_order(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
                 at: datetime | None, now: datetime) -> CardOrder:
    """End the pause in force at `at` (default now), or the next one not yet begun."""
    latest = _current(uow, facility_id, resident_id, order_id)
    at = at or now
    pauses = list(latest.content.pauses)
    for i, p in enumerate(pauses):
        if p.end is None or p.end > at:
            if p.start is not None and p.start >= at:
                del pauses[i]  # never began: cancelled (the history keeps it)
            else:
                pauses[i] = Pause(p.start, at)
            content = dataclasses.replace(latest.content, pauses=tuple(pauses))
            return _change_state(uow, facility_id, resident_id, order_id, content, now, at)
    raise FailedPrecondition("the order has no pause to end", reason="NOT_PAUSED")


def discontinue_order(uow: UnitOfWork, facility_id: str, resident_id: str, order_id: str,
                      at: datetime | None, now: datetime) -> CardOrder:
    """Discontinue at `at`, which may lie in the past (a back-dated discontinuation)."""
    latest = _current(uow, facility_id, resident_id, order_id)
    if latest.content.discontinued_at is not None:
        raise FailedPrecondition("the order is already discontinued",
                                 reason="ALREADY_DISCONTINUED")
    content = dataclasses.replace(latest.content, discontinued_at=at or now)
    return _change_state(uow, facility_id, resident_id, order_id, content, now, at or now)


def reverse_discontinuation(uow: UnitOfWork, facility_id: str, resident_id: str,
                            order_id: str, now: datetime) -> CardOrder:
    latest = _current(uow, facility_id, resident_id, order_id)
    if latest.content.discontinued_at is None:
        raise FailedPrecondition("the order is not discontinued", reason="NOT_DISCONTINUED")
    since = latest.content.discontinued_at
    content = dataclasses.replace(latest.content, discontinued_at=None)
    return _change_state(uow, facility_id, resident_id, order_id, content, now, since)


# An order change re-examines at most this far back; older history is left to a batch
# reconciliation (ReconcileFacility) run on purpose.
RECONCILE_BACK = timedelta(days=31)


def _reconcile_since(uow: UnitOfWork, facility_id: str, resident_id: str, since: datetime,
                     now: datetime) -> None:
    start = max(min(since, now), now - RECONCILE_BACK)
    refresh_resident_doses(uow, facility_id, resident_id, now)
    reconcile_resident(uow, facility_id, resident_id, start, now, now)
