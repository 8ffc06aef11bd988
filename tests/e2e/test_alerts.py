"""Alerts over gRPC in one process, on SQLite and PostgreSQL (DOMAIN.md §9): the missed-dose
sweep, exactly-once delivery with resume tokens, escalation and acknowledgement."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.reconcile import Discrepancy
from medservice.service.unit_of_work import UnitOfWork
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, morning_evening, order, ts
from tests.conftest import ServerFixture, TestClock, token_for

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_ACK_1 = "807cc1a0-0700-588e-ab2b-63e483b49348"

ZONE = ZoneInfo("Europe/Copenhagen")
R1 = "facilities/f/residents/r1"
R2 = "facilities/f/residents/r2"


class Watcher:
    """A front end: a watch stream read on its own thread into a queue."""

    def __init__(self, client: MedClient, facility: str = "f", token: str = "",
                 audience: int = 0) -> None:
        self.call = client.watch_alerts(facility, token, audience)
        self.events: queue.Queue[apb.WatchAlertsResponse | grpc.RpcError] = queue.Queue()
        self.token = token
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        first = self.next(5)  # the opening heartbeat: the stream is live
        assert isinstance(first, apb.WatchAlertsResponse) and first.HasField("heartbeat")

    def _read(self) -> None:
        try:
            for event in self.call:
                self.events.put(event)
        except grpc.RpcError as e:
            self.events.put(e)

    def next(self, timeout: float) -> apb.WatchAlertsResponse | grpc.RpcError:
        event = self.events.get(timeout=timeout)
        if isinstance(event, apb.WatchAlertsResponse):
            self.token = event.resume_token
        return event

    def alerts(self, count: int, timeout: float = 10) -> list[apb.Alert]:
        """The next `count` alerts (heartbeats skipped); then nothing more for a moment."""
        got: list[apb.Alert] = []
        deadline = datetime.now() + timedelta(seconds=timeout)
        while len(got) < count:
            left = (deadline - datetime.now()).total_seconds()
            assert left > 0, f"got {len(got)} of {count} alerts"
            event = self.next(left)
            assert isinstance(event, apb.WatchAlertsResponse), event
            if event.HasField("alert"):
                got.append(event.alert)
        return got

    def quiet(self, seconds: float = 1.0) -> None:
        """No alert arrives for a while (heartbeats may)."""
        deadline = datetime.now() + timedelta(seconds=seconds)
        while (left := (deadline - datetime.now()).total_seconds()) > 0:
            try:
                event = self.next(left)
            except queue.Empty:
                return
            assert isinstance(event, apb.WatchAlertsResponse)
            assert not event.HasField("alert"), event.alert

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(5)


def set_now(clock: TestClock, at: datetime) -> None:
    clock.advance(at - clock())


def tomorrow_at(clock: TestClock, hour: int, minute: int = 0) -> datetime:
    """A time on the day after the real today (the card was mirrored late today), however
    far the test has moved the server's clock."""
    day = (clock() - clock.offset).astimezone(ZONE).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


@pytest.fixture
def ward(server: ServerFixture, server_clock: TestClock) -> Iterator[dict[str, MedClient]]:
    server_clock.to_late_evening(ZONE)  # the cards are mirrored after today's rounds
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    for rid, pid, room in (("r1", "010145-1111", "1"), ("r2", "020245-2222", "2")):
        admin.create_resident("f", fpb.Resident(person_id=pid, display_name=rid, room=room),
                              rid)
    integration = server.client(Role.INTEGRATION, "f")
    for resident in (R1, R2):
        integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=1, orders=[
                order(resident, "para", "Paracetamol", morning_evening("2"))]),
            valid_time=ts(CARD_VALID_FROM)))
    yield {"lead": server.client(Role.SHIFT_LEAD, "f", subject="lead-1"),
           "pharmacist": server.client(Role.PHARMACIST, "f", subject="pharm-1"),
           "carer": server.client(Role.CARER, "f", subject="nurse-1"),
           "integration": integration, "admin": admin}


def sweep(server: ServerFixture) -> None:
    server.running.sweeper.run_once()


def morning_dose(c: MedClient, resident: str, clock: TestClock) -> rpb.ScheduledDose:
    start = tomorrow_at(clock, 0)
    doses = c.call(c.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=resident, start_time=ts(start), end_time=ts(start + timedelta(hours=12)))).doses
    return doses[0]


