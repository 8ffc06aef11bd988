"""CheckDose and RecordDose over gRPC against an echo RPC on the same server stack (issue 4
targets: >= 50% of the echo rate; p99 <= 20 ms at half of peak load).

The echo goes through the same interceptor (authentication, log context), thread pool and
concurrency bound; the difference is the round's own work: loading the resident's orders,
doses and records, the rules, and for RecordDose the write and the incremental
reconciliation. Clients run in threads of this process (the machine has two cores), so the
server and the load share them; the ratio is what to read.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from bench.rounds_bench import SECRET, seeded_server
from medservice.api.auth import mint_token
from medservice.domain.access import Role
from medservice.server import settle_heap
from medservice.v1 import rounds_pb2 as pb
from medservice.v1 import rounds_pb2_grpc

CLIENT_THREADS = 8
SECONDS = 4.0


def _load(call: Callable[[int], Any], seconds: float, threads: int) -> list[float]:
    """Closed loop: `threads` clients calling as fast as they can; latencies in ms."""
    samples: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        mine = []
        while time.perf_counter() < stop:
            started = time.perf_counter()
            call(next(counter))
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            samples.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return samples


def _paced(call: Callable[[int], Any], rate: float, seconds: float) -> list[float]:
    """Open loop at `rate` calls per second (calls started on schedule, from a pool)."""
    from concurrent.futures import ThreadPoolExecutor

    samples: list[float] = []
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        call(i)
        with lock:
            samples.append((time.perf_counter() - due) * 1000)

    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, due)
    return samples


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


def run() -> dict[str, float | int | str]:
    today = datetime.now(UTC).date()
    with seeded_server(today) as port:
        return _measure(port, today)


def _measure(port: int, today: Any) -> dict[str, float | int | str]:
    settle_heap()  # as `medservice serve` does once the server is up
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    token = mint_token(SECRET, subject="bench", role=Role.CARER, facilities=["bench"])
    md = (("authorization", f"Bearer {token}"),)
    stub = rounds_pb2_grpc.RoundServiceStub(channel)
    echo = channel.unary_unary("/medservice.bench.Echo/Echo")
    residents = [f"facilities/bench/residents/r{i:02d}" for i in range(40)]
    # Doses to record: every resident's doses of the last four weeks, each recorded once;
    # enough for the peak and the half-peak runs, so that both time a real record (a
    # second record of a dose is the ALREADY_EXISTS path, which does less).
    now = datetime.now(UTC)
    start, end = now - timedelta(days=28), now - timedelta(hours=1)
    doses = []
    for r in residents:
        from google.protobuf.timestamp_pb2 import Timestamp

        a, b = Timestamp(), Timestamp()
        a.FromDatetime(start)
        b.FromDatetime(end)
        doses += [(r, d) for d in stub.ListScheduledDoses(pb.ListScheduledDosesRequest(
            parent=r, start_time=a, end_time=b, page_size=500), metadata=md).doses]

    def call_echo(i: int) -> None:
        echo(b"x" * 64, metadata=md, timeout=10)

    def call_check(i: int) -> None:
        resident, d = doses[i % len(doses)]
        stub.CheckDose(pb.CheckDoseRequest(resident=resident, dose_id=d.dose_id,
                                           quantity=d.amount.quantity or d.amount.max_quantity,
                                           route=d.route, administration_time=d.due_time),
                       metadata=md, timeout=10)

    record_index = itertools.count()  # wraps round the list (a range stopped the clients)

    def call_record(i: int) -> None:
        resident, d = doses[next(record_index) % len(doses)]
        record = pb.AdministrationRecord(
            dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
            not_given_reason=pb.NOT_GIVEN_REASON_REFUSED, administration_time=d.due_time)
        try:
            stub.RecordDose(pb.RecordDoseRequest(parent=resident, record=record,
                                                 request_id=str(uuid.uuid4())),
                            metadata=md, timeout=10)
        except grpc.RpcError as e:  # the list wrapped round: already recorded
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise

    out: dict[str, float | int | str] = {"client_threads": CLIENT_THREADS,
                                         "seconds_per_load": SECONDS,
                                         "doses_available": len(doses)}
    for name, call in (("echo", call_echo), ("check_dose", call_check),
                       ("record_dose", call_record)):
        samples = _load(call, SECONDS, CLIENT_THREADS)
        out[f"{name}_per_second"] = round(len(samples) / SECONDS, 1)
        out[f"{name}_p50_ms"] = round(statistics.median(samples), 2)
        out[f"{name}_p99_ms"] = _p(samples, 0.99)
    echo_rate = float(out["echo_per_second"])
    for name, call in (("check_dose", call_check), ("record_dose", call_record)):
        peak = float(out[f"{name}_per_second"])
        out[f"{name}_vs_echo"] = round(peak / echo_rate, 4)
        half = _paced(call, peak / 2, SECONDS)
        out[f"{name}_p99_ms_at_half_peak"] = _p(half, 0.99)
    out["record_dose_calls"] = next(record_index)  # above doses_available: some repeated
    out["targets"] = ">= 0.5 of echo; p99 <= 20 ms at half of peak"
    channel.close()
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
