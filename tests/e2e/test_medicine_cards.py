"""The medicine card mirror over gRPC on SQLite and PostgreSQL (DOMAIN.md §2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2, medicine_cards_pb2_grpc
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as pb
from tests.conftest import ServerFixture

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_D1 = "0a257dcf-ed3d-5757-9cb9-a6da5f02b6b7"
RID_S1 = "e4178489-4e13-5c24-bf5d-a58b54d25a23"

CARD = "facilities/f/residents/r1/medicineCard"
ORDER = "facilities/f/residents/r1/orders/ord-1"


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def morning_evening(quantity: str = "1") -> pb.Dosage:
    dose = [pb.DosageDose(time_kind=kind, amount=common_pb2.DoseQuantity(quantity=quantity))
            for kind in (pb.DOSE_TIME_KIND_MORNING, pb.DOSE_TIME_KIND_EVENING)]
    return pb.Dosage(structured=pb.StructuredDosage(
        unit=pb.DoseUnit(singular="tablet", plural="tabletter"),
        periods=[pb.DosagePeriod(start_date="2026-01-01", iteration_interval_days=1,
                                 days=[pb.DosageDay(day_number=1, doses=dose)])]))


def order(order_id: str = "ord-1", drug: str = "Paracetamol", quantity: str = "1"
          ) -> pb.Order:
    return pb.Order(name=f"facilities/f/residents/r1/orders/{order_id}",
                    drug=pb.Drug(name=drug, drug_id="28101234", atc_code="N02BE01",
                                 form="tabletter", strength="500 mg"),
                    route="oral", treatment_start_date="2026-01-01",
                    dosage=morning_evening(quantity),
                    dispensing_mode=common_pb2.DISPENSING_MODE_DOSE_DISPENSED)


@pytest.fixture
def cards(server: ServerFixture
          ) -> tuple[MedClient, medicine_cards_pb2_grpc.MedicineCardServiceStub]:
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1234", display_name="T",
                                            room="1"), "r1")
    integration = server.client(Role.INTEGRATION, "f")
    return integration, medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)


def sync(client: MedClient, stub: medicine_cards_pb2_grpc.MedicineCardServiceStub,
         version: int, orders: list[pb.Order], request_id: str = ""
         ) -> pb.SyncMedicineCardResponse:
    # The card applies from the treatment start, as when an integration first mirrors it.
    return client.call(stub.SyncMedicineCard, pb.SyncMedicineCardRequest(
        card=pb.MedicineCard(name=CARD, card_version=version, orders=orders),
        valid_time=_ts(datetime(2026, 1, 1, tzinfo=UTC)),
        request_id=request_id))


def versions(client: MedClient, stub: medicine_cards_pb2_grpc.MedicineCardServiceStub,
             name: str = ORDER) -> list[pb.Order]:
    return list(client.call(stub.ListOrderVersions,
                            pb.ListOrderVersionsRequest(parent=name)).versions)


def _code(fn: Callable[..., object], *args: object) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args)
    return info.value


def test_sync_creates_then_the_same_version_changes_nothing(cards: tuple) -> None:
    client, stub = cards
    first = sync(client, stub, 1, [order(), order("ord-2", "Furosemid")])
    assert [c.kind for c in first.changes] == [pb.ORDER_CHANGE_KIND_CREATED] * 2
    assert {o.drug.name for o in first.card.orders} == {"Paracetamol", "Furosemid"}
    texts = {(o.dosage.text_da, o.dosage.text_en) for o in first.card.orders}
    assert texts == {("1 tablet morgen og aften", "1 tablet morning and evening")}
    assert all(o.state == pb.ORDER_STATE_ACTIVE for o in first.card.orders)
    again = sync(client, stub, 1, [order(quantity="2")])
    assert [c.kind for c in again.changes] == [pb.ORDER_CHANGE_KIND_UNCHANGED]
    assert len(versions(client, stub)) == 1
    assert len(again.card.orders) == 2


def test_older_card_version_is_refused_and_changes_nothing(cards: tuple) -> None:
    client, stub = cards
    sync(client, stub, 5, [order()])
    err = _code(sync, client, stub, 4, [order(quantity="2")])
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_CARD_VERSION")
    card = client.call(stub.GetMedicineCard, pb.GetMedicineCardRequest(name=CARD))
    assert card.card_version == 5
    assert card.orders[0].dosage.structured.periods[0].days[0].doses[0].amount.quantity == "1"


def test_changes_become_versions_and_absent_orders_are_removed(cards: tuple) -> None:
    client, stub = cards
    sync(client, stub, 1, [order(), order("ord-2", "Furosemid")])
    second = sync(client, stub, 2, [order(quantity="2")])
    kinds = {c.order.split("/")[-1]: c.kind for c in second.changes}
    assert kinds == {"ord-1": pb.ORDER_CHANGE_KIND_UPDATED,
                     "ord-2": pb.ORDER_CHANGE_KIND_REMOVED}
    assert [o.drug.name for o in second.card.orders] == ["Paracetamol"]
    history = versions(client, stub)
    assert [v.version for v in history] == [1, 2]
    assert history[0].recorded_time.ToDatetime() <= history[1].recorded_time.ToDatetime()
    # The card as it was before the change is still answerable.
    before = client.call(stub.GetMedicineCard, pb.GetMedicineCardRequest(
        name=CARD, valid_time=history[0].valid_time, recorded_time=history[0].recorded_time))
    assert len(before.orders) == 2


def test_back_dated_discontinuation_is_kept_with_both_clocks(cards: tuple) -> None:
    client, stub = cards
    sync(client, stub, 1, [order()])
    now = datetime.now(UTC)
    discontinued_at = now - timedelta(hours=4)   # made at "10:00"
    between = now - timedelta(hours=2)           # a dose given at "12:00"
    known_before = datetime.now(UTC)
    result = client.call(stub.DiscontinueOrder, pb.DiscontinueOrderRequest(
        name=ORDER, discontinue_time=_ts(discontinued_at), request_id=RID_D1))
    assert result.state == pb.ORDER_STATE_DISCONTINUED
    at_dose_now = client.call(stub.GetOrder, pb.GetOrderRequest(name=ORDER,
                                                                valid_time=_ts(between)))
    assert at_dose_now.state == pb.ORDER_STATE_DISCONTINUED
    at_dose_then = client.call(stub.GetOrder, pb.GetOrderRequest(
        name=ORDER, valid_time=_ts(between), recorded_time=_ts(known_before)))
    assert at_dose_then.state == pb.ORDER_STATE_ACTIVE
    history = versions(client, stub)
    assert len(history) == 2
    last = history[-1]
    assert last.discontinue_time.ToDatetime(tzinfo=UTC) == discontinued_at.replace(
        microsecond=discontinued_at.microsecond)
    assert last.recorded_time.ToDatetime(tzinfo=UTC) >= known_before
    # Reversed: active again, and the history keeps all three versions.
    reversed_ = client.call(stub.ReverseDiscontinuation, pb.ReverseDiscontinuationRequest(
        name=ORDER))
    assert reversed_.state == pb.ORDER_STATE_ACTIVE
    assert len(versions(client, stub)) == 3
    err = _code(client.call, stub.ReverseDiscontinuation,
                pb.ReverseDiscontinuationRequest(name=ORDER))
    assert err.reason == "NOT_DISCONTINUED"


def test_pause_and_resume(cards: tuple) -> None:
    client, stub = cards
    sync(client, stub, 1, [order()])
    paused = client.call(stub.PauseOrder, pb.PauseOrderRequest(name=ORDER))
    assert paused.state == pb.ORDER_STATE_PAUSED
    assert len(paused.pauses) == 1 and not paused.pauses[0].HasField("end_time")
    err = _code(client.call, stub.PauseOrder, pb.PauseOrderRequest(name=ORDER))
    assert err.reason == "ALREADY_PAUSED"
    resumed = client.call(stub.ResumeOrder, pb.ResumeOrderRequest(name=ORDER))
    assert resumed.state == pb.ORDER_STATE_ACTIVE
    assert resumed.pauses[0].HasField("end_time")
    future = datetime.now(UTC) + timedelta(days=1)
    planned = client.call(stub.PauseOrder, pb.PauseOrderRequest(
        name=ORDER, pause_start=_ts(future), pause_end=_ts(future + timedelta(days=2))))
    assert planned.state == pb.ORDER_STATE_ACTIVE
    during = client.call(stub.GetOrder, pb.GetOrderRequest(
        name=ORDER, valid_time=_ts(future + timedelta(hours=1))))
    assert during.state == pb.ORDER_STATE_PAUSED


def test_bad_dosage_names_the_field_and_stores_nothing(cards: tuple) -> None:
    client, stub = cards
    sync(client, stub, 1, [order()])
    bad = order(quantity="1,5")
    err = _code(sync, client, stub, 2, [bad])
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == [
        f"card.orders[0].dosage.structured.periods[0].days[0].doses[{i}].amount.quantity"
        for i in (0, 1)]
    duplicate = _code(sync, client, stub, 2, [order(), order()])
    assert [f for f, _ in duplicate.violations] == ["card.orders[1].name"]
    foreign = order()
    foreign.name = "facilities/f/residents/other/orders/x"
    assert [f for f, _ in _code(sync, client, stub, 2, [foreign]).violations] == [
        "card.orders[0].name"]
    card = client.call(stub.GetMedicineCard, pb.GetMedicineCardRequest(name=CARD))
    assert card.card_version == 1 and len(versions(client, stub)) == 1


def test_retried_sync_returns_the_first_result(cards: tuple) -> None:
    client, stub = cards
    first = sync(client, stub, 1, [order()], request_id=RID_S1)
    again = sync(client, stub, 1, [order()], request_id=RID_S1)
    assert first == again
    assert len(versions(client, stub)) == 1


def test_only_integrations_write_and_others_read_their_facility(
        cards: tuple, server: ServerFixture) -> None:
    client, stub = cards
    sync(client, stub, 1, [order()])
    carer = server.client(Role.CARER, "f")
    carer_stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(carer.channel)
    assert len(carer.call(carer_stub.GetMedicineCard,
                          pb.GetMedicineCardRequest(name=CARD)).orders) == 1
    err = _code(sync, carer, carer_stub, 2, [order()])
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    other = server.client(Role.INTEGRATION, "g")
    other_stub = medicine_cards_pb2_grpc.MedicineCardServiceStub(other.channel)
    err = _code(other.call, other_stub.GetMedicineCard, pb.GetMedicineCardRequest(name=CARD))
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
