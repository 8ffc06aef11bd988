"""The load of the round-call benchmark, in its own process (`python -m bench.round_load`):
an asyncio gRPC client that seeds a facility through the public API, then keeps
`--inflight` calls in flight against a server it does not share a process (or, pinned, a
core) with. Prints one JSON object, the figures, on its last line of output.

Seeding, as a care system would: one facility, 40 residents, 7 daily orders each, the cards
mirrored (valid) from a month back, so that every dose of the last four weeks is on the
cards and a record of it is reconciled, as in a home that has used medservice a while.

A second facility is a morning round in progress: ROUND_RESIDENTS residents, each with
the demo's scheduled drugs (up to 7) due once a day at this very minute, on cards mirrored
two hours ago (so nothing earlier is due or missed).

Phases, each `--seconds` long: Health/Check (no authentication, no database: the stack's
floor), an authenticated echo (the interceptor, no database), the same echo audited (the
interceptor writes its audit event, as for every API call: the floor of any answer the
service may give), an audited read (the resident's head, the one row CheckDose's one
statement starts from, without the records it joins, in a read unit of work: the floor of
any call that asks the store), an audited write (a write unit
of work committing only the call's audit event: the floor of any call that writes),
CheckDose over the four weeks' doses, RecordDose at the round (each dose due now recorded
once, given, with its dose and route, at the time of the call; the phase ends early should
they run out, and says so), RecordDose of an old dose (each of the four weeks' doses
recorded once as refused, weeks late: reconciled, with its discrepancies, events and
alerts, the worst case), Health/Check again (drift on a shared machine); then the calls in
open loop at half of their peak (calls started on schedule, latency from when each was
due).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import itertools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.round_server import (
    AUDITED_ECHO_METHOD,
    AUDITED_READ_METHOD,
    AUDITED_WRITE_METHOD,
    ECHO_METHOD,
)
from medservice.api.auth import mint_token
from medservice.demo import demo_cards
from medservice.domain import names
from medservice.domain.access import Role
from medservice.domain.dosage import (
    DosageDay,
    DosageDose,
    DosagePeriod,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.facility import DEFAULT_TIME_ZONE
from medservice.domain.order_codec import content_to_dict
from medservice.domain.orders import OrderContent
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import facilities_pb2_grpc, medicine_cards_pb2_grpc, rounds_pb2_grpc
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb

FACILITY = "bench"
RESIDENTS = 40
ORDERS_PER_RESIDENT = 7
DAYS = 28
ROUND_FACILITY = "bench-round"
ROUND_RESIDENTS = 900
SEEDING_IN_FLIGHT = 16

Call = Callable[[int], Awaitable[bool]]  # False: nothing left to call with


def _ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def _order(resident: str, content: OrderContent) -> cpb.Order:
    data = content_to_dict(content)
    order_id = data.pop("order_id")
    order = cpb.Order(name=f"{resident}/orders/{order_id}")
    ParseDict(data, order)
    return order


def _md(secret: str, role: Role) -> tuple[tuple[str, str], ...]:
    token = mint_token(secret, subject=f"bench-{role.value}", role=role,
                       facilities=[FACILITY, ROUND_FACILITY])
    return (("authorization", f"Bearer {token}"),)


def due_now(order: OrderContent, now: datetime) -> OrderContent | None:
    """The order given once a day at `now`'s minute on the facility's clock, from today
    (its first fixed dose's amount); None for an order with no fixed dose (PN, free text)."""
    dosage = order.dosage
    if not isinstance(dosage, StructuredDosage):
        return None
    fixed = [d for p in dosage.periods for d in p.fixed_doses]
    if not fixed:
        return None
    local = now.astimezone(ZoneInfo(DEFAULT_TIME_ZONE))
    dose = DosageDose(TimeKind.CLOCK, local.time().replace(second=0, microsecond=0),
                      fixed[0].amount)
    return dataclasses.replace(order, dosage=StructuredDosage(dosage.unit, (DosagePeriod(
        local.date(), None, 1, "", (DosageDay(1, (dose,)),)),)))


async def seed_round(channel: grpc.aio.Channel, secret: str, now: datetime, count: int
                     ) -> list[str]:
    """The round facility, its residents and their cards, through the public API (many
    at once); the residents' names."""
    admin, integration = _md(secret, Role.ADMIN), _md(secret, Role.INTEGRATION)
    facilities = facilities_pb2_grpc.FacilityServiceStub(channel)
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(channel)
    await facilities.CreateFacility(fpb.CreateFacilityRequest(
        facility=fpb.Facility(display_name="Bench Round", time_zone=DEFAULT_TIME_ZONE),
        facility_id=ROUND_FACILITY, request_id=str(uuid.uuid4())), metadata=admin)
    shapes = [o for orders in demo_cards(now.date()).values() for o in orders]
    orders = [o for o in ({o.order_id: due_now(o, now) for o in shapes}.values())
              if o is not None][:ORDERS_PER_RESIDENT]
    gate = asyncio.Semaphore(SEEDING_IN_FLIGHT)

    async def one(i: int) -> str:
        rid = f"r{i:03d}"
        resident = names.resident_name(ROUND_FACILITY, rid)
        async with gate:
            await facilities.CreateResident(fpb.CreateResidentRequest(
                parent=f"facilities/{ROUND_FACILITY}", resident_id=rid,
                request_id=str(uuid.uuid4()), resident=fpb.Resident(
                    person_id=f"0202{i // 100:02d}-{2000 + i}", display_name=rid,
                    room=f"{1000 + i}")), metadata=admin)
            await cards.SyncMedicineCard(cpb.SyncMedicineCardRequest(
                card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=1,
                                      orders=[_order(resident, o) for o in orders]),
                valid_time=_ts(now - timedelta(hours=2)), request_id=str(uuid.uuid4())),
                metadata=integration)
        return resident

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def seed(channel: grpc.aio.Channel, secret: str, now: datetime) -> list[str]:
    """The facility, its residents and their cards, through the public API; the residents'
    names."""
    admin, integration = _md(secret, Role.ADMIN), _md(secret, Role.INTEGRATION)
    facilities = facilities_pb2_grpc.FacilityServiceStub(channel)
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(channel)
    await facilities.CreateFacility(fpb.CreateFacilityRequest(
        facility=fpb.Facility(display_name="Bench Home"), facility_id=FACILITY,
        request_id=str(uuid.uuid4())), metadata=admin)
    shapes = [o for orders in demo_cards(now.date()).values() for o in orders]
    unique = list({o.order_id: o for o in shapes}.values())
    residents = []
    for i in range(RESIDENTS):
        rid = f"r{i:02d}"
        # Fictitious: 10 digits, no person's.
        await facilities.CreateResident(fpb.CreateResidentRequest(
            parent=f"facilities/{FACILITY}", resident_id=rid, request_id=str(uuid.uuid4()),
            resident=fpb.Resident(person_id=f"0101{50 + i:02d}-{1000 + i}", display_name=rid,
                                  room=f"{100 + i}")), metadata=admin)
        resident = names.resident_name(FACILITY, rid)
        orders = [unique[(i + k) % len(unique)] for k in range(ORDERS_PER_RESIDENT)]
        orders = list({o.order_id: o for o in orders}.values())
        await cards.SyncMedicineCard(cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{resident}/medicineCard", card_version=1,
                                  orders=[_order(resident, o) for o in orders]),
            valid_time=_ts(now - timedelta(days=30)), request_id=str(uuid.uuid4())),
            metadata=integration)
        residents.append(resident)
    return residents


