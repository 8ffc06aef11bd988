"""Offline documentation (issue 16 part 5): RecordDoses over gRPC on SQLite and PostgreSQL.
What was written on the emergency list during an outage is sent afterwards, many records at
once, and each is recorded exactly once however often and in whatever order it is sent."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import discrepancies_pb2_grpc, medicine_cards_pb2_grpc
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, order, structured, ts
from tests.conftest import ServerFixture, TestClock, token_for

ZONE = ZoneInfo("Europe/Copenhagen")
RESIDENTS = [f"r{i}" for i in range(1, 6)]
OUTAGE_DAYS = 10  # 5 residents x 4 doses x 10 days = 200 records


def _name(resident: str) -> str:
    return f"facilities/f/residents/{resident}"


def _set_now(clock: TestClock, at: datetime) -> None:
    clock.advance(at - clock())


@pytest.fixture
def home(server: ServerFixture, server_clock: TestClock) -> tuple[MedClient, datetime]:
    """Five residents on four doses a day, mirrored before an outage of ten days; now is
    the day after it, at noon. Returns a carer and local midnight starting the outage."""
    server_clock.to_late_evening(ZONE)
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    integration = server.client(Role.INTEGRATION, "f")
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    four = structured([dose(K.DOSE_TIME_KIND_MORNING), dose(K.DOSE_TIME_KIND_NOON),
                       dose(K.DOSE_TIME_KIND_EVENING), dose(K.DOSE_TIME_KIND_NIGHT)])
    for i, r in enumerate(RESIDENTS):
        admin.create_resident("f", fpb.Resident(person_id=f"0101{45 + i:02d}-1111",
                                                display_name=f"Test {i}", room=str(i)), r)
        integration.call(cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{_name(r)}/medicineCard", card_version=1,
                                  orders=[order(_name(r), "para", "Paracetamol", four)]),
            valid_time=ts(CARD_VALID_FROM)))
    local = server_clock().astimezone(ZONE)
    outage = datetime(local.year, local.month, local.day, tzinfo=ZONE) + timedelta(days=1)
    _set_now(server_clock, outage + timedelta(days=OUTAGE_DAYS, hours=12))
    return server.client(Role.CARER, "f", subject="nurse-1"), outage


def _emergency_list(carer: MedClient, outage: datetime) -> list[pb.RecordDoseRequest]:
    """One record per dose of the outage, as written on paper: order and time, no dose id
    (the matching finds the dose), each with its own request_id."""
    items = []
    for r in RESIDENTS:
        doses = carer.call(carer.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
            parent=_name(r), start_time=ts(outage),
            end_time=ts(outage + timedelta(days=OUTAGE_DAYS)), page_size=500)).doses
        for d in doses:
            items.append(pb.RecordDoseRequest(
                parent=_name(r), request_id=str(uuid.uuid4()),
                record=pb.AdministrationRecord(
                    order=d.order, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1",
                    route="oral", administration_time=d.due_time)))
    return items


def _records(carer: MedClient) -> list[pb.AdministrationRecord]:
    out: list[pb.AdministrationRecord] = []
    for r in RESIDENTS:
        out += carer.call(carer.rounds.ListAdministrationRecords,
                          pb.ListAdministrationRecordsRequest(parent=_name(r),
                                                              page_size=500)).records
    return out


def _send(carer: MedClient, items: list[pb.RecordDoseRequest], timeout: float = 120
          ) -> list[pb.RecordDoseResult]:
    return list(carer.call(carer.rounds.RecordDoses, pb.RecordDosesRequest(
        parent="facilities/f", requests=items), timeout=timeout).results)


def test_two_hundred_offline_records_sent_twice_after_an_interruption_give_200(
        home: tuple[MedClient, datetime], server: ServerFixture) -> None:
    carer, outage = home
    items = _emergency_list(carer, outage)
    assert len(items) == 200
    rng = random.Random(16)
    # The first send is cut off part-way: the deadline passes while the service works
    # (about 4 ms an item), and the service stops at the next item.
    with pytest.raises(MedServiceError) as cut:
        _send(carer, rng.sample(items, len(items)), timeout=0.3)
    assert cut.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.5)
    assert 0 < len(_records(carer)) < 200
    # Then the whole list, twice, each time in another order.
    first = _send(carer, rng.sample(items, len(items)))
    second = _send(carer, rng.sample(items, len(items)))
    for results in (first, second):
        assert len(results) == 200
        assert {r.status.code for r in results} == {code_pb2.OK}, [
            r.status.message for r in results if r.status.code][:3]
    by_id = {r.request_id: r.response.record.name for r in first}
    assert {r.request_id: r.response.record.name for r in second} == by_id
    assert len(set(by_id.values())) == 200
    records = _records(carer)
    assert len(records) == 200
    assert {r.name for r in records} == set(by_id.values())
    # Each settled its own dose, as a single RecordDose would have: nothing is missed.
    assert len({r.dose_id for r in records}) == 200 and all(r.dose_id for r in records)
    pharmacist = server.client(Role.PHARMACIST, "f")
    stub = discrepancies_pb2_grpc.DiscrepancyServiceStub(pharmacist.channel)
    pharmacist_view = pharmacist.call(stub.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
        parent="facilities/f", status=dpb.DISCREPANCY_STATUS_OPEN, page_size=500))
    codes = [d.code for d in pharmacist_view.discrepancies]
    # Documented days after the fact: each record is late documentation, as RecordDose
    # flags it; no dose of the outage is missed or given twice.
    assert codes.count(dpb.DISCREPANCY_CODE_LATE_DOCUMENTATION) == 200
    assert dpb.DISCREPANCY_CODE_EXTRA_DOSE not in codes
    missed = [d for d in pharmacist_view.discrepancies
              if d.code == dpb.DISCREPANCY_CODE_MISSED_DOSE]
    assert all(d.dose_id and d.occurrence_time.ToDatetime(tzinfo=UTC)
               >= outage + timedelta(days=OUTAGE_DAYS) for d in missed)


def test_each_item_has_its_own_result_and_the_good_ones_are_recorded(
        home: tuple[MedClient, datetime], server_clock: TestClock,
        server: ServerFixture) -> None:
    carer, outage = home
    items = _emergency_list(carer, outage)[:4]
    # Sent alone first: the batch answers it from the request log, not a second record.
    alone = carer.call(carer.rounds.RecordDose, items[0])
    no_id = pb.RecordDoseRequest()
    no_id.CopyFrom(items[1])
    no_id.request_id = ""
    future = pb.RecordDoseRequest()
    future.CopyFrom(items[2])
    future.record.administration_time.CopyFrom(ts(server_clock() + timedelta(hours=1)))
    elsewhere = pb.RecordDoseRequest(parent="facilities/g/residents/r1",
                                     request_id=str(uuid.uuid4()), record=items[3].record)
    wrong_dose = pb.RecordDoseRequest()
    wrong_dose.CopyFrom(items[3])
    wrong_dose.record.quantity = "3"  # a STOP, not acknowledged
    results = _send(carer, [items[0], no_id, future, elsewhere, wrong_dose])
    assert [r.status.code for r in results] == [
        code_pb2.OK, code_pb2.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT,
        code_pb2.INVALID_ARGUMENT, code_pb2.FAILED_PRECONDITION]
    assert results[0].response == alone
    fields = []
    for r in results[1:4]:
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in r.status.details)
        fields.append([v.field for v in bad.field_violations])
    assert fields == [["requests[1].request_id"],
                      ["requests[2].record.administration_time"],
                      ["requests[3].parent"]]
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in results[4].status.details)
    assert info.reason == "CHECK_NOT_ACKNOWLEDGED" and info.metadata["reasons"] == "WRONG_DOSE"
    assert not results[4].HasField("response")
    # Acknowledged and sent again under the same request_id, it is recorded.
    wrong_dose.acknowledged_reasons.append("WRONG_DOSE")
    [again] = _send(carer, [wrong_dose])
    assert again.status.code == code_pb2.OK and again.response.record.quantity == "3"
    assert len(_records(carer)) == 2
    # The audit trail: each call's event, and an event per item recorded by the batch
    # naming its resident and request_id, committed with the record (items[0] was
    # recorded, and audited, by its RecordDose).
    admin = server.client(Role.ADMIN)
    events = [e for e in admin.audit_events("facilities/f", method="RecordDoses")]
    calls = [e for e in events if e.resource == "facilities/f"]
    recorded = sorted((e.resource, e.request_id, e.outcome) for e in events
                      if e.resource != "facilities/f")
    assert len(calls) == 2 and {e.outcome for e in calls} == {"OK"}
    assert recorded == [(wrong_dose.parent, wrong_dose.request_id, "OK")]


def test_a_batch_is_refused_whole_only_for_its_own_faults(
        home: tuple[MedClient, datetime], server: ServerFixture) -> None:
    carer, outage = home
    item = _emergency_list(carer, outage)[0]
    too_many = pb.RecordDosesRequest(parent="facilities/f", requests=[item] * 1001)
    with pytest.raises(MedServiceError) as big:
        carer.call(carer.rounds.RecordDoses, too_many)
    assert big.value.code == grpc.StatusCode.INVALID_ARGUMENT
    other = server.client(Role.CARER, "g")
    with pytest.raises(MedServiceError) as denied:
        other.call(other.rounds.RecordDoses, pb.RecordDosesRequest(
            parent="facilities/f", requests=[item]))
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    pharmacist = server.client(Role.PHARMACIST, "f")
    with pytest.raises(MedServiceError) as role:
        pharmacist.call(pharmacist.rounds.RecordDoses, pb.RecordDosesRequest(
            parent="facilities/f", requests=[item]))
    assert role.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert _records(carer) == []


def test_medctl_sends_a_file_of_records_once_however_often_it_is_sent(
        home: tuple[MedClient, datetime], server: ServerFixture, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    carer, outage = home
    lines, written = [], _emergency_list(carer, outage)[:6]
    for i, item in enumerate(written):
        at = item.record.administration_time.ToDatetime(tzinfo=UTC).astimezone(ZONE)
        # Times as staff write them (facility time), ISO with and without its offset.
        said = [f"{at:%d-%m-%Y %H:%M}", at.isoformat(), at.replace(tzinfo=None).isoformat()]
        lines.append(json.dumps({"resident": item.parent.rsplit("/", 1)[1], "order": "para",
                                 "outcome": "given", "quantity": "1", "route": "oral",
                                 "time": said[i % 3]}))
    lines.insert(2, "# page 2 of the emergency list")
    lines.append(json.dumps({"resident": "r1", "order": "para", "outcome": "not-given",
                             "reason": "refused", "time": "kl. otte"}))
    path = tmp_path / "outage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    base = ["--target", server.target, "--token", token_for(Role.CARER, "f")]
    # A time medctl cannot read is refused before anything is sent, in one line.
    assert main([*base, "record-offline", str(path), "--facility", "f"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medctl: line 8: time 'kl. otte' needs its calendar date")
    assert err.count("\n") == 1
    assert _records(carer) == []
    lines[-1] = json.dumps({"resident": "r1", "order": "para", "outcome": "given",
                            "quantity": "1", "route": "oral",
                            "time": (datetime.now(UTC) + timedelta(days=30)).isoformat()})
    path.write_text("\n".join(lines) + "\n")
    for _ in range(2):
        assert main([*base, "record-offline", str(path), "--facility", "f", "--chunk",
                     "4"]) == 3
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == "6 af 7 registreret"
        assert [line.split(":")[0] for line in out if "registreret f" in line] == [
            "1", "2", "4", "5", "6", "7"]
        assert any(line.startswith("8: IKKE registreret, INVALID_ARGUMENT: "
                                   "requests[") for line in out)
    # Each at the time written, whichever way it was written.
    assert sorted(r.administration_time.ToDatetime(tzinfo=UTC) for r in _records(carer)) \
        == sorted(i.record.administration_time.ToDatetime(tzinfo=UTC) for i in written)
    # --json: one object a line, the same answers (sent again: recorded once, answered so).
    assert main([*base, "record-offline", str(path), "--facility", "f", "--json"]) == 3
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["line"] for a in answers if a["recorded"]] == [1, 2, 4, 5, 6, 7]
    assert [a["error"].startswith("INVALID_ARGUMENT") for a in answers if a["line"] == 8] \
        == [True]
    assert len(_records(carer)) == 6
