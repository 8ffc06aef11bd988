"""What a process keeps between calls belongs to one database (issue 14): two databases in
one process with the same ids and times never share an entry."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from medservice.domain.dosage import StructuredDosage, TimeKind
from medservice.domain.facility import Facility, Resident
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.service.round_context import resident_orders
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.db import make_engine
from medservice.store.uow import uow_factory
from tests.unit.test_reconcile_builders import content, dosage, dose

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _database(template: Path, path: Path, quantity: str) -> UnitOfWorkFactory:
    shutil.copy(template, path)
    uow = uow_factory(make_engine(f"sqlite:///{path}"))
    with uow() as u:
        facilities_uc.create_facility(u, Facility("f", "Home"), NOW)
        facilities_uc.create_resident(u, Resident("r1", "f", "010150-1000", "A", "1"), NOW)
        dosage_ = dosage(dose(TimeKind.MORNING, quantity))
        cards_uc.sync_card(u, "f", "r1", 1, [content(dosage_=dosage_)],
                           NOW - timedelta(days=1), NOW)
        u.commit()
    return uow


def test_two_databases_in_one_process_keep_apart(sqlite_template: Path, tmp_path: Path) -> None:
    one = _database(sqlite_template, tmp_path / "one.db", "1")
    two = _database(sqlite_template, tmp_path / "two.db", "2")
    for uow, quantity in ((one, "1"), (two, "2"), (one, "1"), (two, "2")):
        with uow(write=False) as u:
            [history] = resident_orders(u, "f", "r1").orders.values()
            for content in (history[0].content,
                            u.cards.resident_versions("f", "r1")["o1"][0].content):
                assert isinstance(content.dosage, StructuredDosage)
                [period] = content.dosage.periods
                assert str(period.days[0].doses[0].amount.quantity) == quantity
