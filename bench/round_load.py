"""The load of the round-call benchmark, in its own process (`python -m bench.round_load`):
an asyncio gRPC client that seeds a facility through the public API, then keeps
`--inflight` calls in flight against a server it does not share a process (or, pinned, a
core) with. Prints one JSON object, the figures, on its last line of output.

Seeding, as a care system would: one facility, 40 residents, 7 daily orders each, the cards
mirrored (valid) from a month back, so that every dose of the last four weeks is on the
cards and a record of it is reconciled, as in a home that has used medservice a while.

Phases, each `--seconds` long: Health/Check (no authentication, no database: the stack's
floor), an authenticated echo (the interceptor, no database), CheckDose over the four
weeks' doses, RecordDose of fresh doses (each recorded once; the phase ends early should
they run out, and says so), Health/Check again (drift on a shared machine); then CheckDose
and RecordDose in open loop at half of their peak (calls started on schedule, latency from
when each was due).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.round_server import ECHO_METHOD
from medservice.api.auth import mint_token
from medservice.demo import demo_cards
from medservice.domain import names
from medservice.domain.access import Role
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
                       facilities=[FACILITY])
    return (("authorization", f"Bearer {token}"),)


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
                          residents: list[str], now: datetime
                          ) -> list[tuple[str, pb.ScheduledDose]]:
    """Every resident's doses of the last four weeks, in due order across residents (so
    that the calls in flight are for different residents, as in a round)."""
    out: list[tuple[str, pb.ScheduledDose]] = []
    for r in residents:
        token = ""
        while True:
            page = await stub.ListScheduledDoses(pb.ListScheduledDosesRequest(
                parent=r, start_time=_ts(now - timedelta(days=DAYS)),
                end_time=_ts(now - timedelta(hours=1)), page_size=500, page_token=token),
                metadata=md)
            out += [(r, d) for d in page.doses]
            token = page.next_page_token
            if not token:
                break
    out.sort(key=lambda pair: (pair[1].due_time.ToDatetime(), pair[0]))
    return out


@dataclass
class Phase:
    calls: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    ran_out: bool = False

    def figures(self) -> dict[str, float | int | bool]:
        out: dict[str, float | int | bool] = {
            "calls": self.calls, "seconds": round(self.seconds, 2),
            "per_second": round(self.calls / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(self.latencies_ms), 2) if self.latencies_ms else 0,
            "p99_ms": _p(self.latencies_ms, 0.99), "errors": self.errors}
        if self.ran_out:
            out["ran_out_of_doses"] = True
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
    errors = 0
    ran_out = False
    stop = loop.time() + seconds

    async def worker() -> None:
        nonlocal errors, ran_out
        while loop.time() < stop and not ran_out:
            started = loop.time()
            try:
                if not await call(next(counter)):
                    ran_out = True
                    return
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append((loop.time() - started) * 1000)

    began = loop.time()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return Phase(len(latencies), loop.time() - began, latencies, errors, ran_out)


async def open_loop(call: Call, rate: float, seconds: float) -> Phase:
    """Calls started on schedule at `rate` per second, however many are in flight; each
    call's latency counts from when it was due, so a queue shows."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    ran_out = False

    async def one(i: int, due: float) -> None:
        nonlocal errors, ran_out
        try:
            if not await call(i):
                ran_out = True
                return
        except grpc.RpcError:
            errors += 1
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
    return Phase(len(latencies), loop.time() - began, latencies, errors, ran_out)


PHASES = ("health", "echo", "check_dose", "record_dose", "health_again")


async def measure(target: str, secret: str, seconds: float, inflight: int,
                  phases: tuple[str, ...] = PHASES, half_peak: bool = True
                  ) -> dict[str, object]:
    now = datetime.now(UTC)
    async with grpc.aio.insecure_channel(target) as channel:
        await channel.channel_ready()
        residents = await seed(channel, secret, now)
        carer = _md(secret, Role.CARER)
        stub = rounds_pb2_grpc.RoundServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        echo = channel.unary_unary(ECHO_METHOD)
        doses = await scheduled_doses(stub, carer, residents, now)
        fresh = iter(doses)

        async def call_health(i: int) -> bool:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            return True

        async def call_echo(i: int) -> bool:
            await echo(b"x" * 64, metadata=carer, timeout=10)
            return True

        async def call_check(i: int) -> bool:
            resident, d = doses[i % len(doses)]
            await stub.CheckDose(pb.CheckDoseRequest(
                resident=resident, dose_id=d.dose_id,
                quantity=d.amount.quantity or d.amount.max_quantity, route=d.route,
                administration_time=d.due_time), metadata=carer, timeout=10)
            return True

        async def call_record(i: int) -> bool:
            pair = next(fresh, None)
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
        calls = {"health": call_health, "echo": call_echo, "check_dose": call_check,
                 "record_dose": call_record, "health_again": call_health}
        peak = {name: await closed_loop(calls[name], seconds, inflight) for name in phases}
        half = {name: await open_loop(calls[name], peak[name].calls / peak[name].seconds / 2,
                                      seconds)
                for name in ("echo", "check_dose", "record_dose")
                if half_peak and name in peak}
    out: dict[str, object] = {
        "doses_available": len(doses),
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
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.target, args.secret, args.seconds, args.inflight,
                                  tuple(args.phases.split(",")), not args.no_half_peak))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
