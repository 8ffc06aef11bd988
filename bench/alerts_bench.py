"""Alert latency (issue 5 targets): from a dose's window closing to receipt by 200 concurrent
watchers, p99 within the sweep interval plus 1 s; fan-out from the alert's commit to the
last watcher, p99 <= 200 ms.

The server runs in this process with a clock that runs 60 times fast from the start of
the run, so a facility's doses (one-minute windows, due every few minutes of its day)
close every few real seconds; everything else (the sweep's interval, the database, the
fan-out, the network) runs in real time, and latencies are real: a window that closes at
fast-clock instant C closes at the real instant the clock shows C. The watchers run in
another process (bench/alert_watchers.py, asyncio) so that they do not share the server's
interpreter lock; both read the same wall clock. SQLite always; PostgreSQL (LISTEN/NOTIFY
on the same path) when reachable, as in reconcile_bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from bench.reconcile_bench import bench_database
from bench.rounds_bench import SECRET
from clients.client import MedClient
from medservice.api.auth import TokenVerifier, mint_token
from medservice.domain.access import Role
from medservice.logs import configure_logging
from medservice.server import build_server
from medservice.settings import Settings
from medservice.store.db import make_engine
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Copenhagen")
SPEED = 60.0  # fast-clock seconds per real second
WATCHERS = 200
RESIDENTS = 10
CLOSINGS = 15  # distinct instants at which a dose of every resident closes
EVERY_MINUTES = 3  # of the facility's day between them: 3 real seconds
SWEEP_SECONDS = 2.0


class FastClock:
    """Fast time from `origin`: real seconds since the start times SPEED."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self.started = time.time()

    def __call__(self) -> datetime:
        return self.origin + timedelta(seconds=(time.time() - self.started) * SPEED)

    def real(self, instant: datetime) -> float:
        """The wall-clock time at which the clock shows `instant`."""
        return self.started + (instant - self.origin).total_seconds() / SPEED


def _ts(value: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def _seed(client: MedClient, integration: MedClient, first_due: datetime) -> None:
    client.create_facility(fpb.Facility(display_name="Alert bench", time_zone="Europe/Copenhagen",
                                        alert_escalation_minutes=24 * 60), "alerts")
    times = [(first_due + timedelta(minutes=EVERY_MINUTES * k)).astimezone(ZONE)
             .strftime("%H:%M") for k in range(CLOSINGS)]
    doses = [cpb.DosageDose(time_kind=cpb.DOSE_TIME_KIND_CLOCK, clock_time=t,
                            amount=common_pb2.DoseQuantity(quantity="1")) for t in times]
    dosage = cpb.Dosage(structured=cpb.StructuredDosage(
        unit=cpb.DoseUnit(singular="tablet", plural="tabletter"),
        periods=[cpb.DosagePeriod(start_date="2026-01-01", iteration_interval_days=1,
                                  days=[cpb.DosageDay(day_number=1, doses=doses)])]))
    for i in range(RESIDENTS):
        rid = f"r{i:02d}"
        name = f"facilities/alerts/residents/{rid}"
        client.create_resident("alerts", fpb.Resident(
            person_id=f"0101{50 + i:02d}-{2000 + i}", display_name=rid, room=str(i)), rid)
        order = cpb.Order(name=f"{name}/orders/o", drug=cpb.Drug(
            name="Metformin", drug_id="id-metformin", form="tabletter"), route="oral",
            treatment_start_date="2026-01-01", dosage=dosage,
            dispensing_mode=common_pb2.DISPENSING_MODE_DOSE_DISPENSED, window_minutes=1)
        integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{name}/medicineCard", card_version=1,
                                  orders=[order]),
            valid_time=_ts(datetime(2026, 1, 1, tzinfo=UTC))))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@contextmanager
def _database(store: str) -> Iterator[str]:
    if store == "postgresql":
        with bench_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'alerts.db'}"
        upgrade(url)
        yield url


