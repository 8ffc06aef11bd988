"""Valid CheckDose calls while a flood of unauthenticated garbage arrives (issue 13 targets:
throughput under the flood >= 0.80 of quiet, p99 <= 2x quiet).

Three processes, as in production: the server (`medservice serve` on a seeded SQLite file),
the valid load (an asyncio gRPC client, 16 calls in flight, one carer token per slot), and
the flood (garbage bodies without a token, ~540 calls/s, open loop). The load is measured
quiet and then under the flood; the ratios are what to read.

FLOOD_BENCH_BASELINE=<git revision> measures that revision's server the same way in the
same run (its source is exported to a temporary directory; the generated code and the
seeded database are this checkout's), e.g. the code before issue 13.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from medservice.api.auth import mint_token
from medservice.domain.access import Role
from medservice.v1 import rounds_pb2 as pb
from medservice.v1 import rounds_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-of-at-least-thirty-two-bytes"  # as bench.rounds_bench seeds with
RESIDENTS = 40
IN_FLIGHT = 16
FLOOD_RATE = 540.0
SECONDS = float(os.environ.get("FLOOD_BENCH_SECONDS", "6"))
PAIRS = 3
FLOOD_SECONDS = 5.0
WARM_UP_SECONDS = 3.0
CHECK_DOSE = "/medservice.v1.RoundService/CheckDose"
GARBAGE = b"\xff" * 64  # not a protobuf message: field 31 with a wire type that does not exist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


def _child(*args: str, source: Path = ROOT, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.Popen([sys.executable, "-m", "bench.flood_bench", *args], cwd=source,
                            env=env, text=True, **kwargs)


# --- the load: valid CheckDose calls, IN_FLIGHT at a time ---------------------------------

async def _load(port: int, seconds: float) -> None:
    """Set up and warm up, print "ready", then measure `seconds` for each line read from
    stdin, printing each phase's figures as a JSON line; end when stdin closes."""
    tokens = [mint_token(SECRET, subject=f"carer-{k}", role=Role.CARER, facilities=["bench"])
              for k in range(IN_FLIGHT)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rounds_pb2_grpc.RoundServiceStub(channel)
        doses = await _doses(stub)
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        examples: dict[str, str] = {}
        turn = [0] * IN_FLIGHT

        async def slot(k: int, until: float, record: bool) -> None:
            md = (("authorization", f"Bearer {tokens[k]}"),)
            while loop.time() < until:
                resident, d = doses[(k + turn[k] * IN_FLIGHT) % len(doses)]
                turn[k] += 1
                started = time.perf_counter()
                try:
                    await stub.CheckDose(pb.CheckDoseRequest(
                        resident=resident, dose_id=d.dose_id,
                        quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
                        administration_time=d.due_time), metadata=md, timeout=10)
                except grpc.aio.AioRpcError as e:
                    if record:
                        errors[e.code().name] += 1
                        examples.setdefault(e.code().name, e.details() or "")
                    continue
                if record:
                    latencies.append((time.perf_counter() - started) * 1000)

        warm = loop.time() + WARM_UP_SECONDS
        await asyncio.gather(*(slot(k, warm, False) for k in range(IN_FLIGHT)))
        print("ready", flush=True)
        while await loop.run_in_executor(None, sys.stdin.readline):
            latencies.clear()
            errors.clear()
            until = loop.time() + seconds
            await asyncio.gather(*(slot(k, until, True) for k in range(IN_FLIGHT)))
            print(json.dumps({
                "per_second": round(len(latencies) / seconds, 1),
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": _p(latencies, 0.99), "errors": dict(errors),
                "examples": examples}), flush=True)


async def _doses(stub: rounds_pb2_grpc.RoundServiceStub) -> list[tuple[str, Any]]:
    token = mint_token(SECRET, subject="bench-setup", role=Role.CARER, facilities=["bench"])
    md = (("authorization", f"Bearer {token}"),)
    now = datetime.now(UTC)
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(now - timedelta(days=3))  # due before now: a check of a dose
    end.FromDatetime(now - timedelta(minutes=5))  # "given" in the future is refused
    doses: list[tuple[str, Any]] = []
    for i in range(RESIDENTS):
        resident = f"facilities/bench/residents/r{i:02d}"
        found = await stub.ListScheduledDoses(pb.ListScheduledDosesRequest(
            parent=resident, start_time=start, end_time=end, page_size=500), metadata=md)
        doses += [(resident, d) for d in found.doses]
    return doses


# --- the flood: garbage without a token, open loop, until stdin closes ---------------------

async def _flood(port: int, rate: float) -> dict[str, Any]:
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    codes: Counter[str] = Counter()
    pending: set[asyncio.Task[None]] = set()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(CHECK_DOSE)
        await channel.channel_ready()
        print("flooding", flush=True)  # the orchestrator starts the load on this line

        async def one() -> None:
            try:
                await call(GARBAGE, timeout=5)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as e:
                codes[e.code().name] += 1

        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while not stop.is_set():
            due = started + sent / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        elapsed = loop.time() - started
        await asyncio.gather(*pending)
    return {"sent_per_second": round(sent / elapsed, 1), "codes": dict(codes)}


# --- the orchestration --------------------------------------------------------------------

@contextmanager
def _server(db: Path, source: Path, log: Path) -> Iterator[tuple[int, int]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(source),
           "MEDSERVICE_DATABASE_URL": f"sqlite:///{db}",
           "MEDSERVICE_LISTEN": f"127.0.0.1:{port}", "MEDSERVICE_JWT_SECRET": SECRET,
           "MEDSERVICE_SWEEP_INTERVAL_SECONDS": "0", "MEDSERVICE_LOG_FORMAT": "json",
           "MEDSERVICE_LOG_LEVEL": "info", "MEDSERVICE_VAR_DIR": str(db.parent),
           "MEDSERVICE_HTTP_LISTEN": ""}  # gRPC only: nothing to clash with on 8080
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from medservice.cli import main; "
                                   "sys.exit(main(['serve']))"],
            cwd=source, env=env, stdout=out, stderr=out)
    try:
        _wait_serving(port, process)
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the server exited at start")
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise RuntimeError("the server did not start")


