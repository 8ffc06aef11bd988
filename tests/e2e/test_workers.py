"""`medservice serve --workers 2` (issue 19): two processes share one port, on SQLite and
on PostgreSQL. A round in which N doses are missed gives exactly N MISSED_DOSE alerts,
each delivered exactly once to every watcher, with watchers connected to both workers.

Real time, real processes, as tests/e2e/test_alert_replicas.py: the doses fall due at the
next minute boundary with a one-minute window, so each store takes about two minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from clients.client import MedClient
from medservice.domain.access import Role
from medservice.store.db import make_engine
from tests.conftest import TEST_SECRET, token_for
from tests.e2e.test_alert_replicas import (
    GIVEN,
    MISSED,
    RESIDENTS,
    Watcher,
    _give,
    _next_minute,
    _wait_until,
    _ward,
)
from tests.e2e.test_operations import MEDSERVICE, ROOT, _free_port, _wait_serving

MAX_WATCHERS = 16


class OwnConnection(Watcher):
    options = (("grpc.use_local_subchannel_pool", 1),)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _connections(pid: int, port: int) -> int:
    """Established TCP connections on `port` (local side) that process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held


@pytest.mark.timeout(400)
def test_two_workers_alert_each_missed_dose_once_to_every_watcher(
        db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    target = f"127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_DATABASE_URL": db_url,
           "MEDSERVICE_JWT_SECRET": TEST_SECRET, "MEDSERVICE_SWEEP_INTERVAL_SECONDS": "0.3",
           "MEDSERVICE_ALERT_HEARTBEAT_SECONDS": "1", "MEDSERVICE_LOG_LEVEL": "warning",
           "MEDSERVICE_VAR_DIR": str(tmp_path / "var"),
           # Both workers serve HTTP on one port too (SO_REUSEPORT, as gRPC's).
           "MEDSERVICE_HTTP_LISTEN": f"127.0.0.1:{_free_port()}"}
    if db_url.startswith("postgresql"):
        subprocess.run([*MEDSERVICE, "migrate"], cwd=tmp_path, env=env, check=True)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*MEDSERVICE, "serve", "--workers", "2", "--listen", target],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    watchers: list[Watcher] = []
    try:
        _wait_serving(target)
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        with urllib.request.urlopen(f"http://{env['MEDSERVICE_HTTP_LISTEN']}/healthz",
                                    timeout=10) as answer:
            assert answer.status == 200
        due = _next_minute(datetime.now(UTC) + timedelta(seconds=20))
        with MedClient(target, token_for(Role.ADMIN)) as admin, \
                MedClient(target, token_for(Role.INTEGRATION, "mp")) as integration:
            _ward(admin, integration, due)
        # Watchers, each on its own connection, until both workers serve some (the
        # kernel spreads connections by their addresses).
        watchers = [OwnConnection(target) for _ in range(4)]
        while (min(_connections(w, port) for w in workers) == 0
               and len(watchers) < MAX_WATCHERS):
            watchers.append(OwnConnection(target))
        served = {w: _connections(w, port) for w in workers}
        assert all(served.values()), served
        _wait_until(due + timedelta(seconds=1))
        with MedClient(target, token_for(Role.CARER, "mp")) as carer:
            for i in range(RESIDENTS - GIVEN, RESIDENTS):
                _give(carer, f"r{i:02d}", due)
        _wait_until(due + timedelta(minutes=1, seconds=0.2))
        deadline = time.monotonic() + 30
        while any(len(w.alerts) < MISSED for w in watchers) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # more sweeps in both workers: nothing further may arrive
    finally:
        for w in watchers:
            w.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]
    expected = {f"r{i:02d}" for i in range(MISSED)}
    for w in watchers:
        names = [x.name for x in w.alerts]
        assert len(names) == MISSED and len(set(names)) == MISSED, names
        assert {x.resident.rsplit("/", 1)[1] for x in w.alerts} == expected
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM alerts WHERE facility_id = 'mp' "
                "AND kind = 'missed_dose'")).scalar() == MISSED
            assert conn.execute(text(
                "SELECT count(*) FROM discrepancies WHERE facility_id = 'mp' "
                "AND code = 'MISSED_DOSE'")).scalar() == MISSED
    finally:
        engine.dispose()


@pytest.mark.parametrize(("args", "said"), [
    (["--workers", "0"], "--workers must be between 1 and 64"),
    (["--workers", "2", "--listen", "127.0.0.1:0"], "--workers needs a fixed port"),
])
def test_workers_refused_in_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_JWT_SECRET": TEST_SECRET,
           "MEDSERVICE_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
           "MEDSERVICE_VAR_DIR": str(tmp_path / "var"), "MEDSERVICE_HTTP_LISTEN": ""}
    done = subprocess.run([*MEDSERVICE, "serve", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert said in done.stderr.strip().splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr
