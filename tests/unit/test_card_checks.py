"""The inspection checks of the medicine card (domain/card_checks.py): each checkpoint finds
what it should and nothing on a clean order; `card_findings` puts them together."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from medservice.domain.card_checks import (
    CHECKPOINT_TITLES,
    CardFinding,
    Checkpoint,
    DoseCardLine,
    DoseDispensingCard,
    card_findings,
    normalise_indication,
    vague_indications,
)
from medservice.domain.dosage import (
    DosageDay,
    DosagePeriod,
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import DEFAULT_VAGUE_INDICATIONS, Facility, validate_facility
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import DispensingMode, Drug, OrderVersion, Pause
from tests.unit.test_reconcile_builders import (
    CLOCK,
    MORNING_EVENING,
    PN_TWICE_DAILY,
    RESIDENT,
    UNIT,
    at,
    changed,
    content,
    dosage,
    dose,
    version,
)

NOW = at(10)  # 2026-05-04 10:00 local
CLEAN = dict(indication="mod forhøjet blodtryk")


def findings(*histories: list[OrderVersion], **kwargs: object) -> list[CardFinding]:
    orders = {h[0].order_id: h for h in histories}
    return card_findings(RESIDENT, orders, NOW, CLOCK, **kwargs)  # type: ignore[arg-type]


def kinds(found: list[CardFinding]) -> list[tuple[str, Checkpoint]]:
    return [(f.order_id, f.checkpoint) for f in found]


def clean(order_id: str = "o1", **fields: object) -> list[OrderVersion]:
    return [version(content(order_id, **{**CLEAN, **fields}))]  # type: ignore[arg-type]


def test_a_clean_card_has_no_findings() -> None:
    assert findings(clean("o1"), clean("o2", dosage_=PN_TWICE_DAILY)) == []


def test_pn_without_a_maximum_per_day_is_found() -> None:
    unlimited = dosage(dose(pn=True), interval=0)  # one PN entry, not iterated: no limit
    found = findings(clean("o1", dosage_=unlimited))
    assert kinds(found) == [("o1", Checkpoint.PN_MAX_PER_DAY)]
    assert found[0].title == CHECKPOINT_TITLES[Checkpoint.PN_MAX_PER_DAY]
    assert "døgndosis" in found[0].problem


def test_pn_with_a_maximum_per_day_is_not_found() -> None:
    one_a_day = dosage(dose(pn=True), interval=1)  # iterated: once a day at most
    assert findings(clean("o1", dosage_=one_a_day), clean("o2", dosage_=PN_TWICE_DAILY)) == []


def test_a_fhir_pn_timing_without_any_limit_is_found_and_one_with_a_limit_is_not() -> None:
    bare = TimingDosage(UNIT, None, as_needed=True)
    limited = TimingDosage(UNIT, None, frequency=1, period=Decimal(4), period_unit="h",
                           as_needed=True)
    capped = TimingDosage(UNIT, None, as_needed=True, max_dose_quantity=Decimal(4))
    found = findings(clean("o1", dosage_=bare), clean("o2", dosage_=limited),
                     clean("o3", dosage_=capped))
    assert kinds(found) == [("o1", Checkpoint.PN_MAX_PER_DAY)]


@pytest.mark.parametrize("indication", ["", "   ", "For smerter", "ved behov.", "EFTER  BEHOV",
                                        "p.n.", "mod smerter"])
def test_a_missing_or_vague_indication_is_found(indication: str) -> None:
    found = findings(clean("o1", indication=indication))
    assert kinds(found) == [("o1", Checkpoint.INDICATION)]
    assert ("mangler" in found[0].problem) == (not indication.strip())


@pytest.mark.parametrize("indication", ["for smerter i knæet", "mod uro ved behov", "121",
                                        "mod forstoppelse"])
def test_a_specific_indication_or_a_code_is_not_vague(indication: str) -> None:
    assert findings(clean("o1", indication=indication)) == []


def test_the_facility_sets_its_own_vague_terms() -> None:
    card = (clean("o1", indication="mod uro"), clean("o2", indication="for smerter"))
    vague = vague_indications(("Mod uro",))
    assert kinds(findings(*card, vague=vague)) == [("o1", Checkpoint.INDICATION)]


def test_a_structured_dosage_without_times_of_day_is_found() -> None:
    twice = dosage(dose(TimeKind.ANY), dose(TimeKind.ANY))  # "2 gange daglig"
    found = findings(clean("o1", dosage_=twice), clean("o2", dosage_=MORNING_EVENING))
    assert kinds(found) == [("o1", Checkpoint.TIMES_OF_DAY)]


def test_pn_doses_without_a_time_need_none() -> None:
    assert findings(clean("o1", dosage_=PN_TWICE_DAILY)) == []


@pytest.mark.parametrize("dosage_", [FreeTextDosage("1 tablet efter aftale"),
                                     LocalSchemaDosage("se skema")])
def test_free_text_and_local_schedule_dosages_are_found(dosage_: object) -> None:
    assert kinds(findings(clean("o1", dosage_=dosage_))) == [
        ("o1", Checkpoint.DOSAGE_NOT_STRUCTURED)]


def test_a_passed_treatment_end_on_an_order_still_on_the_card_is_found() -> None:
    yesterday = date(2026, 5, 3)
    found = findings(clean("o1", treatment_end=yesterday, indication=""),
                     clean("o2", treatment_end=date(2026, 5, 4)))  # ends today: not passed
    # An ended order gets the treatment-end finding only.
    assert kinds(found) == [("o1", Checkpoint.TREATMENT_END_PASSED)]
    assert "03-05-2026" in found[0].problem


def test_a_discontinued_or_removed_order_is_not_checked() -> None:
    ended = clean("o1", treatment_end=date(2026, 5, 1), indication="")
    discontinued = changed(ended, at(9), discontinued_at=at(9))
    removed = [*clean("o2", indication=""), version(content("o2"), 2, valid_from=at(9),
                                                    removed=True)]
    assert findings(discontinued, removed) == []


def test_the_version_in_force_now_is_checked() -> None:
    history = clean("o1", indication="")
    fixed = changed(history, at(9), indication="mod uro")
    later = changed(history, NOW + timedelta(days=1), indication="mod uro")
    assert findings(fixed) == []
    assert kinds(findings(later)) == [("o1", Checkpoint.INDICATION)]


POURED = DispensingMode.STAFF_POURED
POUCH = DispensingMode.DOSE_DISPENSED


def dose_card(*lines: DoseCardLine) -> DoseDispensingCard:
    return DoseDispensingCard("763418", lines, date(2026, 5, 1), date(2026, 5, 14))


def test_orders_and_the_dose_dispensing_card_agree() -> None:
    card = dose_card(DoseCardLine("o1", "1", "Drug drug-a"))
    assert findings(clean("o1", dispensing_mode=POUCH), clean("o2", dispensing_mode=POURED),
                    dose_card=card) == []


def test_a_dose_dispensed_order_missing_from_the_card_is_found() -> None:
    card = dose_card(DoseCardLine("o1"))
    found = findings(clean("o1", dispensing_mode=POUCH), clean("o2", dispensing_mode=POUCH),
                     dose_card=card)
    assert kinds(found) == [("o2", Checkpoint.DOSE_DISPENSING_CARD)]
    assert "mangler" in found[0].problem


def test_without_a_dose_dispensing_card_each_dose_dispensed_order_is_found() -> None:
    found = findings(clean("o1", dispensing_mode=POUCH), clean("o2", dispensing_mode=POURED))
    assert kinds(found) == [("o1", Checkpoint.DOSE_DISPENSING_CARD)]
    assert "intet dosisdispenseringskort" in found[0].problem


def test_a_paused_dose_dispensed_order_may_be_missing() -> None:
    paused = changed(clean("o1", dispensing_mode=POUCH), at(9),
                     pauses=(Pause(at(9)),))
    assert findings(paused, dose_card=dose_card()) == []


def test_a_card_line_without_an_order_in_force_is_found() -> None:
    discontinued = changed(clean("o2", dispensing_mode=POUCH), at(9), discontinued_at=at(9))
    card = dose_card(DoseCardLine("o1", drug_name="Kaleorid"), DoseCardLine("o2"),
                     DoseCardLine("o3", hidden=True))
    found = findings(discontinued, dose_card=card)
    assert kinds(found) == [("o1", Checkpoint.DOSE_DISPENSING_CARD),
                            ("o2", Checkpoint.DOSE_DISPENSING_CARD),
                            ("o3", Checkpoint.DOSE_DISPENSING_CARD)]
    assert found[0].drug == Drug("Kaleorid")
    assert "uden gældende ordination" in found[1].problem
    assert "ikke ordineret på medicinkortet" in found[1].action
    # A private line is the resident's own: find out what it is, never throw it out.
    assert "ikke viser detaljer" in found[2].problem
    assert "Afklar med lægen, hvad doseposerne indeholder" in found[2].action


def test_a_card_line_whose_order_is_staff_poured_is_found() -> None:
    found = findings(clean("o1", dispensing_mode=POURED), dose_card=dose_card(DoseCardLine("o1")))
    assert kinds(found) == [("o1", Checkpoint.DOSE_DISPENSING_CARD)]
    assert "hældes af personalet" in found[0].problem


def test_overdue_approvals_are_passed_through_for_this_resident_only() -> None:
    mine = CardFinding(Checkpoint.APPROVAL_OVERDUE, RESIDENT, "o1", Drug("A"), "p", "a")
    other = CardFinding(Checkpoint.APPROVAL_OVERDUE, "r2", "o1", Drug("A"), "p", "a")
    assert findings(clean("o1"), overdue_approvals=[mine, other]) == [mine]


def test_findings_are_in_order_and_checkpoint_order() -> None:
    messy = StructuredDosage(UNIT, (DosagePeriod(date(2026, 1, 1), None, 0, "", (
        DosageDay(1, (dose(TimeKind.ANY), dose(pn=True))),)),))
    found = findings(clean("o2", indication=""), clean("o1", dosage_=messy, indication=""))
    assert kinds(found) == [("o1", Checkpoint.PN_MAX_PER_DAY), ("o1", Checkpoint.INDICATION),
                            ("o1", Checkpoint.TIMES_OF_DAY), ("o2", Checkpoint.INDICATION)]


def test_every_checkpoint_has_a_danish_title() -> None:
    assert set(CHECKPOINT_TITLES) == set(Checkpoint)


def test_normalise_indication() -> None:
    assert normalise_indication("  Ved   behov. ") == "ved behov"
    assert normalise_indication("P.N.") == "p n"


def test_the_facility_validates_its_vague_terms() -> None:
    assert validate_facility(Facility("f", "F")) == []
    assert Facility("f", "F").vague_indication_terms == DEFAULT_VAGUE_INDICATIONS
    bad = Facility("f", "F", vague_indication_terms=("ok", "..."))
    assert [v.field for v in validate_facility(bad)] == ["facility.vague_indication_terms[1]"]
    long = Facility("f", "F", vague_indication_terms=("x" * 101,))
    assert [v.field for v in validate_facility(long)] == ["facility.vague_indication_terms[0]"]
    many = Facility("f", "F", vague_indication_terms=tuple(f"t{i}" for i in range(201)))
    assert [v.field for v in validate_facility(many)] == ["facility.vague_indication_terms"]
