"""Three server processes on one PostgreSQL: a synthetic round in which N doses are missed
gives exactly N MISSED_DOSE alerts, each delivered exactly once to a watcher on every
replica, while one watcher reconnects mid-run and one replica is killed with SIGKILL.

Real time, real processes: the doses fall due at the next minute boundary with a one-minute
window, so the test takes about two minutes. PostgreSQL only (it is what replicas share).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import Engine, text

from clients.client import MedClient
from medservice.domain.access import Role
from medservice.store.db import make_engine
from medservice.v1 import alerts_pb2 as apb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import CARD_VALID_FROM, K, dose, order, structured, ts
from tests.conftest import TEST_SECRET, _truncate, token_for
from tests.e2e.test_operations import MEDSERVICE, ROOT, _free_port, _wait_serving

ZONE = ZoneInfo("Europe/Copenhagen")
RESIDENTS = 12
GIVEN = 3  # of them get their dose; the others' doses are missed
MISSED = RESIDENTS - GIVEN


class Replica:
    def __init__(self, url: str, tmp: Path, name: str) -> None:
        port = _free_port()
        self.target = f"127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_DATABASE_URL": url,
               "MEDSERVICE_LISTEN": self.target, "MEDSERVICE_JWT_SECRET": TEST_SECRET,
               "MEDSERVICE_HTTP_LISTEN": "",
               "MEDSERVICE_SWEEP_INTERVAL_SECONDS": "0.3",
               "MEDSERVICE_ALERT_HEARTBEAT_SECONDS": "1", "MEDSERVICE_LOG_LEVEL": "warning",
               "MEDSERVICE_VAR_DIR": str(tmp / name)}
        self.log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*MEDSERVICE, "serve"], cwd=tmp, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class Watcher:
    """A shift lead's front end: reads a stream into a list, reconnecting with its resume
    token (to the same or another replica) when asked or when the stream breaks."""

    # Channel options: ("grpc.use_local_subchannel_pool", 1) gives the watcher its own
    # connection (by default channels to one address share one).
    options: tuple[tuple[str, Any], ...] = ()

    def __init__(self, target: str) -> None:
        self.alerts: list[apb.Alert] = []
        self.token = ""
        self.reconnects = 0
        self._targets: queue.Queue[str] = queue.Queue()
        self._targets.put(target)
        self._stopped = threading.Event()
        self._call: grpc.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._opened = threading.Event()
        self._thread.start()
        assert self._opened.wait(10), "the watch stream never opened"

    def _run(self) -> None:
        target = self._targets.get()
        while not self._stopped.is_set():
            client = MedClient(target, token_for(Role.SHIFT_LEAD, "mp"), options=self.options)
            try:
                self._call = client.watch_alerts("mp", self.token)
                for event in self._call:
                    self.token = event.resume_token
                    self._opened.set()
                    if event.HasField("alert"):
                        self.alerts.append(event.alert)
            except grpc.RpcError:
                pass
            finally:
                client.close()
            if self._stopped.is_set():
                return
            self.reconnects += 1
            with contextlib.suppress(queue.Empty):  # a new replica to go to, or retry
                target = self._targets.get(timeout=1)

    def reconnect(self, target: str) -> None:
        self._targets.put(target)
        assert self._call is not None
        self._call.cancel()

    def stop(self) -> None:
        self._stopped.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(5)


@pytest.fixture
def pg_engine(postgres_database: str | None) -> Iterator[Engine]:
    if postgres_database is None:
        pytest.skip("replicas share a PostgreSQL: set MEDSERVICE_TEST_POSTGRES_URL")
    engine = make_engine(postgres_database)
    yield engine
    _truncate(engine)
    engine.dispose()


def _next_minute(after: datetime) -> datetime:
    t = after.astimezone(ZONE).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return t


def _wait_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))


def _ward(client: MedClient, integration: MedClient, due: datetime) -> None:
    client.create_facility(fpb.Facility(display_name="Replicas"), "mp")
    hhmm = due.astimezone(ZONE).strftime("%H:%M")
    for i in range(RESIDENTS):
        rid = f"r{i:02d}"
        name = f"facilities/mp/residents/{rid}"
        client.create_resident("mp", fpb.Resident(
            person_id=f"{i + 1:02d}0150-{1000 + i}", display_name=rid, room=str(i)), rid)
        o = order(name, "o", "Metformin", structured([dose(K.DOSE_TIME_KIND_CLOCK,
                                                           clock=hhmm)]))
        o.window_minutes = 1  # the window closes a minute after the dose is due
        integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{name}/medicineCard", card_version=1, orders=[o]),
            valid_time=ts(CARD_VALID_FROM)))


def _give(client: MedClient, rid: str, due: datetime) -> None:
    name = f"facilities/mp/residents/{rid}"
    [d] = client.call(client.rounds.ListScheduledDoses, rpb.ListScheduledDosesRequest(
        parent=name, start_time=ts(due - timedelta(minutes=1)),
        end_time=ts(due + timedelta(minutes=1)))).doses
    client.call(client.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=name, record=rpb.AdministrationRecord(
            dose_id=d.dose_id, outcome=rpb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1",
            route="oral", administration_time=ts(datetime.now(UTC)),
            source=rpb.DOSE_SOURCE_POUCH)))


@pytest.mark.timeout(400)
def test_three_replicas_deliver_each_missed_dose_once_to_every_watcher(
        pg_engine: Engine, tmp_path: Path) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    replicas = [Replica(url, tmp_path, name) for name in ("a", "b", "c")]
    watchers: list[Watcher] = []
    try:
        for r in replicas:
            _wait_serving(r.target)
        due = _next_minute(datetime.now(UTC) + timedelta(seconds=15))
        closes = due + timedelta(minutes=1)
        a, b, c = replicas
        with MedClient(a.target, token_for(Role.ADMIN)) as admin, \
                MedClient(a.target, token_for(Role.INTEGRATION, "mp")) as integration:
            _ward(admin, integration, due)
        watchers = [Watcher(r.target) for r in replicas]
        _wait_until(due + timedelta(seconds=1))
        with MedClient(c.target, token_for(Role.CARER, "mp")) as carer:
            for i in range(RESIDENTS - GIVEN, RESIDENTS):
                _give(carer, f"r{i:02d}", due)
        _wait_until(closes + timedelta(seconds=0.2))
        b.proc.send_signal(signal.SIGKILL)  # mid-run: the replicas are sweeping now
        watchers[1].reconnect(a.target)  # its front end fails over with its token
        deadline = time.monotonic() + 30
        while not watchers[2].alerts and time.monotonic() < deadline:
            time.sleep(0.01)
        watchers[2].reconnect(c.target)  # a reconnect mid-run, to the same replica
        while (any(len(w.alerts) < MISSED for w in watchers)
               and time.monotonic() < deadline):
            time.sleep(0.1)
        time.sleep(3)  # more sweeps: nothing further may arrive
    finally:
        for w in watchers:
            w.stop()
        for r in replicas:
            r.stop()
    with pg_engine.connect() as conn:  # what was raised, to tell delivery from raising
        stored = conn.execute(text(
            "SELECT position, resident_id, created_at FROM alerts WHERE facility_id = 'mp' "
            "ORDER BY position")).all()
    for w in watchers:
        names = [x.name for x in w.alerts]
        assert len(names) == MISSED, (len(names), w.reconnects,
                                      [x.position for x in w.alerts], stored)
        assert len(set(names)) == MISSED  # none twice
        assert {x.kind for x in w.alerts} == {apb.ALERT_KIND_MISSED_DOSE}
    assert [sorted(x.name for x in w.alerts) for w in watchers[1:]] == [
        sorted(x.name for x in watchers[0].alerts)] * 2
    assert {x.resident.rsplit("/", 1)[1] for x in watchers[0].alerts} == {
        f"r{i:02d}" for i in range(MISSED)}
    assert watchers[1].reconnects >= 1 and watchers[2].reconnects >= 1
    with pg_engine.connect() as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM alerts WHERE facility_id = 'mp' AND kind = 'missed_dose'")
        ).scalar() == MISSED
        assert conn.execute(text(
            "SELECT count(*) FROM discrepancies WHERE facility_id = 'mp' "
            "AND code = 'MISSED_DOSE'")).scalar() == MISSED
