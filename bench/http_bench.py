"""CheckDose over HTTP/JSON against CheckDose over gRPC, on the same server in one run
(issue 17): what the HTTP face costs on top of the gRPC call it makes.

Both clients are sequential, keep their connection, and run in this process beside the
server (as the other benchmarks do); the ratio is what to read.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
from google.protobuf import json_format

from medservice.api.auth import TokenVerifier, mint_token
from medservice.demo import seed_demo
from medservice.domain.access import Role
from medservice.heap import settle_heap
from medservice.logs import configure_logging
from medservice.server import build_server
from medservice.settings import Settings
from medservice.store.db import make_engine
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory
from medservice.v1 import rounds_pb2, rounds_pb2_grpc

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
CALLS = 300
WARMUP = 30
RESIDENT = "facilities/demo/residents/r01"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2)}


def _time(call: Callable[[], object]) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def run() -> dict[str, object]:
    configure_logging("json", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        seed_demo(uow_factory(engine), datetime.now(UTC))
        running = build_server(
            Settings(listen="127.0.0.1:0", http_listen="127.0.0.1:0", database_url=url,
                     sweep_interval_seconds=0, rate_limit_per_second=0),  # one subject
            uow_factory(engine), TokenVerifier(hmac_secret=SECRET), engine=engine)
        settle_heap()
        token = mint_token(SECRET, subject="bench-carer", role=Role.CARER,
                           facilities=["demo"])
        request = rounds_pb2.CheckDoseRequest(
            resident=RESIDENT, order=f"{RESIDENT}/orders/metformin", quantity="1",
            route="oral")
        request.administration_time.FromDatetime(datetime.now(UTC))
        body = json_format.MessageToDict(request)
        del body["resident"]  # it is in the path
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
            stub = rounds_pb2_grpc.RoundServiceStub(channel)
            metadata = (("authorization", f"Bearer {token}"),)
            verdict = stub.CheckDose(request, metadata=metadata).verdict
            with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}",
                              headers={"authorization": f"Bearer {token}"}) as client:
                answer = client.post(f"/v1/{RESIDENT}:checkDose", json=body)
                assert answer.status_code == 200, answer.text
                assert answer.json()["verdict"] == rounds_pb2.CheckVerdict.Name(verdict)
                grpc_samples = _time(lambda: stub.CheckDose(request, metadata=metadata))
                http_samples = _time(lambda: client.post(f"/v1/{RESIDENT}:checkDose",
                                                         json=body))
                grpc_again = _time(lambda: stub.CheckDose(request, metadata=metadata))
            channel.close()
        finally:
            running.stop(0)
            engine.dispose()
    grpc_figures = _percentiles(grpc_samples + grpc_again)  # before and after: drift
    http_figures = _percentiles(http_samples)
    return {
        "calls": CALLS,
        "grpc_check_dose": grpc_figures,
        "http_json_check_dose": http_figures,
        "http_over_grpc_p50_ratio": round(http_figures["p50_ms"] / grpc_figures["p50_ms"], 2),
    }
