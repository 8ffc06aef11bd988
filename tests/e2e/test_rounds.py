"""Shift schedules and dispensing lists over gRPC on SQLite and PostgreSQL (DOMAIN.md §3-5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2, medicine_cards_pb2_grpc, rounds_pb2_grpc
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture

R1, R2, R3 = (f"facilities/f/residents/{r}" for r in ("r1", "r2", "r3"))
DAY = "2026-12-01"


def _sync(client: MedClient, resident: str, orders: list[cpb.Order], version: int = 1) -> None:
    stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(client.channel)
    client.call(stub.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=version,
                              orders=orders), valid_time=ts(CARD_VALID_FROM)))


@pytest.fixture
def home(server: ServerFixture) -> tuple[MedClient, rounds_pb2_grpc.RoundServiceStub]:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    for rid, room, cpr in (("r1", "102", "010145-1111"), ("r2", "101", "020245-2222"),
                           ("r3", "103", "030345-3333")):
        admin.create_resident("f", fpb.Resident(person_id=cpr, display_name=rid, room=room),
                              rid)
    integration = server.client(Role.INTEGRATION, "f")
    _sync(integration, R1, [
        order(R1, "para", "Paracetamol", morning_evening("2")),
        order(R1, "pn", "Morfin", structured([dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)] * 3),
              mode=common_pb2.DISPENSING_MODE_STAFF_POURED),
        order(R1, "free", "Marevan", cpb.Dosage(free_text="efter skema")),
    ])
    _sync(integration, R2, [
        order(R2, "furo", "Furosemid", structured([dose(K.DOSE_TIME_KIND_CLOCK, "1",
                                                        clock="12:30")]),
              mode=common_pb2.DISPENSING_MODE_STAFF_POURED, time_critical=True),
        order(R2, "weekly", "Metex", structured([dose(K.DOSE_TIME_KIND_MORNING, "1")], [], [],
                                                [], [], [], [], start="2026-11-30", interval=7)),
        order(R2, "range", "Oxapax", structured([dose(K.DOSE_TIME_KIND_NOON, low="1",
                                                      high="2")]),
              mode=common_pb2.DISPENSING_MODE_STAFF_POURED),
    ])
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    integration.call(cards.PauseOrder, cpb.PauseOrderRequest(
        name=f"{R2}/orders/furo", pause_start=ts(datetime(2026, 11, 30, tzinfo=UTC)),
        pause_end=ts(datetime(2026, 12, 3, tzinfo=UTC))))
    carer = server.client(Role.CARER, "f")
    return carer, rounds_pb2_grpc.RoundServiceStub(carer.channel)


def schedule(home: tuple, shift: str, day: str = DAY) -> pb.ShiftSchedule:
    carer, stub = home
    return carer.call(stub.GetShiftSchedule, pb.GetShiftScheduleRequest(
        facility="facilities/f", date=day, shift_id=shift))


def test_day_shift_lists_residents_in_room_order_with_their_due_doses(home: tuple) -> None:
    s = schedule(home, "day")
    assert [r.room for r in s.residents] == ["101", "102", "103"]
    r2, r1, r3 = s.residents
    assert [(d.drug.name, d.local_time, d.named_time) for d in r1.doses] == [
        ("Paracetamol", "08:00", pb.NAMED_TIME_MORNING)]
    assert r1.doses[0].amount.quantity == "2"
    # Day 2 of the weekly course (started Monday 30 Nov) has nothing; noon range is due.
    assert [(d.drug.name, d.local_time) for d in r2.doses] == [("Oxapax", "12:00")]
    assert (r2.doses[0].amount.min_quantity, r2.doses[0].amount.max_quantity) == ("1", "2")
    assert r3.doses == []
    # 08:00 Copenhagen in December is 07:00 UTC; a twice-daily dose has a +-60 min window.
    d = r1.doses[0]
    assert d.due_time.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert d.window_end.ToDatetime() - d.window_start.ToDatetime() == timedelta(hours=2)


def test_notes_and_pn_allowances(home: tuple) -> None:
    r2, r1, _ = schedule(home, "day").residents
    # The inspection checks' notes are tested in tests/e2e/test_card_checks.py.
    assert [(n.drug.name, n.kind) for n in r1.notes
            if n.kind != pb.ORDER_NOTE_KIND_CARD_CHECK] == [
        ("Marevan", pb.ORDER_NOTE_KIND_NEEDS_MANUAL_SCHEDULE)]
    assert [(p.drug.name, p.max_doses_per_day, p.unlimited) for p in r1.pn_allowances] == [
        ("Morfin", 3, False)]
    # The pause stops the doses at once and still asks to be acknowledged (issue 16).
    assert [(n.drug.name, n.kind) for n in r2.notes
            if n.kind != pb.ORDER_NOTE_KIND_CARD_CHECK] == [
        ("Furosemid", pb.ORDER_NOTE_KIND_PAUSED),
        ("Furosemid", pb.ORDER_NOTE_KIND_CHANGE_NOT_APPROVED)]
    assert all(d.drug.name != "Morfin" for d in r1.doses)  # PN is never due


def test_pause_ends_and_the_weekly_dose_comes_round(home: tuple) -> None:
    r2 = schedule(home, "day", "2026-12-07").residents[0]
    assert sorted(d.drug.name for d in r2.doses) == ["Furosemid", "Metex", "Oxapax"]
    furo = next(d for d in r2.doses if d.drug.name == "Furosemid")
    assert furo.time_critical
    assert furo.window_end.ToDatetime() - furo.window_start.ToDatetime() == timedelta(hours=1)


def test_evening_shift_and_stable_dose_ids(home: tuple) -> None:
    first = schedule(home, "evening")
    again = schedule(home, "evening")
    r1 = first.residents[1]
    assert [(d.drug.name, d.local_time) for d in r1.doses] == [("Paracetamol", "18:00")]
    assert [d.dose_id for r in first.residents for d in r.doses] == \
        [d.dose_id for r in again.residents for d in r.doses]
    assert schedule(home, "night").residents[1].doses == []


def test_dispensing_list_splits_pharmacy_and_staff_poured(home: tuple) -> None:
    carer, stub = home
    lst = carer.call(stub.GetDispensingList, pb.GetDispensingListRequest(
        facility="facilities/f", date="2026-12-07", shift_id="day"))
    r2 = lst.residents[0]
    assert [(i.drug.name, i.total_quantity) for i in r2.pharmacy_dispensed] == [("Metex", "1")]
    poured = {i.drug.name: i for i in r2.staff_poured}
    assert set(poured) == {"Furosemid", "Oxapax"}
    assert (poured["Oxapax"].total_quantity, poured["Oxapax"].includes_range) == ("2", True)
    assert list(poured["Furosemid"].times) == ["12:30"]


def test_back_dated_discontinuation_removes_later_doses(home: tuple,
                                                       server: ServerFixture) -> None:
    integration = server.client(Role.INTEGRATION, "f")
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    integration.call(cards.DiscontinueOrder, cpb.DiscontinueOrderRequest(
        name=f"{R1}/orders/para", discontinue_time=ts(datetime(2026, 12, 1, 10, tzinfo=UTC))))
    assert [d.local_time for d in schedule(home, "day").residents[1].doses] == ["08:00"]
    evening = schedule(home, "evening").residents[1]
    assert evening.doses == []
    assert [(n.drug.name, n.kind) for n in evening.notes if n.drug.name == "Paracetamol"] == [
        ("Paracetamol", pb.ORDER_NOTE_KIND_DISCONTINUED),
        ("Paracetamol", pb.ORDER_NOTE_KIND_CHANGE_NOT_APPROVED)]


def test_dst_nights_last_seven_and_nine_hours(home: tuple) -> None:
    spring = schedule(home, "night", "2026-03-28")
    autumn = schedule(home, "night", "2026-10-24")
    length = [s.end_time.ToDatetime() - s.start_time.ToDatetime() for s in (spring, autumn)]
    assert length == [timedelta(hours=7), timedelta(hours=9)]


@pytest.mark.parametrize(("request_kw", "field"), [
    ({"date": "2026-13-01", "shift_id": "day"}, "date"),
    ({"date": DAY, "shift_id": "late"}, "shift_id"),
    ({"date": DAY, "shift_id": ""}, "shift_id"),
])
def test_bad_shift_requests_name_the_field(home: tuple, request_kw: dict, field: str) -> None:
    carer, stub = home
    with pytest.raises(MedServiceError) as info:
        carer.call(stub.GetShiftSchedule, pb.GetShiftScheduleRequest(facility="facilities/f",
                                                                     **request_kw))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in info.value.violations] == [field]


def test_list_scheduled_doses_pages(home: tuple) -> None:
    carer, stub = home
    start = datetime(2026, 12, 1, tzinfo=UTC)
    seen, token = [], ""
    while True:
        resp = carer.call(stub.ListScheduledDoses, pb.ListScheduledDosesRequest(
            parent=R1, start_time=ts(start), end_time=ts(start + timedelta(days=3)),
            page_size=4, page_token=token))
        seen += [d.dose_id for d in resp.doses]
        token = resp.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6  # 2 a day, 3 days
