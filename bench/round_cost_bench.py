"""What one round call costs the server, in figures a loaded machine does not blur
(issue 19): SQL statements and transactions per call, and CPU time per call, for CheckDose
and RecordDose through the real server stack (interceptor, audit, servicer, store) in this
process, on SQLite and PostgreSQL. `python -m bench.round_cost_bench` prints one JSON
object (`make bench` runs it with the others); ROUND_COST_SHOW=record_dose (or another
phase) prints the phase's statements as they run.

The server's clock walks through two days of rounds of one facility (40 residents, 7 daily
orders each, mirrored a month before): at each due time, five minutes after it, every dose
due then is checked and then recorded as given, as carers do at a round. The first day
fills what is kept and is not counted; the second is. Every earlier dose is recorded, so
reconciling a record finds nothing missing, as in a home that documents its rounds.

`old_doses_record`: old doses recorded as refused, in time order, with the clock days
later (the load bench, bench.round_load, can only record old doses: its server runs on
the real clock): each record then reconciles days whose later doses are not recorded and
are missed by now, so it saves, withdraws and alerts. A worst case, kept for comparison.

CPU per call is the process's (server and client threads, time.process_time) over the
calls, next to Health/Check's over as many calls: read differences, not absolutes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, event

from bench.round_calls_bench import _postgres_database
from medservice.api.auth import TokenVerifier, mint_token
from medservice.demo import demo_cards
from medservice.domain.access import Role
from medservice.domain.facility import Facility, Resident
from medservice.logs import configure_logging
from medservice.server import build_server
from medservice.service import cards as cards_uc
from medservice.service import facilities as facilities_uc
from medservice.settings import Settings
from medservice.store.audit import AuditAppender
from medservice.store.db import make_engine
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory
from medservice.v1 import rounds_pb2 as pb
from medservice.v1 import rounds_pb2_grpc

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
FACILITY = "bench"
RESIDENTS = 40
ORDERS_PER_RESIDENT = 7
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday; mirrored a month before
PG_URL = os.environ.get("MEDSERVICE_BENCH_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Counts:
    """Statements and transactions of the engine, by phase."""

    phase: str = ""
    statements: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    transactions: Counter[str] = field(default_factory=Counter)

    def statement(self, text: str) -> None:
        if self.phase and self.phase == os.environ.get("ROUND_COST_SHOW"):
            print(self.phase, " ".join(text.split())[:300])
        if self.phase:
            self.statements[self.phase] += 1
            kind = text.split(None, 1)[0].upper()
            self.kinds.setdefault(self.phase, Counter())[kind] += 1

    def begin(self) -> None:
        if self.phase:
            self.transactions[self.phase] += 1


@contextmanager
def counting(engine: Engine, audit: AuditAppender | None = None) -> Iterator[Counts]:
    """The engine's statements and transactions, and the audit appender's (it writes on
    the driver's connection, past the engine's events): one INSERT and one transaction
    per append."""
    counts = Counts()
    if audit is not None:
        appended = audit._append

        def counted_append(events: Any) -> None:
            counts.begin()
            counts.statement("INSERT INTO audit_events (appender)")
            appended(events)

        audit._append = counted_append  # type: ignore[method-assign]

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counts.statement(statement)

    def on_begin(conn: Any) -> None:
        counts.begin()

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)


def _ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def _seed(engine: Engine) -> list[str]:
    uow = uow_factory(engine)
    mirrored = START - timedelta(days=30)
    shapes = [o for orders in demo_cards(START.date()).values() for o in orders]
    unique = list({o.order_id: o for o in shapes}.values())
    names = []
    with uow() as u:
        facilities_uc.create_facility(u, Facility(FACILITY, "Bench Home"), mirrored)
        for i in range(RESIDENTS):
            rid = f"r{i:02d}"
            facilities_uc.create_resident(  # fictitious: no person's
                u, Resident(rid, FACILITY, f"0101{50 + i:02d}-{1000 + i}", rid, str(100 + i)),
                mirrored)
            orders = list({o.order_id: o for o in
                           (unique[(i + k) % len(unique)]
                            for k in range(ORDERS_PER_RESIDENT))}.values())
            cards_uc.sync_card(u, FACILITY, rid, 1, orders, mirrored - timedelta(days=1),
                               mirrored)
            names.append(f"facilities/{FACILITY}/residents/{rid}")
        u.commit()
    return names


Dose = tuple[str, pb.ScheduledDose]


def _doses(stub: Any, md: Any, residents: list[str], start: datetime, end: datetime
           ) -> list[Dose]:
    out: list[Dose] = []
    for r in residents:
        token = ""
        while True:
            page = stub.ListScheduledDoses(pb.ListScheduledDosesRequest(
                parent=r, start_time=_ts(start), end_time=_ts(end), page_size=500,
                page_token=token), metadata=md)
            out += [(r, d) for d in page.doses]
            token = page.next_page_token
            if not token:
                break
    out.sort(key=lambda pair: (pair[1].due_time.ToDatetime(), pair[0]))
    return out


def _check(stub: Any, md: Any, resident: str, d: pb.ScheduledDose) -> None:
    stub.CheckDose(pb.CheckDoseRequest(
        resident=resident, dose_id=d.dose_id,
        quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
        administration_time=d.due_time), metadata=md)


def _record(stub: Any, md: Any, resident: str, d: pb.ScheduledDose, given: bool) -> None:
    if given:
        record = pb.AdministrationRecord(
            dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN,
            quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
            administration_time=d.due_time)
    else:
        record = pb.AdministrationRecord(
            dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
            not_given_reason=pb.NOT_GIVEN_REASON_REFUSED, administration_time=d.due_time)
    stub.RecordDose(pb.RecordDoseRequest(parent=resident, request_id=str(uuid.uuid4()),
                                         record=record), metadata=md)


@dataclass
class Tally:
    calls: int = 0
    cpu: float = 0.0

    def timed(self, fn: Any, *args: Any) -> None:
        began = time.process_time()
        fn(*args)
        self.cpu += time.process_time() - began
        self.calls += 1


def _per_call(counts: Counts, tallies: dict[str, Tally]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, t in tallies.items():
        if not t.calls:
            continue
        out[name] = {
            "calls": t.calls,
            "statements_per_call": round(counts.statements[name] / t.calls, 2),
            "transactions_per_call": round(counts.transactions[name] / t.calls, 2),
            "statement_kinds_per_call": {k: round(v / t.calls, 2) for k, v in
                                         sorted(counts.kinds.get(name, Counter()).items())},
            "cpu_ms_per_call": round(t.cpu / t.calls * 1000, 3)}
    return out


def measure(url: str) -> dict[str, Any]:
    configure_logging("console", "warning")
    engine = make_engine(url)
    residents = _seed(engine)
    clock = Clock(START)
    # No background work (sweep, webhook deliverers' looks) among the statements counted.
    settings = Settings(database_url=url, listen="127.0.0.1:0", jwt_secret=SECRET,
                        sweep_interval_seconds=0, rate_limit_per_second=0, http_listen="",
                        webhook_workers=0)
    running = build_server(settings, uow_factory(engine), TokenVerifier(hmac_secret=SECRET), clock,
                           engine=engine)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            token = mint_token(SECRET, subject="bench-carer", role=Role.CARER,
                               facilities=[FACILITY], ttl=timedelta(days=3650),
                               now=datetime.now(UTC))
            md = (("authorization", f"Bearer {token}"),)
            stub = rounds_pb2_grpc.RoundServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            with counting(engine, running.audit) as counts:
                tallies = {"health": Tally(), "check_dose": Tally(), "record_dose": Tally(),
                           "old_doses_record": Tally()}
                for day in range(2):
                    counted = day == 1
                    clock.now = START + timedelta(days=day + 1)
                    doses = _doses(stub, md, residents, START + timedelta(days=day),
                                   START + timedelta(days=day + 1))
                    at_time: dict[datetime, list[Dose]] = {}
                    for pair in doses:
                        at_time.setdefault(pair[1].due_time.ToDatetime(), []).append(pair)
                    for due, batch in sorted(at_time.items()):
                        clock.now = due.replace(tzinfo=UTC) + timedelta(minutes=5)
                        for r, d in batch:
                            counts.phase = "check_dose" if counted else ""
                            (tallies["check_dose"].timed if counted else _call)(
                                _check, stub, md, r, d)
                        for r, d in batch:
                            counts.phase = "record_dose" if counted else ""
                            (tallies["record_dose"].timed if counted else _call)(
                                _record, stub, md, r, d, True)
                        counts.phase = "health" if counted else ""
                        for _ in batch:
                            (tallies["health"].timed if counted else _call)(
                                health.Check, health_pb2.HealthCheckRequest())
                # The load bench's RecordDose: old doses, refused, in time order.
                clock.now = START + timedelta(days=10)
                counts.phase = ""
                old = _doses(stub, md, residents, START + timedelta(days=2),
                             START + timedelta(days=3))[:200]
                counts.phase = "old_doses_record"
                for r, d in old:
                    tallies["old_doses_record"].timed(_record, stub, md, r, d, False)
                counts.phase = ""
            time.sleep(0.2)  # audit events still being written go to no phase
            return _per_call(counts, tallies)
    finally:
        running.stop(0)
        engine.dispose()


def _call(fn: Any, *args: Any) -> None:
    fn(*args)


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cost.db'}"
        upgrade(url)
        out["sqlite"] = measure(url)
    with _postgres_database() as pg:
        if pg is None:
            out["postgresql"] = f"not measured: {PG_URL} unreachable"
        else:
            upgrade(pg)
            out["postgresql"] = measure(pg)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
