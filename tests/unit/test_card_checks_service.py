"""The inspection checks' use cases on the in-memory unit of work (tests/fakes.py): the
dose-dispensing card an import keeps, the latest one compared, room order, one resident,
paging, the overdue approvals passed through, and the round list's notes. Over gRPC on
both stores: tests/e2e/test_card_checks.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from medservice.domain.card_checks import (
    Checkpoint,
    DoseCardLine,
    DoseDispensingCard,
    overdue_approval,
)
from medservice.domain.dosage import FreeTextDosage
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import DispensingMode, Drug
from medservice.domain.rounds import NoteKind
from medservice.imports.result import ImportResult
from medservice.service import cards, facilities, rounds
from medservice.service.card_checks import card_checks, page_of
from medservice.service.paging import read_page
from tests.fakes import FakeDatabase
from tests.unit.test_reconcile_builders import CLOCK, DAY, EPOCH, MORNING, at, content

F = "home"
NOW = at(10)
GOOD = "mod forhøjet blodtryk"


def _home() -> FakeDatabase:
    """r2 in room 101 with a vague indication and a free-text order; r1 in room 102 with a
    dose-dispensed order the dose card it was imported from lists."""
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, Facility(F, "Home"), EPOCH)
        facilities.create_resident(u, Resident("r1", F, "010145-1234", "A", "102"), EPOCH)
        facilities.create_resident(u, Resident("r2", F, "020245-1234", "B", "101"), EPOCH)
        free = content("o2", FreeTextDosage("efter skema"), indication=GOOD)
        cards.sync_card(u, F, "r2", 1, [content("o1", indication="ved behov"), free],
                        EPOCH, EPOCH)
        pouch = content("p1", indication=GOOD, dispensing_mode=DispensingMode.DOSE_DISPENSED)
        cards.import_card(u, F, "r1", ImportResult(
            orders=[pouch], dose_card=DoseDispensingCard("c1", (DoseCardLine("p1"),))), EPOCH)
        u.commit()
    return db


def _found(db: FakeDatabase, **kwargs: object) -> list[tuple[str, str, Checkpoint]]:
    with db(write=False) as u:
        checks = card_checks(u, F, NOW, **kwargs)  # type: ignore[arg-type]
    return [(rf.resident.resident_id, rf.finding.order_id, rf.finding.checkpoint)
            for rf in checks.findings]


def test_findings_in_room_order_and_the_dose_card_the_import_kept() -> None:
    db = _home()
    assert _found(db) == [("r2", "o1", Checkpoint.INDICATION),
                          ("r2", "o2", Checkpoint.DOSAGE_NOT_STRUCTURED)]
    assert _found(db, resident_id="r1") == []


def test_the_latest_dose_card_is_compared() -> None:
    db = _home()
    with db() as u:  # a later card without p1, with a line the mirror has no order of
        cards.import_card(u, F, "r1", ImportResult(dose_card=DoseDispensingCard(
            "c2", (DoseCardLine("x9", drug_name="Corodil"),))), NOW - timedelta(hours=1))
        u.commit()
    assert _found(db, resident_id="r1") == [("r1", "p1", Checkpoint.DOSE_DISPENSING_CARD),
                                            ("r1", "x9", Checkpoint.DOSE_DISPENSING_CARD)]
    with db(write=False) as u:
        assert u.cards.latest_dose_cards(F)["r1"].card_id == "c2"


def test_paging_gives_every_finding_once() -> None:
    db = _home()
    with db(write=False) as u:
        checks = card_checks(u, F, NOW)
    page = read_page(1, "", {"f": F})
    first, token = page_of(checks, page)
    rest, last = page_of(checks, read_page(1, token, {"f": F}))
    assert [*first, *rest] == checks.findings and last == ""
    assert checks.residents_checked == 2


def test_overdue_approvals_are_listed_with_their_resident() -> None:
    db = _home()
    waiting = overdue_approval("r1", "p1", Drug("Kaleorid"), NOW - timedelta(days=2), CLOCK)
    assert "02-05-2026 10:00" in waiting.problem  # local time of the facility
    assert _found(db, overdue_approvals=[waiting]) == [
        ("r2", "o1", Checkpoint.INDICATION), ("r2", "o2", Checkpoint.DOSAGE_NOT_STRUCTURED),
        ("r1", "p1", Checkpoint.APPROVAL_OVERDUE)]


def test_the_round_list_notes_the_findings() -> None:
    db = _home()
    with db(write=False) as u:
        schedule = rounds.shift_schedule(u, F, DAY, "day", NOW)
    notes = {(r.resident.resident_id, n.order_id, n.kind) for r in schedule.residents
             for n in r.notes}
    assert ("r2", "o1", NoteKind.CARD_CHECK) in notes
    # The free-text order's finding is said by its NEEDS_MANUAL_SCHEDULE note only.
    assert ("r2", "o2", NoteKind.NEEDS_MANUAL_SCHEDULE) in notes
    assert ("r2", "o2", NoteKind.CARD_CHECK) not in notes
    assert not [n for n in notes if n[0] == "r1"]


def test_a_facility_list_of_vague_terms_is_used() -> None:
    db = _home()
    with db() as u:
        facility = u.facilities.get(F)
        assert facility is not None
        u.facilities.replace(replace(facility, vague_indication_terms=("mod forhøjet blodtryk",)),
                             expected_etag=facility.etag)
        u.commit()
    # "ved behov" is no longer on the list; "mod forhøjet blodtryk" is.
    assert _found(db) == [("r2", "o2", Checkpoint.INDICATION),
                          ("r2", "o2", Checkpoint.DOSAGE_NOT_STRUCTURED),
                          ("r1", "p1", Checkpoint.INDICATION)]


def test_a_clinical_change_waiting_too_long_is_an_overdue_approval() -> None:
    """The approval rule (card_changes.overdue_changes) wired into the checks: a changed
    dosage waits; within the facility's limit there is no finding, past it one, naming
    the drug and the time it waits since in local time with its zone; approved, none."""
    from medservice.service import card_changes

    db = _home()
    changed_at = NOW - timedelta(hours=3)
    with db() as u:
        cards.sync_card(u, F, "r2", 2, [content("o1", MORNING, indication="ved behov"),
                                        content("o2", FreeTextDosage("efter skema"),
                                                indication=GOOD)], changed_at, changed_at)
        u.commit()

    def overdue(at: object) -> list[tuple[str, str]]:
        with db(write=False) as u:
            checks = card_checks(u, F, at)  # type: ignore[arg-type]
        return [(rf.finding.order_id, rf.finding.problem) for rf in checks.findings
                if rf.finding.checkpoint is Checkpoint.APPROVAL_OVERDUE]

    assert overdue(changed_at + timedelta(minutes=1439)) == []
    [(order_id, problem)] = overdue(changed_at + timedelta(minutes=1441))
    local = CLOCK.local(changed_at)
    assert order_id == "o1" and local.strftime("%d-%m-%Y %H:%M %Z") in problem
    with db() as u:
        _, [pending] = card_changes.pending_changes(u, F, "r2")
        card_changes.approve_change(u, F, "r2", "o1", pending.first_version, pending.etag,
                                    "lead-1", changed_at + timedelta(hours=1))
        u.commit()
    assert overdue(changed_at + timedelta(minutes=1441)) == []