def test_a_missed_dose_reaches_the_shift_lead_once(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    lead = Watcher(ward["lead"])
    pharmacist = Watcher(ward["pharmacist"])
    set_now(server_clock, tomorrow_at(server_clock, 8, 30))  # the 08:00 window is open
    sweep(server)
    lead.quiet(0.5)
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))  # it closed at 09:00
    sweep(server)
    got = lead.alerts(2)
    assert sorted(a.resident for a in got) == [R1, R2], got
    for a in got:
        assert a.kind == apb.ALERT_KIND_MISSED_DOSE
        assert a.audience == common_pb2.ROLE_SHIFT_LEAD
        assert a.severity == common_pb2.SEVERITY_HIGH
        assert (a.shift_id, a.shift_date) == ("day", tomorrow_at(server_clock, 0).date()
                                              .isoformat())
        assert a.discrepancy.startswith("facilities/f/discrepancies/")
        assert "010145" not in a.summary
    sweep(server)  # the sweep again, and reconciliation on a record: nothing twice
    lead.quiet(1.0)
    pharmacist.quiet(0.1)  # missed doses are the shift lead's
    listed = list(ward["lead"].list_alerts("f"))
    assert sorted(a.name for a in listed) == sorted(a.name for a in got)
    assert [a.position for a in got] == sorted(a.position for a in got)
    lead.close()
    pharmacist.close()


def test_an_order_change_just_before_the_window_closes_is_respected(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    lead = Watcher(ward["lead"])
    carer, integration = ward["carer"], ward["integration"]
    set_now(server_clock, tomorrow_at(server_clock, 8, 59))
    # r1's dose is given a minute before its window closes; r2's order is discontinued.
    d1 = morning_dose(carer, R1, server_clock)
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, record=rpb.AdministrationRecord(
            dose_id=d1.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="2",
            route="oral", administration_time=ts(server_clock()),
        source=rpb.DOSE_SOURCE_POUCH)))
    integration.call(integration.cards.DiscontinueOrder, cpb.DiscontinueOrderRequest(
        name=f"{R2}/orders/para", discontinue_time=ts(server_clock() - timedelta(hours=2)),
        reason="stopped by the doctor"))
    # The discontinuation is a clinical card change: the lead is asked to acknowledge it
    # (issue 16), and that is all.
    [change] = lead.alerts(1)
    assert change.kind == apb.ALERT_KIND_CARD_CHANGE
    set_now(server_clock, tomorrow_at(server_clock, 9, 30))
    sweep(server)
    lead.quiet(1.0)
    assert [a.kind for a in ward["lead"].list_alerts("f")] == [apb.ALERT_KIND_CARD_CHANGE]
    lead.close()


