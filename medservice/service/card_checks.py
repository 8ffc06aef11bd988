"""The inspection checks of a facility's medicine cards (issue 16 part 3): the findings of
`domain.card_checks.card_findings` for each resident, from the mirror as it is now. Read
by ListCardFindings, the printed report (`reports/card_checks.py`) and the round list's
notes (`service.rounds.shift_schedule`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from medservice.domain.card_changes import overdue_changes
from medservice.domain.card_checks import (
    CardFinding,
    Checkpoint,
    card_findings,
    overdue_approval,
    vague_indications,
)
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import Drug, OrderVersion
from medservice.domain.rounds import NoteKind, OrderNote
from medservice.reconcile import FacilityRules
from medservice.service.facilities import all_residents, get_facility, get_resident
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork

_RANK = {c: i for i, c in enumerate(Checkpoint)}


@dataclass(frozen=True)
class ResidentFinding:
    """A finding with the resident it is about (room and name for lists and paper)."""

    resident: Resident
    finding: CardFinding

    @property
    def key(self) -> list[str | int]:
        """Its place in a facility's list: room order, then order id and checkpoint."""
        r = self.resident
        return [r.room, r.resident_id, self.finding.order_id, _RANK[self.finding.checkpoint]]


@dataclass(frozen=True)
class CardChecks:
    facility: Facility
    findings: list[ResidentFinding]  # in `ResidentFinding.key` order
    residents_checked: int
    as_of: datetime  # facility-local


def pending_too_long(uow: UnitOfWork, facility: Facility,
                     versions: Mapping[str, Mapping[str, Sequence[OrderVersion]]],
                     now: datetime) -> list[CardFinding]:
    """The facility's APPROVAL_OVERDUE findings: the clinical changes waiting for approval
    longer than the facility allows (`card_changes.overdue_changes`, the approval rule),
    each worded by `card_checks.overdue_approval` with the order's drug as on the card."""
    clock = FacilityRules.from_facility(facility).clock
    late = overdue_changes(uow.card_changes.pending(facility.facility_id), now,
                           facility.approval_overdue_minutes)
    found = []
    for p in late:
        history = versions.get(p.resident_id, {}).get(p.order_id)
        drug = history[-1].content.drug if history else Drug(p.drug_name, "")
        found.append(overdue_approval(p.resident_id, p.order_id, drug, p.detected_at, clock))
    return found


def facility_findings(uow: UnitOfWork, facility: Facility,
                      versions: Mapping[str, Mapping[str, Sequence[OrderVersion]]],
                      now: datetime, *, resident_id: str | None = None,
                      overdue_approvals: Sequence[CardFinding] | None = None
                      ) -> dict[str, list[CardFinding]]:
    """resident id -> the findings about their card now, for every resident in `versions`
    (or only `resident_id`). `overdue_approvals`: the APPROVAL_OVERDUE findings (default:
    `pending_too_long`), passed through to `card_findings`."""
    if overdue_approvals is None:
        overdue_approvals = pending_too_long(uow, facility, versions, now)
    clock = FacilityRules.from_facility(facility).clock
    dose_cards = uow.cards.latest_dose_cards(facility.facility_id, resident_id)
    vague = vague_indications(facility.vague_indication_terms)
    out = {}
    for rid in set(versions) | set(dose_cards):
        if resident_id is not None and rid != resident_id:
            continue
        out[rid] = card_findings(rid, versions.get(rid, {}), now, clock,
                                 vague=vague,
                                 dose_card=dose_cards.get(rid),
                                 overdue_approvals=overdue_approvals)
    return out


def card_checks(uow: UnitOfWork, facility_id: str, now: datetime, *,
                resident_id: str | None = None,
                overdue_approvals: Sequence[CardFinding] | None = None) -> CardChecks:
    """Every finding about the facility's cards (or one resident's) now, in room order.
    `overdue_approvals`: as `facility_findings` takes them (default: `pending_too_long`)."""
    facility = get_facility(uow, facility_id)
    if resident_id is not None:
        residents = [get_resident(uow, facility_id, resident_id)]
        versions = {resident_id: uow.cards.resident_versions(facility_id, resident_id)}
    else:
        residents = all_residents(uow, facility_id)
        versions = uow.cards.facility_versions(facility_id)
    by_resident = facility_findings(uow, facility, versions, now, resident_id=resident_id,
                                    overdue_approvals=overdue_approvals)
    findings = [ResidentFinding(r, f) for r in residents
                for f in by_resident.get(r.resident_id, [])]
    findings.sort(key=lambda rf: rf.key)
    clock = FacilityRules.from_facility(facility).clock
    return CardChecks(facility, findings, len(residents), clock.local(now))


def page_of(checks: CardChecks, page: Page) -> tuple[list[ResidentFinding], str]:
    """One page of the findings (keyset on `ResidentFinding.key`)."""
    after = page.after
    rows = [rf for rf in checks.findings if after is None or rf.key > after][: page.size + 1]
    items = rows[: page.size]
    return items, next_token(page, rows, items[-1].key if items else None)


# Said on the round list already, by the NEEDS_MANUAL_SCHEDULE note of the same order.
_NOTED_ELSEWHERE = frozenset({Checkpoint.DOSAGE_NOT_STRUCTURED})


def card_check_notes(findings: Sequence[CardFinding]) -> list[OrderNote]:
    """The round list's notes of a resident's findings: checkpoint, problem, action."""
    return [OrderNote(f.order_id, f.drug, NoteKind.CARD_CHECK,
                      f"{f.title}: {f.problem}. {f.action}")
            for f in findings if f.checkpoint not in _NOTED_ELSEWHERE]
