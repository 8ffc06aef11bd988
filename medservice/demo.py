"""Demo data for `make run`: one facility and a dozen residents, seeded once.

All persons are fictitious test persons; the identifiers are made up and belong to no one.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import DispensingMode, Drug, OrderContent
from medservice.service import cards as cards_uc
from medservice.service import facilities as uc
from medservice.service.unit_of_work import UnitOfWorkFactory

TABLET = DoseUnit("tablet", "tabletter")

DEMO_FACILITY_ID = "demo"

DEMO_RESIDENTS = [
    ("r01", "010145-0001", "Karen Testesen", "101"),
    ("r02", "020246-0002", "Jens Prøvesen", "102"),
    ("r03", "030347-0003", "Inger Demo", "103"),
    ("r04", "040448-0004", "Poul Eksempel", "104"),
    ("r05", "050549-0005", "Birthe Fiktiv", "105"),
    ("r06", "060650-0006", "Niels Testmand", "106"),
    ("r07", "070751-0007", "Ruth Prøve", "201"),
    ("r08", "080852-0008", "Erik Demomand", "202"),
    ("r09", "090953-0009", "Grethe Testdatter", "203"),
    ("r10", "101054-0010", "Svend Eksempelsen", "204"),
    ("r11", "111155-0011", "Hanne Fiktivsen", "205"),
    ("r12", "121256-0012", "Ole Afprøvning", "206"),
]


def _dose(kind: TimeKind, quantity: str, *, clock: time | None = None,
          as_needed: bool = False) -> DosageDose:
    return DosageDose(kind, clock, Amount.exact(quantity), as_needed)


def _daily(start: date, *doses: DosageDose, unit: DoseUnit = TABLET) -> StructuredDosage:
    return StructuredDosage(unit, (DosagePeriod(start, None, 1, "", (DosageDay(1, doses),)),))


def _tapering(start: date) -> StructuredDosage:
    """Prednisolon 25 mg: 4, 3, 2 then 1 tablet each morning, a week at each step."""
    periods = tuple(
        DosagePeriod(start + timedelta(days=7 * i), start + timedelta(days=7 * i + 6), 1, "",
                     (DosageDay(1, (_dose(TimeKind.MORNING, str(n)),)),))
        for i, n in enumerate((4, 3, 2, 1)))
    return StructuredDosage(TABLET, periods)


def demo_cards(today: date) -> dict[str, list[OrderContent]]:
    """Realistic cards for the demo residents, dated around `today` so rounds show doses."""
    start = today - timedelta(days=30)
    poured, pouch = DispensingMode.STAFF_POURED, DispensingMode.DOSE_DISPENSED
    def drug(name: str, atc: str, strength: str, form: str = "tabletter") -> Drug:
        return Drug(name, f"demo-{atc.lower()}", atc, form, strength)

    metformin = OrderContent("metformin", drug("Metformin", "A10BA02", "500 mg"),
                             _daily(start, _dose(TimeKind.MORNING, "1"),
                                    _dose(TimeKind.EVENING, "1")),
                             route="oral", indication="mod sukkersyge", treatment_start=start,
                             dispensing_mode=pouch)
    furosemid = OrderContent("furosemid", drug("Furosemid", "C03CA01", "40 mg"),
                             _daily(start, _dose(TimeKind.MORNING, "1")), route="oral",
                             indication="vanddrivende", treatment_start=start,
                             dispensing_mode=pouch)
    pn_paracetamol = OrderContent(
        "paracetamol-pn", drug("Paracetamol", "N02BE01", "500 mg"),
        StructuredDosage(TABLET, (DosagePeriod(start, None, 1, "", (DosageDay(1, tuple(
            _dose(TimeKind.ANY, "2", as_needed=True) for _ in range(4))),)),)),
        route="oral", indication="mod smerter", treatment_start=start, dispensing_mode=poured)
    weekly = OrderContent(
        "methotrexat", drug("Metex", "L04AX03", "7,5 mg", "injektionsvæske"),
        StructuredDosage(DoseUnit("sprøjte", "sprøjter"), (DosagePeriod(
            today - timedelta(days=today.weekday()), None, 7, "",
            (DosageDay(1, (_dose(TimeKind.MORNING, "1"),)),)),)),
        route="subcutaneous", indication="mod leddegigt", treatment_start=start,
        dispensing_mode=poured, time_critical=False)
    tapering = OrderContent("prednisolon", drug("Prednisolon", "H02AB06", "25 mg"),
                            _tapering(today - timedelta(days=3)), route="oral",
                            indication="nedtrapning", treatment_start=today - timedelta(days=3),
                            treatment_end=today + timedelta(days=24), dispensing_mode=poured)
    insulin = OrderContent("insulin", drug("Insulatard", "A10AC01", "100 IE/ml",
                                           "injektionsvæske"),
                           _daily(start, _dose(TimeKind.CLOCK, "12", clock=time(7, 30)),
                                  unit=DoseUnit("enhed", "enheder")),
                           route="subcutaneous", indication="mod sukkersyge",
                           treatment_start=start, dispensing_mode=poured, time_critical=True)
    marevan = OrderContent("marevan", drug("Marevan", "B01AA03", "2,5 mg"),
                           FreeTextDosage("efter INR-skema fra egen læge"), route="oral",
                           indication="blodfortyndende", treatment_start=start,
                           dispensing_mode=poured)
    simvastatin = OrderContent("simvastatin", drug("Simvastatin", "C10AA01", "40 mg"),
                               _daily(start, _dose(TimeKind.EVENING, "1")), route="oral",
                               indication="mod forhøjet kolesterol", treatment_start=start,
                               dispensing_mode=pouch)
    cards = {
        "r01": [metformin, furosemid, pn_paracetamol, simvastatin],
        "r02": [weekly, pn_paracetamol, furosemid],
        "r03": [tapering, metformin, simvastatin],
        "r04": [insulin, metformin, pn_paracetamol],
        "r05": [marevan, furosemid, simvastatin],
        "r06": [metformin, simvastatin],
    }
    return cards


# The demo's first dose falls due this long after seeding, and its window closes as long
# after that: so a new user sees the sweep find it missed, and the shift lead's alert,
# within the first ten minutes.
SOON = timedelta(minutes=3)
SOON_WINDOW_MINUTES = 3


def soon_order(now: datetime, zone: ZoneInfo) -> OrderContent:
    """Madopar (levodopa, time-critical, as Parkinson's medicine is) once a day at the local
    minute SOON after `now`, with a window of +-SOON_WINDOW_MINUTES."""
    local = (now + SOON).astimezone(zone)
    at = (local + timedelta(minutes=1 if local.second or local.microsecond else 0)).time()
    at = at.replace(second=0, microsecond=0)
    start = local.date() - timedelta(days=1)  # a dose at 00:01 is tomorrow's, still daily
    return OrderContent(
        "madopar", Drug("Madopar", "demo-n04ba02", "N04BA02", "kapsler", "125 mg"),
        _daily(start, _dose(TimeKind.CLOCK, "1", clock=at), unit=DoseUnit("kapsel", "kapsler")),
        route="oral", indication="mod Parkinsons sygdom", treatment_start=start,
        dispensing_mode=DispensingMode.STAFF_POURED, time_critical=True,
        window_minutes=SOON_WINDOW_MINUTES)


def seed_demo(uow_factory: UnitOfWorkFactory, now: datetime) -> bool:
    """Create the demo facility, residents and cards unless the facility exists. True if
    seeded. One order is paused and one discontinued, as on a real card; r07's Madopar
    falls due a few minutes after `now` (`soon_order`)."""
    with uow_factory() as uow:
        if uow.facilities.exists(DEMO_FACILITY_ID):
            return False
        facility = uc.create_facility(
            uow, Facility(DEMO_FACILITY_ID, "Solhaven Demo Care Home"), now)
        for resident_id, person_id, name, room in DEMO_RESIDENTS:
            uc.create_resident(
                uow, Resident(resident_id, DEMO_FACILITY_ID, person_id, name, room), now)
        today = now.astimezone(facility.zone).date()
        card_start = now - timedelta(days=30)
        cards = {**demo_cards(today), "r07": [soon_order(now, facility.zone)]}
        for resident_id, orders in cards.items():
            cards_uc.sync_card(uow, DEMO_FACILITY_ID, resident_id, 1, orders, card_start, now)
        cards_uc.pause_order(uow, DEMO_FACILITY_ID, "r05", "furosemid",
                             now - timedelta(days=1), now + timedelta(days=3), now)
        cards_uc.discontinue_order(uow, DEMO_FACILITY_ID, "r06", "simvastatin",
                                   now - timedelta(hours=2), now)
        uow.commit()
    return True