async def scheduled_doses(stub: rounds_pb2_grpc.RoundServiceStub, md: tuple[tuple[str, str], ...],
                          residents: list[str], start: datetime, end: datetime
                          ) -> list[tuple[str, pb.ScheduledDose]]:
    """Every resident's doses due from `start` until `end`, in due order across residents
    (so that the calls in flight are for different residents, as in a round)."""
    gate = asyncio.Semaphore(SEEDING_IN_FLIGHT)

    async def one(r: str) -> list[tuple[str, pb.ScheduledDose]]:
        found: list[tuple[str, pb.ScheduledDose]] = []
        token = ""
        async with gate:
            while True:
                page = await stub.ListScheduledDoses(pb.ListScheduledDosesRequest(
                    parent=r, start_time=_ts(start), end_time=_ts(end), page_size=500,
                    page_token=token), metadata=md)
                found += [(r, d) for d in page.doses]
                token = page.next_page_token
                if not token:
                    return found

    out = [pair for found in await asyncio.gather(*(one(r) for r in residents))
           for pair in found]
    out.sort(key=lambda pair: (pair[1].due_time.ToDatetime(), pair[0]))
    return out


@dataclass
class Phase:
    calls: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    ran_out: bool = False
    error_codes: dict[str, int] = dataclasses.field(default_factory=dict)

    def figures(self) -> dict[str, float | int | bool]:
        out: dict[str, float | int | bool] = {
            "calls": self.calls, "seconds": round(self.seconds, 2),
            "per_second": round(self.calls / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(self.latencies_ms), 2) if self.latencies_ms else 0,
            "p99_ms": _p(self.latencies_ms, 0.99), "errors": self.errors}
        if self.ran_out:
            out["ran_out_of_doses"] = True
        for code, n in sorted(self.error_codes.items()):
            out[f"errors_{code}"] = n
        return out


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


