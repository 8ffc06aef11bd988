"""Round calls measured as a user runs the service (issue 19): CheckDose and RecordDose
against Health/Check and an authenticated echo on the same server stack.

The server runs in its own process exactly as `medservice serve` does (bench.round_server:
the same settings, plus the echo), on its own SQLite file and on its own PostgreSQL
database, pinned to one core with `taskset`; the load (bench.round_load: an asyncio client
keeping 16 calls in flight, seeding through the public API) runs in another process pinned
to the other core. Measured before, with the clients in the server's process, the bench
timed the clients and the GIL as much as the server.

Ratios to Health/Check are what to read (the machine is shared and noisy); targets (issue
19): CheckDose >= 0.4 and RecordDose >= 0.25 on SQLite, 0.25 and 0.15 on PostgreSQL; p99 at
half of peak <= 20 ms; the server's RSS after the run <= 150 MB.

PostgreSQL: MEDSERVICE_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test);
the bench creates its own database there and drops it. Unreachable: SQLite only, said so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from medservice.store.db import normalise_url
from medservice.store.migrate import upgrade

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
SECONDS = float(os.environ.get("MEDSERVICE_BENCH_SECONDS", "5"))
INFLIGHT = 16
PG_URL = os.environ.get("MEDSERVICE_BENCH_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def _pinning() -> tuple[list[str], list[str], str]:
    """taskset prefixes for the server and the load, and what was done."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"], "server core 0, load core 1"
    return [], [], "not pinned (no taskset or one core)"


@contextmanager
def _postgres_database() -> Iterator[str | None]:
    name = f"medservice_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # unreachable: the run says so instead of failing
        admin.dispose()
        yield None
        return
    try:
        yield make_url(normalise_url(PG_URL)).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rss_mb(pid: int) -> dict[str, float]:
    """The process's resident set now and at its peak (MB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"server_rss_mb": fields.get("VmRSS", 0.0),
            "server_peak_rss_mb": fields.get("VmHWM", 0.0)}


def _start_server(url: str, tmp: Path, pin: list[str]) -> tuple[subprocess.Popen[bytes], int,
                                                                   Path]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDSERVICE_DATABASE_URL": url,
           "MEDSERVICE_LISTEN": "127.0.0.1:0", "MEDSERVICE_JWT_SECRET": SECRET,
           "MEDSERVICE_LOG_LEVEL": "warning", "MEDSERVICE_VAR_DIR": str(tmp / "var"),
           # Capacity from one load process under one subject: no per-caller rate (the flood
           # bench measures the limits), and gRPC only (8080 may be taken).
           "MEDSERVICE_RATE_LIMIT_PER_SECOND": "0", "MEDSERVICE_HTTP_LISTEN": ""}
    out = tmp / "server.log"
    with out.open("wb") as log:
        proc = subprocess.Popen([*pin, sys.executable, "-m", "bench.round_server"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("PORT "):
                return proc, int(line.split()[1]), out
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start:\n" + out.read_text(errors="replace")[-2000:])


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    peak = figures["peak"]
    if "health" not in peak:
        return {}
    health = (peak["health"]["per_second"] + peak["health_again"]["per_second"]) / 2
    ratios = {f"{name}_vs_health": round(peak[name]["per_second"] / health, 3)
              for name in ("echo", "audited_echo", "audited_read", "audited_write",
                           "check_dose", "record_dose", "record_old_dose") if name in peak}
    # What the service adds to the floor of its kind of call: a check reads, a record writes.
    for call, floor in (("check_dose", "audited_read"), ("record_dose", "audited_write")):
        if call in peak and floor in peak:
            ratios[f"{call}_vs_{floor}"] = round(
                peak[call]["per_second"] / peak[floor]["per_second"], 3)
    return ratios


def measure_store(url: str, pins: tuple[list[str], list[str]], *load_args: str
                  ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, log = _start_server(url, Path(tmp), pins[0])
        try:
            load = subprocess.run(
                [*pins[1], sys.executable, "-m", "bench.round_load", "--target",
                 f"127.0.0.1:{port}", "--secret", SECRET, "--seconds", str(SECONDS),
                 "--inflight", str(INFLIGHT), *load_args], cwd=ROOT, capture_output=True, text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
            if load.returncode != 0:
                raise RuntimeError("the load failed:\n" + load.stderr[-3000:] +
                                   "\nserver:\n" + log.read_text(errors="replace")[-2000:])
            figures: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
            figures.update(_rss_mb(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    figures["ratios"] = _ratios(figures)
    return figures


def run() -> dict[str, Any]:
    server_pin, load_pin, pinning = _pinning()
    out: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores (shared); {pinning}",
        "seconds_per_phase": SECONDS, "calls_in_flight": INFLIGHT,
        "targets": "sqlite: check >= 0.4, record >= 0.25 of health; postgresql: 0.25, "
                   "0.15; p99 at half of peak <= 20 ms; server RSS <= 150 MB"}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = measure_store(f"sqlite:///{Path(tmp) / 'bench.db'}",
                                      (server_pin, load_pin))
    with tempfile.TemporaryDirectory() as tmp:
        # The server's RSS as the issue measures it: its one facility of 40 residents (the
        # round facility's 900 residents fill the bounded caches further).
        out["sqlite_rss_issue_setup"] = measure_store(
            f"sqlite:///{Path(tmp) / 'bench.db'}", (server_pin, load_pin),
            "--round-residents", "0", "--no-half-peak", "--phases",
            "health,echo,audited_echo,check_dose,record_old_dose,health_again")
    with _postgres_database() as url:
        if url is None:
            out["postgresql"] = f"not measured: {PG_URL} unreachable"
        else:
            upgrade(url)  # `medservice migrate`, as production runs it before serving
            out["postgresql"] = measure_store(url, (server_pin, load_pin))
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
