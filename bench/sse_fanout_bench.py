"""Alert fan-out to 200 browsers' worth of Server-Sent Event streams against 200 gRPC
WatchAlerts streams, on the same server in one run (issue 17 target: commit to last
receipt p99 <= 200 ms, as the gRPC watch meets).

Alerts are appended to the facility's log directly (one every ALERT_GAP seconds) and the
feed woken as a committing unit of work wakes it, so what is measured is the fan-out alone:
from the commit to each stream's receipt. The readers run in another process (asyncio) so
that they do not share the server's interpreter lock; both read the same wall clock.
SQLite always; PostgreSQL too when reachable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from bench.alerts_bench import ROOT, _database, _percentile, _postgres_reachable
from bench.rounds_bench import SECRET
from medservice.api.auth import TokenVerifier, mint_token
from medservice.domain.access import Role
from medservice.domain.alerts import AlertKind, NewAlert
from medservice.domain.discrepancy import Severity
from medservice.domain.facility import Facility
from medservice.logs import configure_logging
from medservice.server import build_server
from medservice.service import facilities as facilities_uc
from medservice.settings import Settings
from medservice.store.db import make_engine
from medservice.store.uow import uow_factory

WATCHERS = 200
ALERTS = 30
ALERT_GAP = 0.25


def _receive(command: list[str], append: Any) -> tuple[int, list[dict[str, Any]]]:
    readers = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert readers.stdout is not None
    ready = json.loads(readers.stdout.readline())["ready"]
    append()
    lines = readers.stdout.read().splitlines()
    readers.wait()
    return ready, [json.loads(x) for x in lines if x.startswith('{"w"')]


def _figures(ready: int, receipts: list[dict[str, Any]],
             commits: dict[int, float]) -> dict[str, Any]:
    by_alert: dict[int, list[float]] = defaultdict(list)
    for r in receipts:
        by_alert[r["p"]].append(r["t"])
    each = [(t - commits[p]) * 1000 for p, times in by_alert.items() for t in times]
    last = [(max(times) - commits[p]) * 1000 for p, times in by_alert.items()]
    return {"streams": ready, "alerts": len(by_alert), "receipts": len(receipts),
            "receipts_expected": ALERTS * WATCHERS,
            "commit_to_receipt_p50_ms": round(_percentile(each, 0.5), 1),
            "commit_to_receipt_p99_ms": round(_percentile(each, 0.99), 1),
            "commit_to_last_stream_p50_ms": round(_percentile(last, 0.5), 1),
            "commit_to_last_stream_p99_ms": round(_percentile(last, 0.99), 1)}


def measure(store: str) -> dict[str, Any]:
    with _database(store) as url:
        engine = make_engine(url)
        settings = Settings(listen="127.0.0.1:0", http_listen="127.0.0.1:0", database_url=url,
                            worker_threads=WATCHERS + 48, max_alert_watchers=WATCHERS + 8,
                            max_concurrent_rpcs=1024, sweep_interval_seconds=0,
                            alert_heartbeat_seconds=5,
                            rate_limit_per_second=0)  # one lead subject opens every stream
        running = build_server(settings, uow_factory(engine), TokenVerifier(hmac_secret=SECRET))
        commits: dict[int, float] = {}

        def committed(facility_id: str, position: int | None = None) -> None:
            if position is not None:
                commits[position] = time.time()
            running.feed.wake(facility_id, position)

        uow = uow_factory(engine, on_alerts=committed)
        now = datetime.now(UTC)
        with uow() as u:
            facilities_uc.create_facility(u, Facility("fanout", "Fan-out Home"), now)
            u.commit()
        serial = [0]

        def append() -> None:
            for _ in range(ALERTS):
                serial[0] += 1
                with uow() as u:
                    u.alerts.append([NewAlert(
                        f"bench-{serial[0]}", "fanout", AlertKind.DISCREPANCY,
                        Role.SHIFT_LEAD, Severity.HIGH, "bench alert", datetime.now(UTC))])
                    u.commit()
                time.sleep(ALERT_GAP)

        lead = mint_token(SECRET, subject="lead", role=Role.SHIFT_LEAD, facilities=["fanout"])
        try:
            grpc_ready, grpc_receipts = _receive([
                sys.executable, "-m", "bench.alert_watchers", "--target",
                f"127.0.0.1:{running.port}", "--token", lead, "--parent", "facilities/fanout",
                "--watchers", str(WATCHERS), "--expect", str(ALERTS)], append)
            grpc_figures = _figures(grpc_ready, grpc_receipts, commits)
            commits.clear()
            sse_ready, sse_receipts = _receive([
                sys.executable, "-m", "bench.sse_watchers", "--base",
                f"http://127.0.0.1:{running.http_port}", "--token", lead, "--parent",
                "facilities/fanout", "--watchers", str(WATCHERS), "--expect", str(ALERTS)],
                append)
            sse_figures = _figures(sse_ready, sse_receipts, commits)
        finally:
            running.stop(0)
            engine.dispose()
    return {"store": store, "grpc_watch": grpc_figures, "sse": sse_figures,
            "target_commit_to_last_p99_ms": 200,
            "sse_over_grpc_last_p99_ratio": round(
                sse_figures["commit_to_last_stream_p99_ms"]
                / max(grpc_figures["commit_to_last_stream_p99_ms"], 0.1), 2)}


def run() -> dict[str, Any]:
    configure_logging("console", "warning")
    figures: dict[str, Any] = {"sqlite": measure("sqlite")}
    if _postgres_reachable():
        figures["postgresql"] = measure("postgresql")
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