async def closed_loop(call: Call, seconds: float, inflight: int) -> Phase:
    """`inflight` calls in flight at all times for `seconds` (or until `call` has nothing
    left)."""
    loop = asyncio.get_running_loop()
    counter = itertools.count()
    latencies: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    ran_out = False
    stop = loop.time() + seconds

    async def worker() -> None:
        nonlocal ran_out
        while loop.time() < stop and not ran_out:
            started = loop.time()
            try:
                if not await call(next(counter)):
                    ran_out = True
                    return
            except grpc.RpcError as e:
                codes[_code(e)] += 1
                continue
            latencies.append((loop.time() - started) * 1000)

    began = loop.time()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return Phase(len(latencies), loop.time() - began, latencies, codes.total(), ran_out,
                 dict(codes))


def _code(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
    return code.name if code is not None else "UNKNOWN"


async def open_loop(call: Call, rate: float, seconds: float) -> Phase:
    """Calls started on schedule at `rate` per second, however many are in flight; each
    call's latency counts from when it was due, so a queue shows."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    ran_out = False

    async def one(i: int, due: float) -> None:
        nonlocal ran_out
        try:
            if not await call(i):
                ran_out = True
                return
        except grpc.RpcError as e:
            codes[_code(e)] += 1
            return
        latencies.append((loop.time() - due) * 1000)

    began = loop.time()
    tasks = []
    for i in range(int(rate * seconds)):
        due = began + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if ran_out:
            break
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return Phase(len(latencies), loop.time() - began, latencies, codes.total(), ran_out,
                 dict(codes))


PHASES = ("health", "echo", "audited_echo", "audited_read", "audited_write", "check_dose",
          "record_dose", "record_old_dose", "health_again")
HALF_PEAK = ("echo", "audited_echo", "check_dose", "record_dose", "record_old_dose")


def _phase(name: str) -> None:
    """On stderr, with the wall time: for a profiler to attach to one phase (py-spy --pid
    ... while it runs), or to line up what the server logged (a GC pause, say)."""
    print(f"PHASE {name} {time.time():.3f}", file=sys.stderr, flush=True)


async def measure(target: str, secret: str, seconds: float, inflight: int,
                  phases: tuple[str, ...] = PHASES, half_peak: bool = True,
                  round_residents: int = ROUND_RESIDENTS) -> dict[str, object]:
    now = datetime.now(UTC)
    async with grpc.aio.insecure_channel(target) as channel:
        await channel.channel_ready()
        residents = await seed(channel, secret, now)
        at_the_round = await seed_round(channel, secret, now, round_residents) \
            if round_residents else []
        carer = _md(secret, Role.CARER)
        stub = rounds_pb2_grpc.RoundServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        echo = channel.unary_unary(ECHO_METHOD)
        audited_echo = channel.unary_unary(AUDITED_ECHO_METHOD)
        audited_read = channel.unary_unary(AUDITED_READ_METHOD)
        audited_write = channel.unary_unary(AUDITED_WRITE_METHOD)
        doses = await scheduled_doses(stub, carer, residents, now - timedelta(days=DAYS),
                                      now - timedelta(hours=1))
        old = iter(doses)
        round_doses = await scheduled_doses(stub, carer, at_the_round,
                                            now - timedelta(hours=1), now + timedelta(hours=1))
        at_round = iter(round_doses)

        async def call_health(i: int) -> bool:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            return True

        async def call_echo(i: int) -> bool:
            await echo(b"x" * 64, metadata=carer, timeout=10)
            return True

        async def call_audited_echo(i: int) -> bool:
            await audited_echo(b"x" * 64, metadata=carer, timeout=10)
            return True

        async def call_audited_read(i: int) -> bool:
            await audited_read(doses[i % len(doses)][0].encode(), metadata=carer, timeout=10)
            return True

        async def call_audited_write(i: int) -> bool:
            await audited_write(b"", metadata=carer, timeout=10)
            return True

        async def call_check(i: int) -> bool:
            resident, d = doses[i % len(doses)]
            await stub.CheckDose(pb.CheckDoseRequest(
                resident=resident, dose_id=d.dose_id,
                quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
                administration_time=d.due_time), metadata=carer, timeout=10)
            return True

        async def call_record(i: int) -> bool:
            pair = next(at_round, None)
            if pair is None:
                return False
            resident, d = pair
            await stub.RecordDose(pb.RecordDoseRequest(
                parent=resident, request_id=str(uuid.uuid4()), record=pb.AdministrationRecord(
                    dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN,
                    quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
                    administration_time=_ts(datetime.now(UTC)))), metadata=carer,
                timeout=10)
            return True

        async def call_record_old(i: int) -> bool:
            pair = next(old, None)
            if pair is None:
                return False
            resident, d = pair
            await stub.RecordDose(pb.RecordDoseRequest(
                parent=resident, request_id=str(uuid.uuid4()), record=pb.AdministrationRecord(
                    dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
                    not_given_reason=pb.NOT_GIVEN_REASON_REFUSED,
                    administration_time=d.due_time)), metadata=carer, timeout=10)
            return True

        # Warm-up, not measured: the first call of each resident fills what is kept.
        await closed_loop(call_echo, 0.5, inflight)
        await closed_loop(call_check, 1.0, inflight)
        # The floors' own engine (bench.round_server) opens its pool here, not in a phase.
        await closed_loop(call_audited_read, 0.5, inflight)
        await closed_loop(call_audited_write, 0.5, inflight)
        calls = {"health": call_health, "echo": call_echo, "audited_echo": call_audited_echo,
                 "audited_read": call_audited_read, "audited_write": call_audited_write,
                 "check_dose": call_check, "record_dose": call_record,
                 "record_old_dose": call_record_old, "health_again": call_health}
        peak = {}
        for name in phases:
            # On stderr, for a profiler to attach to one phase (py-spy --pid ... while it runs).
            _phase(name)
            peak[name] = await closed_loop(calls[name], seconds, inflight)
        half = {}
        for name in HALF_PEAK:
            if half_peak and name in peak:
                _phase(f"{name} at half of peak")
                half[name] = await open_loop(calls[name],
                                             peak[name].calls / peak[name].seconds / 2, seconds)
        _phase("end")
    out: dict[str, object] = {
        "doses_available": len(doses), "round_doses_available": len(round_doses),
        "peak": {name: p.figures() for name, p in peak.items()},
        "half_peak": {name: p.figures() for name, p in half.items()},
    }
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.round_load")
    parser.add_argument("--target", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="closed-loop phases to run, in order (profiling runs one)")
    parser.add_argument("--no-half-peak", action="store_true")
    parser.add_argument("--round-residents", type=int, default=ROUND_RESIDENTS,
                        help="residents of the round facility (0: none, the issue's set-up)")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.target, args.secret, args.seconds, args.inflight,
                                  tuple(args.phases.split(",")), not args.no_half_peak,
                                  args.round_residents))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