def _flood_alone(port: int, pid: int) -> tuple[float, int]:
    """Server CPU seconds spent on FLOOD_SECONDS of flood with no other load, and calls."""
    flood = _child("flood", str(port), str(FLOOD_RATE), stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE)
    assert flood.stdout is not None
    assert flood.stdout.readline().strip() == "flooding"
    time.sleep(1.0)
    before = _cpu_seconds(pid)
    time.sleep(FLOOD_SECONDS)
    spent = _cpu_seconds(pid) - before
    flood_out, _ = flood.communicate("")
    return spent, int(json.loads(flood_out.splitlines()[-1])["sent_per_second"]
                      * FLOOD_SECONDS)


def _measure(db: Path, source: Path, log: Path) -> dict[str, Any]:
    """PAIRS of a quiet phase and a flooded one, back to back: each pair's ratios, and
    their median (a neighbour's burst on the shared machine spoils a pair, not the run).
    Then the server's CPU per refused call, from a flood alone."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    log_bytes = 0
    flood_codes: Counter[str] = Counter()
    flood_rates = []
    with _server(db, source, log) as (port, pid):
        load = _child("load", str(port), str(SECONDS), stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE)
        assert load.stdin is not None and load.stdout is not None
        assert load.stdout.readline().strip() == "ready"

        def phase() -> dict[str, Any]:
            assert load.stdin is not None and load.stdout is not None
            load.stdin.write("measure\n")
            load.stdin.flush()
            figures: dict[str, Any] = json.loads(load.stdout.readline())
            return figures

        quiet_cpu = 0.0
        for _ in range(PAIRS):
            cpu_before = _cpu_seconds(pid)
            quiet = phase()
            quiet_cpu += _cpu_seconds(pid) - cpu_before
            flood = _child("flood", str(port), str(FLOOD_RATE), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
            assert flood.stdout is not None
            assert flood.stdout.readline().strip() == "flooding"
            time.sleep(1.0)  # the flood under way before the phase starts
            log_before = log.stat().st_size
            flooded = phase()
            log_bytes += log.stat().st_size - log_before
            flood_out, _ = flood.communicate("")  # closing its stdin stops it
            sent = json.loads(flood_out.splitlines()[-1])
            flood_codes.update(sent["codes"])
            flood_rates.append(sent["sent_per_second"])
            pairs.append((quiet, flooded))
        load.communicate("")
        cpu, calls = _flood_alone(port, pid)
    log_text = log.read_text(errors="replace")
    throughput = [f["per_second"] / q["per_second"] for q, f in pairs]
    p99 = [f["p99_ms"] / q["p99_ms"] for q, f in pairs]
    return {
        "throughput_ratio": round(statistics.median(throughput), 3),
        "p99_ratio": round(statistics.median(p99), 3),
        "pairs": [{"quiet": [q["per_second"], q["p99_ms"]],
                   "flooded": [f["per_second"], f["p99_ms"]]} for q, f in pairs],
        "load_errors": [p["errors"] for pair in pairs for p in pair if p["errors"]],
        "flood_sent_per_second": min(flood_rates), "flood_codes": dict(flood_codes),
        "server_cpu_ms_per_refused_call": round(cpu * 1000 / calls, 3),
        "server_cpu_ms_per_valid_call": round(
            quiet_cpu * 1000 / sum(q["per_second"] * SECONDS for q, _ in pairs), 3),
        "log_bytes_per_flooded_second": round(log_bytes / (PAIRS * SECONDS)),
        "log_error_lines": log_text.count('"level": "error"'),
    }


def _export(revision: str, into: Path) -> Path:
    """The source of `revision`, with this checkout's generated code (not committed)."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT,
                             check=True, capture_output=True).stdout
    source = into / "baseline"
    source.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    shutil.copytree(ROOT / "medservice" / "v1", source / "medservice" / "v1",
                    dirs_exist_ok=True)
    return source


