"""Demo data for `make run`: one facility and a dozen residents, seeded once.

All persons are fictitious test persons; the identifiers are made up and belong to no one.
"""

from __future__ import annotations

from datetime import datetime

from medservice.domain.facility import Facility, Resident
from medservice.service import facilities as uc
from medservice.store.uow import UnitOfWorkFactory

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


def seed_demo(uow_factory: UnitOfWorkFactory, now: datetime) -> bool:
    """Create the demo facility and residents unless the facility exists. True if seeded."""
    with uow_factory() as uow:
        if uow.facilities.exists(DEMO_FACILITY_ID):
            return False
        uc.create_facility(uow, Facility(DEMO_FACILITY_ID, "Solhaven Demo Care Home"), now)
        for resident_id, person_id, name, room in DEMO_RESIDENTS:
            uc.create_resident(
                uow, Resident(resident_id, DEMO_FACILITY_ID, person_id, name, room), now)
        uow.commit()
    return True