def measure(store: str) -> dict[str, Any]:
    # The facility's day starts a few minutes (of it) after now; doses fall due from then.
    origin = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = FastClock(origin)
    first_due = origin + timedelta(minutes=20)
    with _database(store) as url:
        engine = make_engine(url)
        settings = Settings(listen="127.0.0.1:0", http_listen="", database_url=url,
                            worker_threads=WATCHERS + 48,
                            max_alert_watchers=WATCHERS + 8, max_concurrent_rpcs=1024,
                            sweep_interval_seconds=SWEEP_SECONDS, alert_heartbeat_seconds=5,
                            rate_limit_per_second=0)  # one lead subject opens every watch
        running = build_server(settings, uow_factory(engine), TokenVerifier(hmac_secret=SECRET),
                               clock)
        commits: list[tuple[float, int]] = []  # (wall time, last position) per commit
        wake = running.feed.wake

        def committed(facility_id: str, position: int | None = None) -> None:
            if position is not None:
                commits.append((time.time(), position))
            wake(facility_id, position)

        # The feed's own wake-up replaced on this instance, on purpose, to time commits.
        running.feed.wake = committed  # type: ignore[method-assign]
        target = f"127.0.0.1:{running.port}"
        try:
            admin_token = mint_token(SECRET, subject="bench", role=Role.ADMIN,
                                     facilities=["*"])
            feed_token = mint_token(SECRET, subject="bench", role=Role.INTEGRATION,
                                    facilities=["alerts"])
            with MedClient(target, admin_token) as admin, \
                    MedClient(target, feed_token) as integration:
                _seed(admin, integration, first_due)
            if clock() > first_due - timedelta(minutes=2):
                raise RuntimeError("seeding took too long for the fast clock")
            lead = mint_token(SECRET, subject="lead", role=Role.SHIFT_LEAD,
                              facilities=["alerts"])
            watchers = subprocess.Popen(
                [sys.executable, "-m", "bench.alert_watchers", "--target", target,
                 "--token", lead, "--parent", "facilities/alerts", "--watchers",
                 str(WATCHERS), "--expect", str(RESIDENTS * CLOSINGS)],
                cwd=ROOT, stdout=subprocess.PIPE, text=True)
            assert watchers.stdout is not None
            ready = json.loads(watchers.stdout.readline())
            if clock() > first_due:
                raise RuntimeError("the watchers opened too late for the fast clock")
            lines = watchers.stdout.read().splitlines()
            watchers.wait()
            with engine.connect() as conn:
                due_of = {p: d for p, d in conn.execute(text(
                    "SELECT a.position, d.occurred_at FROM alerts a JOIN discrepancies d "
                    "ON d.discrepancy_id = a.discrepancy_id WHERE a.facility_id = 'alerts' "
                    "AND a.kind = 'missed_dose'"))}
        finally:
            running.stop(0)
            engine.dispose()
    receipts = [json.loads(line) for line in lines if line.startswith('{"w"')]
    by_alert: dict[int, list[float]] = defaultdict(list)
    for r in receipts:
        by_alert[r["p"]].append(r["t"])
    closing, fan_out_all, fan_out_last = [], [], []
    for position, times in by_alert.items():
        due = due_of[position]
        due = datetime.fromisoformat(due) if isinstance(due, str) else due
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        closes = clock.real(due + timedelta(minutes=1))
        committed_at = min(t for t, last in commits if last >= position)
        closing += [(t - closes) * 1000 for t in times]
        fan_out_all += [(t - committed_at) * 1000 for t in times]
        fan_out_last.append((max(times) - committed_at) * 1000)
    expected = RESIDENTS * CLOSINGS
    return {
        "store": store, "watchers": ready["ready"], "alerts": len(by_alert),
        "alerts_expected": expected, "receipts": len(receipts),
        "receipts_expected": expected * WATCHERS,
        "sweep_interval_ms": SWEEP_SECONDS * 1000,
        "close_to_receipt_p50_ms": round(_percentile(closing, 0.50), 1),
        "close_to_receipt_p99_ms": round(_percentile(closing, 0.99), 1),
        "close_to_receipt_target_ms": SWEEP_SECONDS * 1000 + 1000,
        "commit_to_receipt_p50_ms": round(_percentile(fan_out_all, 0.50), 1),
        "commit_to_receipt_p99_ms": round(_percentile(fan_out_all, 0.99), 1),
        "commit_to_last_watcher_p50_ms": round(_percentile(fan_out_last, 0.50), 1),
        "commit_to_last_watcher_p99_ms": round(_percentile(fan_out_last, 0.99), 1),
        "fan_out_target_ms": 200,
    }


def _postgres_reachable() -> bool:
    from bench.reconcile_bench import _unreachable

    return _unreachable() is None


def run() -> dict[str, Any]:
    configure_logging("console", "warning")
    figures: dict[str, Any] = {"sqlite": measure("sqlite")}
    if _postgres_reachable():
        figures["postgresql"] = measure("postgresql")
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
