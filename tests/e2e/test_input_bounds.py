"""Odd but well-formed input is INVALID_ARGUMENT naming the field, never INTERNAL nor stored
as something else (issue 13): the fuzzer's findings, one by one, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import audit_pb2, audit_pb2_grpc, common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, morning_evening, order, ts
from tests.conftest import ServerFixture

R1 = "facilities/f/residents/r1"
CARD = f"{R1}/medicineCard"
DAY_0001 = Timestamp(seconds=int(datetime(1, 1, 1, tzinfo=UTC).timestamp()))
DEC_30_9999 = Timestamp(seconds=int(datetime(9999, 12, 30, tzinfo=UTC).timestamp()))
DEC_31_9999 = Timestamp(seconds=int(datetime(9999, 12, 31, tzinfo=UTC).timestamp()))


@pytest.fixture
def clients(server: ServerFixture) -> dict[str, MedClient]:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111", display_name="A",
                                            room="1"), "r1")
    integration = server.client(Role.INTEGRATION, "f")
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=CARD, card_version=1, orders=[
            order(R1, "para", "Paracetamol", morning_evening("2"))]),
        valid_time=ts(CARD_VALID_FROM)))
    return {"admin": admin, "integration": integration,
            "carer": server.client(Role.CARER, "f"),
            "pharmacist": server.client(Role.PHARMACIST, "f")}


def refused(call: Callable[[], Any]) -> dict[str, str]:
    """The field violations of a call that must be INVALID_ARGUMENT: field -> description."""
    with pytest.raises(MedServiceError) as e:
        call()
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT, str(e.value)
    return dict(e.value.violations)


def test_timestamp_nanos_out_of_range_names_the_field(clients: dict[str, MedClient]) -> None:
    c = clients["carer"]
    bad = refused(lambda: c.call(c.cards.GetMedicineCard, cpb.GetMedicineCardRequest(
        name=CARD, valid_time=Timestamp(seconds=1_800_000_000, nanos=1_000_000_000))))
    assert bad == {"valid_time": "nanos must be from 0 to 999999999"}


def test_timestamp_beyond_year_9999_names_the_field_and_the_range(
        clients: dict[str, MedClient]) -> None:
    c = clients["pharmacist"]
    stub = audit_pb2_grpc.AuditServiceStub(c.channel)
    bad = refused(lambda: c.call(stub.ListAuditEvents, audit_pb2.ListAuditEventsRequest(
        parent="facilities/f", end_time=Timestamp(seconds=253402300800))))
    assert list(bad) == ["end_time"]
    assert "1900-01-01T00:00:00Z" in bad["end_time"] and "9000-01-01" in bad["end_time"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "9000-01-01"])
def test_shift_dates_at_the_ends_of_the_calendar_are_refused(
        clients: dict[str, MedClient], day: str) -> None:
    c = clients["carer"]
    for method, request in (
            (c.rounds.GetShiftSchedule, rpb.GetShiftScheduleRequest(
                facility="facilities/f", date=day, shift_id="night")),
            (c.rounds.GetDispensingList, rpb.GetDispensingListRequest(
                facility="facilities/f", date=day, shift_id="night"))):
        bad = refused(lambda m=method, r=request: c.call(m, r))  # type: ignore[misc]
        assert bad == {"date": "must be a date from 1900-01-01 to 8999-12-31"}


@pytest.mark.parametrize("day", ["1900-01-01", "8999-12-31"])
def test_shift_dates_at_the_ends_of_the_range_are_served(
        clients: dict[str, MedClient], day: str) -> None:
    c = clients["carer"]
    for shift in ("day", "evening", "night"):  # the night shift ends the next morning
        s = c.call(c.rounds.GetShiftSchedule, rpb.GetShiftScheduleRequest(
            facility="facilities/f", date=day, shift_id=shift))
        assert s.date == day
        c.call(c.rounds.GetDispensingList, rpb.GetDispensingListRequest(
            facility="facilities/f", date=day, shift_id=shift))


def test_check_dose_in_year_one_is_refused(clients: dict[str, MedClient]) -> None:
    c = clients["carer"]
    bad = refused(lambda: c.call(c.rounds.CheckDose, rpb.CheckDoseRequest(
        resident=R1, order=f"{R1}/orders/para", administration_time=DAY_0001)))
    assert list(bad) == ["administration_time"]


def test_ranges_at_the_end_of_year_9999_are_refused(clients: dict[str, MedClient]) -> None:
    carer, pharmacist = clients["carer"], clients["pharmacist"]
    bad = refused(lambda: carer.call(carer.rounds.ListScheduledDoses,
                                     rpb.ListScheduledDosesRequest(
                                         parent=R1, start_time=DEC_30_9999,
                                         end_time=DEC_31_9999)))
    assert sorted(bad) == ["end_time", "start_time"]
    bad = refused(lambda: pharmacist.call(
        pharmacist.discrepancies.ReconcileFacility, dpb.ReconcileFacilityRequest(
            facility="facilities/f", start_time=DEC_30_9999, end_time=DEC_31_9999)))
    assert sorted(bad) == ["end_time", "start_time"]


def test_unknown_pn_day_mode_is_refused_and_nothing_created(
        clients: dict[str, MedClient]) -> None:
    admin = clients["admin"]
    bad = refused(lambda: admin.create_facility(
        fpb.Facility(display_name="G", pn_day_mode=9), "g"))  # type: ignore[arg-type]
    assert list(bad) == ["facility.pn_day_mode"]
    assert "9 is not a value of PnDayMode" in bad["facility.pn_day_mode"]
    with pytest.raises(MedServiceError) as e:
        admin.get_facility("g")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_unknown_dispensing_mode_is_refused_and_the_card_unchanged(
        clients: dict[str, MedClient]) -> None:
    c = clients["integration"]
    poured = order(R1, "para", "Paracetamol", morning_evening("2"))
    poured.dispensing_mode = 77  # type: ignore[assignment]
    bad = refused(lambda: c.call(c.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=CARD, card_version=2, orders=[poured]))))
    assert list(bad) == ["card.orders[0].dispensing_mode"]
    card = c.call(c.cards.GetMedicineCard, cpb.GetMedicineCardRequest(name=CARD))
    assert card.card_version == 1
    assert card.orders[0].dispensing_mode == common_pb2.DISPENSING_MODE_DOSE_DISPENSED


def test_unknown_record_source_is_refused(clients: dict[str, MedClient]) -> None:
    c = clients["carer"]
    record = rpb.AdministrationRecord(order=f"{R1}/orders/para", quantity="2",
                                      outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN)
    record.source = 42  # type: ignore[assignment]
    bad = refused(lambda: c.call(c.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, record=record)))
    assert list(bad) == ["record.source"]
    listed = c.call(c.rounds.ListAdministrationRecords,
                    rpb.ListAdministrationRecordsRequest(parent=R1))
    assert list(listed.records) == []


def test_order_dates_beyond_the_range_are_refused(clients: dict[str, MedClient]) -> None:
    c = clients["integration"]
    late = order(R1, "para", "Paracetamol", morning_evening("2"), end="9999-12-31")
    bad = refused(lambda: c.call(c.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=CARD, card_version=2, orders=[late]))))
    assert bad == {"card.orders[0].treatment_end_date":
                   "must be a date from 1900-01-01 to 8999-12-31"}


def test_a_nul_character_is_refused_naming_the_field(clients: dict[str, MedClient]) -> None:
    c = clients["carer"]
    bad = refused(lambda: c.call(c.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, request_id="a\x00b", record=rpb.AdministrationRecord(
            order=f"{R1}/orders/para", quantity="2",
            outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN))))
    assert bad == {"request_id": "must not contain the NUL character"}
