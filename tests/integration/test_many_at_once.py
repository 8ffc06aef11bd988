"""Reads for many residents or orders at once (a national batch's alerts name thousands)
give exactly what the one-at-a-time reads give, on both stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from medservice.domain.dosage import TimeKind
from medservice.domain.facility import Facility, Resident
from medservice.domain.orders import Drug
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.service.unit_of_work import UnitOfWorkFactory
from tests.unit.test_reconcile_builders import content, dosage, dose

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _seed(uow: UnitOfWorkFactory) -> None:
    with uow() as u:
        for f in ("f1", "f2"):
            facilities_uc.create_facility(u, Facility(f, f"Home {f}"), NOW)
            for i in range(3):
                facilities_uc.create_resident(
                    u, Resident(f"r{i}", f, f"01015{i}-100{i}", f"Name {i}", f"{i + 10}"), NOW)
                cards_uc.sync_card(u, f, f"r{i}", 1, [
                    content(order_id="o1", dosage_=dosage(dose(TimeKind.MORNING, "1"))),
                    content(order_id="o2", dosage_=dosage(dose(TimeKind.EVENING, "2")))],
                    NOW - timedelta(days=2), NOW - timedelta(days=2))
        # A second version of one order, of another drug (a switch to a generic, say):
        # versions come back by number, each with its own drug.
        cards_uc.sync_card(u, "f1", "r0", 2, [
            replace(content(order_id="o1", dosage_=dosage(dose(TimeKind.MORNING, "3"))),
                    drug=Drug("Paracetamol", "drug-b", "N02BE01", "tablet", "500 mg")),
            content(order_id="o2", dosage_=dosage(dose(TimeKind.EVENING, "2")))],
            NOW - timedelta(days=1), NOW - timedelta(hours=1))  # valid a day back, mirrored since
        long_id = "a" * 63  # as long as an id may be
        facilities_uc.create_facility(u, Facility(long_id, "Home A"), NOW)
        facilities_uc.create_resident(u, Resident("r0", long_id, "010160-2000", "N", "9"), NOW)
        u.commit()


def test_rooms_and_orders_drugs_equal_the_single_reads(uow: UnitOfWorkFactory) -> None:
    _seed(uow)
    residents = [("f1", "r0"), ("f1", "r2"), ("f2", "r1"), ("f2", "nobody"), ("f3", "r0")]
    orders = [("f1", "r0", "o1"), ("f1", "r0", "o2"), ("f2", "r2", "o2"), ("f1", "r1", "none")]
    with uow(write=False) as u:
        rooms = u.residents.rooms(residents)
        assert rooms == {key: r.room for key in residents
                         if (r := u.residents.get(*key)) is not None}
        assert rooms == {("f1", "r0"): "10", ("f1", "r2"): "12", ("f2", "r1"): "11"}
        drugs = u.cards.orders_drugs(orders)
        assert drugs == {key: [(v.valid_from, v.content.drug) for v in found]
                         for key in orders if (found := u.cards.order_versions(*key))}
        assert [d.drug_id for _, d in drugs[("f1", "r0", "o1")]] == ["drug-a", "drug-b"]
        assert drugs[("f1", "r0", "o1")][1][1].strength == "500 mg"
        assert u.residents.rooms([]) == {} and u.cards.orders_drugs([]) == {}
        # An order id longer than the column matches nothing (never an id cut to its length).
        assert u.cards.orders_drugs([("f1", "r0", "o1" + "x" * 70)]) == {}
        # A key longer than the column matches nothing (never a key cut to its length).
        assert u.residents.rooms([("a" * 63, "r0")]) == {("a" * 63, "r0"): "9"}
        assert u.residents.rooms([("a" * 63 + "extra", "r0"), ("a" * 63, "r0" + "x" * 70)]) == {}