def test_a_watcher_resuming_gets_exactly_what_it_missed(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    first = Watcher(ward["lead"])
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    sweep(server)
    morning = first.alerts(2)
    token = first.token
    first.close()
    set_now(server_clock, tomorrow_at(server_clock, 19, 30))  # the evening doses are missed
    sweep(server)
    again = Watcher(ward["lead"], token=token)
    evening = again.alerts(2)
    again.quiet(1.0)
    assert {a.name for a in morning}.isdisjoint(a.name for a in evening)
    assert all(a.shift_id == "evening" for a in evening)
    again.close()
    # From the first token: everything after it, once, in log order.
    replay = Watcher(ward["lead"], token=token)
    assert [a.name for a in replay.alerts(2)] == [a.name for a in evening]
    replay.close()


def test_resume_tokens_out_of_range_or_of_another_facility(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    lead = ward["lead"]
    w = Watcher(lead)
    old = w.token  # from before the alerts that retention will prune
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    sweep(server)
    w.alerts(2)
    w.close()
    bad = lead.watch_alerts("f", "not-a-token")
    with pytest.raises(grpc.RpcError) as info:
        next(iter(bad))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Retention: a month later the log is pruned and the old token is refused.
    server_clock.advance(timedelta(days=31))
    server.running.sweeper._last_prune = None
    sweep(server)
    expired = lead.watch_alerts("f", old)
    with pytest.raises(grpc.RpcError) as info:
        next(iter(expired))
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert MedServiceError.from_rpc_error(info.value).reason == "RESUME_TOKEN_EXPIRED"


def test_unacknowledged_alert_escalates_to_the_pharmacist_once(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    pharmacist = Watcher(ward["pharmacist"])
    lead = ward["lead"]
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    sweep(server)
    alerts = sorted(lead.list_alerts("f"), key=lambda a: a.resident)
    assert len(alerts) == 2
    acked = lead.acknowledge_alert(alerts[0].name, request_id=RID_ACK_1)
    assert acked.acknowledged and acked.acknowledged_by == "lead-1"
    assert lead.acknowledge_alert(alerts[0].name, request_id=RID_ACK_1) == acked
    server_clock.advance(timedelta(minutes=14))
    sweep(server)
    pharmacist.quiet(0.5)
    server_clock.advance(timedelta(minutes=2))  # 16 minutes: the default 15 have passed
    sweep(server)
    [escalation] = pharmacist.alerts(1)
    assert escalation.kind == apb.ALERT_KIND_ESCALATION
    assert escalation.escalates == alerts[1].name
    assert escalation.audience == common_pb2.ROLE_PHARMACIST
    sweep(server)
    pharmacist.quiet(1.0)
    pharmacist.close()


def test_who_may_watch_list_and_acknowledge(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    sweep(server)
    [alert, _] = list(ward["lead"].list_alerts("f"))
    carer = ward["carer"]
    with pytest.raises(MedServiceError) as info:
        carer.acknowledge_alert(alert.name)
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(MedServiceError) as info:
        ward["pharmacist"].acknowledge_alert(alert.name)  # the shift lead's alert
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    other = server.client(Role.SHIFT_LEAD, "elsewhere")
    with pytest.raises(MedServiceError) as info:
        list(other.list_alerts("f"))
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    stream = ward["lead"].watch_alerts("f", audience=common_pb2.ROLE_PHARMACIST)
    with pytest.raises(grpc.RpcError) as rpc_info:
        next(iter(stream))
    assert rpc_info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Paged listing, newest first, and the unacknowledged filter.
    pages = list(ward["admin"].list_alerts("f", page_size=1))
    assert [a.position for a in pages] == sorted((a.position for a in pages), reverse=True)
    ward["lead"].acknowledge_alert(alert.name)
    assert [a.name for a in ward["lead"].list_alerts("f", unacknowledged_only=True)] == [
        _.name]


def test_a_high_discrepancy_alerts_the_pharmacist(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient]) -> None:
    pharmacist = Watcher(ward["pharmacist"])
    lead = Watcher(ward["lead"])
    carer = ward["carer"]
    set_now(server_clock, tomorrow_at(server_clock, 8, 5))
    d1 = morning_dose(carer, R1, server_clock)
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R1, acknowledged_reasons=["WRONG_DOSE"], record=rpb.AdministrationRecord(
            dose_id=d1.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="5",
            route="oral", administration_time=ts(server_clock()),
            source=rpb.DOSE_SOURCE_POUCH)))
    [alert] = pharmacist.alerts(1)
    assert alert.kind == apb.ALERT_KIND_DISCREPANCY and alert.summary.startswith("Forkert dosis: ")
    assert alert.resident == R1
    lead.quiet(0.5)
    lead.close()
    pharmacist.close()


def test_heartbeats_carry_the_resume_token(ward: dict[str, MedClient]) -> None:
    w = Watcher(ward["lead"])
    beats = [w.next(3) for _ in range(2)]  # the test server beats every 0.5 s
    assert all(isinstance(b, apb.WatchAlertsResponse) and b.HasField("heartbeat")
               and b.resume_token for b in beats)
    w.close()


def test_medctl_alerts_watch_resumes_from_its_token_file_list_and_ack(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    base = ["--target", server.target, "--token",
            token_for(Role.SHIFT_LEAD, "f", subject="lead-7")]
    token_file = tmp_path / "alerts.token"
    watching = Watcher(ward["lead"])
    token_file.write_text(watching.token)  # the console was started before the round
    watching.close()
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    sweep(server)
    watch = [*base, "alerts", "watch", "--facility", "f", "--token-file", str(token_file),
             "--count", "1"]
    assert main(watch) == 0
    shown, said = capsys.readouterr()
    first = shown.splitlines()
    assert said.startswith(f"medctl: forbundet til {server.target}: alarmer for f til din "
                           "rolle, fortsætter fra --token-file (tider Europe/Copenhagen)")
    assert main(watch) == 0  # restarted: resumes after what it showed
    second = capsys.readouterr().out.splitlines()
    assert len(first) == len(second) == 1 and first != second
    assert "GLEMT DOSIS" in first[0] and "[day " in first[0]
    # One clock in the line and in its text: facility time with its zone, never UTC.
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST) ", first[0])
    assert re.search(r"dosis med tid \S+ \d\d:\d\d (CET|CEST) ikke dokumenteret senest "
                     r"\d\d:\d\d (CET|CEST)", first[0]) and "UTC" not in first[0]
    assert main([*base, "alerts", "list", "--facility", "f", "--open"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    name = first[0].rsplit("(", 1)[1].rstrip(")")
    assert main([*base, "alerts", "ack", name]) == 0
    assert capsys.readouterr().out.startswith("kvitteret af lead-7")
    assert main([*base, "alerts", "list", "--facility", "f", "--open"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_resident_whose_reconciliation_fails_does_not_stop_the_sweep(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import medservice.service.sweep as sweep_module

    real = sweep_module.reconcile_resident

    def broken_for_r1(uow: UnitOfWork, facility_id: str, resident_id: str, start: datetime,
                      end: datetime, now: datetime) -> list[Discrepancy]:
        if resident_id == "r1":
            raise RuntimeError("a card this version cannot read")
        return real(uow, facility_id, resident_id, start, end, now)

    monkeypatch.setattr(sweep_module, "reconcile_resident", broken_for_r1)
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    report = server.running.sweeper.run_once()
    assert report.failed >= 1
    assert [a.resident for a in ward["lead"].list_alerts("f")] == [R2]
    monkeypatch.setattr(sweep_module, "reconcile_resident", real)
    sweep(server)  # r1's dose was left unswept: the next pass raises it
    assert sorted(a.resident for a in ward["lead"].list_alerts("f")) == [R1, R2]


class _Unavailable(grpc.RpcError):
    """What a dropped connection raises in a stream."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection reset"


def test_medctl_alerts_watch_says_when_it_connects_and_reconnects(
        server: ServerFixture, server_clock: TestClock, ward: dict[str, MedClient],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    real = MedClient.watch_alerts
    opened: list[str] = []

    def flaky(self: MedClient, facility_id: str, resume_token: str = "",
              audience: int = 0) -> Iterator[apb.WatchAlertsResponse]:
        stream = real(self, facility_id, resume_token, audience)
        opened.append(resume_token)
        if len(opened) > 1:
            return stream

        def dropped() -> Iterator[apb.WatchAlertsResponse]:
            yield next(stream)  # the opening heartbeat: the watch stood
            stream.cancel()
            raise _Unavailable()
        return dropped()

    monkeypatch.setattr(MedClient, "watch_alerts", flaky)
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    done: list[int] = []
    watcher = threading.Thread(target=lambda: done.append(main([
        "--target", server.target, "--token", token_for(Role.SHIFT_LEAD, "f"), "--json",
        "--lang", "en", "alerts", "watch", "--facility", "f", "--count", "1"])))
    watcher.start()
    deadline = datetime.now() + timedelta(seconds=10)
    while len(opened) < 2 and datetime.now() < deadline:
        threading.Event().wait(0.05)
    threading.Event().wait(0.3)  # the second stream's opening heartbeat
    sweep(server)  # the morning doses are missed now: an alert
    watcher.join(10)
    out, err = capsys.readouterr()
    assert done == [0]
    lines = err.splitlines()
    assert lines[0].startswith("medctl: connected to ") and lines[0].endswith(
        "alerts of f for your role, from now (times Europe/Copenhagen)")
    assert lines[1] == "medctl: connection lost (UNAVAILABLE); reconnecting in 0.5 s"
    assert lines[2].startswith("medctl: reconnected to ") and "resuming after the last " \
        "alert shown" in lines[2]
    assert opened[1]  # resumed from the token of the first stream's heartbeat
    assert '"kind": "ALERT_KIND_MISSED_DOSE"' in out  # --json: the alert as JSON
