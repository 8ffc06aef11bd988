"""The DPSD report's use case against the in-memory unit of work: the facility-local month,
withdrawn discrepancies left out, the decisions read, and what the individual list names.
Over gRPC on both stores: tests/e2e/test_dpsd_report.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from medservice.domain.discrepancy import (
    DEFAULT_SEVERITY,
    Code,
    Decision,
    Discrepancy,
    discrepancy_key,
)
from medservice.domain.errors import NotFound
from medservice.domain.facility import Facility, Resident
from medservice.reconcile.dpsd import Category
from medservice.service import cards, facilities
from medservice.service.dpsd_report import dpsd_report
from medservice.store.discrepancies import discrepancy_id
from tests.fakes import FakeDatabase
from tests.unit.test_reconcile_builders import EPOCH, content

F, R = "home", "r1"
ZONE = ZoneInfo("Europe/Copenhagen")
MARCH = date(2026, 3, 1)
NOW = datetime(2026, 4, 2, 10, tzinfo=UTC)


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def missed(subject: str, at: datetime, order_id: str | None = "o1") -> Discrepancy:
    return Discrepancy(discrepancy_key(Code.MISSED_DOSE, F, R, order_id, subject),
                       Code.MISSED_DOSE, DEFAULT_SEVERITY[Code.MISSED_DOSE], True, F, R,
                       order_id, subject, None, at, "")


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase()
    with db() as u:
        facilities.create_facility(u, Facility(F, "Home"), EPOCH)
        facilities.create_resident(u, Resident(R, F, "010145-1234", "Anna", "1"), EPOCH)
        cards.sync_card(u, F, R, 1, [content()], EPOCH, EPOCH)
        u.commit()
    return db


def test_the_month_is_local_and_withdrawn_ones_do_not_count(db: FakeDatabase) -> None:
    found = [missed("feb", local(2, 28, 23, 30)),  # 22:30 UTC: February
             missed("first", local(3, 1, 0, 30)),  # 23:30 UTC on 28 February: March
             missed("last", local(3, 31, 23, 30)),  # CEST: March
             missed("apr", local(4, 1, 0, 30)),  # 22:30 UTC on 31 March: April
             missed("gone", local(3, 15, 8))]
    with db() as u:
        u.discrepancies.save(found, NOW)
        for d in found:
            u.discrepancies.review(discrepancy_id(d.key), "", Decision.CONFIRMED_ERROR,
                                   "set i journalen" if d.dose_id == "last" else "", "p", NOW)
        u.discrepancies.withdraw_absent(F, R, local(3, 15, 0), local(3, 16, 0), set(), NOW)
        u.commit()
    with db(write=False) as u:
        report = dpsd_report(u, F, MARCH, NOW)
    assert (report.start, report.end) == (datetime(2026, 2, 28, 23, tzinfo=UTC),
                                          datetime(2026, 3, 31, 22, tzinfo=UTC))
    assert report.counts.confirmed[Category.MEDICINE_NOT_GIVEN] == 2
    assert report.as_of == NOW.astimezone(ZONE)
    first, last = report.individual
    assert (first.entry.discrepancy.dose_id, last.entry.discrepancy.dose_id) == (
        "first", "last")
    assert first.resident is not None and first.resident.display_name == "Anna"
    assert first.drug == "Drug drug-a"  # the order's drug when it happened
    assert (first.category, last.entry.review_note) == (Category.MEDICINE_NOT_GIVEN,
                                                        "set i journalen")


def test_undecided_and_unknown_orders(db: FakeDatabase) -> None:
    with db() as u:
        u.discrepancies.save([missed("open", local(3, 5, 8)),
                              missed("no-order", local(3, 6, 8), order_id="nowhere")], NOW)
        u.discrepancies.review(discrepancy_id(missed("no-order", local(3, 6, 8),
                                                     "nowhere").key),
                               "", Decision.CONFIRMED_DISPENSING_ERROR, "", "p", NOW)
        u.commit()
    with db(write=False) as u:
        report = dpsd_report(u, F, MARCH, NOW)
    assert report.counts.awaiting_review[Category.MEDICINE_NOT_GIVEN] == 1
    assert report.counts.confirmed[Category.DISPENSING_ERROR] == 1
    [only] = report.individual
    assert (only.category, only.drug) == (Category.DISPENSING_ERROR, "")


def test_an_unknown_facility_is_not_found(db: FakeDatabase) -> None:
    with db(write=False) as u, pytest.raises(NotFound):
        dpsd_report(u, "elsewhere", MARCH, NOW)
