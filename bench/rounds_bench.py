"""Shift schedule of a 40-resident facility over gRPC (issue 3 target: p50 <= 20 ms).

Baseline in the same run: an echo RPC on the same server stack (interceptor, auth, thread
pool), so the figure can be read as transport cost plus the schedule's own cost.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc

from medservice.api.auth import TokenVerifier, mint_token
from medservice.demo import demo_cards
from medservice.domain.access import Role
from medservice.domain.facility import Facility, Resident
from medservice.logs import configure_logging
from medservice.server import build_server
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.settings import Settings
from medservice.store.db import make_engine
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory
from medservice.v1 import rounds_pb2, rounds_pb2_grpc

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
RESIDENTS = 40
ORDERS_PER_RESIDENT = 7
CALLS = 200


def _seed(url: str, today: date) -> None:
    engine = make_engine(url)
    uow = uow_factory(engine)
    now = datetime.now(UTC)
    shapes = [o for orders in demo_cards(today).values() for o in orders]
    unique = list({o.order_id: o for o in shapes}.values())
    with uow() as u:
        facilities_uc.create_facility(u, Facility("bench", "Bench Home"), now)
        for i in range(RESIDENTS):
            rid = f"r{i:02d}"
            facilities_uc.create_resident(
                u, Resident(rid, "bench", f"0101{50 + i:02d}-{1000 + i}", rid,
                            f"{100 + i}"), now)
            orders = [unique[(i + k) % len(unique)] for k in range(ORDERS_PER_RESIDENT)]
            orders = list({o.order_id: o for o in orders}.values())
            # Mirrored a month ago: the doses RecordDose records are reconciled, as a home
            # that has used medservice for a while has them.
            cards_uc.sync_card(u, "bench", rid, 1, orders, now - timedelta(days=30),
                               now - timedelta(days=30))
        u.commit()
    engine.dispose()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _time_calls(call: Callable[..., object], request: object,
                metadata: tuple[tuple[str, str], ...]) -> list[float]:
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call(request, metadata=metadata, timeout=10)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextmanager
def seeded_server(today: date) -> Iterator[int]:
    """A server on a free port over a seeded SQLite facility ("bench", 40 residents), with
    an echo RPC on the same stack (/medservice.bench.Echo/Echo); yields the port."""
    configure_logging("console", "warning")  # a log line per call would be the benchmark
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        _seed(url, today)
        engine = make_engine(url)
        echo = grpc.method_handlers_generic_handler("medservice.bench.Echo", {
            "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
        # No per-caller rate: one subject's closed loop measures capacity, not fairness.
        running = build_server(Settings(listen="127.0.0.1:0", rate_limit_per_second=0,
                                        http_listen=""),
                               uow_factory(engine),
                               TokenVerifier(hmac_secret=SECRET), extra_handlers=[echo])
        try:
            yield running.port
        finally:
            running.stop(0)
            engine.dispose()


def run() -> dict[str, float | int | str]:
    today = datetime.now(UTC).date()
    with seeded_server(today) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        token = mint_token(SECRET, subject="bench", role=Role.CARER, facilities=["bench"])
        metadata = (("authorization", f"Bearer {token}"),)
        stub = rounds_pb2_grpc.RoundServiceStub(channel)
        request = rounds_pb2.GetShiftScheduleRequest(
            facility="facilities/bench", date=today.isoformat(), shift_id="day")
        doses = sum(len(r.doses) for r in stub.GetShiftSchedule(
            request, metadata=metadata).residents)
        schedule = _time_calls(stub.GetShiftSchedule, request, metadata)
        echo_call = channel.unary_unary("/medservice.bench.Echo/Echo")
        baseline = _time_calls(echo_call, b"x" * 64, metadata)
        channel.close()
    return {
        "residents": RESIDENTS, "orders": RESIDENTS * ORDERS_PER_RESIDENT,
        "doses_in_shift": doses, "calls": CALLS,
        "shift_schedule_p50_ms": round(statistics.median(schedule), 2),
        "shift_schedule_p95_ms": round(_percentile(schedule, 0.95), 2),
        "echo_p50_ms": round(statistics.median(baseline), 2),
        "target_p50_ms": 20,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
