"""kill -9 loses no acknowledged record and duplicates none, on SQLite and PostgreSQL
(issue 13). `medservice serve` runs as a subprocess; a few hundred RecordDose calls go in
concurrently, each with its own request_id; the server is SIGKILLed mid-way, restarted,
killed again mid-way and restarted. Every call whose outcome was unknown (the connection
broke, the deadline passed) is retried with the same request_id until it is answered.

Then: every call was acknowledged with a record; each record is stored exactly once; the
store holds no record nobody was told of; and sending every request again returns the same
record (the response was stored with the work, so a retry after a crash does no work twice).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import select

from clients.client import MedClient
from medservice.domain.access import Role
from medservice.store import tables
from medservice.store.db import make_engine
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from medservice.v1 import rounds_pb2_grpc
from tests.builders import K, dose, order, structured, ts
from tests.conftest import TEST_SECRET, _truncate, token_for
from tests.e2e.test_operations import MEDSERVICE, ROOT, _free_port, _wait_serving

ZONE = ZoneInfo("Europe/Copenhagen")
FACILITY = "dur"
RESIDENTS = 30
TIMES = ("08:00", "11:00", "14:00", "17:00", "20:00")
DAYS = 2  # 30 residents x 5 doses x 2 days = 300 calls
WORKERS = 16
# Failures that leave the outcome unknown: the call may or may not have been done.
UNKNOWN = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
           grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL,
           grpc.StatusCode.RESOURCE_EXHAUSTED}


class Server:
    """`medservice serve` on a fixed port, so a restart is found where the last one was."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.target = f"127.0.0.1:{_free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills: list[datetime] = []

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_DATABASE_URL": self.url,
               "MEDSERVICE_LISTEN": self.target, "MEDSERVICE_JWT_SECRET": TEST_SECRET,
               "MEDSERVICE_SWEEP_INTERVAL_SECONDS": "0", "MEDSERVICE_LOG_LEVEL": "warning",
               "MEDSERVICE_VAR_DIR": str(self.tmp / "var")}
        self.starts += 1
        log = open(self.tmp / f"serve-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*MEDSERVICE, "serve"], cwd=self.tmp, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child holds its own descriptor
        _wait_serving(self.target)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills.append(datetime.now(UTC))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Call:
    """One RecordDose, sent as often as needed with the same request (and request_id)."""
    request: rpb.RecordDoseRequest
    dose_id: str
    attempts: int = 0
    record: str = ""  # the record's name, once acknowledged
    answers: list[str] = field(default_factory=list)  # every acknowledged record name
    refused: str = ""  # a definite refusal: never expected


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'durable.db'}"  # `serve` migrates it
        return
    url = request.getfixturevalue("postgres_database")
    if url is None:
        pytest.skip("set MEDSERVICE_TEST_POSTGRES_URL")
    yield str(url)
    engine = make_engine(str(url))
    _truncate(engine)
    engine.dispose()


def _seed(target: str, first_day: date) -> list[Call]:
    """A home whose residents each have five doses a day on two past days: the calls that
    document each of them as given, at its due time."""
    start = first_day - timedelta(days=7)
    calls: list[Call] = []
    with MedClient(target, token_for(Role.ADMIN)) as admin, \
            MedClient(target, token_for(Role.INTEGRATION, FACILITY)) as feed, \
            MedClient(target, token_for(Role.CARER, FACILITY)) as carer:
        admin.create_facility(fpb.Facility(display_name="Durable"), FACILITY)
        times = [dose(K.DOSE_TIME_KIND_CLOCK, clock=t) for t in TIMES]
        for i in range(RESIDENTS):
            rid = f"r{i:02d}"
            parent = f"facilities/{FACILITY}/residents/{rid}"
            admin.create_resident(FACILITY, fpb.Resident(
                person_id=f"{i + 1:02d}0150-{2000 + i}", display_name=rid, room=str(i)), rid)
            o = order(parent, "o", "Metformin",
                      structured(times, start=start.isoformat()), start=start.isoformat())
            feed.call(feed.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
                card=cpb.MedicineCard(name=f"{parent}/medicineCard", card_version=1,
                                      orders=[o]),
                valid_time=ts(datetime.combine(start, datetime.min.time(), ZONE))))
            lo = datetime.combine(first_day, datetime.min.time(), ZONE)
            doses = carer.call(carer.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
                parent=parent, start_time=ts(lo), end_time=ts(lo + timedelta(days=DAYS)),
                page_size=100)).doses
            assert len(doses) == len(TIMES) * DAYS
            for d in doses:
                calls.append(Call(rpb.RecordDoseRequest(
                    parent=parent, request_id=str(uuid.uuid4()),
                    record=rpb.AdministrationRecord(
                        dose_id=d.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN,
                        quantity="1", route="oral", administration_time=d.due_time,
                        source=rpb.DOSE_SOURCE_POUCH)), d.dose_id))
    return calls