def run() -> dict[str, Any]:
    from bench.rounds_bench import RESIDENTS as SEEDED
    from bench.rounds_bench import SECRET as SEEDED_WITH
    from bench.rounds_bench import _seed
    from medservice.store.migrate import upgrade

    assert (SEEDED, SEEDED_WITH) == (RESIDENTS, SECRET)
    baseline = os.environ.get("FLOOD_BENCH_BASELINE", "")
    out: dict[str, Any] = {"in_flight": IN_FLIGHT, "flood_rate": FLOOD_RATE,
                           "seconds_per_load": SECONDS}
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        upgrade(f"sqlite:///{seeded}")
        _seed(f"sqlite:///{seeded}", datetime.now(UTC).date())
        runs = [("", ROOT)]
        if baseline:
            runs.insert(0, ("baseline_", _export(baseline, Path(tmp))))
            out["baseline_revision"] = baseline
        for prefix, source in runs:
            db = Path(tmp) / f"{prefix or 'this_'}server" / "bench.db"
            db.parent.mkdir()
            shutil.copy(seeded, db)
            figures = _measure(db, source, db.parent / "server.log")
            out.update({f"{prefix}{k}": v for k, v in figures.items()})
    out["targets"] = "throughput_ratio >= 0.80; p99_ratio <= 2.0"
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] == "load":
        asyncio.run(_load(int(argv[1]), float(argv[2])))
        return 0
    if argv and argv[0] == "flood":
        print(json.dumps(asyncio.run(_flood(int(argv[1]), float(argv[2])))))
        return 0
    print(json.dumps(run(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