def _fire(target: str, calls: list[Call], kill_after: int | None, server: Server) -> int:
    """Send each call once, WORKERS at a time; SIGKILL the server once `kill_after` of them
    are acknowledged. Returns how many were acknowledged in this round."""
    channel = grpc.insecure_channel(target)
    stub = rounds_pb2_grpc.RoundServiceStub(channel)
    metadata = (("authorization", f"Bearer {token_for(Role.CARER, FACILITY)}"),)
    acked = 0
    lock = threading.Lock()
    killed = threading.Event()

    def send(call: Call) -> None:
        nonlocal acked
        call.attempts += 1
        try:
            response = stub.RecordDose(call.request, timeout=15, metadata=metadata)
        except grpc.RpcError as e:
            if e.code() not in UNKNOWN:
                call.refused = f"{e.code().name}: {e.details()}"
            return
        call.answers.append(response.record.name)
        call.record = call.record or response.record.name
        with lock:
            acked += 1
            if kill_after is not None and acked >= kill_after and not killed.is_set():
                killed.set()
                server.kill()  # mid-way: other calls are in flight in the pool

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(send, calls))
    finally:
        channel.close()
    return acked


@pytest.mark.timeout(150)
def test_kill_9_loses_and_duplicates_no_acknowledged_record(store_url: str,
                                                           tmp_path: Path) -> None:
    server = Server(store_url, tmp_path)
    began = time.monotonic()
    try:
        server.start()
        first_day = datetime.now(ZONE).date() - timedelta(days=DAYS + 1)
        calls = _seed(server.target, first_day)
        assert len(calls) == RESIDENTS * len(TIMES) * DAYS

        # Killed once a third is acknowledged, then again halfway through the rest.
        _fire(server.target, calls, len(calls) // 3, server)
        unknown_1 = [c for c in calls if not c.record and not c.refused]
        server.start()
        _fire(server.target, unknown_1, len(unknown_1) // 2, server)
        unknown_2 = [c for c in calls if not c.record and not c.refused]
        server.start()
        for _ in range(5):  # retry, same request_id, until every call is answered
            pending = [c for c in calls if not c.record and not c.refused]
            if not pending:
                break
            _fire(server.target, pending, None, server)
        # Every request once more: the stored response, not a second record.
        acknowledged = {c.request.request_id: c.record for c in calls}
        _fire(server.target, calls, None, server)
    finally:
        server.stop()
    took = time.monotonic() - began

    assert [c.refused for c in calls if c.refused] == []
    assert all(c.record for c in calls)
    # The kills really cut calls off: each left calls whose outcome was unknown.
    assert len(unknown_1) > 0 and len(unknown_2) > 0, (len(unknown_1), len(unknown_2))
    # Retries, and the final resend of all, answer with the first record.
    assert all(set(c.answers) == {acknowledged[c.request.request_id]} for c in calls)
    assert all(len(c.answers) >= 2 for c in calls)

    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            records = tables.administration_records.c
            stored = conn.execute(select(records.record_id, records.dose_id,
                                         records.recorded_at)
                                  .where(records.facility_id == FACILITY)).all()
    finally:
        engine.dispose()
    stored_ids = sorted(r.record_id for r in stored)
    told = sorted(c.record.rsplit("/", 1)[1] for c in calls)
    assert stored_ids == told  # none lost, none duplicated, none nobody was told of
    assert sorted(r.dose_id for r in stored) == sorted(c.dose_id for c in calls)
    # Informative: calls done by a server that was killed before it could answer them (the
    # retry found the stored response), as opposed to calls the dead server never got.
    when = {r.record_id: r.recorded_at for r in stored}
    done_unanswered = [
        sum(_utc(when[c.record.rsplit("/", 1)[1]]) <= kill for c in unknown)
        for unknown, kill in ((unknown_1, server.kills[0]), (unknown_2, server.kills[1]))]
    print(f"\n{len(calls)} calls; outcome unknown after kill 1: {len(unknown_1)}, after "
          f"kill 2: {len(unknown_2)}; of them done but unanswered: {done_unanswered}; "
          f"{took:.1f} s")
